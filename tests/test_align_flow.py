"""Dense-flow alignment (``align_flow_dis``, ``--align flow``), its occlusion masks in the deghosting merge,
and bracket order / reference handling of 2-, 3- and 5-frame brackets through the pipeline and the CLI."""

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hdrkit.align import FlowAlignResult, align, align_flow_dis
from hdrkit.camera.exposure import expose
from hdrkit.camera.response import GammaResponse
from hdrkit.cli import main
from hdrkit.io import read_hdr, write_ldr
from hdrkit.merge import merge_granados2013
from hdrkit.metrics import psnr_mu
from hdrkit.pipeline import hdr_from_brackets

H, W, M = 112, 144, 24  # frame size and the margin of the scene around it
GAMMA = GammaResponse(2.2)


def texture(h: int, w: int, seed: int, contrast: float = 1.4) -> torch.Tensor:
    """(3, h, w) float32 radiance: multi-octave log-normal texture with sharp rectangles, p99 = 1."""
    g = torch.Generator().manual_seed(seed)
    field = torch.zeros(1, 1, h, w, dtype=torch.float64)
    for octave in (3, 6, 12, 24):
        small = torch.randn(1, 1, h // octave + 2, w // octave + 2, generator=g, dtype=torch.float64)
        field += F.interpolate(small, size=(h, w), mode="bicubic", align_corners=False) * (octave / 24) ** 0.5
    for _ in range(10):
        y0, x0 = torch.randint(0, h - 20, (2,), generator=g).tolist()
        hh, ww = torch.randint(6, 24, (2,), generator=g).tolist()
        field[..., y0 : y0 + hh, x0 : x0 + ww] += torch.randn(1, generator=g, dtype=torch.float64).item()
    field = (field - field.mean()) / field.std()
    hdr = torch.exp(contrast * field)[0].expand(3, h, w) * (1 + 0.15 * torch.randn(3, 1, 1, generator=g, dtype=torch.float64))
    return (hdr / hdr.quantile(0.99)).float()


def smooth_field(seed: int, amplitude: float, h: int = H, w: int = W) -> np.ndarray:
    """(h, w, 2) float32 smooth random displacement (x, y), |d| <= amplitude."""
    rng = np.random.default_rng(seed)
    out = [cv2.resize(rng.uniform(-1, 1, (4, 4)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC).clip(-1, 1)
           for _ in range(2)]
    return np.stack(out, -1) * amplitude


def render(scene: torch.Tensor, disp: np.ndarray | None, oy: int = 0, ox: int = 0) -> torch.Tensor:
    """(3, H, W) crop of the larger ``scene`` at the margin plus ``(oy, ox)``, sampled at ``q + disp(q)``."""
    img = np.ascontiguousarray(scene.numpy().transpose(1, 2, 0))
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    mx, my = xx + M + ox, yy + M + oy
    if disp is not None:
        mx, my = mx + disp[..., 0], my + disp[..., 1]
    out = cv2.remap(img, mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
    return torch.from_numpy(out.transpose(2, 0, 1)).clamp_min(0)


def true_flow(disp: np.ndarray) -> np.ndarray:
    """Reference -> frame flow ``f`` of a frame rendered with ``disp``: ``f(p) = -disp(p + f(p))``."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    f = -disp.copy()
    for _ in range(20):
        f = -cv2.remap(disp, xx + f[..., 0], yy + f[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return f


def expose_frames(frames: torch.Tensor, times: torch.Tensor, bits: int = 16) -> torch.Tensor:
    """(N, 3, H, W) radiance, one per frame -> (N, 3, H, W) gamma 2.2 codes at ``times[i]``."""
    return torch.stack([expose(frames[i : i + 1], times[i].view(1, 1), GAMMA, bits=bits)[0, 0] for i in range(len(times))])


def linear(codes: torch.Tensor, t: float) -> torch.Tensor:
    return GAMMA.inverse(codes) / t


@pytest.fixture(scope="module")
def scene():
    return texture(H + 2 * M, W + 2 * M, seed=1)


@pytest.fixture(scope="module")
def warped_bracket(scene):
    """3 frames, middle reference; frames 0 and 2 warped by known smooth non-rigid fields (3-4 px)."""
    times = torch.tensor([1.0, 4.0, 16.0])
    disps = [smooth_field(10, 3.5), None, smooth_field(11, 3.0)]
    radiance = torch.stack([render(scene, d) for d in disps]) * 0.5
    return expose_frames(radiance, times), times, disps, radiance[1]


def _interior(x: torch.Tensor, border: int = 10) -> torch.Tensor:
    return x[..., border:-border, border:-border]


def test_known_smooth_warp_is_recovered(warped_bracket):
    ldr, times, disps, _ = warped_bracket
    res = align_flow_dis(ldr[None], times[None], torch.tensor([1]), GAMMA, keep_flow=True)
    hom = align(ldr, times, method="homography", reference=1, response=GAMMA)
    assert isinstance(res, FlowAlignResult) and res.reference == [1]
    assert res.ldr.shape == (1, 3, 3, H, W) and res.valid.shape == res.masks.shape == (1, 3, 1, H, W)
    assert torch.equal(res.ldr[0, 1], ldr[1]) and bool(res.valid[0, 1].all())
    ref = linear(ldr[1], 4.0)
    for i in (0, 2):
        assert res.info["method"][0][i].endswith("+flow")
        # the recovered displacement matches the known field (EPE in pixels, interior)
        f = torch.from_numpy(true_flow(disps[i]).transpose(2, 0, 1))
        epe = _interior((res.flow[0, i] - f).norm(dim=0))
        assert float(epe.median()) < 0.25 and float(epe.quantile(0.9)) < 0.6, (float(epe.median()), float(epe.quantile(0.9)))
        # the aligned frame matches the reference radiometrically where both are well exposed
        good = ((ldr[1] > 0.05) & (ldr[1] < 0.95) & (res.ldr[0, i] > 0.05) & (res.ldr[0, i] < 0.95)).all(0)
        good &= res.valid[0, i, 0]
        good = _interior(good)
        rel = _interior((linear(res.ldr[0, i], float(times[i])) - ref).abs() / ref.clamp_min(1e-6)).mean(0)[good]
        rel_h = _interior((linear(hom.ldr[i], float(times[i])) - ref).abs() / ref.clamp_min(1e-6)).mean(0)[good]
        assert good.float().mean() > 0.3
        assert float(rel.median()) < 0.03, float(rel.median())
        assert float(rel.median()) < 0.3 * float(rel_h.median()), (float(rel.median()), float(rel_h.median()))
        assert float(res.valid[0, i].float().mean()) > 0.9


def test_static_bracket_is_not_resampled(scene):
    times = torch.tensor([1.0, 4.0, 16.0])
    ldr = expose_frames(render(scene, None)[None].expand(3, -1, -1, -1) * 0.5, times)
    res = align_flow_dis(ldr, times, 1, GAMMA)
    assert torch.equal(res.ldr, ldr) and bool(res.valid.all()) and bool((res.masks == 1).all())
    assert res.info["method"] == ["identity", "reference", "identity"]


def test_occlusion_mask_flags_the_region_a_moving_object_covers(scene):
    """A textured square moves 10 px right between the reference and the other frames: the background
    strip it covers in those frames (visible in the reference) must be masked where the frame is not
    clipped (clipped pixels are left to the merge, which gives them no weight), the rest kept."""
    times = torch.tensor([1.0, 2.0, 4.0])
    bg = render(scene, None) * 0.5
    fg = texture(H, W, seed=7, contrast=0.8)[:, :40, :40] * 0.5
    y0, x0, step = 36, 40, 10
    frames = []
    for i in range(3):
        f = bg.clone()
        x = x0 + (0 if i == 1 else step)
        f[:, y0 : y0 + 40, x : x + 40] = fg
        frames.append(f)
    ldr = expose_frames(torch.stack(frames), times)
    res = align_flow_dis(ldr, times, 1, GAMMA)
    for i in (0, 2):
        strip = (slice(y0 + 4, y0 + 36), slice(x0 + 40, x0 + 40 + step))
        unclipped = ((ldr[i][(slice(None), *strip)] > 0.02) & (ldr[i][(slice(None), *strip)] < 0.98)).all(0)
        assert float(unclipped.float().mean()) > 0.5
        covered = ~res.valid[i, 0][strip][unclipped]
        assert float(covered.float().mean()) > 0.8, float(covered.float().mean())
        far = torch.ones(H, W, dtype=torch.bool)
        far[max(0, y0 - 16) : y0 + 56, max(0, x0 - 16) : x0 + 40 + step + 16] = False
        assert float(res.valid[i, 0][far].float().mean()) > 0.99
        assert bool((res.masks[i][~res.valid[i]] == 0).all())
        # masked pixels carry the reference re-exposed to the frame's exposure
        fill = GAMMA.forward((GAMMA.inverse(ldr[1]) * times[i] / times[1]).clamp(0, 1))
        bad = ~res.valid[i].expand(3, -1, -1)
        assert torch.allclose(res.ldr[i][bad], fill[bad], atol=1e-6)


def test_deghost_gives_masked_pixels_no_weight(scene):
    times = torch.tensor([[1.0, 4.0, 16.0]])
    clean = expose_frames(render(scene, None)[None].expand(3, -1, -1, -1) * 0.5, times[0])
    patch = (slice(None), slice(30, 70), slice(40, 90))
    valid = torch.ones(1, 3, 1, H, W)
    valid[0, 0, 0, 30:70, 40:90] = 0
    outs = []
    for gain in (1.04, 0.96):  # within the consistency test's tolerance: the merge alone cannot tell
        ldr = clean.clone()
        ldr[0][patch] = (ldr[0][patch] * gain).clamp(0, 1)
        outs.append((merge_granados2013(ldr[None], times, GAMMA, reference=1, bits=16, valid=valid)[0],
                     merge_granados2013(ldr[None], times, GAMMA, reference=1, bits=16)[0]))
    (masked_a, plain_a), (masked_b, plain_b) = outs
    assert torch.equal(masked_a[patch], masked_b[patch])  # frame 0 has no say in the patch
    assert not torch.allclose(plain_a[patch], plain_b[patch], rtol=1e-3)  # without the mask it has
    # every other frame masked: the reference's own radiance; a mask on the reference is ignored
    only_ref = torch.zeros(1, 3, 1, H, W)
    out = merge_granados2013(clean[None], times, GAMMA, reference=1, bits=16, valid=only_ref)[0]
    well = ((clean[1] > 0.05) & (clean[1] < 0.95)).all(0, keepdim=True).expand(3, -1, -1)
    assert torch.allclose(out[well], linear(clean[1], 4.0)[well], rtol=1e-5, atol=1e-7)
    ones_but_ref = torch.ones(1, 3, 1, H, W)
    ones_but_ref[0, 1] = 0
    assert torch.equal(merge_granados2013(clean[None], times, GAMMA, reference=1, bits=16, valid=ones_but_ref),
                       merge_granados2013(clean[None], times, GAMMA, reference=1, bits=16))


def _write(tmp_path, ldr, order=None, name="f"):
    paths = []
    for k in order or range(len(ldr)):
        paths.append(tmp_path / f"{name}{k}.png")
        write_ldr(paths[-1], ldr[k], bits=16)
    return [str(p) for p in paths]


def test_cli_align_flow_beats_homography_on_non_rigid_motion(tmp_path, warped_bracket, capsys):
    ldr, _, _, gt = warped_bracket
    paths = _write(tmp_path, ldr, order=[2, 0, 1])
    psnr = {}
    for method in ("homography", "flow"):
        out = tmp_path / f"{method}.exr"
        code = main(["merge", *paths, "-o", str(out), "--ev", "4", "0", "2", "--align", method])
        _, err = capsys.readouterr()
        assert code == 0, err
        hdr = read_hdr(out)
        assert hdr.shape == (3, H, W)
        psnr[method] = psnr_mu(_interior(hdr), _interior(gt))
    assert psnr["flow"] > psnr["homography"] + 1.0 and psnr["flow"] > 35, psnr


OFFSETS = [(0, 0), (3, -4), (-5, 2), (6, 5), (-2, -6)]


def _shifted(scene, n):
    """n frames (EV 0..n-1) cropped at OFFSETS[:n]; returns codes and each frame's ground truth."""
    times = 2.0 ** torch.arange(n, dtype=torch.float32)
    gts = torch.stack([render(scene, None, oy, ox) for oy, ox in OFFSETS[:n]]) * 0.5
    return expose_frames(gts, times), gts


@pytest.mark.parametrize("n", [3, 5])
def test_every_reference_sets_the_output_geometry(tmp_path, scene, n):
    ldr, gts = _shifted(scene, n)
    order = list(range(n))[::-1]
    paths = _write(tmp_path, ldr, order=order)
    ev = [str(float(k)) for k in order]
    for k in range(n):
        res = hdr_from_brackets(paths, ev=ev, reference=k)
        assert res.reference == k and res.hdr.shape == (3, H, W)
        scores = [psnr_mu(_interior(res.hdr), _interior(g)) for g in gts]
        others = max(s for j, s in enumerate(scores) if j != k)
        assert scores[k] > 40 and scores[k] > others + 8, (k, scores)
    with pytest.raises(Exception, match="out of range"):
        hdr_from_brackets(paths, ev=ev, reference=n)


@pytest.mark.parametrize("n, expected", [(5, 2), (2, 1)])
def test_default_reference_from_the_cli(tmp_path, scene, capsys, n, expected):
    """5 frames: the middle of the exposure-sorted bracket; 2 frames: the longer exposure (``N // 2``)."""
    ldr, gts = _shifted(scene, n)
    paths = _write(tmp_path, ldr, order=list(range(n))[::-1])
    out = tmp_path / "out.exr"
    ev = [str(float(k)) for k in range(n)][::-1]
    for align_method in ("homography", "flow"):
        code = main(["merge", *paths, "-o", str(out), "--ev", *ev, "--align", align_method])
        stdout, err = capsys.readouterr()
        assert code == 0, err
        assert f"reference frame {expected}" in stdout
        hdr = read_hdr(out)
        scores = [psnr_mu(_interior(hdr), _interior(g)) for g in gts]
        assert scores[expected] == max(scores) and scores[expected] > 40, scores
    code = main(["merge", *paths, "-o", str(out), "--ev", *ev, "--reference", "0", "--align", "flow"])
    stdout, err = capsys.readouterr()
    assert code == 0 and "reference frame 0" in stdout, err
    assert psnr_mu(_interior(read_hdr(out)), _interior(gts[0])) > 40


@pytest.mark.parametrize("n", [2, 3, 5])
def test_cli_align_flow_any_reference(tmp_path, scene, capsys, n):
    """``--align flow --reference K`` from the CLI, for every K of a 2-, 3- and 5-frame bracket given in
    reverse exposure order: the output takes frame K's geometry."""
    ldr, gts = _shifted(scene, n)
    order = list(range(n))[::-1]
    paths = _write(tmp_path, ldr, order=order)
    ev = [str(float(k)) for k in order]
    out = tmp_path / "out.exr"
    for k in range(n):
        code = main(["merge", *paths, "-o", str(out), "--ev", *ev, "--align", "flow", "--reference", str(k)])
        stdout, err = capsys.readouterr()
        assert code == 0, err
        assert f"reference frame {k}" in stdout
        scores = [psnr_mu(_interior(read_hdr(out)), _interior(g)) for g in gts]
        others = max(s for j, s in enumerate(scores) if j != k)
        assert scores[k] > 40 and scores[k] > others + 8, (k, scores)
