"""Responses inside networks: torch tables on any device, batched responses, gradients, the EMoR basis."""

import numpy as np
import pytest
import torch

from hdrkit.camera import (
    EMoR,
    BatchedResponse,
    GammaResponse,
    LinearResponse,
    SRGBResponse,
    TabulatedResponse,
    load_dorf,
    stack_responses,
)
from hdrkit.errors import HdrkitError

Z = torch.linspace(0, 1, 256, dtype=torch.float64)


def mixed():
    """Gamma, sRGB, linear, a per-channel tabulated curve and a single-channel one."""
    tab = TabulatedResponse(torch.stack([Z**1.8, Z**2.2, Z**2.6]))
    return [GammaResponse(2.2), SRGBResponse(), LinearResponse(), tab, TabulatedResponse(Z**3.0)]


def test_tensor_table_keeps_dtype_device_and_matches_numpy():
    t32 = TabulatedResponse(torch.stack([Z, Z**2, Z**3]).float())
    assert t32.dtype == torch.float32 and t32.inverse_table.dtype == torch.float32 and t32.device.type == "cpu"
    tnp = TabulatedResponse(np.stack([Z.numpy(), Z.numpy() ** 2, Z.numpy() ** 3]))
    codes = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    assert torch.allclose(t32.inverse(codes), tnp.inverse(codes), atol=1e-6)
    assert t32.inverse(codes).dtype == torch.float64  # the table follows the input's dtype
    assert t32.inverse(codes.float()).dtype == torch.float32
    t64 = t32.to(dtype=torch.float64)
    assert t64.dtype == torch.float64 and t32.dtype == torch.float32
    assert GammaResponse(2.2).to("cpu", torch.float32).gamma == 2.2


def test_batched_inverse_and_forward_equal_per_item():
    responses = mixed()
    batch = stack_responses(responses, samples=1024)
    assert isinstance(batch, BatchedResponse) and len(batch) == 5
    assert batch.table(64).shape == (5, 3, 64)
    codes = torch.rand(5, 2, 3, 6, 7, dtype=torch.float64)
    inv = batch.inverse(codes)
    fwd = batch.forward(codes)
    assert inv.shape == codes.shape and fwd.shape == codes.shape
    for b, r in enumerate(responses):
        assert torch.allclose(inv[b], batch[b].inverse(codes[b]), atol=1e-12)
        assert torch.allclose(fwd[b], batch[b].forward(codes[b]), atol=1e-12)
        # 1024 tabulated samples follow the analytic curves closely (sRGB/gamma: steepest near black)
        assert torch.allclose(inv[b], r.inverse(codes[b]), atol=1e-4)
    assert torch.allclose(batch[1:3].inverse(codes[1:3]), inv[1:3])


def test_batched_round_trip_and_broadcast():
    batch = stack_responses(mixed())
    x = torch.linspace(0, 1, 301, dtype=torch.float64).view(1, 1, 1, 301).expand(5, 3, 1, 301)
    assert torch.allclose(batch.inverse(batch.forward(x)), x, atol=2e-4)
    assert torch.allclose(batch.forward(batch.inverse(x)), x, atol=2e-4)
    one = BatchedResponse((Z**2.2)[None])  # (1, K): one single-channel curve for every item
    codes = torch.rand(4, 3, 5, 5, dtype=torch.float64)
    assert torch.allclose(one.inverse(codes), TabulatedResponse(Z**2.2).inverse(codes))
    with pytest.raises(HdrkitError):
        batch.inverse(torch.rand(4, 3, 5, 5))  # 5 curves, 4 images
    with pytest.raises(HdrkitError):
        BatchedResponse(Z**2.2)  # 1-D: not a batch
    assert stack_responses([batch, GammaResponse(2.4)]).table(16).shape == (6, 3, 16)


def test_gradcheck_wrt_codes_and_table():
    codes = (torch.rand(2, 3, 3, 3, dtype=torch.float64) * 0.9 + 0.05).requires_grad_()
    batch = stack_responses([GammaResponse(2.2), SRGBResponse()], samples=64)
    assert torch.autograd.gradcheck(batch.inverse, (codes,), fast_mode=True)
    assert torch.autograd.gradcheck(batch.forward, (codes,), fast_mode=True)
    table = (torch.stack([Z[::8] ** 2.2, Z[::8] ** 2.0]).unsqueeze(1) + 0.01).requires_grad_()  # (2, 1, 32)
    fixed = codes.detach()
    assert torch.autograd.gradcheck(lambda t: BatchedResponse(t).inverse(fixed), (table,), fast_mode=True)
    assert torch.autograd.gradcheck(lambda t: BatchedResponse(t).forward(fixed), (table,), fast_mode=True)
    single = table[0].detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda t: TabulatedResponse(t).inverse(fixed[0]), (single,), fast_mode=True)


def test_learned_table_follows_updates():
    """A response built once around a parameter sees every optimizer step and backpropagates each time."""
    param = torch.nn.Parameter(Z[::8].clone())  # starts linear
    resp = TabulatedResponse(param)
    codes = torch.rand(1, 3, 16, 16, dtype=torch.float64)
    target = GammaResponse(2.2).inverse(codes)
    opt = torch.optim.Adam([param], lr=0.01)
    losses = []
    for _ in range(100):
        loss = (resp.inverse(codes) - target).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 1e-3 * losses[0]  # measured 4.4e-2 -> 1.2e-5


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_tables():
    tab = TabulatedResponse(torch.stack([Z**2.2] * 3)).to("cuda", torch.float32)
    assert tab.device.type == "cuda" and tab.inverse_table.is_cuda
    codes = torch.rand(2, 3, 8, 8, device="cuda")
    assert torch.allclose(tab.inverse(codes).cpu(), GammaResponse(2.2).inverse(codes.cpu()), atol=1e-3)
    batch = stack_responses(mixed()).to("cuda")
    c5 = torch.rand(5, 3, 8, 8, device="cuda", requires_grad=True)
    out = batch.inverse(c5)
    out.sum().backward()
    assert out.is_cuda and c5.grad is not None
    assert torch.allclose(out.cpu(), stack_responses(mixed()).inverse(c5.detach().cpu()), atol=1e-5)
    # a CPU table serves CUDA input too (moved lazily, cached)
    assert tab.to("cpu").inverse(codes).is_cuda
    model = EMoR.from_curves(torch.stack([Z**(1 / g) for g in (1.8, 2.2, 2.6, 3.0)]), 2).to("cuda")
    assert model.response(torch.zeros(2, 2, device="cuda")).inverse(codes).is_cuda


def gamma_curves(gammas, n=1024):
    e = torch.linspace(0, 1, n, dtype=torch.float64)
    return torch.stack([e ** (1 / g) for g in gammas])


def test_emor_from_gamma_curves_reconstructs_held_out_gamma():
    train = [g for g in np.linspace(1.0, 3.0, 41) if abs(g - 2.2) > 1e-6]
    model = EMoR.from_curves(gamma_curves(train), k=5)
    assert model.h.shape == (5, 1024)
    assert torch.allclose(model.h @ model.h.T, torch.eye(5, dtype=torch.float64), atol=1e-10)
    held = gamma_curves([2.2])
    coeffs = model.fit(held)
    assert coeffs.shape == (1, 5)
    assert (model.curves(coeffs) - held).abs().max() < 1e-3  # measured 1.5e-6
    resp = model.response(coeffs)
    codes = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    assert torch.allclose(resp.inverse(codes), GammaResponse(2.2).inverse(codes), atol=1e-3)


def test_emor_response_is_differentiable_and_monotone():
    model = EMoR.from_curves(gamma_curves(np.linspace(1.2, 3.0, 10), n=128), k=3)
    coeffs = (torch.randn(2, 3, dtype=torch.float64) * 0.5).requires_grad_()
    codes = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda c: model.response(c, samples=64).inverse(codes), (coeffs,), fast_mode=True)
    wild = torch.tensor([[5.0, -4.0, 3.0]], dtype=torch.float64)  # far outside the family: not monotone raw
    table = model.response(wild).inverse_table
    assert (table.diff(dim=-1) >= 0).all() and table[..., -1].eq(1).all()
    per_channel = model.response(torch.zeros(2, 3, 3, dtype=torch.float64))
    assert per_channel.inverse_table.shape == (2, 3, 1024)


def test_emor_file_fits_dorf(data_dir):
    crf = data_dir / "crf"
    model = EMoR.from_file(crf / "emor.txt")
    assert model.k == 25 and model.E.shape == (1024,)
    dorf = np.load(crf / "dorf_public_151.npz")
    assert np.abs(dorf["I"] - model.E.numpy()).max() < 1e-6  # both sample irradiance at linspace(0, 1, 1024)
    curves = torch.as_tensor(dorf["B"])
    coeffs = model.fit(curves, k=25)
    rms = (model.curves(coeffs) - curves).pow(2).mean(dim=1).sqrt()
    print(f"EMoR-25 fit of {len(rms)} DoRF curves: RMS mean {rms.mean():.2e}, worst {rms.max():.2e}")
    assert rms.mean() < 2e-4 and rms.max() < 2e-3  # measured 7.5e-5 and 1.15e-3
    rms3 = (model.curves(model.fit(curves, k=3)) - curves).pow(2).mean(dim=1).sqrt()
    assert rms3.mean() < 1e-2  # measured 5.8e-3: three parameters already fit most curves
    # the batched response of the fits matches the measured curves' own tables
    resp = model.response(coeffs[:4])
    z = Z.view(1, 1, 256, 1).expand(4, 3, 256, 1)
    for b in range(4):
        assert torch.allclose(resp.inverse(z)[b], load_dorf(crf / "dorf_public_151.npz", b).inverse(z[b]), atol=1e-3)  # measured 2.9e-4
    inv = EMoR.from_inverse_file(crf / "invemor.txt")
    assert inv.inverse and inv.k == 25
    inv_curves = torch.as_tensor(dorf["invI"])
    rms_inv = (inv.curves(inv.fit(inv_curves)) - inv_curves).pow(2).mean(dim=1).sqrt()
    assert rms_inv.mean() < 1e-3  # measured 3.1e-4
    codes = torch.as_tensor(dorf["invB"][:2]).view(2, 1, 1024, 1)
    err = inv.response(inv.fit(inv_curves[:2])).inverse(codes)[:, 0, :, 0] - inv_curves[:2]
    assert err.abs().max() < 2e-3  # measured 6e-4
