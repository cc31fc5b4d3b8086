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

import numpy as np
import torch
import torch.nn.functional as F

from hdrkit.align.common import common_exposure_pair, rank_matched_pair
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


def _error(code_r: torch.Tensor, code_f: torch.Tensor, dy: int, dx: int) -> int:
    """``count((tb_r XOR tb_f) AND eb_r AND eb_f)`` over the overlap: code products equal to 2."""
    h, w = code_r.shape
    if abs(dy) >= h or abs(dx) >= w:
        return h * w + 1
    (yd, ys), (xd, xs) = _slices(h, dy), _slices(w, dx)
    return int((code_r[yd, xd] * code_f[ys, xs] == 2).sum())


def _rate(code_r: torch.Tensor, code_f: torch.Tensor, dy: int, dx: int) -> float:
    """Share of the pixels kept by both exclusion bitmaps (over the overlap) where the bitmaps disagree.

    Ward counts disagreements; once clipped regions are excluded too, a raw count favours shifts
    that move one image's excluded region over the other's content (fewer pixels compared), and on
    small coarse levels shifts that shrink the overlap, so the count is normalized.
    """
    h, w = code_r.shape
    if abs(dy) >= h or abs(dx) >= w:
        return 1.0
    (yd, ys), (xd, xs) = _slices(h, dy), _slices(w, dx)
    prod = code_r[yd, xd] * code_f[ys, xs]
    kept = int((prod > 0).sum())
    return int((prod == 2).sum()) / kept if kept >= 16 else 1.0


def _tie_error(tb_r: torch.Tensor, tb_f: torch.Tensor, dy: int, dx: int) -> float:
    """Tie-breaker: fraction of the overlap where the plain threshold bitmaps disagree."""
    h, w = tb_r.shape
    (yd, ys), (xd, xs) = _slices(h, dy), _slices(w, dx)
    return float((tb_r[yd, xd] ^ tb_f[ys, xs]).float().mean())


def _percentile_codes(
    q: torch.Tensor, p: float, exclude: int, usable: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """8-bit grey ``q`` (H, W) -> (codes, tb) thresholded at its ``p``-quantile (Ward: ``p = 0.5``).

    codes: uint8, 0 excluded (within ``exclude`` of the threshold, or not ``usable``), 1 at or
    below the threshold, 2 above; tb: bool threshold bitmap without exclusion.
    """
    cdf = torch.bincount(q.flatten(), minlength=256).cumsum(0)
    thr = int(torch.searchsorted(cdf, max(1, int(round(p * q.numel())))))
    if p == 0.5:
        thr = int(torch.searchsorted(cdf, (q.numel() + 1) // 2))
    keep = (q > thr + exclude) | (q < thr - exclude)
    if usable is not None:
        keep &= usable
    tb = q > thr
    return keep.to(torch.uint8) * (1 + tb.to(torch.uint8)), tb


def _pool_usable(usable: torch.Tensor) -> torch.Tensor:
    """Next pyramid level of a (H, W) bool usable-pixel mask: a 2x2 block is usable if most of it is."""
    return F.avg_pool2d(usable[None, None].float(), 2)[0, 0] > 0.5


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
    """
    h, w = ref.shape
    if clipped_ref is None:
        clipped_ref = default_clipping(ref)
    if clipped_frame is None:
        clipped_frame = default_clipping(frame)
    lo = max(float(clipped_ref[0].float().mean()), float(clipped_frame[0].float().mean()))
    hi = 1.0 - max(float(clipped_ref[1].float().mean()), float(clipped_frame[1].float().mean()))
    if hi - lo < MIN_UNCLIPPED:
        return (0, 0), False
    p = min(max(0.5, lo + (hi - lo) / 4), hi - (hi - lo) / 4)
    levels = max(1, min(int(max_bits), int(math.log2(max(min(h, w), 1) / MIN_COARSE_SIDE)) + 1))
    radius = max(1, (2 ** int(max_bits) - 1) >> (levels - 1))  # exhaustive search radius on the coarsest level
    coarse = sorted(((a, b) for a in range(-radius, radius + 1) for b in range(-radius, radius + 1)), key=lambda c: abs(c[0]) + abs(c[1]))
    pyr = [(ref.float(), frame.float(), ~(clipped_ref[0] | clipped_ref[1]), ~(clipped_frame[0] | clipped_frame[1]))]
    for _ in range(levels - 1):
        r, f, ur, uf = pyr[-1]
        pyr.append((F.avg_pool2d(r[None, None], 2)[0, 0], F.avg_pool2d(f[None, None], 2)[0, 0], _pool_usable(ur), _pool_usable(uf)))
    exclude = int(round(exclude_range * 255))
    cy = cx = 0
    for lvl in range(levels - 1, -1, -1):
        cy, cx = 2 * cy, 2 * cx
        r, f, ur, uf = pyr[lvl]
        code_r, tb_r = _percentile_codes((r.clamp(0, 1) * 255).round().to(torch.uint8), p, exclude, ur)
        code_f, tb_f = _percentile_codes((f.clamp(0, 1) * 255).round().to(torch.uint8), p, exclude, uf)
        if lvl == 0 and int(((code_r > 0) & (code_f > 0)).sum()) < MIN_INFORMATIVE * h * w:
            return (0, 0), False
        cands = coarse if lvl == levels - 1 else _CANDIDATES
        errs = {(cy + a, cx + b): _rate(code_r, code_f, cy + a, cx + b) for a, b in cands}
        low = min(errs.values())
        tied = [c for c, e in errs.items() if e == low]
        if len(tied) > 1:  # smooth content: every candidate differs only inside the exclusion band
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


def _frame_shifts(frames, times, r, max_bits, exclude_range, response):
    """(N, 2) shifts and per-frame notes ('reference', 'identity', 'translation') for one bracket."""
    n = frames.shape[0]
    shifts = torch.zeros((n, 2), dtype=torch.int64)
    notes = ["reference" if i == r else "identity" for i in range(n)]
    for i in range(n):
        if i == r:
            continue
        pair = None
        if times is not None:
            pair = common_exposure_pair(frames[i], frames[r], float(times[i]), float(times[r]), response or GammaResponse(2.2),
                                        with_clipping=True)
        if pair is None:  # no times or no common radiance range: Ward's invariance to monotonic changes
            pair = rank_matched_pair(frames[i], frames[r])
        img, ref, clip_f, clip_r = pair
        (dy, dx), ok = mtb_shift_pair(torch.from_numpy(ref), torch.from_numpy(img), max_bits, exclude_range, clip_r, clip_f)
        if ok and (dy, dx) != (0, 0):  # keep the shift only if it clearly beats the identity
            cand = [("identity", np.eye(3)), ("translation", translation_homography(dy, dx).numpy())]
            ok = select_transform(ref, img, cand, ~(clip_r[0] | clip_r[1]).numpy())[0] == "translation"
        if ok and (dy, dx) != (0, 0):
            shifts[i] = torch.tensor([dy, dx])
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
        ldr: (N, 3, H, W) or (B, N, 3, H, W) display-referred codes in [0, 1], RGB.
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
    for bi in range(b):
        r = check_reference(reference, n)
        r = default_reference(x[bi], None if t is None else t[bi]) if r is None else r
        s, note = _frame_shifts(x[bi].detach(), None if t is None else t[bi], r, max_bits, exclude_range, response)
        for i in range(n):
            transforms[bi, i] = translation_homography(int(s[i, 0]), int(s[i, 1]))
        refs.append(r)
        shifts.append(s)
        notes.append(note)
    aligned, valid = apply_transforms(x, transforms, refs, t, response)
    shifts_t = torch.stack(shifts)
    if not batched:
        return AlignResult(aligned[0], transforms[0], valid[0], refs[0], {"shifts": shifts_t[0], "method": notes[0]})
    return AlignResult(aligned, transforms, valid, refs, {"shifts": shifts_t, "method": notes})
