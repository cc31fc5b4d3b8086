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

import cv2
import numpy as np

__all__ = ["alignment_costs", "select_transform", "MIN_OVERLAP", "MIN_GAIN", "TRIM"]

MIN_OVERLAP = 0.03
"""Minimum fraction of the pixels that must be well exposed in the reference and inside the frame."""

MIN_GAIN = 0.05
"""Relative cost decrease a more general candidate needs to replace a simpler one."""

TRIM = 0.9
"""Share of the smallest residuals averaged (the rest is treated as motion)."""


def _inside(hm: np.ndarray, shape) -> np.ndarray:
    h, w = shape
    ones = np.ones((h, w), np.float32)
    return cv2.warpPerspective(ones, hm, (w, h), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP, borderValue=0) > 0


def alignment_costs(ref: np.ndarray, img: np.ndarray, candidates: list[np.ndarray], usable: np.ndarray) -> list[float] | None:
    """Trimmed mean absolute residual of each candidate, or None when the overlap is too small.

    Args:
        ref, img: (H, W) float32 common-exposure images of the reference and the frame.
        candidates: (3, 3) float64 homographies, reference -> frame pixel coordinates.
        usable: (H, W) bool, reference pixels that are well exposed.
    """
    h, w = ref.shape
    keep = usable.copy()
    for hm in candidates:
        keep &= _inside(hm, (h, w))
    if keep.sum() < max(MIN_OVERLAP * h * w, 64):
        return None
    out = []
    for hm in candidates:
        warped = cv2.warpPerspective(img, hm, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
        r = np.abs(ref[keep] - warped[keep]).astype(np.float64)
        k = max(1, int(TRIM * r.size))
        out.append(float(np.partition(r, k - 1)[:k].mean()))
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
