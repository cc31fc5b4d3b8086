"""Homography alignment of hand-held brackets: MTB (or feature) initialization refined by robust ECC.

Frames are compared on a common exposure (``hdrkit.align.common``): codes are linearized with the
camera response (``f^-1(ldr) / t``, radiance), clipped to the radiance range that *both* frames
expose well (codes in ``WELL_EXPOSED``, each channel clipped), converted to grey, normalized to that
range and gamma-encoded (``COMPARE_GAMMA``). Once a first (Euclidean) estimate exists, the frame's image is
mapped through the monotonic curve that best predicts the reference from it over their overlap
(``match_photometry``), which absorbs any monotonic error of the assumed response: with a JPEG
camera and the default gamma 2.2 the unmatched images differ by ~0.07 and the homography ECC
trades that for a few percent of spurious scale. The two images then show the same picture
apart from noise and motion.

Estimation, per frame (OpenCV does the numerical work):

1. initialization: Ward's MTB translation computed on the common-exposure images with clipped
   pixels excluded (``mtb_shift_pair``; zero when the bitmaps carry too little information)
   (``method='ecc'``) or SIFT features matched with a
   ratio test and ``cv2.findHomography`` RANSAC (``method='features'``; SIFT, or ORB where the
   OpenCV build lacks SIFT; falls back to MTB when too few inliers). AKAZE is not used because
   OpenCV 5 moved it out of the main package;
2. ``cv2.findTransformECC`` on a ``pyrDown`` pyramid, coarse to fine (Evangelidis & Psarakis 2008):
   ``MOTION_EUCLIDEAN`` on levels coarser than ``WORK_SIDE`` (8 parameters on a 60x90 image drift
   towards moving objects; these levels are skipped for a feature initialization), then
   ``MOTION_HOMOGRAPHY``;
3. robustness to moving objects: pixels whose residual after step 2 exceeds
   ``max(median + OUTLIER_SIGMAS * 1.4826 * MAD, OUTLIER_FLOOR)`` are dilated and masked out, and
   ECC is re-run with that template mask (twice) on the finest level of at most ``WORK_SIDE`` px;
   finer levels of large images only get ``FINE_ITERATIONS`` masked iterations, and levels
   longer than ``FINE_MAX_SIDE`` none (the estimate is scaled up);
4. sanity checks (ECC converged, the 2x2 part has a determinant in [0.8, 1.25], no corner moved
   more than ``MAX_CORNER_MOVE`` of the longest side from the initialization, the correlation did
   not drop below the initialization's); on failure the RANSAC homography (for ``'features'``,
   when plausible) takes its place;
5. model selection (``hdrkit.align.select``): the identity, the MTB translation and the refined
   estimate compete on a trimmed photometric cost over the reference's well-exposed pixels; an
   estimate replaces the identity only if it lowers that cost by ``MIN_GAIN`` (5 %). When fewer
   than ``MIN_WELL_EXPOSED_OVERLAP`` of the pixels are well exposed in both frames no refinement
   is attempted (translation or identity only), and below ``HOMOGRAPHY_MIN_OVERLAP`` the ECC
   refinement fits a sub-pixel translation instead of 8 parameters. A static bracket whose long
   frame is almost all saturated therefore stays exactly unwarped (it used to get MTB shifts of
   tens of pixels, fitted to the few unsaturated pixels).

Direction: a returned homography ``T`` maps *reference* pixel coordinates to *frame* pixel
coordinates, ``aligned(p) = frame(T p)`` (pixel centres at integers, ``(x, y, 1)``), i.e. the
``warpMatrix`` of ``findTransformECC(reference, frame)``.

References:
    G. Evangelidis, E. Psarakis, "Parametric image alignment using enhanced correlation
    coefficient maximization", IEEE TPAMI 30(10), 2008.
    G. Ward, "Fast, robust image registration for compositing high dynamic range photographs
    from hand-held exposures", JGT 8(2), 2003.
    D. Lowe, "Distinctive image features from scale-invariant keypoints", IJCV 60(2), 2004.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from hdrkit.align.common import COMPARE_GAMMA, WELL_EXPOSED, bracket_codes, common_exposure_pair, rank_matched_pair
from hdrkit.align.mtb import mtb_shift_pair
from hdrkit.align.select import select_transform
from hdrkit.align.warp import AlignResult, apply_transforms, as_bracket, check_reference, default_reference
from hdrkit.camera.response import GammaResponse, Response
from hdrkit.errors import HdrkitError
from hdrkit.parallel import parallel_map

__all__ = [
    "align_homography",
    "estimate_homography",
    "common_exposure_pair",
    "match_photometry",
    "WELL_EXPOSED",
    "COMPARE_GAMMA",
    "MIN_WELL_EXPOSED_OVERLAP",
]

PHOTOMETRIC_BINS = 128
"""Bins of the frame -> reference curve that absorbs the error of an assumed (e.g. gamma) response."""

OUTLIER_SIGMAS = 4.0
OUTLIER_FLOOR = 0.12
"""Residual threshold (encoded units) above which a pixel counts as motion in the robust ECC pass."""

MIN_PYRAMID_SIDE = 48
"""The coarsest ECC level keeps its shorter side at least this many pixels."""

WORK_SIDE = 512
"""Longest side of the finest pyramid level that gets full ECC iterations and the motion mask."""

ECC_EPS = 1e-5
"""ECC stops when the correlation coefficient improves by less than this. 1e-5 rather than 1e-6: on pingpong
(1920x1080) alignment took 0.30 s instead of 0.38 s of CPU and the corners moved by 0.07 px; on 12 synthetic
1420x920 homographies (kalantari17_002 at EV 0/3/6) the corner error was unchanged (median 0.962 px both)."""

FINE_ITERATIONS = 1
"""ECC iterations on levels finer than ``WORK_SIDE`` (refinement only; on 960x540 a call costs ~20 ms of set-up
plus ~18 ms per iteration, the costliest step). The scaled-up ``WORK_SIDE`` estimate is within a pixel, and
one Gauss-Newton step settles it: on 12 synthetic 1440x1000 homographies (kalantari17_002, known warps,
EV -2/0/+2) the corner error was 0.27 px median, 0.35 px max with 1, 2 or 10 iterations alike (0.38 / 0.59 px
with the level skipped); on 12 more (kalantari17_002 at its EV 0/3/6, 40 px margins cropped) 1, 2 and 4
iterations gave the same corners to 1e-3 px."""

MAX_CORNER_MOVE = 0.05
"""Sanity bound: the refined homography may move an image corner by at most this fraction of the
longest side away from its initialization (the MTB translation already absorbed large shifts)."""

MIN_WELL_EXPOSED_OVERLAP = 0.05
"""A homography is only fitted when at least this fraction of the pixels is well exposed in both the
frame and the reference (after exposure equalization), on every pyramid level; else the frame gets
the MTB translation or the identity."""

MASK_CLIPPED = False
"""Also pass the reference's clipped pixels to ECC as a template mask. Off: on the hand-held
``pingpong`` stack the masked coarse Euclidean levels drifted to a 3 degree rotation, while the
clipped regions (flat in both common-exposure images) do no harm unmasked."""

HOMOGRAPHY_MIN_OVERLAP = 0.15
"""Below this well-exposed overlap fraction the ECC refinement fits a sub-pixel translation instead
of a homography: a narrow band of texture (a horizon under a saturated sky) leaves the 8 parameters
unconstrained away from it, while the photometric cost cannot tell the difference."""

FINE_MAX_SIDE = 1024
"""Levels with a longer side than this are skipped (their homography is the scaled-up coarser one):
at 1500x1000 one ECC iteration costs ~0.1 s, and the half-resolution estimate is already sub-pixel."""

_METHODS = ("ecc", "features")


def match_photometry(ref: np.ndarray, img: np.ndarray, hm: np.ndarray, apply_to: np.ndarray | None = None) -> np.ndarray:
    """Map ``img`` through the monotonic curve that best predicts ``ref`` from it.

    With ``img`` warped by the current estimate ``hm`` (reference -> frame), pixels of the overlap
    are binned by their frame value (``PHOTOMETRIC_BINS`` bins, at least 20 pixels each); the
    curve joins the per-bin medians of (frame, reference) values and is made non-decreasing.
    Medians of corresponding pixels tolerate residual misalignment and moving objects better than
    histogram matching, which also counts content seen by only one frame.

    Args:
        ref, img: (H, W) float32 comparison images in [0, 1].
        hm: (3, 3) reference -> frame homography for these images.
        apply_to: image to map (e.g. the full-resolution frame); default ``img``.

    Returns:
        The mapped image (``apply_to`` or ``img`` unchanged when the overlap is too small).
    """
    target = img if apply_to is None else apply_to
    h, w = ref.shape
    warped = _warp_np(img, hm)
    inside = cv2.warpPerspective(np.ones_like(img), hm, (w, h), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP) > 0
    if inside.mean() < 0.25:
        return target
    x, y = warped[inside], ref[inside]
    idx = np.clip((x * PHOTOMETRIC_BINS).astype(np.int64), 0, PHOTOMETRIC_BINS - 1)
    order = np.argsort(idx, kind="stable")
    xs, ys = x[order], y[order]
    counts = np.bincount(idx, minlength=PHOTOMETRIC_BINS)
    ends = np.cumsum(counts)
    cx, cy = [], []
    for k in np.flatnonzero(counts >= 20):
        seg = slice(ends[k] - counts[k], ends[k])
        cx.append(_median(xs[seg]))
        cy.append(_median(ys[seg]))
    if len(cx) < 4:
        return target
    cx = np.asarray(cx) + np.linspace(0.0, 1e-9, len(cx))  # strictly increasing for np.interp
    cy = np.maximum.accumulate(np.asarray(cy))
    return np.interp(target, cx, cy).astype(np.float32)


def _median(a: np.ndarray):
    """``np.median`` of a 1-D array by one partition (without its per-call overhead)."""
    n = a.size
    p = np.partition(a, [(n - 1) // 2, n // 2])
    return (p[(n - 1) // 2] + p[n // 2]) / 2 if n % 2 == 0 else p[n // 2]


def _scale(hm: np.ndarray, factor: float) -> np.ndarray:
    """Conjugate a homography for pixel coordinates scaled by ``factor`` (pyrDown: x_c = x_f / 2)."""
    s = np.diag([factor, factor, 1.0])
    out = s @ hm @ np.linalg.inv(s)
    return out / out[2, 2]


def _ecc(
    ref: np.ndarray, img: np.ndarray, hm: np.ndarray, mask: np.ndarray | None, iters: int, motion: int = cv2.MOTION_HOMOGRAPHY
) -> tuple[float, np.ndarray]:
    """One ``findTransformECC`` run (template = reference); returns (correlation, 3x3 warp)."""
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, iters, ECC_EPS)
    full = motion == cv2.MOTION_HOMOGRAPHY
    warp = (hm if full else hm[:2] / hm[2, 2]).astype(np.float32).copy()
    if mask is not None and hasattr(cv2, "findTransformECCWithMask"):
        ones = np.full(img.shape, 255, np.uint8)
        cc, warp = cv2.findTransformECCWithMask(ref, img, mask, ones, warp, motion, criteria, 5)
    else:  # older OpenCV: the mask can only be given for the input image; close enough for small motion
        cc, warp = cv2.findTransformECC(ref, img, warp, motion, criteria, mask, 5)
    warp = warp.astype(np.float64)
    if not full:
        warp = np.vstack([warp, [0.0, 0.0, 1.0]])
    return float(cc), warp / warp[2, 2]


def _warp_np(img: np.ndarray, hm: np.ndarray) -> np.ndarray:
    h, w = img.shape
    return cv2.warpPerspective(img, hm, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)


def _correlation(ref: np.ndarray, img: np.ndarray, hm: np.ndarray, mask: np.ndarray | None = None) -> float:
    a, b = ref.ravel().astype(np.float64), _warp_np(img, hm).ravel().astype(np.float64)
    if mask is not None:
        keep = mask.ravel() > 0
        a, b = a[keep], b[keep]
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / max(np.sqrt((a * a).sum() * (b * b).sum()), 1e-12))


def _features_init(ref: np.ndarray, img: np.ndarray) -> np.ndarray | None:
    """SIFT (ORB if unavailable) + ratio test + RANSAC homography (reference -> frame), or None."""
    if hasattr(cv2, "SIFT_create"):
        det, norm = cv2.SIFT_create(nfeatures=4000), cv2.NORM_L2
    else:
        det, norm = cv2.ORB_create(nfeatures=4000), cv2.NORM_HAMMING
    r8, i8 = (np.clip(ref * 255, 0, 255).astype(np.uint8), np.clip(img * 255, 0, 255).astype(np.uint8))
    kr, dr = det.detectAndCompute(r8, None)
    ki, di = det.detectAndCompute(i8, None)
    if dr is None or di is None or len(kr) < 8 or len(ki) < 8:
        return None
    matches = cv2.BFMatcher(norm).knnMatch(dr, di, k=2)
    good = [m[0] for m in matches if len(m) == 2 and m[0].distance < 0.8 * m[1].distance]
    if len(good) < 12:
        return None
    pr = np.float32([kr[m.queryIdx].pt for m in good])
    pi = np.float32([ki[m.trainIdx].pt for m in good])
    hm, inl = cv2.findHomography(pr, pi, cv2.RANSAC, 2.0)
    if hm is None or inl is None or inl.sum() < 10:
        return None
    return hm / hm[2, 2]


def _corners_moved(a: np.ndarray, b: np.ndarray, shape) -> float:
    h, w = shape
    c = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]], dtype=np.float64).T
    pa, pb = a @ c, b @ c
    return float(np.abs(pa[:2] / pa[2] - pb[:2] / pb[2]).max())


def _plausible(hm: np.ndarray, init: np.ndarray, shape) -> bool:
    """Determinant of the 2x2 part in [0.8, 1.25] and corners within ``MAX_CORNER_MOVE`` of ``init``."""
    det = float(np.linalg.det(hm[:2, :2] / hm[2, 2]))
    return 0.8 < det < 1.25 and _corners_moved(hm, init, shape) <= MAX_CORNER_MOVE * max(shape)


def _motion_mask(ref: np.ndarray, img: np.ndarray, hm: np.ndarray) -> np.ndarray:
    """uint8 mask (255 = use) excluding pixels whose residual marks them as moving (dilated 7x7)."""
    res = np.abs(ref - _warp_np(img, hm))
    med = np.median(res)
    mad = np.median(np.abs(res - med))
    out = (res > max(OUTLIER_SIGMAS * 1.4826 * mad + med, OUTLIER_FLOOR)).astype(np.uint8)
    out = cv2.dilate(out, np.ones((7, 7), np.uint8))
    return ((1 - out) * 255).astype(np.uint8)


def estimate_homography(
    ref: np.ndarray,
    img: np.ndarray,
    init: np.ndarray,
    *,
    iterations: int = 100,
    fine_iterations: int = FINE_ITERATIONS,
    coarse: bool = True,
    usable: np.ndarray | None = None,
    translation_only: bool = False,
) -> tuple[np.ndarray, bool]:
    """Refine ``init`` (reference -> frame) with pyramid ECC plus motion-masked passes.

    Levels coarser than ``WORK_SIDE`` (longest side) fit a Euclidean motion (rotation +
    translation: the dominant hand-held motion, and too few pixels there for 8 parameters);
    at the ``WORK_SIDE`` level the frame is photometrically matched to the reference
    (``match_photometry``), the motion mask is estimated and the full homography fitted with it,
    twice; finer levels (large images) only get ``fine_iterations`` masked iterations each and
    levels longer than ``FINE_MAX_SIDE`` are skipped, which keeps 1500x1000 frames well under a
    second each.

    Args:
        ref, img: (H, W) float32 comparison images (``common_exposure_pair``).
        init: (3, 3) initial homography.
        iterations: ECC iterations per level up to ``WORK_SIDE``.
        fine_iterations: ECC iterations per level finer than ``WORK_SIDE``.
        coarse: run the Euclidean coarse levels (skip them when ``init`` is already accurate,
            e.g. from features).
        usable: optional (H, W) bool, reference pixels that are well exposed. A level where fewer
            than ``MIN_WELL_EXPOSED_OVERLAP`` of the pixels are usable makes the estimate fail; with
            ``MASK_CLIPPED`` ECC also uses only those pixels (template mask on every level).
        translation_only: fit a sub-pixel translation (``MOTION_TRANSLATION``) on every level
            instead: the model for frames whose usable overlap is too small or too concentrated to
            constrain 8 parameters.

    Returns:
        (homography, ok): ok is False when ECC failed or the result failed the sanity checks, in
        which case ``init`` is returned.
    """
    h, w = ref.shape
    levels = 1
    while min(h, w) / 2**levels >= MIN_PYRAMID_SIDE and levels < 6:
        levels += 1
    pr, pi = [ref], [img]
    for _ in range(levels - 1):
        pr.append(cv2.pyrDown(pr[-1]))
        pi.append(cv2.pyrDown(pi[-1]))
    work = next(lvl for lvl in range(levels) if max(pr[lvl].shape) <= WORK_SIDE or lvl == levels - 1)
    um = [None] * levels
    if usable is not None and not usable.all():
        for lvl in range(levels):
            m = cv2.resize(usable.astype(np.uint8), pr[lvl].shape[::-1], interpolation=cv2.INTER_NEAREST)
            if m.mean() < MIN_WELL_EXPOSED_OVERLAP:
                return init, False
            um[lvl] = m * 255 if MASK_CLIPPED else None

    motion = cv2.MOTION_TRANSLATION if translation_only else cv2.MOTION_HOMOGRAPHY
    coarse_motion = cv2.MOTION_TRANSLATION if translation_only else cv2.MOTION_EUCLIDEAN

    def both(a, b):
        return a if b is None else b if a is None else np.minimum(a, b)

    try:
        if coarse:
            hm = _scale(init, 0.5 ** (levels - 1))
            for lvl in range(levels - 1, work - 1, -1):
                _, hm = _ecc(pr[lvl], pi[lvl], hm, um[lvl], iterations, coarse_motion)
                if lvl > work:
                    hm = _scale(hm, 2.0)
        else:
            hm = _scale(init, 0.5**work)
        # absorb the error of the assumed response, then rebuild the frame's pyramid down to `work`
        pi[0] = match_photometry(pr[work], pi[work], hm, apply_to=img)
        for lvl in range(1, work + 1):
            pi[lvl] = cv2.pyrDown(pi[lvl - 1])
        mask = None
        for _ in range(2):
            m = _motion_mask(pr[work], pi[work], hm)
            if m.mean() < 255 * 0.3:
                break
            mask = m
            _, hm = _ecc(pr[work], pi[work], hm, both(mask, um[work]), iterations, motion)
        if mask is None:
            _, hm = _ecc(pr[work], pi[work], hm, um[work], iterations, motion)
        for lvl in range(work - 1, -1, -1):
            hm = _scale(hm, 2.0)
            if max(pr[lvl].shape) > FINE_MAX_SIDE:
                continue
            lm = None if mask is None else cv2.resize(mask, pr[lvl].shape[::-1], interpolation=cv2.INTER_NEAREST)
            _, hm = _ecc(pr[lvl], pi[lvl], hm, both(lm, um[lvl]), fine_iterations, motion)
    except cv2.error:
        return init, False
    if not np.isfinite(hm).all():
        return init, False
    if not _plausible(hm, init, (h, w)):
        return init, False
    if _correlation(ref, pi[0], hm) + 1e-3 < _correlation(ref, pi[0], init):
        return init, False
    return hm, True


def _translation(dy: float, dx: float) -> np.ndarray:
    return np.array([[1, 0, -dx], [0, 1, -dy], [0, 0, 1]], dtype=np.float64)


def _estimate_factor(h: int, w: int) -> int:
    """Power-of-two factor that brings the longest side to at most ``FINE_MAX_SIDE`` (the finest level
    ECC ever refines on): every estimate is made at that resolution and scaled up once."""
    f = 1
    while max(h, w) > FINE_MAX_SIDE * f:
        f *= 2
    return f


def _to_full(hm: np.ndarray, factor: int) -> np.ndarray:
    """A homography between ``factor``-times block-averaged images as one between the full images.

    Pixel ``u`` of the reduced image is the mean of full pixels ``f u .. f u + f - 1``, centred at
    ``f u + (f - 1) / 2``. A translation by ``d`` becomes exactly one by ``f d`` (the identity stays exact).
    """
    if factor == 1:
        return hm
    if np.array_equal(hm[:2, :2], np.eye(2)) and np.array_equal(hm[2], [0.0, 0.0, 1.0]):
        out = hm.copy()
        out[:2, 2] *= factor
        return out
    c = (factor - 1) / 2
    s = np.array([[factor, 0.0, c], [0.0, factor, c], [0.0, 0.0, 1.0]])
    out = s @ hm @ np.linalg.inv(s)
    return out / out[2, 2]


def _align_frame(
    frame: torch.Tensor, ref: torch.Tensor, t_frame: float, t_ref: float, response: Response, method: str, max_bits: int, iterations: int,
    codes: tuple[torch.Tensor, torch.Tensor, int] | None = None,
) -> tuple[np.ndarray, str]:
    """(reference -> frame homography, 'identity' | 'translation' | 'homography' | 'features-ransac') for one frame.

    frame, ref: (3, H, W) codes (``codes``: the same as integer codes and their bits, or None). Everything
    is estimated on comparison images reduced to at most ``FINE_MAX_SIDE`` px (``_estimate_factor``;
    MTB with correspondingly fewer levels, so the shift range in full-resolution pixels is the same) and
    the result is scaled to full resolution.
    """
    eye = np.eye(3)
    factor = _estimate_factor(*frame.shape[-2:])
    bits = max(1, max_bits - int(math.log2(factor)))
    pair = common_exposure_pair(frame, ref, t_frame, t_ref, response, with_clipping=True, codes=codes, downsample=factor)
    if pair is None:  # no common radiance range: rank-matched grey codes, translation at most
        img, refi, clip_f, clip_r = rank_matched_pair(frame, ref, downsample=factor)
        (dy, dx), ok = mtb_shift_pair(torch.from_numpy(refi), torch.from_numpy(img), bits, clipped_ref=clip_r, clipped_frame=clip_f)
        if not ok or (dy, dx) == (0, 0):
            return eye, "identity"
        usable_r = ~(clip_r[0] | clip_r[1]).numpy()
        name, hm, _ = select_transform(refi, img, [("identity", eye), ("translation", _translation(dy, dx))], usable_r)
        return _to_full(hm, factor), name
    img, refi, clip_f, clip_r = pair
    (dy, dx), ok = mtb_shift_pair(torch.from_numpy(refi), torch.from_numpy(img), bits, clipped_ref=clip_r, clipped_frame=clip_f)
    translation = _translation(dy, dx)
    usable_r = ~(clip_r[0] | clip_r[1]).numpy()
    usable_f = ~(clip_f[0] | clip_f[1]).numpy()
    candidates = [("identity", eye)]
    if ok and (dy, dx) != (0, 0):
        candidates.append(("translation", translation))
    overlap = float((usable_r & usable_f).mean())
    if overlap >= MIN_WELL_EXPOSED_OVERLAP:
        general = overlap >= HOMOGRAPHY_MIN_OVERLAP
        feat = _features_init(refi, img) if method == "features" and general else None
        if feat is not None and not _plausible(feat, translation, refi.shape):
            feat = None
        est, good = estimate_homography(refi, img, translation if feat is None else feat, iterations=iterations, coarse=feat is None,
                                        usable=usable_r, translation_only=not general)
        if good:
            candidates.append(("homography" if general else "translation", est))
        elif feat is not None:
            candidates.append(("features-ransac", feat))
    name, hm, _ = select_transform(refi, img, candidates, usable_r)
    return _to_full(hm, factor), name


def align_homography(
    ldr: torch.Tensor,
    exposure_times: torch.Tensor,
    response: Response | None = None,
    reference: int | None = None,
    *,
    method: str = "ecc",
    max_bits: int = 6,
    iterations: int = 100,
) -> AlignResult:
    """Align a hand-held bracket with one homography per frame.

    Args:
        ldr: (N, 3, H, W) or (B, N, 3, H, W) display-referred codes in [0, 1], RGB.
        exposure_times: (N,) or (B, N) linear exposure times (never EV).
        response: camera response used to put frames on a common exposure; default gamma 2.2.
        reference: reference frame index; default the middle one by exposure (``N // 2`` sorted).
        method: 'ecc' (MTB translation then robust pyramid ECC; default) or 'features'
            (SIFT + RANSAC initialization, then the same ECC refinement).
        max_bits: MTB pyramid levels for the initialization.
        iterations: ECC iterations per pyramid level.

    Returns:
        ``AlignResult``; ``transforms`` map reference pixel coordinates to frame pixel coordinates.
        ``info['method']`` lists per frame what was kept: 'reference', 'identity' (nothing
        verifiably better, or too little well-exposed overlap), 'translation' (MTB shift or
        sub-pixel ECC translation), 'homography', or 'features-ransac' (ECC failed, the plausible
        RANSAC homography won).
        Pixels whose source lies outside their frame are filled with the reference re-exposed
        to that frame's exposure; ``valid`` marks the others.
    """
    if method not in _METHODS:
        raise HdrkitError(f"unknown homography method {method!r}: use one of {', '.join(_METHODS)}")
    if exposure_times is None:
        raise HdrkitError("align_homography needs exposure_times (linear, (N,) or (B, N)); use method='mtb' without them")
    response = response or GammaResponse(2.2)
    x, t, batched = as_bracket(ldr, exposure_times)
    b, n = x.shape[:2]
    transforms = torch.eye(3, dtype=torch.float64).repeat(b, n, 1, 1)
    codes, bits = bracket_codes(x.detach())
    refs, notes = [], []
    for bi in range(b):
        r = check_reference(reference, n)
        r = default_reference(x[bi], t[bi]) if r is None else r
        others = [i for i in range(n) if i != r]

        def one(i: int, bi: int = bi, r: int = r) -> tuple[np.ndarray, str]:
            return _align_frame(x[bi, i], x[bi, r], float(t[bi, i]), float(t[bi, r]), response, method, max_bits, iterations,
                                None if codes is None else (codes[bi, i], codes[bi, r], bits))

        note = ["reference"] * n
        for i, (hm, status) in zip(others, parallel_map(one, others)):  # frames on parallel threads
            transforms[bi, i] = torch.from_numpy(hm)
            note[i] = status
        refs.append(r)
        notes.append(note)
    aligned, valid = apply_transforms(x, transforms, refs, t, response, bits=bits, codes=codes)
    if not batched:
        return AlignResult(aligned[0], transforms[0], valid[0], refs[0], {"method": notes[0]})
    return AlignResult(aligned, transforms, valid, refs, {"method": notes})
