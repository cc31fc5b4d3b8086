"""The fast code-valued paths of alignment and the deghosting merge: the same results as the float paths,
independent of the thread count, without global side effects; the command line's cheap paths skip torch."""

import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from hdrkit.align import align_homography, align_mtb_ward2003
from hdrkit.align.common import bracket_codes, common_exposure_pair
from hdrkit.align.warp import _warp_frame, apply_transforms
from hdrkit.camera.exposure import NoiseModel, expose
from hdrkit.camera.response import GammaResponse
from hdrkit.io import read_bracket, read_ldr, write_ldr
from hdrkit.io.ldr import to_planes
from hdrkit.merge.deghost import DEFAULT_THRESHOLD, DEFAULT_TOLERANCE, merge_granados2013
from hdrkit.merge.deghost_codes import frame_codes, mask_factor, merge_codes
from hdrkit.merge.weights import DEFAULT_NOISE
from hdrkit.tonemap.mu_law import mu_law

ROOT = Path(__file__).resolve().parents[1]
GAMMA = GammaResponse(2.2)
NOISE = NoiseModel((1.7e-5,) * 3, (3.4e-8,) * 3)
TEST = (DEFAULT_THRESHOLD, DEFAULT_TOLERANCE)


def scene(h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    low = torch.nn.functional.interpolate(torch.randn(1, 3, h // 8, w // 8, generator=g) * 1.3, size=(h, w), mode="bicubic")
    hdr = torch.exp(low + 0.3 * torch.randn(1, 3, h, w, generator=g))
    return hdr / torch.quantile(hdr.amax(1).flatten()[::7], 0.995)


def mover(h: int, w: int, bits: int, times=(1.0, 4.0, 16.0), seed: int = 0):
    """A 3-frame bracket with a flat patch at a different place in every frame; GT: the reference (frame 1)."""
    base = scene(h, w, seed)
    g = torch.Generator().manual_seed(seed + 1)
    frames, gt = [], None
    for i, (y, x) in enumerate([(h // 8, w // 8), (h // 3, w // 3), (h // 2, w // 2)]):
        s = base.clone()
        s[..., y : y + h // 4, x : x + w // 4] = 0.3
        gt = s if i == 1 else gt
        frames.append(expose(s, torch.tensor([[times[i]]]), GAMMA, NOISE, bits=bits, generator=g)[:, 0])
    return torch.stack(frames, 1), torch.tensor([times]), gt


def psnr_mu(a, b):
    return 10 * math.log10(1 / float(((mu_law(a.clamp(0, 1)) - mu_law(b.clamp(0, 1))) ** 2).mean()))


def test_code_path_matches_float_path_16_bit_mixed_grids_and_valid_masks():
    """16-bit frames, one of them resampled onto the 16-bit grid of an 8-bit bracket (as the aligners leave
    frames), with aligner masks: the per-code path equals the autograd float path to float rounding."""
    ldr, t, _ = mover(72, 96, bits=16)
    valid = torch.ones(1, 3, 1, 72, 96)
    valid[0, 2, :, :, :10] = 0
    fast, m_fast = merge_granados2013(ldr, t, bits=16, return_masks=True, valid=valid)
    slow, m_slow = merge_granados2013(ldr.clone().requires_grad_(), t, bits=16, return_masks=True, valid=valid)
    assert m_fast.amax() > 0.9 and (m_fast - m_slow).abs().max() < 1e-4
    assert torch.allclose(fast, slow.detach(), rtol=1e-4, atol=1e-7)

    ldr8, t8, _ = mover(72, 96, bits=8)
    ldr8[0, 0] = torch.round(ldr8[0, 0] * 0.999 * 65535) / 65535  # off the 8-bit grid, on the 16-bit one
    codes = frame_codes(ldr8, 8)
    assert [c[1] for c in codes[0]] == [16, 8, 8]
    fast = merge_granados2013(ldr8, t8, bits=8)
    slow = merge_granados2013(ldr8.clone().requires_grad_(), t8, bits=8)
    assert torch.allclose(fast, slow.detach(), rtol=1e-4, atol=1e-7)


def test_masks_on_blocks_lose_nothing_measurable():
    """The ghost test on 2 x 2 blocks (what 1920x1080 brackets get) against the full-resolution test on
    the same bracket: the same quality against the ground truth."""
    ldr, t, gt = mover(192, 256, bits=16)
    codes = frame_codes(ldr, 16)
    ref = torch.tensor([1])
    full, m_full = merge_codes(codes, t, ref, GAMMA, DEFAULT_NOISE, 16, *TEST, True, return_masks=True, factor=1)
    half, m_half = merge_codes(codes, t, ref, GAMMA, DEFAULT_NOISE, 16, *TEST, True, return_masks=True, factor=2)
    assert abs(psnr_mu(half, gt) - psnr_mu(full, gt)) < 0.5, (psnr_mu(half, gt), psnr_mu(full, gt))
    assert ((m_half > 0.5) != (m_full > 0.5)).float().mean() < 0.05
    assert mask_factor(1080, 1920) == 2 and mask_factor(4000, 6000) == 4 and mask_factor(384, 512) == 1


def test_resampled_frames_lie_on_the_16_bit_grid_next_to_the_bilinear_samples():
    """Frames of an 8-bit bracket warped by a homography go to the 16-bit grid (half a 16-bit step from the
    bilinear samples), unwarped ones keep their 8-bit codes: the merge's per-code tables apply to both."""
    ldr, t, _ = mover(96, 128, bits=8)
    a = math.radians(1.0)
    turn = torch.tensor([[math.cos(a), -math.sin(a), 2.5], [math.sin(a), math.cos(a), -1.5], [0.0, 0.0, 1.0]], dtype=torch.float64)
    transforms = torch.eye(3, dtype=torch.float64).repeat(1, 3, 1, 1)
    transforms[0, 0] = turn
    aligned, _ = apply_transforms(ldr, transforms, [1], t, GAMMA, bits=8)
    assert [c[1] for c in frame_codes(aligned, 8)[0]] == [16, 8, 8]
    warped = torch.from_numpy(_warp_frame(ldr[0, 0].numpy(), turn.numpy())[0])
    assert (aligned[0, 0] - warped)[:, 8:-8, 8:-8].abs().max() <= 0.5 / 65535 + 1e-7


def test_decoded_codes_convert_like_numpy_and_brackets_read_in_parallel(tmp_path):
    """``to_planes`` (one OpenCV pass per plane) gives numpy's float32 ``code * float32(1 / peak)`` bit for bit, and
    ``read_bracket`` (frames decoded on threads, converted into one buffer) gives the frames ``read_ldr`` gives."""
    for dtype, bits in ((np.uint8, 8), (np.uint16, 16)):
        v = np.arange(2**bits, dtype=dtype)
        arr = np.ascontiguousarray(np.stack([v, v[::-1], v], -1).reshape(2**bits // 256, 256, 3))
        expected = np.ascontiguousarray(arr.transpose(2, 0, 1)).astype(np.float32) * np.float32(1 / (2**bits - 1))
        assert np.array_equal(to_planes(arr, bits, False), expected)
    ldr, _, _ = mover(40, 56, bits=8)
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"f{i}.png")
        write_ldr(paths[-1], ldr[0, i])
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        b = read_bracket(paths, times=[1.0, 4.0, 16.0])
    finally:
        torch.set_num_threads(threads)
    for i, p in enumerate(paths):
        assert torch.equal(b.ldr[i], read_ldr(p).image)


def test_comparison_images_from_codes_match_float_formulas():
    ldr, t, _ = mover(64, 80, bits=8)
    codes, bits = bracket_codes(ldr[0])
    assert bits == 8 and codes.dtype == torch.uint8
    for ds in (1, 2):
        a = common_exposure_pair(ldr[0, 0], ldr[0, 1], 1.0, 4.0, GAMMA, with_clipping=True, downsample=ds)
        b = common_exposure_pair(ldr[0, 0], ldr[0, 1], 1.0, 4.0, GAMMA, with_clipping=True, downsample=ds, codes=(codes[0], codes[1], 8))
        for x, y in zip(a[:2], b[:2]):
            assert x.shape == (64 // ds, 80 // ds) and np.abs(x - y).max() < 1e-5
        for x, y in zip(a[2:], b[2:]):
            assert torch.equal(x[0], y[0]) and torch.equal(x[1], y[1])


def test_results_do_not_depend_on_the_thread_count_and_leave_no_global_state():
    """Frames and row bands run on threads: every result must be bitwise the same with 1 or 3 threads,
    and the calls must not change torch's or OpenCV's thread counts or the random state."""
    ldr, t, _ = mover(320, 416, bits=8)  # several row bands
    shift = torch.roll(ldr[0], (3, -2), dims=(-2, -1))
    br = torch.stack([ldr[0, 0], shift[1], ldr[0, 2]])
    codes = frame_codes(ldr, 8)

    def run():
        h = align_homography(br, t[0], GAMMA)
        m = align_mtb_ward2003(br, exposure_times=t[0], response=GAMMA)
        out = [h.ldr, h.valid, h.transforms, m.ldr, m.transforms]
        out += list(merge_granados2013(h.ldr[None], t, return_masks=True))
        out.append(merge_codes(codes, t, torch.tensor([1]), GAMMA, DEFAULT_NOISE, 8, *TEST, True, factor=2))
        return out

    saved = torch.get_num_threads(), cv2.getNumThreads()
    results = []
    try:
        for n in (1, 3, 1):
            torch.set_num_threads(n)
            rng = torch.get_rng_state()
            results.append(run())
            assert torch.get_num_threads() == n and cv2.getNumThreads() == saved[1]
            assert torch.equal(rng, torch.get_rng_state())
    finally:
        torch.set_num_threads(saved[0])
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert torch.equal(a, b)


@pytest.mark.parametrize("args", [["--help"], ["merge", "--help"], ["merge", "missing_a.jpg", "missing_b.jpg", "-o", "o.exr"],
                                  ["merge", "one.jpg", "-o", "o.exr"], ["info", "missing.exr"]])
def test_help_and_early_errors_do_not_import_torch(args, tmp_path):
    code = ("import sys\nfrom hdrkit.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules)")
    p = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=tmp_path,
                       env={"PYTHONPATH": str(ROOT), "PATH": ""}, timeout=120)
    assert p.stdout.strip().splitlines()[-1] == "False", p.stdout + p.stderr
    if len(args) > 1 and args[1] != "--help":
        assert "error:" in p.stderr and "Traceback" not in p.stderr
