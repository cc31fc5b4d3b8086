"""SingleHDR (Liu et al. 2020): parameter count, eq. 23, soft histogram, stored basis, receptive radii, stages."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import hdrkit.models.singlehdr2020 as sh
from hdrkit.camera.response import GammaResponse
from hdrkit.errors import HdrkitError
from hdrkit.models.inference import run_model
from hdrkit.models.weights import load_weights, save_weights


def test_parameter_count_follows_from_the_layers():
    m = sh.SingleHDR()
    count = lambda mod: sum(p.numel() for p in mod.parameters())  # noqa: E731
    assert count(m) == 52_099_983
    assert (count(m.dequantization), count(m.linearization), count(m.hallucination), count(m.refinement)) == (
        7_899_555, 11_727_051, 24_569_118, 7_904_259)


def test_eq23_makes_any_curve_monotonic_from_0_to_1():
    x = torch.linspace(0, 1, 1024, dtype=torch.float64)
    wiggly = x**0.5 + 0.05 * torch.sin(40 * x) - 0.3
    g = sh.monotonic_inverse_response(wiggly[None])[0]
    assert g[0] == 0 and abs(float(g[-1]) - 1) < 1e-12 and (g.diff() >= 0).all()
    assert g.diff().min() < 1e-12, "the most negative slope becomes exactly flat"
    monotone = x**2.2
    assert torch.allclose(sh.monotonic_inverse_response(monotone), monotone, atol=1e-12)


def test_soft_histogram_is_the_papers_formula():
    b = 8
    v = torch.tensor([0.0, 1 / 16, 0.1, 0.5, 0.97, 1.0]).reshape(1, 1, 6, 1)
    h = sh.soft_histogram(v, b)[0, :, :, 0]  # (bins, 6)
    centres = (2 * torch.arange(1, b + 1) - 1) / (2 * b)
    expect = (1 - (v.reshape(1, 6) - centres[:, None]).abs() * b).clamp_min(0)
    assert torch.allclose(h, expect)
    assert h[0, 1] == 1, "a value on a bin centre fills that bin only"
    assert torch.allclose(h[:, 1:4].sum(0), torch.ones(3)), "between the outer centres the bins sum to 1"
    assert h[:, 4].sum() < 1, "beyond them they do not"


def test_basis_is_deterministic_fits_real_curves_and_travels_with_the_weights(tmp_path):
    basis = sh.inverse_response_basis()
    assert basis.shape == (sh.CRF_COMPONENTS + 1, sh.CRF_SAMPLES) and torch.equal(basis, sh.inverse_response_basis())
    g = GammaResponse(2.2).table(sh.CRF_SAMPLES)[0].float()
    h = basis[1:]
    c = torch.linalg.lstsq(h.T, (g - basis[0])[:, None]).solution[:, 0]
    assert float((basis[0] + c @ h - g).square().mean().sqrt()) < 0.005
    a = sh.SingleHDR()
    assert "basis" in a.state_dict()
    a.basis.mul_(0.5)
    save_weights(a, tmp_path / "w.safetensors")
    b = sh.SingleHDR()
    load_weights(b, tmp_path / "w.safetensors")
    assert torch.equal(b.basis, a.basis)


def _support(net, size: int) -> int:
    """Receptive radius: the support of the gradient of a 32x32 output block (every position on the pooling
    grid) on an input, with positive weights (no dead units) and average pooling for max pooling."""
    for p in net.parameters():
        with torch.no_grad():
            p.copy_(p.abs() * 0.1 + 0.01)
    net.eval()
    x = torch.rand(1, 3, size, size, requires_grad=True)
    c = size // 2 // 32 * 32
    net(x)[..., c : c + 32, c : c + 32].sum().backward()
    g = x.grad.abs().sum((0, 1))
    rows, cols = torch.nonzero(g.sum(1)).flatten(), torch.nonzero(g.sum(0)).flatten()
    return max(c - int(rows.min()), int(rows.max()) - c - 31, c - int(cols.min()), int(cols.max()) - c - 31)


def test_receptive_radii_are_exact(monkeypatch):
    """Narrow networks of the same topology (receptive fields do not depend on widths)."""
    monkeypatch.setattr(sh, "UNET_WIDTHS", (2,) * 6)
    monkeypatch.setattr(sh, "VGG16_LAYERS", tuple(v if v == "M" else 2 for v in sh.VGG16_LAYERS))
    monkeypatch.setattr(sh, "DECODER_WIDTHS", (2,) * 5)
    monkeypatch.setattr(sh.F, "max_pool2d", lambda x, k, *a, **kw: F.avg_pool2d(x, k, *a))
    assert _support(sh.UNet(3), 640) == sh.UNET_RADIUS == sh.SingleHDR.context
    assert _support(sh.HallucinationNet(), 448) == sh.HALLUCINATION_RADIUS


def _sample(b=2, h=64, w=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    hdr = torch.rand(b, 3, h, w, generator=g) ** 3 * 2.5
    ldr = (GammaResponse(2.2).forward(hdr.clamp(0, 1)) * 255).round()[:, None] / 255
    table = GammaResponse(2.2).table(sh.CRF_SAMPLES).float()[None].expand(b, -1, -1)
    return ldr, torch.ones(b, 1), torch.zeros(b, dtype=torch.long), hdr, {"inverse_response": table}


@pytest.mark.parametrize("stage, trained", [("dequantization", "dequantization"), ("linearization", "linearization"),
                                            ("hallucination", "hallucination"), ("joint", None)])
def test_each_stage_trains_its_own_network(stage, trained):
    torch.manual_seed(0)
    m = sh.SingleHDR(stage=stage)
    ldr, t, ref, hdr, priors = _sample()
    loss = m.training_loss(ldr, t, ref, hdr, priors=priors, loss_fn=None)
    assert loss.ndim == 0 and torch.isfinite(loss) and loss > 0
    loss.backward()
    for name in ("dequantization", "linearization", "hallucination", "refinement"):
        got = any(p.grad is not None and p.grad.abs().sum() > 0 for p in getattr(m, name).parameters())
        assert got == (trained in (None, name)), f"{stage}: {name}"


def test_training_needs_the_true_inverse_response():
    ldr, t, ref, hdr, _ = _sample(b=1)
    with pytest.raises(HdrkitError, match="inverse_response") as e:
        sh.SingleHDR().training_loss(ldr, t, ref, hdr, priors={}, loss_fn=None)
    assert "\n" not in str(e.value)
    with pytest.raises(HdrkitError, match="stage"):
        sh.SingleHDR(stage="refinement")


def test_inference_priors_reproduce_the_whole_pipeline():
    """Small images: ``prepare``'s inverse response (``LINEARIZE_SIZE`` covers them) and tiled stages give the
    same radiance as the plain forward pass."""
    torch.manual_seed(3)
    m = sh.SingleHDR().eval()
    ldr, t, ref, _, _ = _sample(b=1, h=64, w=96, seed=1)
    with torch.no_grad():
        direct = m(ldr, t, ref)
    assert torch.allclose(run_model(m, ldr, t, ref, tile=0), direct, rtol=1e-4, atol=1e-5)
