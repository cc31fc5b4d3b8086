"""Alignment: warps (gradcheck), Ward MTB shifts, robust homographies, fill and dispatcher."""

import math

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hdrkit.align import align, align_homography, align_mtb_ward2003, shift_image, warp_homography
from hdrkit.align.warp import homography_valid_mask, translation_homography
from hdrkit.camera.exposure import expose
from hdrkit.camera.response import GammaResponse, SRGBResponse
from hdrkit.errors import HdrkitError

S = 256  # frame side
M = 48  # margin of the synthetic scene around the frame
TIMES = torch.tensor([1.0, 4.0, 16.0])


def procedural_scene(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """(1, 3, h, w) float32 radiance: multi-octave log-normal texture plus sharp rectangles, p99 = 1."""
    g = torch.Generator().manual_seed(seed)
    field = torch.zeros(1, 1, h, w, dtype=torch.float64)
    for octave in (4, 8, 16, 32, 64):
        small = torch.randn(1, 1, h // octave + 2, w // octave + 2, generator=g, dtype=torch.float64)
        field += F.interpolate(small, size=(h, w), mode="bicubic", align_corners=False) * (octave / 64) ** 0.5
    for _ in range(12):
        y0, x0 = torch.randint(0, h - 40, (2,), generator=g).tolist()
        hh, ww = torch.randint(10, 60, (2,), generator=g).tolist()
        field[..., y0 : y0 + hh, x0 : x0 + ww] += torch.randn(1, generator=g, dtype=torch.float64).item()
    field = (field - field.mean()) / field.std()
    hdr = torch.exp(1.6 * field) * (1 + 0.2 * torch.randn(1, 3, 1, 1, generator=g, dtype=torch.float64))
    return (hdr / hdr.quantile(0.99)).float()


def expose_each(hdr: torch.Tensor, times: torch.Tensor, response=None) -> torch.Tensor:
    """(N, 3, H, W) radiance, one per frame -> (N, 3, H, W) 8-bit codes at ``times[i]``."""
    return torch.stack([expose(hdr[i : i + 1], times[i].view(1, 1), response)[0, 0] for i in range(len(times))])


def shifted_bracket(scene: torch.Tensor, offsets, times=TIMES, response=None) -> torch.Tensor:
    """Frames cropped from ``scene`` at ``(M + oy, M + ox)``: frame_i[y, x] = ref[y + oy, x + ox]."""
    crops = torch.cat([scene[..., M + oy : M + oy + S, M + ox : M + ox + S] for oy, ox in offsets])
    return expose_each(crops, times, response)


def similarity(deg: float, tx: float, ty: float, px: float = 0.0, py: float = 0.0) -> np.ndarray:
    """Rotation about the frame centre, translation and a slight perspective (frame -> reference)."""
    a, c = math.radians(deg), (S - 1) / 2
    rot = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1.0]])
    cen = np.array([[1, 0, c], [0, 1, c], [0, 0, 1.0]])
    persp = np.array([[1, 0, 0], [0, 1, 0], [px, py, 1.0]])
    trans = np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1.0]])
    return trans @ cen @ rot @ persp @ np.linalg.inv(cen)


def warped_bracket(scene: torch.Tensor, gs, times=TIMES, response=None) -> torch.Tensor:
    """Frame i(x) = reference(gs[i] x), rendered from the larger scene (no border effects)."""
    crop = np.array([[1, 0, M], [0, 1, M], [0, 0, 1.0]])
    hm = torch.tensor(np.stack([crop @ g for g in gs]), dtype=torch.float32)
    hdr = warp_homography(scene.expand(len(gs), -1, -1, -1), hm, size=(S, S))
    return expose_each(hdr, times, response)


def corner_error(est: np.ndarray, truth: np.ndarray) -> float:
    c = np.array([[0, 0, 1], [S - 1, 0, 1], [0, S - 1, 1], [S - 1, S - 1, 1.0]]).T
    a, b = est @ c, truth @ c
    return float(np.abs(a[:2] / a[2] - b[:2] / b[2]).max())


@pytest.fixture(scope="module")
def scene():
    return procedural_scene(S + 2 * M, S + 2 * M)


# --- warps ---------------------------------------------------------------------------------


def test_warp_homography_gradcheck():
    img = torch.rand(1, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    hm = torch.tensor([[[1.02, 0.03, 0.4], [-0.02, 0.98, -0.3], [1e-3, -2e-3, 1.0]]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda i, h: warp_homography(i, h, padding_mode="border"), (img, hm))


def test_warp_identity_and_integer_translation_match_shift():
    img = torch.rand(2, 3, 9, 11, dtype=torch.float64)
    eye = torch.eye(3, dtype=torch.float64).repeat(2, 1, 1)
    assert torch.allclose(warp_homography(img, eye), img, atol=1e-12)
    hm = translation_homography(2, -3).repeat(2, 1, 1)
    warped = warp_homography(img, hm)
    shifted = shift_image(img, 2, -3)
    valid = homography_valid_mask(hm, (9, 11))
    assert valid.shape == (2, 1, 9, 11) and valid[0].sum() == 7 * 8
    assert torch.allclose(warped * valid, shifted * valid, atol=1e-12)


def test_shift_image_semantics():
    img = torch.arange(20.0).view(4, 5)
    out = shift_image(img, 1, -2, fill=-1)
    assert out[1, 0] == img[0, 2] and out[3, 2] == img[2, 4]
    assert (out[0] == -1).all() and (out[:, 3:] == -1).all()
    assert (shift_image(img, 9, 0, fill=0) == 0).all()


# --- MTB -----------------------------------------------------------------------------------


def test_mtb_recovers_known_shifts_exactly(scene):
    offsets = [(-7, 12), (0, 0), (5, -3)]
    ldr = shifted_bracket(scene, offsets)
    res = align_mtb_ward2003(ldr, exposure_times=TIMES)
    assert res.reference == 1
    assert res.info["shifts"].tolist() == [[-7, 12], [0, 0], [5, -3]]
    # transforms map reference -> frame coordinates: reference pixel (x, y) sits at (x - ox, y - oy) in frame i
    assert torch.equal(res.transforms[0], translation_homography(-7, 12))
    # genuine pixels equal the reference scene exposed at the frame's time
    truth = shifted_bracket(scene, [(0, 0)] * 3)
    assert torch.equal(res.ldr[res.valid.expand_as(res.ldr)], truth[res.valid.expand_as(truth)])
    # aligned0[y, x] = frame0[y + 7, x - 12]: the last 7 rows and the first 12 columns have no source
    assert res.valid[0, 0, -7:].logical_not().all() and res.valid[0, 0, :, :12].logical_not().all()
    assert res.valid[0, 0, : S - 7, 12:].all() and res.valid[1].all()
    # filled pixels are the reference re-exposed: equal to the truth where the reference is not clipped
    fill = ~res.valid[0].expand(3, -1, -1) & (ldr[1] < 0.99)
    assert (res.ldr[0][fill] - truth[0][fill]).abs().max() <= 2.5 / 255


def test_mtb_robust_to_moving_object(scene):
    crops = torch.cat([scene[..., M + oy : M + oy + S, M + ox : M + ox + S] for oy, ox in [(-7, 12), (0, 0), (5, -3)]])
    for i, (y, x) in enumerate([(40, 50), (90, 110), (150, 170)]):  # a 40 px object crossing the frame
        crops[i, :, y : y + 40, x : x + 40] = torch.tensor([0.05, 0.4, 0.9]).view(3, 1, 1) * (0.5 + i)
    res = align_mtb_ward2003(expose_each(crops, TIMES), exposure_times=TIMES)
    assert res.info["shifts"].tolist() == [[-7, 12], [0, 0], [5, -3]]


def test_mtb_batched_sorted_reference_and_no_times(scene):
    times = torch.tensor([4.0, 16.0, 1.0])  # unsorted: reference is the 4x frame, index 0
    ldr = shifted_bracket(scene, [(0, 0), (-17, 5), (-3, -4)], times)
    batch = torch.stack([ldr, ldr.flip(0)])
    res = align_mtb_ward2003(batch, exposure_times=torch.stack([times, times.flip(0)]))
    assert res.reference == [0, 2]
    assert res.info["shifts"][0].tolist() == [[0, 0], [-17, 5], [-3, -4]]
    assert res.info["shifts"][1].tolist() == [[-3, -4], [-17, 5], [0, 0]]
    assert res.ldr.shape == batch.shape and res.valid.shape == (2, 3, 1, S, S) and res.transforms.shape == (2, 3, 3, 3)
    # without times the reference is the middle frame by brightness and the fill ratio is estimated
    res2 = align_mtb_ward2003(ldr)
    assert res2.reference == 0 and res2.info["shifts"].tolist() == [[0, 0], [-17, 5], [-3, -4]]
    assert torch.allclose(res2.ldr, res.ldr[0], atol=3 / 255)


@pytest.mark.parametrize("dtype,peak", [(torch.uint8, 255), (torch.uint16, 65535)])
def test_mtb_on_integer_codes_matches_float_path(scene, dtype, peak):
    ldr = shifted_bracket(scene, [(-7, 12), (0, 0), (5, -3)])
    codes = (ldr.double() * peak).round().to(dtype)  # 8-bit frames as uint16 codes: k * 257
    for kw in ({"exposure_times": TIMES}, {}):  # with times (exact fills) and without (estimated ratio)
        ref = align_mtb_ward2003(ldr if peak == 255 else codes.double().div(peak).float(), **kw)
        res = align_mtb_ward2003(codes, **kw)
        assert res.ldr.dtype == dtype and res.info["shifts"].tolist() == ref.info["shifts"].tolist() == [[-7, 12], [0, 0], [5, -3]]
        assert torch.equal(res.valid, ref.valid)
        got, want = res.ldr.double() / peak, ref.ldr.double()
        on = res.valid.expand_as(got)
        assert torch.equal(got[on], want[on].mul(peak).round() / peak)  # moved codes are exact
        # fills: the float path rounds them to the 8-bit grid it detects, integer codes to their own
        assert (got[~on] - want[~on]).abs().max() <= (1e-6 if peak == 255 else 0.5 / 255 + 1e-6)


def test_apply_transforms_on_codes(scene):
    from hdrkit.align.common import bracket_codes
    from hdrkit.align.warp import apply_transforms

    ldr = warped_bracket(scene, GS)
    tf = torch.tensor(np.stack([np.linalg.inv(g) for g in GS]))[None]
    codes, bits = bracket_codes(ldr[None])
    assert bits == 8
    float_path, valid = apply_transforms(ldr[None], tf, [1], TIMES[None], bits=bits)
    code_path, valid_c = apply_transforms(ldr[None], tf, [1], TIMES[None], bits=bits, codes=codes)
    assert torch.equal(valid, valid_c) and code_path.dtype == torch.float32
    assert (code_path - float_path).abs().max() <= 1.01 / 65535  # the same 16-bit grid, one step at most
    assert bracket_codes(code_path)[1] == 16
    # integer codes in, integer codes out: the resampled frames rounded to their own grid
    as_codes, valid_i = apply_transforms(codes, tf, [1], TIMES[None])
    assert as_codes.dtype == torch.uint8 and torch.equal(valid_i, valid)
    assert (as_codes.float() / 255 - float_path).abs().max() <= 0.5 / 255 + 1e-6
    assert torch.equal(as_codes[0, 1], codes[0, 1])


def test_align_accepts_integer_codes(scene):
    ldr = warped_bracket(scene, GS)
    codes = (ldr * 255).round().to(torch.uint8)
    for method in ("none", "mtb", "homography", "flow"):
        want, got = align(ldr, TIMES, method=method), align(codes, TIMES, method=method)
        assert got.info.get("method") == want.info.get("method")
        as_unit = got.ldr.float() / 255 if got.ldr.dtype == torch.uint8 else got.ldr
        assert got.ldr.dtype == (torch.float32 if method == "flow" else torch.uint8)
        assert (as_unit - want.ldr).abs().max() <= 0.5 / 255 + 2 / 65535, method  # resampled codes rounded to 8 bits


def test_mtb_large_shift_and_max_bits():
    big = procedural_scene(S + 160, S + 160, seed=3)
    frames = torch.cat([big[..., 80 + oy : 80 + oy + S, 80 + ox : 80 + ox + S] for oy, ox in [(0, 0), (-50, 41)]])
    ldr = expose_each(frames, torch.tensor([2.0, 8.0]))
    assert align_mtb_ward2003(ldr, reference=0).info["shifts"][1].tolist() == [-50, 41]
    # with 3 levels the largest reachable shift is 7 px
    assert align_mtb_ward2003(ldr, reference=0, max_bits=3).info["shifts"][1].abs().max() <= 7


def test_mtb_agrees_with_opencv(scene):
    ldr = shifted_bracket(scene, [(0, 0), (6, -9)], torch.tensor([2.0, 4.0]))
    ours = align_mtb_ward2003(ldr, reference=0).info["shifts"][1].tolist()
    codes = [np.ascontiguousarray((f.permute(1, 2, 0).numpy()[..., ::-1] * 255).round().astype(np.uint8)) for f in ldr]
    grey = [cv2.cvtColor(c, cv2.COLOR_BGR2GRAY) for c in codes]
    sx, sy = cv2.createAlignMTB().calculateShift(grey[0], grey[1])  # shift applied to image 1, (x, y)
    assert ours == [6, -9] == [sy, sx]


# --- homography ----------------------------------------------------------------------------

GS = [similarity(0.5, 3.2, -2.4, 2e-5, -1e-5), np.eye(3), similarity(-0.4, -4.1, 1.7, -1e-5, 2e-5)]


@pytest.mark.parametrize("method", ["ecc", "features"])
def test_homography_recovers_known_warp(scene, method):
    response = SRGBResponse()
    ldr = warped_bracket(scene, GS, response=response)
    res = align_homography(ldr, TIMES, response, method=method)
    assert res.info["method"] == ["homography", "reference", "homography"]
    for i in (0, 2):
        assert corner_error(res.transforms[i].numpy(), np.linalg.inv(GS[i])) < 0.5
    # aligned frames look like the reference scene at their own exposure
    truth = warped_bracket(scene, [np.eye(3)] * 3, response=response)
    inner = res.valid[0].expand(3, -1, -1).clone()
    inner[:, :8], inner[:, -8:], inner[:, :, :8], inner[:, :, -8:] = False, False, False, False
    assert (res.ldr[0] - truth[0])[inner].abs().mean() < 0.01
    # pixels with no source in frame 0 hold the reference re-exposed to t_0: the truth up to quantization
    fill = ~res.valid[0].expand(3, -1, -1) & (ldr[1] < 0.99)
    assert fill.sum() > 500 and (res.ldr[0] - truth[0])[fill].abs().max() <= 3 / 255


def test_homography_robust_to_moving_object(scene):
    crop = np.array([[1, 0, M], [0, 1, M], [0, 0, 1.0]])
    hm = torch.tensor(np.stack([crop @ g for g in GS]), dtype=torch.float32)
    hdr = warp_homography(scene.expand(3, -1, -1, -1), hm, size=(S, S))
    for i, (y, x) in enumerate([(60, 70), (100, 120), (150, 160)]):  # a 50 px object moving across
        hdr[i, :, y : y + 50, x : x + 50] = torch.tensor([0.9, 0.1, 0.05]).view(3, 1, 1) * (3.0 if i != 1 else 0.02)
    ldr = expose_each(hdr, TIMES)
    res = align(ldr, TIMES, method="homography")
    for i in (0, 2):
        assert corner_error(res.transforms[i].numpy(), np.linalg.inv(GS[i])) < 0.5


def test_homography_without_information_keeps_identity():
    flat = torch.full((3, 3, 64, 64), 0.5)
    flat[1] = torch.rand(3, 64, 64)
    res = align_homography(flat, TIMES, reference=1)
    assert res.info["method"][0] == "identity"
    assert torch.equal(res.transforms[0], torch.eye(3, dtype=torch.float64))


def test_homography_without_overlap_keeps_identity(scene):
    """Frames 1 and 2 are entirely saturated: nothing can be aligned, so nothing moves."""
    ldr = shifted_bracket(scene, [(0, 0), (2, 2), (0, 0)], torch.tensor([1.0, 1e4, 1e8]))
    res = align_homography(ldr, torch.tensor([1.0, 1e4, 1e8]), GammaResponse(2.2))
    assert res.info["method"] == ["identity", "reference", "identity"]
    assert torch.equal(res.transforms, torch.eye(3, dtype=torch.float64).repeat(3, 1, 1))


# --- clipped frames: no spurious motion ----------------------------------------------------


def corner_move(hm: torch.Tensor, size: int = S) -> float:
    """Largest displacement of an image corner under ``hm`` (0 for the identity)."""
    c = torch.tensor([[0, 0, 1], [size - 1, 0, 1], [0, size - 1, 1], [size - 1, size - 1, 1.0]], dtype=torch.float64).T
    p = hm.to(torch.float64) @ c
    return float((p[:2] / p[2] - c[:2]).abs().max())


@pytest.mark.parametrize("ratio", [64.0, 512.0])
def test_static_bracket_with_clipped_frames_stays_identity(ratio):
    """A tripod bracket whose long frame is mostly saturated (70 % / 97 %) and whose short frame is
    mostly black (28 % / 74 %): the previous aligner returned MTB shifts of 15 and 63 px here."""
    scene = procedural_scene(S, S, seed=0)
    times = torch.tensor([1.0 / ratio, 1.0, ratio])
    ldr = expose_each(scene.expand(3, -1, -1, -1), times)
    assert (ldr[2] >= 0.98).any(0).float().mean() > 0.65 and (ldr[0] <= 0.02).all(0).float().mean() > 0.25
    for res in (align_homography(ldr, times), align(ldr, times, method="mtb"), align_mtb_ward2003(ldr)):
        assert max(corner_move(tf) for tf in res.transforms) < 0.5
        assert res.info["method"] == ["identity", "reference", "identity"]
        assert torch.equal(res.ldr, ldr)


def test_shifts_recovered_despite_clipping():
    """Same exposures as above (ratio 64) with real motion: the well-exposed overlap still constrains it."""
    scene = procedural_scene(S + 2 * M, S + 2 * M, seed=0)
    times = torch.tensor([1 / 64.0, 1.0, 64.0])
    ldr = shifted_bracket(scene, [(-7, 12), (0, 0), (5, -3)], times)
    res = align_mtb_ward2003(ldr, exposure_times=times)
    assert res.info["shifts"].tolist() == [[-7, 12], [0, 0], [5, -3]]
    assert res.info["method"] == ["translation", "reference", "translation"]
    hres = align_homography(warped_bracket(scene, GS, times), times)
    assert hres.info["method"] == ["homography", "reference", "homography"]
    for i in (0, 2):
        assert corner_error(hres.transforms[i].numpy(), np.linalg.inv(GS[i])) < 0.5


def test_static_bracket_without_common_exposure_range_stays_identity():
    """A response with a long toe (code 0.02 is already 14 % of full scale) leaves frames 8x apart
    no common well-exposed radiance range: the rank-matched fallback must not invent motion (the
    previous aligner shifted frame 2 by (7, -7) px here)."""
    scene = procedural_scene(S, S, seed=0)
    times, response = torch.tensor([1.0, 8.0, 64.0]), GammaResponse(0.5)
    ldr = expose_each(scene.expand(3, -1, -1, -1), times, response)
    res = align_homography(ldr, times, response)
    assert res.info["method"] == ["identity", "reference", "identity"]
    assert torch.equal(res.transforms, torch.eye(3, dtype=torch.float64).repeat(3, 1, 1))
    assert align_mtb_ward2003(ldr).info["shifts"].abs().sum() == 0
    # (the rank-matched path recovering real shifts: test_mtb_batched_sorted_reference_and_no_times)


def test_mtb_pair_without_information_returns_zero(scene):
    from hdrkit.align.mtb import mtb_shift_pair

    ref = scene[0].mean(0)[M : M + S, M : M + S].clamp(0, 1)
    saturated = torch.ones_like(ref)
    saturated[:4, :4] = 0.5  # 16 unclipped pixels: too few
    assert mtb_shift_pair(ref, saturated) == ((0, 0), False)
    assert mtb_shift_pair(ref, torch.full_like(ref, 0.5)) == ((0, 0), False)  # flat: everything near the median
    moved = torch.roll(ref, (3, -2), dims=(0, 1))
    assert mtb_shift_pair(ref, moved) == ((-3, 2), True)


def test_select_transform_prefers_identity_unless_clearly_better(scene):
    from hdrkit.align.select import select_transform

    ref = scene[0].mean(0)[M : M + S, M : M + S].clamp(0, 1).pow(1 / 2.2).numpy()
    usable = np.ones_like(ref, dtype=bool)
    eye, shift = np.eye(3), translation_homography(2, 1).numpy()
    name, hm, costs = select_transform(ref, ref, [("identity", eye), ("translation", shift)], usable)
    assert name == "identity" and costs["identity"] == 0.0 < costs["translation"]
    moved = np.roll(ref, (-2, -1), axis=(0, 1))  # moved[y, x] = ref[y + 2, x + 1]: aligned(p) = moved(shift p) = ref(p)
    name, hm, costs = select_transform(ref, moved, [("identity", eye), ("translation", shift)], usable)
    assert name == "translation" and costs["translation"] < 0.5 * costs["identity"]
    # no usable overlap: nothing can be verified, the first candidate is kept
    name, _, costs = select_transform(ref, moved, [("identity", eye), ("translation", shift)], np.zeros_like(usable))
    assert name == "identity" and costs == {}


# --- dispatcher and errors -----------------------------------------------------------------


def test_align_none_is_identity(scene):
    ldr = shifted_bracket(scene, [(0, 0), (1, 1), (2, 2)])
    res = align(ldr, TIMES, method="none")
    assert res.ldr is ldr and res.valid.all() and res.reference == 1
    assert torch.equal(res.transforms, torch.eye(3, dtype=torch.float64).repeat(3, 1, 1))
    mtb = align(ldr, TIMES, method="mtb")
    assert mtb.info["shifts"].tolist() == [[-1, -1], [0, 0], [1, 1]]


def test_align_errors(scene):
    ldr = torch.rand(3, 3, 32, 32)
    with pytest.raises(HdrkitError, match="unknown alignment method"):
        align(ldr, TIMES, method="optical-flow")
    with pytest.raises(HdrkitError, match="exposure_times"):
        align(ldr, torch.tensor([1.0, 2.0]), method="mtb")
    with pytest.raises(HdrkitError, match="needs exposure_times"):
        align(ldr, None, method="homography")
    with pytest.raises(HdrkitError, match="reference=5"):
        align(ldr, TIMES, method="mtb", reference=5)
    with pytest.raises(HdrkitError, match="shape"):
        align(torch.rand(3, 32, 32), TIMES)
    with pytest.raises(HdrkitError, match="method"):
        align_homography(ldr, TIMES, method="sift")


@pytest.mark.data
def test_mtb_and_homography_on_polyhaven(data_dir):
    path = data_dir / "hdr" / "polyhaven" / "chinese_garden_1k.hdr"
    if not path.exists():
        pytest.skip(f"{path} not found")
    bgr = cv2.imread(str(path), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_COLOR)
    rgb = torch.from_numpy(np.ascontiguousarray(bgr[..., ::-1])).permute(2, 0, 1)[None].float()
    pano = rgb[..., 256 - (S // 2 + M) : 256 + (S // 2 + M), 300 : 300 + S + 2 * M]
    pano = pano / pano.quantile(0.999)  # the 16x frame clips 12 %; at 42 % clipped (p98) MTB fails
    ldr = shifted_bracket(pano, [(-7, 12), (0, 0), (5, -3)])
    assert align_mtb_ward2003(ldr, exposure_times=TIMES).info["shifts"].tolist() == [[-7, 12], [0, 0], [5, -3]]
    res = align_homography(warped_bracket(pano, GS), TIMES)
    for i in (0, 2):
        assert corner_error(res.transforms[i].numpy(), np.linalg.inv(GS[i])) < 0.5


@pytest.mark.data
def test_homography_on_tripod_jpeg_stack_stays_near_identity(data_dir):
    """Frobisher is a tripod bracket (EV -3/0/+3, camera JPEG): with the assumed gamma 2.2 response
    the photometric correction must keep ECC from trading response error for spurious scale."""
    stack = data_dir / "stacks" / "frobisher"
    names = ["IMG_2600.jpg", "IMG_2601.jpg", "IMG_2602.jpg"]
    if not all((stack / n).exists() for n in names):
        pytest.skip(f"{stack} not found")
    frames = [cv2.imread(str(stack / n))[..., ::-1] for n in names]
    ldr = torch.from_numpy(np.ascontiguousarray(np.stack(frames))).permute(0, 3, 1, 2).float() / 255
    res = align_homography(ldr, torch.tensor([0.125, 1.0, 8.0]))
    h, w = ldr.shape[-2:]
    c = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1.0]]).T
    for i in (0, 2):
        p = res.transforms[i].numpy() @ c
        assert np.abs(p[:2] / p[2] - c[:2]).max() < 1.0
