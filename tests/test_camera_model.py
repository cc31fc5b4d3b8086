import numpy as np
import pytest
import torch

from hdrkit.camera.exposure import NoiseModel, expose, linearize, normalize_times
from hdrkit.camera.response import (
    GammaResponse,
    LinearResponse,
    SRGBResponse,
    TabulatedResponse,
    emor_response,
    load_dorf,
    load_emor,
    load_response_table,
    response_from_name,
    save_response_table,
)
from hdrkit.errors import HdrkitError

ANALYTIC = [LinearResponse(), GammaResponse(2.2), SRGBResponse()]


@pytest.mark.parametrize("response", ANALYTIC + [TabulatedResponse(np.linspace(0, 1, 33) ** 2.2)], ids=repr)
def test_response_round_trip_and_endpoints(response):
    x = torch.linspace(0, 1, 1001, dtype=torch.float64).view(1, 1, 1001).expand(3, 1, 1001)
    y = response.forward(x)
    assert torch.allclose(response.inverse(y), x, atol=2e-4)
    assert y[..., 0].abs().max() < 1e-9 and (y[..., -1] - 1).abs().max() < 1e-9
    assert (y.diff(dim=-1) >= 0).all()


def test_srgb_known_values():
    y = SRGBResponse().forward(torch.tensor([0.0, 0.0031308, 0.18, 1.0]).view(1, 4, 1).expand(3, 4, 1))
    assert torch.allclose(y[0, :, 0], torch.tensor([0.0, 0.04045, 0.4613561, 1.0]), atol=1e-5)


def test_tabulated_matches_gamma_and_is_differentiable():
    z = np.linspace(0, 1, 1024)
    tab = TabulatedResponse(np.stack([z**2.2] * 3))
    codes = torch.rand(2, 3, 5, 5, dtype=torch.float64)
    assert torch.allclose(tab.inverse(codes), GammaResponse(2.2).inverse(codes), atol=1e-3)
    x = (torch.rand(1, 3, 3, 3, dtype=torch.float64) * 0.8 + 0.1).requires_grad_()
    assert torch.autograd.gradcheck(tab.inverse, (x,), fast_mode=True)
    assert torch.autograd.gradcheck(tab.forward, (x,), fast_mode=True)


def test_gamma_gradcheck():
    x = (torch.rand(1, 3, 4, 4, dtype=torch.float64) * 0.8 + 0.1).requires_grad_()
    assert torch.autograd.gradcheck(GammaResponse(2.2).forward, (x,), fast_mode=True)
    assert torch.autograd.gradcheck(SRGBResponse().inverse, (x,), fast_mode=True)


def test_tabulated_normalizes_to_one():
    tab = TabulatedResponse(np.linspace(0, 4, 16))
    assert tab.inverse_table[0, -1] == 1.0


def test_bad_tables_raise():
    with pytest.raises(HdrkitError):
        TabulatedResponse([0.0])
    with pytest.raises(HdrkitError):
        TabulatedResponse([0.0, np.nan, 1.0])
    with pytest.raises(HdrkitError):
        TabulatedResponse([0.0, 0.0, 0.0])
    with pytest.raises(HdrkitError):
        response_from_name("no-such-curve")


def test_response_table_file_round_trip(tmp_path):
    r = GammaResponse(2.4)
    save_response_table(r, tmp_path / "r.csv")
    back = load_response_table(tmp_path / "r.csv")
    codes = torch.rand(3, 8, 8, dtype=torch.float64)
    assert torch.allclose(back.inverse(codes), r.inverse(codes), atol=1e-4)
    assert isinstance(response_from_name(str(tmp_path / "r.csv")), TabulatedResponse)
    assert isinstance(response_from_name("gamma:2.4"), GammaResponse)


def test_dorf_and_emor(data_dir):
    dorf = load_dorf(data_dir / "crf" / "dorf_public_151.npz", 10)
    x = torch.linspace(0, 1, 257, dtype=torch.float64).view(1, 257, 1)
    y = dorf.forward(x)
    assert (y.diff(dim=-2) >= 0).all() and abs(y[0, -1, 0].item() - 1) < 1e-9
    assert torch.allclose(dorf.inverse(y), x, atol=5e-3)
    emor = load_emor(data_dir / "crf" / "emor.txt")
    assert emor["h"].shape == (25, 1024) and emor["E"].shape == (1024,)
    base = emor_response(emor, [])
    mid = base.forward(torch.full((1, 1, 1), 0.5, dtype=torch.float64)).item()
    assert 0.5 < mid < 0.95  # the mean curve is concave, like a real camera's
    with pytest.raises(HdrkitError):
        load_dorf(data_dir / "crf" / "dorf_public_151.npz", 10_000)


def test_expose_linearize_recovers_radiance_where_well_exposed():
    hdr = torch.rand(1, 3, 32, 32, dtype=torch.float64) * 0.2 + 0.01
    t = torch.tensor([[1.0, 4.0]], dtype=torch.float64)
    ldr = expose(hdr, t, GammaResponse(2.2), bits=16)
    assert ldr.shape == (1, 2, 3, 32, 32) and ldr.min() >= 0 and ldr.max() <= 1
    lin = linearize(ldr, t, GammaResponse(2.2))
    assert torch.allclose(lin[:, 0], hdr, rtol=2e-3, atol=1e-4)
    assert torch.allclose(lin[:, 1], hdr, rtol=2e-3, atol=1e-4)


def test_expose_clips_and_quantizes():
    hdr = torch.tensor([0.0, 0.5, 2.0]).view(1, 1, 3, 1).expand(1, 3, 3, 1).contiguous()
    ldr = expose(hdr, torch.tensor([[1.0]]), LinearResponse(), bits=8)
    assert torch.equal(torch.round(ldr[0, 0, 0, :, 0] * 255), torch.tensor([0.0, 128.0, 255.0]))


def test_noise_has_the_modelled_variance():
    noise = NoiseModel(a=(1e-3, 2e-3, 4e-3), b=(1e-5, 1e-5, 1e-5))
    x = torch.full((1, 3, 256, 256), 0.25, dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    samples = noise.sample(x, g)
    var = samples.var(dim=(-1, -2)).flatten()
    expected = noise.variance(x)[0, :, 0, 0]
    assert torch.allclose(var, expected, rtol=0.05)
    assert torch.allclose(samples.mean(dim=(-1, -2)).flatten(), torch.full((3,), 0.25, dtype=torch.float64), atol=2e-3)


def test_expose_is_deterministic_with_generator():
    hdr = torch.rand(1, 3, 16, 16)
    noise = NoiseModel(a=(1e-4,) * 3, b=(1e-6,) * 3)
    t = torch.tensor([[1.0, 2.0]])
    a = expose(hdr, t, noise=noise, generator=torch.Generator().manual_seed(3))
    b = expose(hdr, t, noise=noise, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_shape_and_time_errors():
    with pytest.raises(HdrkitError):
        expose(torch.rand(3, 8, 8), torch.tensor([[1.0]]))
    with pytest.raises(HdrkitError):
        linearize(torch.rand(1, 2, 3, 8, 8), torch.tensor([[1.0, -1.0]]))
    with pytest.raises(HdrkitError):
        linearize(torch.rand(1, 2, 3, 8, 8), torch.tensor([[1.0, 2.0, 3.0]]))
    with pytest.raises(HdrkitError):
        normalize_times(torch.tensor([[0.0, 1.0]]))
    assert normalize_times(torch.tensor([[0.5, 2.0]])).tolist() == [[1.0, 4.0]]
