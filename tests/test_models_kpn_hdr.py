"""KPN-HDR (Chung, Kim, Jo, Lee & Cho): parameter count, eq. 3 kernels, eq. 4 merge, input order, receptive field."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hdrkit.camera.response import GammaResponse, LinearResponse
from hdrkit.models import MODELS
from hdrkit.models.inference import run_model
from hdrkit.models.kpn_hdr import KERNEL_SIZE, RECEPTIVE_RADIUS, KPNHDR, apply_kernels


def _count(module):
    return sum(p.numel() for p in module.parameters())


def test_registered():
    assert MODELS["kpn_hdr"] is KPNHDR


def test_parameter_count_follows_from_the_layer_list():
    m = KPNHDR()
    assert _count(m) == 32_882_366
    assert _count(m.merge) == 88_300 + 250_100 + 45_050 + 918
    assert _count(m.kernels) == 5_201_550
    assert [_count(b) for b in m.encoder] == [84_288, 369_024, 1_475_328, 5_899_776, 7_079_424]
    assert [_count(b) for b in m.decoder] == [9_438_720, 2_949_888]
    # the three-level network of Mildenhall's released training script
    assert _count(KPNHDR(widths=(64, 128, 256))) == 7_514_558


def test_apply_kernels_matches_an_unfolded_reference():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 11, 13, generator=g)
    k = torch.randn(2, 25 * 3, 11, 13, generator=g)
    cols = F.unfold(x, 5, padding=2).reshape(2, 3, 25, 11, 13)  # zero padding, taps row-major
    ref = (k.reshape(2, 25, 3, 11, 13).transpose(1, 2) * cols).sum(2)
    assert torch.allclose(apply_kernels(x, k), ref, atol=1e-6)


def test_apply_kernels_single_tap_shifts_the_image():
    x = torch.rand(1, 3, 9, 9)
    k = torch.zeros(1, 25 * 3, 9, 9)
    tap = 1 * 5 + 4  # dy = -1, dx = +2
    k[:, tap * 3 : tap * 3 + 3] = 1.0
    y = apply_kernels(x, k)
    assert torch.equal(y[..., 1:, :-2], x[..., :-1, 2:])
    assert (y[..., 0, :] == 0).all() and (y[..., :, -2:] == 0).all()  # zero padding outside


def test_kernel_map_is_3k2n_channels_at_half_resolution_and_non_negative():
    torch.manual_seed(0)
    m = KPNHDR().eval()
    with torch.no_grad():
        k = m.predict_kernels(torch.rand(1, 18, 32, 48))
    assert k.shape == (1, 3 * KERNEL_SIZE**2 * 6, 16, 24)
    assert (k >= 0).all()


def test_pack_order_puts_the_reference_in_the_middle_slot():
    ldr = torch.stack([torch.full((3, 4, 4), v) for v in (0.1, 0.2, 0.3)])[None].repeat(2, 1, 1, 1, 1)
    t = torch.tensor([[4.0, 1.0, 16.0], [4.0, 1.0, 16.0]])
    m = KPNHDR()
    ref = torch.tensor([0, 2])
    lin = m.prepare(ldr, t, ref)["lin"]
    x = m.pack(ldr, t, ref, lin)[:, :, 0, 0]
    h = lambda i: 0.1 * (i + 1)  # noqa: E731
    # element 0: reference frame 0 (t = 4); others in exposure order: frame 1 (t = 1), frame 2 (t = 16)
    # element 1: reference frame 2; others: frame 1 (t = 1), frame 0 (t = 4)
    for b, slots in ((0, (1, 0, 2)), (1, (1, 2, 0))):
        for s, f in enumerate(slots):
            assert torch.allclose(x[b, 6 * s : 6 * s + 3], torch.tensor(h(f)))
            assert torch.allclose(x[b, 6 * s + 3 : 6 * s + 6], torch.tensor(h(f) ** 2.2 / float(t[b, f])))


def test_prepare_linearizes_with_the_given_response():
    ldr = torch.rand(1, 3, 3, 8, 8)
    t = torch.tensor([[1.0, 4.0, 16.0]])
    m = KPNHDR()
    lin = m.prepare(ldr, t, torch.tensor([1]), LinearResponse())["lin"]
    assert torch.allclose(lin, ldr / t[:, :, None, None, None])
    gamma = m.prepare(ldr, t, torch.tensor([1]))["lin"]
    assert torch.allclose(gamma, GammaResponse(2.2).inverse(ldr) / t[:, :, None, None, None])


def test_identity_kernels_and_equal_weights_average_the_six_inputs():
    """Eq. 3 with a centre-tap kernel gives Y_n = X_n; eq. 4 with equal weights gives their mean."""
    m = KPNHDR().eval()
    centre = (KERNEL_SIZE**2) // 2
    with torch.no_grad():
        last = m.kernels[-2]
        last.weight.zero_()
        last.bias.zero_()
        for n in range(6):
            base = (n * KERNEL_SIZE**2 + centre) * 3
            last.bias[base : base + 3] = 1.0
        m.merge[-2].weight.zero_()
        m.merge[-2].bias.zero_()  # sigmoid(0) = 0.5 for every weight map
    ldr = torch.rand(2, 3, 3, 40, 36)
    t = torch.tensor([[1.0, 4.0, 16.0], [1.0, 4.0, 16.0]])
    ref = torch.tensor([1, 0])
    with torch.no_grad():
        out = m(ldr, t, ref)
    x = m.pack(ldr, t, ref, m.prepare(ldr, t, ref)["lin"])
    assert torch.allclose(out, x.reshape(2, 6, 3, 40, 36).mean(1), atol=1e-6)


def test_merge_weights_select_one_filtered_image():
    """Eq. 4 with alpha ~ 1 for one image (H2, the reference's radiance) and ~ 0 for the others."""
    m = KPNHDR().eval()
    centre = (KERNEL_SIZE**2) // 2
    with torch.no_grad():
        m.kernels[-2].weight.zero_()
        m.kernels[-2].bias.zero_()
        for n in range(6):
            base = (n * KERNEL_SIZE**2 + centre) * 3
            m.kernels[-2].bias[base : base + 3] = 1.0
        m.merge[-2].weight.zero_()
        m.merge[-2].bias.fill_(-30.0)
        m.merge[-2].bias[9:12] = 30.0  # image 4 of 6 = H2
    ldr = torch.rand(1, 3, 3, 32, 32)
    t = torch.tensor([[1.0, 4.0, 16.0]])
    with torch.no_grad():
        out = m(ldr, t, 1)
    assert torch.allclose(out, GammaResponse(2.2).inverse(ldr[:, 1]) / 4.0, atol=1e-6)


def _positive_small_net() -> KPNHDR:
    """Same topology, 2 channels, positive averaging weights: no cancellation and no saturated sigmoid, so the
    support of the gradient is the receptive field."""
    m = KPNHDR(widths=(2, 2, 2, 2, 2), merge_widths=(2, 2, 2))
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.Conv2d):
                mod.weight.uniform_(0.5, 1.0)
                mod.weight /= mod.weight.sum((1, 2, 3), keepdim=True)
                mod.bias.fill_(0.01)
    return m.double()


def test_receptive_radius_is_exact():
    """The receptive field reaches ``RECEPTIVE_RADIUS`` rows up from rows 14 mod 16 and down from rows 1 mod 16
    (the worst cases of the 16 positions on the pooling grid; 171 rows from the 16-pixel-aligned tile origin)."""
    m = _positive_small_net()
    h, w = 368, 16
    ldr = torch.full((1, 3, 3, h, w), 0.5, dtype=torch.float64)
    t = torch.tensor([[1.0, 4.0, 16.0]])
    lin = m.prepare(ldr, t, torch.tensor([1]))["lin"].double().requires_grad_(True)
    out = m.refine(ldr, t, torch.tensor([1]), lin=lin)
    extents = []
    for p in (176 + 14, 176 + 1):
        (g,) = torch.autograd.grad(out[0, 0, p, 8], lin, retain_graph=True)
        rows = (g.abs().sum((0, 1, 2, 4)) > 0).nonzero().flatten()
        extents.append((p - int(rows.min()), int(rows.max()) - p))
    assert extents[0][0] == extents[1][1] == RECEPTIVE_RADIUS == KPNHDR.context
    assert max(max(e) for e in extents) == RECEPTIVE_RADIUS


def test_tiles_that_cut_the_image_equal_untiled():
    """At 480 rows and 160-row tiles the first and last tiles are cut 192 rows past their cores."""
    torch.manual_seed(3)
    m = KPNHDR().eval()
    g = torch.Generator().manual_seed(4)
    ldr = torch.rand(1, 3, 3, 480, 32, generator=g)
    t = torch.tensor([[1.0, 4.0, 16.0]])
    whole = run_model(m, ldr, t, 1, tile=0)
    tiled = run_model(m, ldr, t, 1, tile=160)
    assert (whole - tiled).abs().max() <= 1e-5 * whole.abs().max()
