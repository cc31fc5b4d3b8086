"""HDRCNN (Eilertsen et al. 2017): parameter count, the blend of eq. 16-17, the official initialization,
the losses of eq. 19-22, the training target's units and the receptive field against ``context``."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hdrkit.camera.response import LinearResponse, SRGBResponse
from hdrkit.models.hdrcnn2017 import EPS, HDRCNN, IR_LAMBDA, _domain, _Skip, _Up, hdrcnn_loss, highlight_mask


def _frame(h=64, w=64, seed=0, clip=True):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 1, 3, h, w, generator=g) * 0.9
    if clip:
        x[..., 20:30, 10:40] = 1.0  # a clipped highlight
        x[..., 0, 40:50, 40:50] = 0.97  # one channel near saturation: partial blend
    return x


def test_parameter_count_follows_from_the_layer_list():
    with torch.device("meta"):
        assert sum(p.numel() for p in HDRCNN().parameters()) == 29_443_358


@pytest.mark.parametrize("response", [None, SRGBResponse(), LinearResponse()])
def test_below_tau_the_output_is_the_linearized_input(response):
    torch.manual_seed(0)
    model = HDRCNN().eval()
    x = _frame(48, 56)
    t = torch.tensor([[4.0]])
    with torch.no_grad():
        out = model(x, t, 0, response)
    lin = (response.inverse(x[:, 0]) if response else x[:, 0] ** 2.2) / 4
    exposed = x[:, 0].amax(1, keepdim=True).expand_as(out) <= 0.95
    assert exposed.float().mean() > 0.5
    assert torch.equal(out[exposed], lin[exposed])


def test_clipped_pixels_take_the_prediction_and_the_ramp_mixes():
    torch.manual_seed(0)
    model = HDRCNN().eval()
    x = _frame()
    with torch.no_grad():
        out = model(x, torch.ones(1, 1), 0)
        y = model.log_radiance(x[:, 0])
    pred = (y.exp() - EPS).clamp_min(0)
    a = highlight_mask(x[:, 0])
    assert float(a[0, 0, 25, 20]) == 1.0 and 0.39 < float(a[0, 0, 45, 45]) < 0.41  # (0.97 - 0.95) / 0.05
    assert torch.allclose(out, (1 - a) * x[:, 0] ** 2.2 + a * pred, rtol=1e-5)
    assert torch.allclose(out[..., 25, 20], pred[..., 25, 20], rtol=1e-5)


def test_skip_fusion_starts_as_addition_of_the_log_domain_features():
    skip = _Skip(8, 8)
    a, b = torch.randn(2, 8, 5, 6), torch.rand(2, 8, 5, 6) * 3
    assert torch.allclose(skip(a, b), a + torch.log(b**2 + EPS), atol=1e-6)
    assert torch.allclose(_domain(torch.tensor([0.0, 1.0])), torch.log(torch.tensor([EPS, 1 + EPS])))


def test_deconvolution_starts_as_bilinear_upsampling():
    up = _Up(4, 2).eval()  # batch norm with fresh running statistics: x / sqrt(1 + 1e-5)
    x = torch.rand(1, 4, 6, 7) + 0.1
    with torch.no_grad():
        out = up.deconv(x)
    ref = F.interpolate(x[:, :2], scale_factor=2, mode="bilinear", align_corners=False)
    assert out.shape == (1, 2, 12, 14)
    assert torch.allclose(out[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], atol=1e-6)  # the border: zero padding


def _highlight(h=40, w=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    hdr = torch.rand(2, 3, h, w, generator=g) * 0.8
    hdr[:, :, 10:20, 10:25] = 1 + 20 * torch.rand(2, 3, 10, 15, generator=g)
    ldr = hdr.clamp(0, 1) ** (1 / 2.2)
    return hdr, ldr, highlight_mask(ldr)


@pytest.mark.parametrize("kind", ["log", "ir"])
def test_losses_vanish_at_the_target_and_weigh_a_global_log_offset(kind):
    hdr, _, a = _highlight()
    y = torch.log(hdr + EPS)
    assert float(hdrcnn_loss(y, hdr, a, kind)) < 1e-10
    c = 0.7  # a global offset: all illuminance error (eq. 22 lambda), no reflectance error
    expected = c**2 * float(a.square().mean()) * (1 if kind == "log" else IR_LAMBDA)
    assert math.isclose(float(hdrcnn_loss(y + c, hdr, a, kind)), expected, rel_tol=1e-4)


@pytest.mark.parametrize("kind", ["log", "ir"])
def test_losses_ignore_pixels_far_from_highlights(kind):
    hdr, _, a = _highlight()
    y = torch.log(hdr + EPS) + 0.3 * torch.randn(2, 3, 40, 40)
    far = y.clone()
    far[..., 30:, :] += 5.0  # 10 rows below the highlight, beyond the 3-sigma Gaussian (6 px)
    assert float(hdrcnn_loss(y, hdr, a, kind)) == pytest.approx(float(hdrcnn_loss(far, hdr, a, kind)), rel=1e-6)
    assert float(hdrcnn_loss(y, hdr, a, kind)) > 0


def test_reflectance_term_sees_detail_the_illuminance_term_blurs():
    hdr, _, a = _highlight()
    y = torch.log(hdr + EPS)
    detail = y.clone()
    detail[..., 10:20, 10:25] += 0.5 * torch.tensor([1.0, -1.0]).repeat(8)[:15]  # a column pattern
    only_ill = hdrcnn_loss(detail, hdr, a, "ir", ir_lambda=1.0)
    only_refl = hdrcnn_loss(detail, hdr, a, "ir", ir_lambda=0.0)
    assert float(only_refl) > 5 * float(only_ill)


def test_training_loss_compares_with_the_radiance_in_the_frames_units():
    hdr, ldr, _ = _highlight(64, 64)
    t = torch.full((2, 1), 2.0)
    model = HDRCNN(loss="log")
    target = hdr * 2  # the frame saw twice the radiance of the shortest exposure
    model.log_radiance = lambda x: torch.log(target + EPS)
    loss = model.training_loss(ldr[:, None], t, torch.zeros(2, dtype=torch.long), hdr, priors={}, loss_fn=None)
    assert float(loss) < 1e-10
    model.log_radiance = lambda x: torch.log(hdr + EPS)
    assert float(model.training_loss(ldr[:, None], t, torch.zeros(2, dtype=torch.long), hdr, priors={}, loss_fn=None)) > 1e-3


def test_receptive_field_is_within_context(monkeypatch):
    """Gradient support of one output pixel with every path open: positive weights (every ReLU passes,
    no cancellation) and average pooling (the same windows as max pooling, gradient to all four).
    Interval propagation through the layer list gives the largest reach, 184 px, to the top at phase 30
    of the 32-pixel grid and to the right at phase 1; the pixel below has both."""
    model = HDRCNN().eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                fan_in = m.weight[0].numel() if isinstance(m, nn.Conv2d) else m.weight[:, 0].numel()
                m.weight.fill_(2.0 / fan_in)
                m.bias.zero_()
    monkeypatch.setattr(F, "max_pool2d", F.avg_pool2d)
    size = 416
    x = torch.full((1, 3, size, size), 0.9, requires_grad=True)
    py, px = 192 + 30, 160 + 1
    model.log_radiance(x)[0, :, py, px].sum().backward()
    ys, xs = torch.nonzero(x.grad.abs().sum((0, 1)), as_tuple=True)
    up, down = py - int(ys.min()), int(ys.max()) - py
    left, right = px - int(xs.min()), int(xs.max()) - px
    assert (up, right) == (184, 184) and max(down, left) < 184
    assert HDRCNN.context >= 184
