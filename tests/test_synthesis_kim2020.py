"""The differentiable HDR synthesis layer (Kim, Lee & Kang 2020): gradients, a known answer, a real stack."""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck

from hdrkit.camera import GammaResponse, SRGBResponse, expose, recover_response_debevec1997
from hdrkit.data import procedural_scene
from hdrkit.errors import HdrkitError
from hdrkit.merge import merge_debevec1997
from hdrkit.merge import weights as W
from hdrkit.merge.debevec1997 import fallback_radiance, weighted_mean
from hdrkit.merge.synthesis_kim2020 import apply_log_response, recover_log_response_kim2020, synthesize_hdr_kim2020


def _small_stack(dtype=torch.float64):
    g = torch.Generator().manual_seed(0)
    rad = torch.rand(1, 1, 3, 6, 6, generator=g, dtype=dtype) * 0.9 + 0.02
    t = torch.tensor([[1.0, 2.0, 4.0]], dtype=dtype)
    ldr = (rad * t[:, :, None, None, None] / 4).clamp(0, 1) ** (1 / 2.2)  # continuous codes, one clipped-free stack
    return ldr, t


@pytest.mark.parametrize("domain", ["log", "linear"])
def test_gradcheck_float64(domain):
    ldr, t = _small_stack()
    ldr.requires_grad_()
    t.requires_grad_()

    def layer(x, tt):
        return synthesize_hdr_kim2020(x, tt, domain=domain, levels=16)

    assert gradcheck(layer, (ldr, t), eps=1e-6, atol=1e-6, rtol=1e-4, fast_mode=True)


def test_gradient_flows_through_the_calibration():
    ldr, t = _small_stack()
    ldr.requires_grad_()
    g = recover_log_response_kim2020(ldr, t, levels=16)
    g[:, :, 1:-1].sum().backward()
    assert ldr.grad.abs().sum() > 0  # the response moves with the frames, not only the lookup


def test_piecewise_linear_slope_is_eq3():
    g = torch.log(torch.linspace(0.01, 1, 16, dtype=torch.float64)).view(1, 1, 16).expand(1, 3, 16).contiguous()
    z = torch.full((1, 1, 3, 1, 1), 5.3 / 15, dtype=torch.float64, requires_grad=True)
    y = apply_log_response(z, g)
    y.sum().backward()
    slope = (g[0, 0, 6] - g[0, 0, 5]) * 15  # per unit code in [0, 1]
    torch.testing.assert_close(z.grad, slope.expand_as(z.grad))
    torch.testing.assert_close(y[0, 0, 0], g[0, 0, 5] + 0.3 * (g[0, 0, 6] - g[0, 0, 5]).expand(1, 1))


@pytest.mark.parametrize("response", [GammaResponse(2.2), SRGBResponse()], ids=["gamma", "srgb"])
def test_recovers_known_response_and_radiance(response):
    hdr = procedural_scene(96, 128, seed=3)[None].double()
    hdr = hdr / hdr.quantile(0.999) * 0.9
    t = torch.tensor([[1.0, 4.0, 16.0, 64.0]], dtype=torch.float64)
    ldr = expose(hdr, t, response, bits=8)
    out, g = synthesize_hdr_kim2020(ldr, t, return_response=True)
    codes = torch.linspace(0, 1, 256, dtype=torch.float64)
    truth = response.inverse(codes.view(1, 1, 256, 1)).view(1, 256)
    mid = (codes > 0.1) & (codes < 0.95)
    err = (torch.exp(g[0])[:, mid] - truth[:, mid]).abs() / truth[:, mid]
    assert err.max() < 0.05, float(err.max())
    # radiance: recovered up to the normalization f^-1(1) = 1, which the true response shares
    ok = W.hat(ldr[0]).amax(0) > 0.1
    rel = ((out[0] - hdr[0]).abs() / hdr[0])[ok]
    assert rel.median() < 0.02, float(rel.median())


def test_bad_input_is_one_line():
    ldr, t = _small_stack()
    with pytest.raises(HdrkitError, match="domain"):
        synthesize_hdr_kim2020(ldr, t, domain="exp")
    with pytest.raises(HdrkitError, match="exposure_times"):
        synthesize_hdr_kim2020(ldr, t[:, :2])
    with pytest.raises(HdrkitError, match="shape"):
        synthesize_hdr_kim2020(ldr[0], t)
    with pytest.raises(HdrkitError, match="well exposed in two frames"):
        synthesize_hdr_kim2020(torch.ones_like(ldr), t)


@pytest.mark.data
def test_reproduces_classical_debevec_on_memorial(data_dir):
    """Median relative radiance difference over well-exposed pixels (some frame's hat weight > 0.25 in
    that channel) between the layer and hdrkit's classical Debevec calibration + merge, on the same 16
    frames with the same Grossberg & Nayar samples: below 1 % (measured ~1e-5 in both domains)."""
    from hdrkit.io import read_bracket
    from hdrkit.io.bracket import read_exposure_file

    s = data_dir / "stacks" / "memorial"
    br = read_bracket(sorted(s.glob("*.png")), times=read_exposure_file(s / "memorial.hdr_image_list.txt", kind="seconds"))
    ldr, t = br.ldr.float()[None], br.exposure_times.float()[None]
    opts = dict(samples=4096, max_pixels=2**16)  # the same sampling for both, fewer samples for speed
    resp = recover_response_debevec1997(ldr, t, bits=8, **opts)
    hdr_lin, g = synthesize_hdr_kim2020(ldr, t, domain="linear", return_response=True, **opts)
    hdr_log = synthesize_hdr_kim2020(ldr, t, domain="log", log_response=g)
    ref_lin = merge_debevec1997(ldr, t, resp, weighting="hat", bits=8)
    # Debevec & Malik's eq. 6 (the paper's eq. 2) with the classical response
    tn = t / t.min()
    log_x = torch.log(resp.inverse(ldr).clamp_min(1e-30)) - torch.log(tn)[:, :, None, None, None]
    ref_log = torch.exp(weighted_mean(log_x, W.hat(ldr), fallback_radiance(ldr, log_x, tn)))
    good = W.hat(ldr[0]).amax(0) > 0.25
    for out, ref in ((hdr_lin, ref_lin), (hdr_log, ref_log)):
        rel = ((out[0] - ref[0]).abs() / ref[0])[good]
        assert rel.median() < 0.01, float(rel.median())
        assert torch.quantile(rel[::7], 0.99) < 0.01
