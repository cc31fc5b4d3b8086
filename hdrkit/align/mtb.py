"""Ward's median threshold bitmap (MTB) alignment: exposure-invariant integer translations.

Each frame is reduced to a grey image, thresholded at its own median (the median threshold bitmap,
invariant to exposure and to any monotonic response) and paired with an exclusion bitmap that
drops pixels within ``exclude_range`` of the median (they flip with noise). On an image pyramid,
from coarse to fine, the shift is doubled and refined among its 9 one-pixel neighbours by
minimizing ``count((tb_ref XOR tb_frame) AND eb_ref AND eb_frame)``. As in Ward's and OpenCV's
code the grey image is quantized to 8 bits (median from its histogram, ``exclude_range`` 4 of 255),
and the number of levels is capped at ``log2(max(H, W)) - 1``.

Differences from Ward's description (documented, deliberate): every frame is aligned directly to
the reference, as OpenCV's ``AlignMTB.process`` does, instead of chaining neighbouring exposures;
``max_bits`` counts pyramid levels like OpenCV's (largest recoverable shift ``2**max_bits - 1``);
the pyramid averages 2x2 blocks (Ward) rather than OpenCV's Gaussian ``pyrDown``; ties (common
on smooth content, where a 1 px move only changes pixels inside the exclusion band) are broken by
the disagreement of the plain threshold bitmaps, then in favour of the unchanged shift.

Robustness to clipped frames (a static bracket whose long exposure is 97 % saturated used to get a
63 px shift): clipped pixels (``CLIP_CODES``, or the clipping masks of the common-exposure images
when exposure times are known) join the exclusion bitmap; the threshold moves from the median to the
middle of the percentile range neither image clips; the error is the disagreement *rate* over the
pixels both bitmaps keep (a raw count favours shifts that slide excluded regions over content, and
on tiny coarse levels shifts that shrink the overlap); and the shift is (0, 0) when the bitmaps keep
too few pixels (``MIN_UNCLIPPED``, ``MIN_INFORMATIVE``) or the best shift does not beat the zero
shift by ``MIN_GAIN``. With exposure times, ``align_mtb_ward2003`` compares frames on a common
exposure (``hdrkit.align.common``) and keeps a shift only if it also lowers the photometric cost of
``hdrkit.align.select`` by 5 %.

Reference:
    G. Ward, "Fast, robust image registration for compositing high dynamic range photographs
    from hand-held exposures", Journal of Graphics Tools 8(2), 2003.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from hdrkit.align.common import area_downsample, bracket_codes, comparison_images, rank_matched_pair
from hdrkit.align.select import select_transform
from hdrkit.align.warp import (
    AlignResult,
    apply_transforms,
    as_bracket,
    check_reference,
    default_reference,
    translation_homography,
)
from hdrkit.camera.response import GammaResponse, Response
from hdrkit.errors import HdrkitError
from hdrkit.parallel import parallel_map

__all__ = [
    "align_mtb_ward2003",
    "mtb_shifts",
    "mtb_shift_pair",
    "median_threshold_bitmaps",
    "rgb_clipping",
    "WARD_GREY",
    "MAX_BITS",
    "EXCLUDE_RANGE",
    "CLIP_CODES",
]

WARD_GREY = (54.0 / 256.0, 183.0 / 256.0, 19.0 / 256.0)
"""Ward 2003's integer grey conversion ``(54 R + 183 G + 19 B) / 256``."""

MAX_BITS = 6
"""Pyramid levels (OpenCV ``AlignMTB`` default); the largest shift found is ``2**MAX_BITS - 1`` = 63 px."""

EXCLUDE_RANGE = 4.0 / 255.0
"""Half-width of the exclusion band around the median, in codes (Ward: 4 of 255)."""

CLIP_CODES = (0.02, 0.98)
"""Grey codes at or below / at or above which a pixel counts as clipped (black / saturated) and is
added to the exclusion bitmap (``rgb_clipping`` uses them per channel)."""

MIN_UNCLIPPED = 0.05
"""Minimum share of the percentile range left unclipped by both images for the bitmaps to be used."""

MIN_INFORMATIVE = 0.01
"""Minimum share of the pixels kept by both exclusion bitmaps (full resolution)."""

MIN_GAIN = 0.1
"""A non-zero shift must lower the bitmap disagreement of the zero shift by this share (full resolution)."""

MIN_COARSE_SIDE = 8
"""The coarsest pyramid level keeps its shorter side at least this long; when that caps the number of
levels below ``max_bits``, the shift range ``max_bits`` asks for is kept by searching a wider window
exhaustively on the coarsest level. (16 was tried: exhaustive windows on 16x16 bitmaps found spurious
minima more often than Ward's one-pixel steps from 8x8.)"""

_CANDIDATES = [(0, 0)] + [(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1) if (i, j) != (0, 0)]


def rgb_clipping(frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(dark, bright) bool (N, H, W) masks of (N, 3, H, W) codes: every channel at most
    ``CLIP_CODES[0]`` / any channel at least ``CLIP_CODES[1]`` (a clipped channel makes the grey
    value inconsistent between exposures)."""
    return (frames <= CLIP_CODES[0]).all(1), (frames >= CLIP_CODES[1]).any(1)


def _grey(frames: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) codes -> (N, H, W) grey codes with Ward's weights."""
    w = torch.tensor(WARD_GREY, dtype=frames.dtype, device=frames.device).view(1, 3, 1, 1)
    return F.conv2d(frames, w)[:, 0]  # a 1x1 convolution: ~10x faster than a broadcast sum on CPU


def _bitmap_codes(grey: torch.Tensor, exclude_range: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, H, W) grey codes -> (codes, tb): codes (N, H, W) uint8 0 excluded, 1 at or below the
    median, 2 above; tb (N, H, W) bool threshold bitmap without exclusion.

    Grey is quantized to 8 bits (Ward's and OpenCV's setting) and the median taken from a histogram.
    """
    q = (grey.clamp(0, 1) * 255).round().to(torch.uint8)
    r = int(round(exclude_range * 255))
    out = torch.empty_like(q)
    tb = torch.empty(q.shape, dtype=torch.bool, device=q.device)
    for i in range(q.shape[0]):
        cdf = torch.bincount(q[i].flatten(), minlength=256).cumsum(0)
        med = int(torch.searchsorted(cdf, (q[i].numel() + 1) // 2))
        keep = (q[i] > med + r) | (q[i] < med - r)
        tb[i] = q[i] > med
        out[i] = keep.to(torch.uint8) * (1 + tb[i].to(torch.uint8))
    return out, tb


def median_threshold_bitmaps(grey: torch.Tensor, exclude_range: float = EXCLUDE_RANGE) -> tuple[torch.Tensor, torch.Tensor]:
    """Threshold and exclusion bitmaps of (N, H, W) grey images in [0, 1], each (N, H, W) bool.

    On 8-bit quantized grey ``q`` with median ``m``: ``tb = q > m``; ``eb = |q - m| > exclude_range``.
    """
    codes, tb = _bitmap_codes(grey, exclude_range)
    return tb, codes > 0


def _slices(n: int, d: int) -> tuple[slice, slice]:
    """(destination, source) slices of a 1-D shift ``out[k] = in[k - d]``."""
    return (slice(d, n), slice(0, n - d)) if d >= 0 else (slice(0, n + d), slice(-d, n))


# Bitmap codes for counting with one AND per shift: reference pixels are 0 (excluded), _REF[0] (at or
# below the threshold) or _REF[1] (above); frame pixels likewise with _FRAME. The AND of a pair is
# non-zero exactly when both are kept, and has a bit of _DISAGREE exactly when they disagree.
_REF = (0b0101, 0b1010)
_FRAME = (0b1001, 0b0110)
_DISAGREE = 0b1100


def _rate(code_r: np.ndarray, code_f: np.ndarray, dy: int, dx: int) -> float:
    """Share of the pixels kept by both exclusion bitmaps (over the overlap) where the bitmaps disagree.

    Ward counts disagreements; once clipped regions are excluded too, a raw count favours shifts
    that move one image's excluded region over the other's content (fewer pixels compared), and on
    small coarse levels shifts that shrink the overlap, so the count is normalized. ``code_r`` and
    ``code_f``: (H, W) uint8 bitmap codes (``_REF`` / ``_FRAME``).
    """
    h, w = code_r.shape
    if abs(dy) >= h or abs(dx) >= w:
        return 1.0
    (yd, ys), (xd, xs) = _slices(h, dy), _slices(w, dx)
    both = cv2.bitwise_and(code_r[yd, xd], code_f[ys, xs])
    kept = cv2.countNonZero(both)
    return cv2.countNonZero(cv2.bitwise_and(both, _DISAGREE)) / kept if kept >= 16 else 1.0


def _tie_error(tb_r: np.ndarray, tb_f: np.ndarray, dy: int, dx: int) -> float:
    """Tie-breaker: fraction of the overlap where the plain threshold bitmaps ((H, W) uint8 0/1) disagree."""
    h, w = tb_r.shape
    (yd, ys), (xd, xs) = _slices(h, dy), _slices(w, dx)
    a, b = tb_r[yd, xd], tb_f[ys, xs]
    return cv2.countNonZero(cv2.bitwise_xor(a, b)) / a.size


def _quantize(grey: np.ndarray) -> np.ndarray:
    """(H, W) float32 grey, non-negative -> uint8 ``round(min(grey, 1) * 255)`` (round half to even)."""
    return cv2.convertScaleAbs(grey, alpha=255.0)


def _percentile_codes(q: np.ndarray, p: float, exclude: int, code: tuple[int, int], usable: np.ndarray | None) -> tuple[np.ndarray, int]:
    """8-bit grey ``q`` (H, W) uint8 -> (codes, threshold) thresholded at its ``p``-quantile (Ward: ``p = 0.5``).

    codes: (H, W) uint8, 0 excluded (within ``exclude`` of the threshold, or not ``usable``, a (H, W)
    uint8 0/255 mask), ``code[0]`` at or below the threshold, ``code[1]`` above.
    """
    if q.size < 1 << 24:  # float32 bin counts are exact below 2**24
        hist = cv2.calcHist([q], [0], None, [256], [0, 256]).reshape(-1).astype(np.int64)
    else:
        hist = np.bincount(q.ravel(), minlength=256)
    cdf = np.cumsum(hist)
    thr = int(np.searchsorted(cdf, max(1, int(round(p * q.size)))))
    if p == 0.5:
        thr = int(np.searchsorted(cdf, (q.size + 1) // 2))
    v = np.arange(256)
    lut = np.where((v > thr + exclude) | (v < thr - exclude), np.where(v > thr, code[1], code[0]), 0).astype(np.uint8)
    out = cv2.LUT(q, lut)
    if usable is not None:
        cv2.bitwise_and(out, usable, dst=out)
    return out, thr


def _pool_usable(usable: np.ndarray) -> np.ndarray:
    """Next pyramid level of a (H, W) uint8 0/255 usable-pixel mask: a 2x2 block is usable if most of it is."""
    h, w = usable.shape
    pooled = cv2.resize(usable[: h // 2 * 2, : w // 2 * 2], (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    return cv2.threshold(pooled, 160, 255, cv2.THRESH_BINARY)[1]  # 3 or 4 of 4 usable: 191 or 255


def _usable255(dark: np.ndarray, bright: np.ndarray) -> np.ndarray:
    """(H, W) uint8 clipping masks (non-zero where clipped) -> uint8 mask, 255 where neither is set."""
    return cv2.compare(cv2.bitwise_or(dark, bright), 0, cv2.CMP_EQ)


def mtb_shift_pair(
    ref: torch.Tensor,
    frame: torch.Tensor,
    max_bits: int = MAX_BITS,
    exclude_range: float = EXCLUDE_RANGE,
    clipped_ref: tuple[torch.Tensor, torch.Tensor] | None = None,
    clipped_frame: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[tuple[int, int], bool]:
    """Integer shift ``(dy, dx)`` aligning grey ``frame`` (H, W) to grey ``ref`` (H, W), and whether it
    is informative.

    Clipped pixels (``clipped_* = (dark, bright)`` bool (H, W) masks; by default grey codes at most
    ``CLIP_CODES[0]`` or at least ``CLIP_CODES[1]``) are excluded from both bitmaps, and the
    threshold moves from the median to the middle of the percentile range that neither image clips
    (``p = clamp(0.5, a + (b - a) / 4, b - (b - a) / 4)`` with ``a`` the larger dark fraction and
    ``b`` one minus the larger bright fraction; ``p = 0.5``, Ward's median, when nothing clips).
    The shift is (0, 0) and ``informative`` False when that range is narrower than
    ``MIN_UNCLIPPED``, when fewer than ``MIN_INFORMATIVE`` of the pixels survive both exclusion
    bitmaps, or when the best shift does not lower the bitmap disagreement of the zero shift by at
    least ``MIN_GAIN`` (relative) at full resolution.

    The bitmaps are uint8 planes compared with OpenCV's bitwise operations and non-zero counts (one AND
    per candidate shift, as OpenCV's ``AlignMTB``), the pyramid levels are 2x2 block means.
    """
    if clipped_ref is None:
        clipped_ref = default_clipping(ref)
    if clipped_frame is None:
        clipped_frame = default_clipping(frame)
    as_np = lambda t: t.detach().to("cpu", torch.float32).contiguous().numpy()  # noqa: E731
    as255 = lambda m: m.cpu().contiguous().numpy().view(np.uint8) * np.uint8(255)  # noqa: E731
    return mtb_shift_arrays(as_np(ref), as_np(frame), tuple(map(as255, clipped_ref)), tuple(map(as255, clipped_frame)), max_bits,
                            exclude_range)


def mtb_shift_arrays(
    ref: np.ndarray,
    frame: np.ndarray,
    clipped_ref: tuple[np.ndarray, np.ndarray],
    clipped_frame: tuple[np.ndarray, np.ndarray],
    max_bits: int = MAX_BITS,
    exclude_range: float = EXCLUDE_RANGE,
) -> tuple[tuple[int, int], bool]:
    """``mtb_shift_pair`` on numpy arrays: ``ref``, ``frame`` (H, W) float32 grey images, ``clipped_*``
    (dark, bright) (H, W) uint8 masks, non-zero where clipped (e.g. ``comparison_images``)."""
    h, w = ref.shape
    n = max(h * w, 1)
    lo = max(cv2.countNonZero(clipped_ref[0]), cv2.countNonZero(clipped_frame[0])) / n
    hi = 1.0 - max(cv2.countNonZero(clipped_ref[1]), cv2.countNonZero(clipped_frame[1])) / n
    if hi - lo < MIN_UNCLIPPED:
        return (0, 0), False
    p = min(max(0.5, lo + (hi - lo) / 4), hi - (hi - lo) / 4)
    levels = max(1, min(int(max_bits), int(math.log2(max(min(h, w), 1) / MIN_COARSE_SIDE)) + 1))
    radius = max(1, (2 ** int(max_bits) - 1) >> (levels - 1))  # exhaustive search radius on the coarsest level
    coarse = sorted(((a, b) for a in range(-radius, radius + 1) for b in range(-radius, radius + 1)), key=lambda c: abs(c[0]) + abs(c[1]))
    usable_r = _usable255(*clipped_ref)
    usable_f = _usable255(*clipped_frame)
    ref, frame = (np.maximum(x, 0) if x.size and cv2.minMaxLoc(x)[0] < 0 else x for x in (ref, frame))  # clamp(0, 1) as 8-bit codes
    pyr = [(ref, frame, usable_r, usable_f)]
    for _ in range(levels - 1):
        r, f, ur, uf = pyr[-1]
        pyr.append((area_downsample(r, 2), area_downsample(f, 2), _pool_usable(ur), _pool_usable(uf)))
    exclude = int(round(exclude_range * 255))
    cy = cx = 0
    for lvl in range(levels - 1, -1, -1):
        cy, cx = 2 * cy, 2 * cx
        r, f, ur, uf = pyr[lvl]
        qr, qf = _quantize(r), _quantize(f)
        code_r, thr_r = _percentile_codes(qr, p, exclude, _REF, ur)
        code_f, thr_f = _percentile_codes(qf, p, exclude, _FRAME, uf)
        if lvl == 0 and cv2.countNonZero(cv2.bitwise_and(code_r, code_f)) < MIN_INFORMATIVE * h * w:
            return (0, 0), False
        cands = coarse if lvl == levels - 1 else _CANDIDATES
        errs = {(cy + a, cx + b): _rate(code_r, code_f, cy + a, cx + b) for a, b in cands}
        low = min(errs.values())
        tied = [c for c, e in errs.items() if e == low]
        if len(tied) > 1:  # smooth content: every candidate differs only inside the exclusion band
            tb_r, tb_f = (qr > thr_r).view(np.uint8), (qf > thr_f).view(np.uint8)
            tied.sort(key=lambda c: _tie_error(tb_r, tb_f, *c))
        cy, cx = tied[0]
    if (cy, cx) != (0, 0) and _rate(code_r, code_f, cy, cx) > (1.0 - MIN_GAIN) * _rate(code_r, code_f, 0, 0):
        return (0, 0), False
    return (cy, cx), True


def default_clipping(grey: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(dark, bright) bool masks of grey codes (..., H, W) at most ``CLIP_CODES[0]`` / at least ``CLIP_CODES[1]``."""
    return grey <= CLIP_CODES[0], grey >= CLIP_CODES[1]


def mtb_shifts(
    grey: torch.Tensor,
    reference: int,
    max_bits: int = MAX_BITS,
    exclude_range: float = EXCLUDE_RANGE,
    clipped: tuple[torch.Tensor, torch.Tensor] | None = None,
    return_informative: bool = False,
):
    """Integer shifts that align each grey image to ``grey[reference]`` (``mtb_shift_pair`` per frame).

    Args:
        grey: (N, H, W) grey codes in [0, 1].
        reference: index of the reference image.
        max_bits: pyramid levels; shifts up to ``2**max_bits - 1`` pixels.
        exclude_range: exclusion half-width in codes.
        clipped: optional (dark, bright) bool (N, H, W) masks of clipped pixels; default
            ``default_clipping(grey)``.
        return_informative: also return an (N,) bool tensor, False where the bitmaps carried too
            little information and the shift fell back to (0, 0) (True for the reference).

    Returns:
        (N, 2) int64 ``(dy, dx)`` such that ``shift_image(frame_i, dy, dx)`` matches the reference
        (and the informative flags if asked).
    """
    if max_bits < 1:
        raise HdrkitError(f"max_bits must be >= 1, got {max_bits}")
    n = grey.shape[0]
    dark, bright = default_clipping(grey) if clipped is None else clipped
    shifts = torch.zeros((n, 2), dtype=torch.int64)
    informative = torch.ones(n, dtype=torch.bool)
    for i in range(n):
        if i == reference:
            continue
        s, ok = mtb_shift_pair(grey[reference], grey[i], max_bits, exclude_range, (dark[reference], bright[reference]), (dark[i], bright[i]))
        shifts[i] = torch.tensor(s)
        informative[i] = ok
    return (shifts, informative) if return_informative else shifts


def _as255(masks: tuple[torch.Tensor, torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
    return tuple(m.contiguous().numpy().view(np.uint8) * np.uint8(255) for m in masks)


def _frame_shift(frames, times, r, i, max_bits, exclude_range, response, codes, bits) -> tuple[int, int] | None:
    """Verified ``(dy, dx)`` of frame ``i`` against frame ``r``, or None (identity)."""
    pair = None
    if times is not None:
        pair = comparison_images(frames[i], frames[r], float(times[i]), float(times[r]), response or GammaResponse(2.2),
                                 codes=None if codes is None else (codes[i], codes[r], bits))
    if pair is None:  # no times or no common radiance range: Ward's invariance to monotonic changes
        as_unit = (lambda f: f) if frames.is_floating_point() else (lambda f: f.float() / float(2**bits - 1))  # noqa: E731
        img, ref, clip_f, clip_r = rank_matched_pair(as_unit(frames[i]), as_unit(frames[r]))
        pair = img, ref, _as255(clip_f), _as255(clip_r)
    img, ref, clip_f, clip_r = pair
    (dy, dx), ok = mtb_shift_arrays(ref, img, clip_r, clip_f, max_bits, exclude_range)
    if ok and (dy, dx) != (0, 0):  # keep the shift only if it clearly beats the identity
        cand = [("identity", np.eye(3)), ("translation", translation_homography(dy, dx).numpy())]
        usable = _usable255(*clip_r) > 0
        ok = select_transform(ref, img, cand, usable)[0] == "translation"
    return (dy, dx) if ok and (dy, dx) != (0, 0) else None


def _frame_shifts(frames, times, r, max_bits, exclude_range, response, codes=None, bits=None):
    """(N, 2) shifts and per-frame notes ('reference', 'identity', 'translation') for one bracket
    (``codes``: the frames as integer codes of ``bits`` bits, or None). Frames are aligned
    concurrently on ``torch.get_num_threads()`` threads (OpenCV and numpy release the GIL)."""
    n = frames.shape[0]
    shifts = torch.zeros((n, 2), dtype=torch.int64)
    notes = ["reference" if i == r else "identity" for i in range(n)]
    others = [i for i in range(n) if i != r]
    found = parallel_map(lambda i: _frame_shift(frames, times, r, i, max_bits, exclude_range, response, codes, bits), others)
    for i, s in zip(others, found):
        if s is not None:
            shifts[i] = torch.tensor(s)
            notes[i] = "translation"
    return shifts, notes


def align_mtb_ward2003(
    ldr: torch.Tensor,
    reference: int | None = None,
    *,
    max_bits: int = MAX_BITS,
    exclude_range: float = EXCLUDE_RANGE,
    exposure_times: torch.Tensor | None = None,
    response: Response | None = None,
) -> AlignResult:
    """Align a bracket by integer translations with Ward's median threshold bitmaps.

    Args:
        ldr: (N, 3, H, W) or (B, N, 3, H, W) display-referred codes in [0, 1], RGB; or the integer codes
            as decoded (uint8 / uint16, CPU), the fast path: the frames are then shifted as codes and
            come back as codes of the same type (fills rounded to the grid).
        reference: reference frame index; default the middle frame by exposure (index ``N // 2``
            of the frames sorted by ``exposure_times``, or by mean code when times are not given).
        max_bits: pyramid levels (largest shift ``2**max_bits - 1`` px).
        exclude_range: exclusion band half-width around the median, in codes.
        exposure_times: optional (N,) or (B, N) linear times: order the frames, put each pair on a
            common exposure for the bitmaps (see the module docstring), and re-expose the reference
            into uncovered border pixels (ratio estimated from the overlap if absent).
        response: camera response for those; default gamma 2.2.

    Returns:
        ``AlignResult`` with ``transforms`` pure translations (``T = [[1, 0, -dx], [0, 1, -dy], [0, 0, 1]]``)
        and ``info['shifts']``: (N, 2) or (B, N, 2) int64 ``(dy, dx)`` applied to each frame
        (``aligned[y, x] = frame[y - dy, x - dx]``); ``info['method']`` per frame 'reference',
        'identity' (no informative or no verified shift) or 'translation'.
    """
    x, t, batched = as_bracket(ldr, exposure_times)
    b, n = x.shape[:2]
    refs, shifts, notes, transforms = [], [], [], torch.zeros((b, n, 3, 3), dtype=torch.float64)
    codes, bits = bracket_codes(x.detach())
    for bi in range(b):
        r = check_reference(reference, n)
        r = default_reference(x[bi], None if t is None else t[bi]) if r is None else r
        s, note = _frame_shifts(x[bi].detach(), None if t is None else t[bi], r, max_bits, exclude_range, response,
                                None if codes is None else codes[bi], bits)
        for i in range(n):
            transforms[bi, i] = translation_homography(int(s[i, 0]), int(s[i, 1]))
        refs.append(r)
        shifts.append(s)
        notes.append(note)
    aligned, valid = apply_transforms(x, transforms, refs, t, response, bits=bits)
    shifts_t = torch.stack(shifts)
    if not batched:
        return AlignResult(aligned[0], transforms[0], valid[0], refs[0], {"shifts": shifts_t[0], "method": notes[0]})
    return AlignResult(aligned, transforms, valid, refs, {"shifts": shifts_t, "method": notes})
