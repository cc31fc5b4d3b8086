"""Choosing among alignment candidates (identity, translation, homography) by a robust photometric cost.

Every estimate is checked against doing nothing: on the common-exposure images
(``hdrkit.align.common``) the cost of a candidate ``T`` (reference -> frame) is the trimmed mean
absolute difference ``|ref - frame(T p)|`` over the pixels that the reference exposes well and that
every candidate maps inside the frame (the largest ``1 - TRIM`` share of residuals, moving objects,
is dropped; the pixel set is the same for all candidates). Candidates are visited from the simplest
(identity) to the most general; the cheapest estimate replaces the identity only if it lowers the
cost by ``MIN_GAIN`` (relative). A static bracket whose long frame is almost entirely saturated thus
keeps the identity instead of whatever an unconstrained fit returned; with fewer than
``MIN_OVERLAP`` of the pixels usable no candidate can be verified and the identity is kept.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["alignment_costs", "select_transform", "MIN_OVERLAP", "MIN_GAIN", "TRIM"]

MIN_OVERLAP = 0.03
"""Minimum fraction of the pixels that must be well exposed in the reference and inside the frame."""

MIN_GAIN = 0.05
"""Relative cost decrease a more general candidate needs to replace a simpler one."""

TRIM = 0.9
"""Share of the smallest residuals averaged (the rest is treated as motion)."""

COST_PIXELS = 1 << 19
"""Images larger than about this many pixels are sampled on a regular grid for the costs (``cost_stride``)."""


def _integer_shift(hm: np.ndarray) -> tuple[int, int] | None:
    """``(dy, dx)`` when ``hm`` is the pure integer translation ``[[1, 0, -dx], [0, 1, -dy], [0, 0, 1]]``, else None."""
    if not (np.array_equal(hm[:2, :2], np.eye(2)) and np.array_equal(hm[2], [0.0, 0.0, 1.0])):
        return None
    tx, ty = float(hm[0, 2]), float(hm[1, 2])
    return (int(-ty), int(-tx)) if tx.is_integer() and ty.is_integer() else None


def _slices(n: int, d: int) -> tuple[slice, slice]:
    """(destination, source) slices of a 1-D shift ``out[k] = in[k - d]`` (empty when ``|d| >= n``)."""
    d = max(-n, min(n, d))
    return (slice(d, n), slice(0, n - d)) if d >= 0 else (slice(0, n + d), slice(-d, n))


def _sampled_range(n: int, m: int, s: int, d: int) -> tuple[int, int]:
    """Output samples ``u`` in [0, m) whose source ``s u - d`` lies in [0, n): the range ``[u0, u1)``."""
    u0 = min(m, max(0, -(-d // s)))
    u1 = max(u0, min(m, -(-(n + d) // s)))
    return u0, u1


def _inside(hm: np.ndarray, shape, out_shape=None, stride: int = 1) -> np.ndarray:
    """(H', W') bool: output pixels ``p`` whose source ``hm S p`` (nearest pixel; ``S`` scales by ``stride``)
    lies inside a frame of ``shape``; ``out_shape`` defaults to ``shape``."""
    h, w = shape
    oh, ow = shape if out_shape is None else out_shape
    shift = _integer_shift(hm)
    if shift is not None:  # the same set as the nearest-neighbour warp below, without warping
        out = np.zeros((oh, ow), bool)
        (u0, u1), (v0, v1) = _sampled_range(h, oh, stride, shift[0]), _sampled_range(w, ow, stride, shift[1])
        out[u0:u1, v0:v1] = True
        return out
    ones = np.ones((h, w), np.uint8)
    grid = np.diag([float(stride), float(stride), 1.0])
    return cv2.warpPerspective(ones, hm @ grid, (ow, oh), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP, borderValue=0) > 0


def _residual(ref: np.ndarray, img: np.ndarray, hm: np.ndarray, stride: int = 1) -> np.ndarray:
    """(H', W') float32 ``|ref(p) - img(hm S p)|`` for ``ref`` (H', W') sampled every ``stride`` pixels of
    ``img`` (bilinear, replicated border; exact slices for integer shifts)."""
    oh, ow = ref.shape
    h, w = img.shape
    shift = _integer_shift(hm)
    if shift is None:
        grid = np.diag([float(stride), float(stride), 1.0])
        warped = cv2.warpPerspective(img, hm @ grid, (ow, oh), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
        return cv2.absdiff(ref, warped)
    dy, dx = shift
    (u0, u1), (v0, v1) = _sampled_range(h, oh, stride, dy), _sampled_range(w, ow, stride, dx)
    out = np.zeros((oh, ow), np.float32)  # outside the frame: never used (not inside every candidate)
    if u1 > u0 and v1 > v0:
        src = img[stride * u0 - dy : stride * (u1 - 1) - dy + 1 : stride, stride * v0 - dx : stride * (v1 - 1) - dx + 1 : stride]
        out[u0:u1, v0:v1] = cv2.absdiff(ref[u0:u1, v0:v1], np.ascontiguousarray(src))
    return out


def cost_stride(h: int, w: int) -> int:
    """Sampling stride of ``alignment_costs``: about ``COST_PIXELS`` samples (1 up to ~0.7 MP)."""
    return max(1, round(math.sqrt(h * w / COST_PIXELS)))


def alignment_costs(ref: np.ndarray, img: np.ndarray, candidates: list[np.ndarray], usable: np.ndarray) -> list[float] | None:
    """Trimmed mean absolute residual of each candidate, or None when the overlap is too small.

    The residuals are taken on every ``cost_stride``-th row and column (all pixels up to ~0.7 MP; a
    1920x1080 image is sampled on a 960x540 grid): the trimmed mean of half a million samples of the
    same residual image.

    Args:
        ref, img: (H, W) float32 common-exposure images of the reference and the frame.
        candidates: (3, 3) float64 homographies, reference -> frame pixel coordinates.
        usable: (H, W) bool, reference pixels that are well exposed.
    """
    h, w = ref.shape
    ref = np.ascontiguousarray(ref, dtype=np.float32)
    img = np.ascontiguousarray(img, dtype=np.float32)
    s = cost_stride(h, w)
    if s > 1:
        ref = np.ascontiguousarray(ref[::s, ::s])
        usable = usable[::s, ::s]
    hs, ws = ref.shape
    keep = usable.copy()
    for hm in candidates:
        keep &= _inside(hm, (h, w), (hs, ws), s)
    if keep.sum() < max(MIN_OVERLAP * hs * ws, 64):
        return None
    out = []
    for hm in candidates:
        r = _residual(ref, img, hm, s)[keep]
        k = max(1, int(TRIM * r.size))
        out.append(float(np.partition(r, k - 1)[:k].mean(dtype=np.float64)))
    return out


def select_transform(
    ref: np.ndarray, img: np.ndarray, candidates: list[tuple[str, np.ndarray]], usable: np.ndarray
) -> tuple[str, np.ndarray, dict]:
    """Pick among ``[(name, homography), ...]`` ordered from simplest to most general.

    The first candidate (normally the identity) is the default; the cheapest of the others (the most
    general one on ties: a refined homography starts from the translation and may only improve it
    by a sub-pixel amount) replaces it when its cost is below ``(1 - MIN_GAIN)`` times the default's.

    Returns:
        (name, homography, costs): ``costs`` maps each name to its cost (empty when the overlap was
        too small, in which case the first candidate is returned).
    """
    costs = alignment_costs(ref, img, [c[1] for c in candidates], usable)
    if costs is None:
        return candidates[0][0], candidates[0][1], {}
    best = 0
    if len(candidates) > 1:
        k = max(range(1, len(costs)), key=lambda j: (-costs[j], j))  # lowest cost, the most general one on ties
        if costs[k] < (1.0 - MIN_GAIN) * costs[0]:
            best = k
    return candidates[best][0], candidates[best][1], {name: c for (name, _), c in zip(candidates, costs)}
