import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from hdrkit.camera.exposure import NoiseModel, expose
from hdrkit.camera.response import GammaResponse, TabulatedResponse, load_dorf
from hdrkit.errors import HdrkitError
from hdrkit.merge import fuse_mertens2007, merge_debevec1997, merge_robertson2003
from hdrkit.methods import all_methods, get_method, run_method
from hdrkit.merge.lut import as_code_indices
from hdrkit.tonemap.mu_law import mu_law

REF = Path(__file__).parent / "reference" / "opencv_merge.npz"
NOISE = NoiseModel((1.7e-5,) * 3, (3.4e-8,) * 3)


def psnr_mu(a, b):
    mse = ((mu_law(a.clamp(0, 1)) - mu_law(b.clamp(0, 1))) ** 2).mean().item()
    return 10 * math.log10(1 / mse)


def smooth_scene(h=48, w=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    low = torch.nn.functional.interpolate(torch.randn(1, 3, h // 8, w // 8, generator=g) * 1.5, size=(h, w), mode="bicubic")
    hdr = torch.exp(low + 0.15 * torch.randn(1, 3, h, w, generator=g))
    return hdr / torch.quantile(hdr.amax(1).flatten(), 0.995)


def _frozen():
    d = np.load(REF)
    ldr = torch.from_numpy(d["ldr"]).permute(0, 3, 1, 2)[None]
    r = d["response"].T.astype(np.float64)
    return d, ldr, torch.from_numpy(d["times"])[None], TabulatedResponse(r / r[:, -1:]), r[:, -1]


@pytest.mark.parametrize("integer_input", [True, False])
def test_opencv_hat_matches_frozen_opencv(integer_input):
    d, ldr, t, resp, scale = _frozen()
    x = ldr if integer_input else ldr.float() / 255
    ours = merge_debevec1997(x, t, resp, weighting="opencv_hat")[0].permute(1, 2, 0).numpy()
    expected = d["debevec"] * d["times"].min() / scale  # OpenCV: unnormalized times and response
    assert np.abs(ours / expected - 1).max() < 1e-5


def test_opencv_hat_matches_live_opencv_with_gamma_lut():
    hdr = smooth_scene(40, 56, seed=3)
    t = torch.tensor([[1.0, 4.0, 16.0]])
    ldr = (expose(hdr, t, GammaResponse(2.2), bits=8)[0] * 255).round().to(torch.uint8)
    imgs = [np.ascontiguousarray(f.permute(1, 2, 0).numpy()) for f in ldr]
    lut = np.maximum((np.arange(256) / 255.0) ** 2.2, 1e-4).astype(np.float32)
    cv = cv2.createMergeDebevec().process(imgs, t[0].numpy(), np.repeat(lut[:, None, None], 3, 2))
    ours = merge_debevec1997(ldr[None], t, TabulatedResponse(np.tile(lut, (3, 1))), weighting="opencv_hat")
    assert np.abs(ours[0].permute(1, 2, 0).numpy() / cv - 1).max() < 1e-5


def test_robertson_matches_frozen_opencv():
    d, ldr, t, resp, scale = _frozen()
    ours = merge_robertson2003(ldr.float() / 255, t, resp, weighting="opencv_gaussian")[0].permute(1, 2, 0).numpy()
    expected = d["robertson"] * d["times"].min() / scale
    ok = (d["ldr"] > 0).any(0) & (d["ldr"] < 255).any(0)
    assert np.abs(ours[ok] / expected[ok] - 1).max() < 1e-4


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("weighting", ["noise_optimal", "hat", "gaussian", "opencv_hat"])
def test_lut_path_equals_float_path(weighting, bits):
    hdr = torch.cat([smooth_scene(), smooth_scene(seed=1)])
    hdr[0, :, :4, :4] = 1e3  # saturated in every frame -> shortest frame's value
    hdr[1, :, :4, :4] = 1e-9  # dark in every frame -> longest frame's value
    t = torch.tensor([[1.0, 8.0, 64.0], [0.5, 4.0, 2.0]])  # any order, per bracket
    peak = 2**bits - 1
    ldr = expose(hdr, t, GammaResponse(2.2), NOISE, bits=bits)
    codes = (ldr * peak).round().to(torch.uint8 if bits == 8 else torch.int32)
    grid = codes.float() / peak  # float codes on the grid, as read from files
    a = merge_debevec1997(codes, t, weighting=weighting, bits=bits)
    b = merge_debevec1997(grid.clone().requires_grad_(), t, weighting=weighting, bits=bits).detach()  # float path
    assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)
    assert torch.equal(merge_debevec1997(grid, t, weighting=weighting, bits=bits), a)  # grid detected: LUT path


def test_robertson_lut_path_equals_float_path():
    hdr = smooth_scene()
    hdr[..., :4, :4] = 1e3
    t = torch.tensor([[1.0, 8.0, 64.0]])
    codes = (expose(hdr, t, GammaResponse(2.2), NOISE, bits=8) * 255).round().to(torch.uint8)
    a = merge_robertson2003(codes, t)
    b = merge_robertson2003((codes.float() / 255).requires_grad_(), t).detach()
    assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)
    assert torch.equal(merge_robertson2003(codes.float() / 255, t), a)


def test_code_grid_detection():
    z = torch.randint(0, 256, (1, 2, 3, 5, 7)).float() / 255
    z[0, 0, 0, 0, 0] = 1 / 255
    assert torch.equal(as_code_indices(z, 8).long(), (z * 255).round().long())
    assert as_code_indices(z, 8).dtype == torch.uint8
    assert as_code_indices(z, 4) is None  # 1/255 is not on the 4-bit grid
    assert torch.equal(as_code_indices(z, 16).long(), (z * 255).round().long() * 257)  # 65535 = 255 * 257
    assert as_code_indices(z + 0.3 / 255, 8) is None  # off the grid: the float path is used
    assert as_code_indices(z.double(), 8) is None and as_code_indices(z, None) is None
    assert as_code_indices(z.clone().requires_grad_(), 8) is None
    bad = z.clone()
    bad[0, 0, 0, 0, 0] = float("nan")
    assert as_code_indices(bad, 8) is None
    assert as_code_indices(z * 2, 8) is None  # outside [0, 1]
    k16 = torch.randint(0, 65536, (1, 2, 3, 4, 4))
    assert torch.equal(as_code_indices(k16.float() / 65535, 16).long(), k16)


def test_mertens_opencv_path_equals_torch_path():
    g = torch.Generator().manual_seed(0)
    for h, w in ((37, 50), (40, 64), (21, 9)):
        x = torch.rand(1, 3, 3, h, w, generator=g)
        fast = fuse_mertens2007(x)
        slow = fuse_mertens2007(x.clone().requires_grad_()).detach()  # torch path (autograd)
        assert (fast - slow).abs().max() < 1e-5


@pytest.mark.parametrize("resp", [GammaResponse(2.2), "dorf"])
def test_static_merge_recovers_known_radiance(resp, data_dir):
    if resp == "dorf":
        resp = load_dorf(data_dir / "crf" / "dorf_public_151.npz", 10)
    scores = []
    for name in ["adams_place_bridge", "brown_photostudio_01", "forest_slope", "st_peters_square_night"]:
        img = cv2.imread(str(data_dir / "hdr" / "polyhaven" / f"{name}_1k.hdr"), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_COLOR)
        img = cv2.resize(np.ascontiguousarray(img[160:352, :, ::-1]), (256, 96), interpolation=cv2.INTER_AREA)
        gt = torch.from_numpy(img).permute(2, 0, 1)[None].float()
        gt = gt / torch.quantile(gt.amax(1).flatten(), 0.995)
        t = torch.tensor([[1.0, 4.0, 16.0]])
        ldr = expose(gt, t, resp, NOISE, bits=16, generator=torch.Generator().manual_seed(0))
        hdr = merge_debevec1997(ldr, t, resp, noise=NOISE, bits=16)
        scores.append(psnr_mu(hdr, gt))
        assert psnr_mu(hdr, gt) > psnr_mu(merge_debevec1997(ldr, t, resp, weighting="hat", bits=16), gt) - 0.5
    assert np.mean(scores) >= 45.0


def test_static_merge_synthetic_no_data():
    gt = smooth_scene(64, 96)
    t = torch.tensor([[1.0, 8.0, 64.0]])
    ldr = expose(gt, t, GammaResponse(2.2), NOISE, bits=16, generator=torch.Generator().manual_seed(1))
    hdr = merge_debevec1997(ldr, t, noise=NOISE, bits=16)
    ref_alone = GammaResponse(2.2).inverse(ldr[:, 1]) / 8.0
    assert psnr_mu(hdr, gt) >= 45.0
    assert psnr_mu(hdr, gt) > psnr_mu(ref_alone, gt) + 5


def test_clipped_everywhere_fallbacks():
    hdr = torch.tensor([1e3, 1e-7, 0.05]).view(1, 3, 1, 1).expand(1, 3, 2, 2).clone()
    hdr[..., 1, :] = 1e-8  # under-exposed in every frame
    t = torch.tensor([[4.0, 1.0, 16.0]])  # any order
    ldr = expose(hdr, t, bits=8)
    out = merge_debevec1997(ldr, t)
    x = GammaResponse(2.2).inverse(ldr)
    assert torch.allclose(out[0, :, 0], x[0, 1, :, 0] / 1.0)  # saturated -> shortest (t=1)
    assert torch.allclose(out[0, :, 1], x[0, 2, :, 1] / 16.0)  # dark -> longest (t=16)


def test_units_and_frame_counts():
    gt = smooth_scene(32, 32) * 0.5
    for times in ([[2.0, 8.0]], [[8.0, 2.0, 32.0, 0.5]]):
        t = torch.tensor(times)
        ldr = expose(gt, t / t.min(), bits=16)
        hdr = merge_debevec1997(ldr, t * 1e-3, bits=16)  # seconds; output in units of the shortest
        assert psnr_mu(hdr, gt) > 40


def test_gradcheck_float64():
    g = torch.Generator().manual_seed(0)
    ldr = (0.25 + 0.5 * torch.rand(1, 3, 3, 3, 4, generator=g, dtype=torch.float64)).requires_grad_()
    t = torch.tensor([[1.0, 2.0, 4.0]], dtype=torch.float64)
    for w in ("noise_optimal", "hat", "gaussian"):
        assert torch.autograd.gradcheck(lambda x: merge_debevec1997(x, t, weighting=w, bits=8), (ldr,))
    assert torch.autograd.gradcheck(lambda x: merge_robertson2003(x, t), (ldr,))
    assert torch.autograd.gradcheck(lambda x: fuse_mertens2007(x[..., :3, :3] * 0.9 + 0.05), (ldr,))


def test_mertens_close_to_opencv(data_dir):
    folder = data_dir / "stacks" / "frobisher"
    imgs = [cv2.imread(str(p)) for p in sorted(folder.glob("*.[jJ][pP]*[gG]"))][:3]
    imgs = [cv2.resize(i, (320, 213), interpolation=cv2.INTER_AREA) for i in imgs]
    cv = cv2.createMergeMertens(1.0, 1.0, 1.0).process(imgs).clip(0, 1)
    x = torch.from_numpy(np.stack([i[:, :, ::-1].copy() for i in imgs])).permute(0, 3, 1, 2)[None]
    ours = fuse_mertens2007(x)[0].permute(1, 2, 0).numpy()[:, :, ::-1]
    assert 0 <= ours.min() and ours.max() <= 1
    assert np.abs(ours - cv).mean() < 0.005


def test_registry_and_dispatch():
    methods = all_methods()
    assert set(methods) >= {"deghost", "debevec", "robertson", "mertens", "single_linearize"}
    assert methods["mertens"].kind == "fusion" and methods["mertens"].output == "display"
    assert methods["deghost"].kind == "merge" and methods["deghost"].frames == (2, None)
    gt = smooth_scene(16, 16)
    t = torch.tensor([[1.0, 4.0, 16.0]])
    ldr = expose(gt, t)
    ref = torch.tensor([1])
    assert torch.equal(run_method("debevec", ldr, t, ref, weighting="hat"), merge_debevec1997(ldr, t, weighting="hat", reference=1))
    assert run_method("mertens", ldr, t, ref).shape == (1, 3, 16, 16)
    assert run_method("deghost", ldr, t, ref).shape == (1, 3, 16, 16)
    single = run_method("single_linearize", ldr, t, ref)
    assert torch.allclose(single, ldr[:, 1].clamp(0, 1) ** 2.2 / 4.0)
    with pytest.raises(HdrkitError, match="unknown method"):
        get_method("nope")
    with pytest.raises(HdrkitError, match="unknown option"):
        run_method("debevec", ldr, t, ref, gamma=2.2)
    with pytest.raises(HdrkitError, match="exactly 3 frames"):
        get_method("ahdrnet").check_frames(5)
    with pytest.raises(HdrkitError):
        merge_debevec1997(ldr, t, weighting="triangle")
    with pytest.raises(HdrkitError):
        merge_debevec1997(ldr[:, :1], t[:, :1])
    with pytest.raises(HdrkitError):
        merge_debevec1997(ldr, t[:, :2])
