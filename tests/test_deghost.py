import math

import cv2
import numpy as np
import pytest
import torch

from hdrkit.camera.exposure import NoiseModel, expose
from hdrkit.camera.response import GammaResponse
from hdrkit.merge import merge_debevec1997
from hdrkit.methods import run_method
from hdrkit.merge.deghost import merge_deghost, merge_granados2013
from hdrkit.tonemap.mu_law import mu_law

NOISE = NoiseModel((1.7e-5,) * 3, (3.4e-8,) * 3)
GAMMA = GammaResponse(2.2)


def psnr_mu(a, b):
    mse = ((mu_law(a.clamp(0, 1)) - mu_law(b.clamp(0, 1))) ** 2).mean().item()
    return 10 * math.log10(1 / mse)


def textured_scene(h=96, w=160, seed=0):
    g = torch.Generator().manual_seed(seed)
    low = torch.nn.functional.interpolate(torch.randn(1, 3, h // 8, w // 8, generator=g) * 1.3, size=(h, w), mode="bicubic")
    hdr = torch.exp(low + 0.3 * torch.randn(1, 3, h, w, generator=g))
    return hdr / torch.quantile(hdr.amax(1).flatten(), 0.995)


def mover_bracket(scene, patch, positions, times, reference, bits=16, seed=0):
    """Paste ``patch`` at ``positions[i]`` (y, x) in frame i; GT = the reference frame's scene."""
    frames, gt = [], None
    g = torch.Generator().manual_seed(seed)
    ph, pw = patch.shape[-2:]
    for i, ((y, x), t) in enumerate(zip(positions, times)):
        s = scene.clone()
        s[..., y : y + ph, x : x + pw] = patch
        if i == reference:
            gt = s
        frames.append(expose(s, torch.tensor([[t]]), GAMMA, NOISE, bits=bits, generator=g)[:, 0])
    return torch.stack(frames, 1), torch.tensor([times]), gt


def polyhaven(data_dir, name, size=(256, 96)):
    img = cv2.imread(str(data_dir / "hdr" / "polyhaven" / f"{name}_1k.hdr"), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_COLOR)
    img = cv2.resize(np.ascontiguousarray(img[160:352, :, ::-1]), size, interpolation=cv2.INTER_AREA)
    hdr = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    return hdr / torch.quantile(hdr.amax(1).flatten(), 0.995)


def _check_mover(scene, patch, positions, times):
    ldr, t, gt = mover_bracket(scene, patch, positions, times, reference=1)
    hdr, masks = merge_granados2013(ldr, t, bits=16, noise=NOISE, return_masks=True)
    ref_alone = GAMMA.inverse(ldr[:, 1]) / (t[0, 1] / t.min())
    static = merge_debevec1997(ldr, t, bits=16, noise=NOISE)
    p_deghost, p_ref, p_static = psnr_mu(hdr, gt), psnr_mu(ref_alone, gt), psnr_mu(static, gt)
    assert p_deghost >= p_ref + 1.0, (p_deghost, p_ref)
    assert p_deghost >= p_static + 1.0, (p_deghost, p_static)
    # each non-reference frame is mostly masked over its own and the reference's patch position
    # (not everywhere: where the patch matches the background, or the frame is clipped, no test fires)
    ph, pw = patch.shape[-2:]
    for i in (0, 2):
        for y, x in (positions[i], positions[1]):
            assert masks[0, i, 0, y + 4 : y + ph - 4, x + 4 : x + pw - 4].mean() > 0.6
    return p_deghost, p_ref, p_static


def test_mover_synthetic_no_data():
    scene = textured_scene()
    patch = textured_scene(32, 32, seed=5) * 0.2  # mostly within the reference's range
    _check_mover(scene, patch, [(10, 20), (40, 60), (20, 110)], [1.0, 4.0, 16.0])


@pytest.mark.parametrize("name", ["adams_place_bridge", "brown_photostudio_01", "chinese_garden"])
def test_mover_on_real_hdr(name, data_dir):
    scene = polyhaven(data_dir, name)
    other = polyhaven(data_dir, "forest_slope")
    patch = other[..., 30:70, 100:140]  # a textured patch from a different HDR image
    patch = patch / patch.amax() * 0.12  # below the reference's (t = 8) saturation level
    _check_mover(scene, patch, [(5, 30), (40, 80), (20, 160)], [1.0, 8.0, 64.0])


def test_static_scene_matches_static_merge(data_dir):
    gt = polyhaven(data_dir, "lebombo")
    t = torch.tensor([[1.0, 4.0, 16.0]])
    ldr = expose(gt, t, GAMMA, NOISE, bits=16, generator=torch.Generator().manual_seed(0))
    hdr, masks = merge_granados2013(ldr, t, bits=16, noise=NOISE, return_masks=True)
    assert masks.mean() < 0.02
    assert psnr_mu(hdr, gt) >= 45.0
    assert psnr_mu(hdr, gt) > psnr_mu(merge_debevec1997(ldr, t, bits=16, noise=NOISE), gt) - 1.0


def test_one_pixel_misalignment_is_tolerated():
    gt = torch.nn.functional.avg_pool2d(textured_scene(96, 128, seed=2), 3, stride=1, padding=1, count_include_pad=False)
    t = torch.tensor([[1.0, 4.0, 16.0]])
    frames = []
    for i, (dy, dx) in enumerate([(1, 0), (0, 0), (0, -1)]):
        shifted = torch.roll(gt, shifts=(dy, dx), dims=(2, 3))
        frames.append(expose(shifted, t[:, i : i + 1], GAMMA, NOISE, bits=8, generator=torch.Generator().manual_seed(i))[:, 0])
    _, masks = merge_granados2013(torch.stack(frames, 1), t, return_masks=True)
    assert masks[0, [0, 2]].mean() < 0.1


def test_saturated_reference_uses_consistent_short_frame_only():
    scene = torch.full((1, 3, 32, 48), 0.02)
    scene[..., :, 24:] = 0.5  # bright half: saturated in the reference (t=4), fine in the short frame
    t = torch.tensor([[1.0, 4.0, 16.0]])
    ldr = expose(scene, t, GAMMA, bits=16)
    hdr = merge_granados2013(ldr, t, bits=16)
    assert torch.allclose(hdr[..., 8:24, 32:44], torch.tensor(0.5), rtol=0.02)
    moved = scene.clone()
    moved[..., 8:24, 30:46] = 0.05  # a dark object only in the short frame, inside the saturated area
    ldr[:, 0] = expose(moved, t[:, :1], GAMMA, bits=16)[:, 0]
    hdr = merge_granados2013(ldr, t, bits=16)
    ref_value = GAMMA.inverse(ldr[:, 1]) / 4.0
    assert torch.allclose(hdr[..., 12:20, 34:42], ref_value[..., 12:20, 34:42])  # falls back to the clipped reference


def test_reference_choice_and_alias():
    scene = textured_scene(48, 64)
    patch = torch.full((1, 3, 12, 12), 0.3)
    ldr, t, gt = mover_bracket(scene, patch, [(4, 4), (20, 30), (30, 45)], [1.0, 4.0, 16.0], reference=2)
    hdr = merge_deghost(ldr, t, reference=2, bits=16)
    assert psnr_mu(hdr, gt) > psnr_mu(merge_deghost(ldr, t, bits=16), gt)
    assert torch.equal(run_method("deghost", ldr, t, 1, bits=16), merge_granados2013(ldr, t, bits=16))


def test_gradcheck_float64():
    g = torch.Generator().manual_seed(0)
    ldr = (0.25 + 0.5 * torch.rand(1, 2, 3, 3, 3, generator=g, dtype=torch.float64)).requires_grad_()
    t = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    # masks and calibration gains are constants of the graph by design; calibration off so the
    # numerical derivative does not see the gains move
    assert torch.autograd.gradcheck(lambda x: merge_granados2013(x, t, calibrate=False), (ldr,), fast_mode=True)


def test_code_path_and_opencv_filters_match_float_path():
    scene = textured_scene(64, 96)
    patch = torch.full((1, 3, 16, 16), 0.3)
    ldr, t, _ = mover_bracket(scene, patch, [(4, 4), (20, 30), (30, 60)], [1.0, 4.0, 16.0], reference=1, bits=8)
    codes = (ldr * 255).round().to(torch.uint8)
    for calibrate in (False, True):
        fast, m_fast = merge_granados2013(codes.float() / 255, t, calibrate=calibrate, return_masks=True)
        slow, m_slow = merge_granados2013((codes.float() / 255).requires_grad_(), t, calibrate=calibrate, return_masks=True)
        assert torch.equal(merge_granados2013(codes, t, calibrate=calibrate), fast)
        assert (m_fast - m_slow).abs().max() < 1e-5 and m_fast.amax() > 0.9
        assert torch.allclose(fast, slow.detach(), rtol=1e-4, atol=1e-7)


def test_opencv_filters_equal_torch_filters():
    from hdrkit.merge import deghost as D

    x = torch.rand(2, 3, 23, 31, generator=torch.Generator().manual_seed(0))
    with torch.enable_grad():
        xg = x.clone().requires_grad_()  # autograd -> the torch implementations
        ref = [D._blur(xg, 1.0), D._blur(xg, 2.0), D._maxf(xg, 3), D._maxf(xg, 9), D._minf(xg, 3)]
    ours = [D._blur(x, 1.0), D._blur(x, 2.0), D._maxf(x, 3), D._maxf(x, 9), D._minf(x, 3)]
    for a, b in zip(ours, ref):
        assert (a - b.detach()).abs().max() < 1e-6
