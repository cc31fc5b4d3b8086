"""Deghosting merge: keep the reference frame's content wherever another frame disagrees with it
beyond what sensor noise explains.

A simplified form of the consistency test of Granados et al. (2013): every frame is linearized to
radiance, and each non-reference frame is compared with the reference where both are well exposed.
The difference is divided by its predicted standard deviation (Poisson-Gaussian noise plus
quantization, carried through the inverse response; plus a relative ``tolerance`` for response and
compression errors) to give a z-score. Pixels above ``threshold`` are ghosts for that frame; the
ghost map is cleaned of isolated detections, dilated and blurred into a soft mask, and the frame's
noise-optimal weight is multiplied by ``1 - mask``. Granados et al. then label consistent sets with
an MRF; here the soft mask replaces that step, and the reference frame is always trusted.

Where the reference is saturated the true radiance is only known to be at least the saturation
level ``f^-1(z_sat) / t_ref``: a shorter frame is used there only if it agrees with that bound, and
where the reference is under-exposed a longer frame is used only if it stays below the reference's
dark level. Otherwise the reference's own (clipped) value is kept. Residual misalignment of about
one pixel is tolerated by comparing slightly blurred images against the min/max of the reference
over a 3x3 window.

References:
    Granados, Kim, Tompkin, Kautz & Theobalt, "Automatic noise modeling for ghost-free HDR
    reconstruction", ACM Trans. Graphics (SIGGRAPH Asia) 32(6), 2013.
    Khan, Akyuz & Reinhard, "Ghost removal in high dynamic range images", ICIP 2006.
    Grosch, "Fast and robust high dynamic range image generation with camera and object movement",
    Vision, Modeling and Visualization 2006.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from hdrkit.camera.exposure import NoiseModel
from hdrkit.camera.response import GammaResponse, Response
from hdrkit.merge import weights as W
from hdrkit.merge.debevec1997 import prepare_bracket, weighted_mean
from hdrkit.merge.lut import as_code_indices, channel_max, gather

__all__ = ["merge_granados2013", "merge_deghost", "ghost_masks_granados2013", "calibrate_to_reference", "DEFAULT_THRESHOLD", "DEFAULT_TOLERANCE"]

DEFAULT_THRESHOLD = 4.0
"""z-score above which a pixel is inconsistent (about 1e-4 false alarms per channel under Gaussian noise)."""

DEFAULT_TOLERANCE = 0.1
"""Relative radiometric tolerance (10 %) added to the noise: response, white-balance and JPEG errors."""

BLUR_SIGMA = 1.0
"""Gaussian blur (pixels) applied to radiance before comparing; reduces noise and sub-pixel misalignment."""

MIN_FRACTION = 0.16
"""A ghost detection survives only if at least this fraction of its 5x5 neighbourhood is detected."""

DILATION = 4
"""Ghost masks are dilated by this many pixels, then blurred with sigma ``DILATION / 2``."""


def _gauss1d(sigma: float, dtype, device) -> torch.Tensor:
    r = max(1, int(round(2.5 * sigma)))
    x = torch.arange(-r, r + 1, dtype=dtype, device=device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _cv_ok(img: torch.Tensor) -> bool:
    """Whether ``img`` can go through OpenCV: a CPU float tensor outside autograd."""
    return img.device.type == "cpu" and img.dtype in (torch.float32, torch.float64) and not (img.requires_grad and torch.is_grad_enabled())


def _cv_planes(img: torch.Tensor, fn) -> torch.Tensor:
    """Apply ``fn(src_plane, dst_plane)`` (2-D numpy) to every (H, W) plane of ``img``."""
    src = img.detach().contiguous()
    out = torch.empty_like(src)
    h, w = src.shape[-2:]
    for a, b in zip(src.view(-1, h, w).numpy(), out.view(-1, h, w).numpy()):
        fn(a, b)
    return out


def _blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (M, C, H, W) with replicate padding (shifted sums, or
    ``cv2.sepFilter2D`` outside autograd)."""
    k = _gauss1d(sigma, img.dtype, img.device)
    if _cv_ok(img):
        kn = k.numpy()
        return _cv_planes(img, lambda a, b: cv2.sepFilter2D(a, -1, kn, kn, dst=b, borderType=cv2.BORDER_REPLICATE))
    k = k.tolist()
    r = len(k) // 2
    for dim, pad in ((-1, (r, r, 0, 0)), (-2, (0, 0, r, r))):
        n = img.shape[dim]
        xp = F.pad(img, pad, mode="replicate")
        out = xp.narrow(dim, 0, n) * k[0]
        for j in range(1, len(k)):
            out.add_(xp.narrow(dim, j, n), alpha=k[j])
        img = out
    return img


def _valid_blur(radiance: torch.Tensor, valid: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur (M, 3, H, W) radiance over ``valid`` pixels only (normalized convolution). Both frames
    of a comparison use the same mask, so clipped neighbours (clipped at a different level in each
    frame) do not leak in. Pixels with less than half a valid neighbourhood keep their own value."""
    valid = valid.to(radiance.dtype)
    num, den = _blur(radiance * valid, sigma), _blur(valid, sigma)
    return torch.where(den > 0.5, num / den.clamp_min(1e-6), radiance)


def _valid_blur_pair(a: torch.Tensor, b: torch.Tensor, valid: torch.Tensor, sigma: float):
    """``_valid_blur`` of two images over the same mask (its blur computed once)."""
    valid = valid.to(a.dtype)
    den = _blur(valid, sigma)
    keep, den = den > 0.5, den.clamp_min(1e-6)
    return tuple(torch.where(keep, _blur(x * valid, sigma) / den, x) for x in (a, b))


def _well_exposed(ldr: torch.Tensor) -> torch.Tensor:
    return (ldr > W.DARK_CODE + W.DARK_RAMP) & (ldr < W.SATURATION_CODE - W.SATURATION_RAMP)


def _maxf(img: torch.Tensor, size: int = 3) -> torch.Tensor:
    """Max filter over a size x size window (separable: max rows, then columns)."""
    if _cv_ok(img):
        kern = np.ones((size, size), np.uint8)
        return _cv_planes(img, lambda a, b: cv2.dilate(a, kern, dst=b))  # borders ignored
    r = size // 2
    img = F.max_pool2d(img, (1, size), stride=1, padding=(0, r))
    return F.max_pool2d(img, (size, 1), stride=1, padding=(r, 0))


def _minf(img: torch.Tensor, size: int = 3) -> torch.Tensor:
    if _cv_ok(img):
        kern = np.ones((size, size), np.uint8)
        return _cv_planes(img, lambda a, b: cv2.erode(a, kern, dst=b))
    return -_maxf(-img, size)


CALIBRATION_BINS = 32
"""Bins of the per-frame radiometric self-calibration (binned medians of log radiance ratios)."""


CALIBRATION_KEEP = 0.7
"""A frame keeps its self-calibration only if the calibration shrinks its ghost area to below this share of
the area without it. A fit pulled by moving objects (or misalignment) can still lower the ghost area a little
while its gains distort the frame's radiance where the frame is trusted: on the public validation scenes
(``benchmarks/public_benchmark.py``, known response) gains kept for ghost-area ratios of 0.76-0.998 cost
1.5-5.5 dB PSNR-mu on 6 of 36 dynamic scenes, while the calibrations that helped cut the area to ~0.4. Keeping
only clear reductions (0.7, chosen on those scenes between 1.0 and 0.7) raised deghost from 33.26 to 33.90 dB
(phone_dorf8) and from 39.97 to 40.63 dB (kalantari_gamma16), static scenes unchanged, +0.18 dB with an
assumed gamma 2.2 on DoRF frames."""

CALIBRATION_MAX_SLOPE = 1.0
"""Largest slope of the calibration curve in log-log units (the implied mapping between frames then
has a log-log slope in [0, 2]); bins that a moving object dominates cannot produce wild gains."""


def _fit_log_correction(li: torch.Tensor, lr: torch.Tensor, bins: int = CALIBRATION_BINS):
    """Robust map ``m -> median(log X_ref - log X_i)`` with ``m = (log X_i + log X_ref) / 2``, from
    binned medians (binning by the mean of both avoids the regression-dilution bias that binning by
    one noisy frame has). li, lr: (M,). Returns (knots, values); a single knot means a constant."""
    d = lr - li
    if li.numel() < 100:
        return li.new_zeros(1), (d.median() if d.numel() else li.new_zeros(())).view(1)
    m = 0.5 * (li + lr)
    q = torch.tensor([0.005, 0.995], dtype=m.dtype, device=m.device)
    (lo_m, hi_m), (lo_i, hi_i), (lo_r, hi_r) = torch.quantile(m, q), torch.quantile(li, q), torch.quantile(lr, q)
    # bins must lie inside both frames' own ranges: beyond them the pixels are mostly ghosts
    # (a moving object much brighter or darker than the static content at those levels)
    lo, hi = max(lo_m, lo_i, lo_r), min(hi_m, hi_i, hi_r)
    if not hi > lo:
        return li.new_zeros(1), d.median().view(1)
    idx = torch.bucketize(m, torch.linspace(float(lo), float(hi), bins + 1, dtype=m.dtype, device=m.device)[1:-1])
    counts = torch.bincount(idx, minlength=bins)
    by_d = torch.argsort(d, stable=True)
    order = by_d[torch.argsort(idx[by_d], stable=True)]  # sort by bin, then by d within the bin
    ds, ms = d[order], m[order]
    starts = torch.cumsum(counts, 0) - counts
    keep = counts >= max(20, int(0.002 * li.numel()))
    if not keep.any():
        return li.new_zeros(1), d.median().view(1)
    mid = starts[keep] + (counts[keep] - 1) // 2
    knots = torch.stack([ms[starts[k] : starts[k] + counts[k]].median() for k in torch.nonzero(keep).flatten().tolist()])
    vals = ds[mid]
    good = torch.cat([torch.ones(1, dtype=torch.bool, device=m.device), knots[1:] > knots[:-1] + 1e-6])
    knots, vals = knots[good], vals[good]
    # the implied intensity mapping log X_ref = log X_i + c must stay monotone and not too steep:
    # |dc / dm| <= CALIBRATION_MAX_SLOPE, walking out from the most populated bin
    start = int(torch.argmax(counts[keep][good]))
    out = vals.clone()
    for k in list(range(start + 1, len(out))) + list(range(start - 1, -1, -1)):
        prev = k - 1 if k > start else k + 1
        step = CALIBRATION_MAX_SLOPE * float((knots[k] - knots[prev]).abs())
        out[k] = out[k].clamp(out[prev] - step, out[prev] + step)
    return knots, out


def _apply_log_correction(lx: torch.Tensor, knots: torch.Tensor, vals: torch.Tensor) -> torch.Tensor:
    """Evaluate the correction at log radiance ``lx`` (piecewise linear, flat beyond the knots)."""
    if knots.numel() == 1:
        return vals.expand_as(lx)
    if _cv_ok(lx):  # the same interpolation by numpy (knots are strictly increasing)
        y = np.interp(lx.detach().reshape(-1).numpy(), knots.numpy(), vals.numpy())
        return torch.from_numpy(y).to(lx.dtype).view(lx.shape)
    lc = lx.clamp(knots[0], knots[-1])
    j = torch.bucketize(lc, knots).clamp(1, knots.numel() - 1)
    k0, k1, v0, v1 = knots[j - 1], knots[j], vals[j - 1], vals[j]
    u = ((lc - k0) / (k1 - k0).clamp_min(1e-12)).clamp(0, 1)
    return v0 + u * (v1 - v0)


@torch.no_grad()
def calibrate_to_reference(ldr: torch.Tensor, radiance: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Per-pixel gains (B, N, 1, H, W) mapping each frame's radiance onto the reference's radiometry.

    For each non-reference frame, a curve ``log(X_ref / X_i)`` as a function of log radiance (the
    channel-mean log) is fitted by binned medians over pixels well exposed in both frames
    (Gaussian-blurred, on a 4x subsampled grid) and evaluated at every pixel (flat beyond the
    fitted range; one gain for all channels, so no colour casts). This absorbs
    response-curve, white-balance and exposure-time errors of real cameras, in the spirit of
    intensity mapping functions (Grossberg & Nayar 2003); moving objects cover too few pixels of a
    bin to move its median. With an exact response the gains are ~1. The reference's gains are 1.
    """
    b_, n = ldr.shape[:2]
    gains = torch.ones_like(radiance[:, :, :1])
    sub = (slice(None, None, 4), slice(None, None, 4))

    def grey_log(x: torch.Tensor) -> torch.Tensor:
        return x.clamp_min(1e-12).log().mean(dim=-3)

    for b in range(b_):
        r = int(reference[b])
        ok_r = _well_exposed(ldr[b, r])
        for i in range(n):
            if i == r:
                continue
            pair = (ok_r & _well_exposed(ldr[b, i])).all(0, keepdim=True)
            xb = _valid_blur(radiance[b, [i, r]], pair[None], BLUR_SIGMA)  # one mask plane, broadcast
            both = pair[0][sub[1:]]
            knots, vals = _fit_log_correction(grey_log(xb[0][(slice(None), *sub[1:])])[both], grey_log(xb[1][(slice(None), *sub[1:])])[both])
            li = grey_log(radiance[b, i])
            corr = _apply_log_correction(li + 0.5 * _apply_log_correction(li, knots, vals), knots, vals)
            gains[b, i, 0] = corr.exp()
    return gains


@torch.no_grad()
def ghost_masks_granados2013(
    ldr: torch.Tensor,
    radiance: torch.Tensor,
    variance: torch.Tensor,
    times: torch.Tensor,
    reference: torch.Tensor,
    response: Response,
    threshold: float = DEFAULT_THRESHOLD,
    tolerance: float = DEFAULT_TOLERANCE,
) -> torch.Tensor:
    """Soft ghost masks, 1 where a frame disagrees with the reference.

    Args:
        ldr: (B, N, 3, H, W) codes in [0, 1].
        radiance: (B, N, 3, H, W) per-frame estimates ``f^-1(z) / t``.
        variance: (B, N, 3, H, W) their noise variances (``weights.radiance_variance``).
        times: (B, N) exposure times normalized to the shortest.
        reference: (B,) index of the reference frame per bracket.
        response: the camera response (for the reference's saturation and dark levels).
        threshold: z-score threshold.
        tolerance: relative radiometric tolerance.

    Returns:
        (B, N, 1, H, W) masks in [0, 1]; the reference frame's mask is 0.
    """
    return _ghost_masks(ldr, radiance, variance, times, reference, response, threshold, tolerance)


def _score_numpy(ri, vi, pairf, keep, den, lo, hi, ref_var, var_gain, sigma) -> torch.Tensor:
    """The z-score of ``_ghost_masks`` by numpy with in-place ops (same formulas, far fewer fresh
    full-size allocations than torch): ``max(xi - hi, lo - xi, 0) / sqrt(vi g + ref_var)``."""
    a = [t.detach().contiguous().numpy() for t in (ri, vi, pairf, keep, den, lo, hi, ref_var)]
    r, v, pf, kp, dn, lo_, hi_, rv = a
    xi = _blur(torch.from_numpy(r * pf), sigma).numpy()
    np.divide(xi, dn, out=xi)
    np.copyto(xi, r, where=~kp)
    return torch.from_numpy(outside_score(xi, lo_, hi_, v, var_gain, rv))


def outside_score(xi: np.ndarray, lo, hi, v: np.ndarray, var_gain: float, ref_var) -> np.ndarray:
    """``max(xi - hi, lo - xi, 0) / sqrt(v var_gain + ref_var)`` in place (``xi`` is overwritten), the
    ghost z-score of both merge paths (float: ``_score_numpy``; code tables: ``deghost_codes``)."""
    sd = np.multiply(v, v.dtype.type(var_gain))
    sd += ref_var
    np.sqrt(sd, out=sd)
    score = np.subtract(xi, hi)
    np.subtract(lo, xi, out=xi)
    np.maximum(score, xi, out=score)
    np.maximum(score, 0, out=score)
    score /= sd
    return score


@torch.no_grad()
def _ghost_masks(ldr, radiance, variance, times, reference, response, threshold, tolerance, cache: dict | None = None):
    """``ghost_masks_granados2013``; ``cache`` (a dict) keeps the per-frame quantities that depend on
    the codes and the reference only, for a second call with the same reference radiance."""
    b_, n, _, h, w_ = ldr.shape
    bi = torch.arange(b_, device=ldr.device)
    sigma = BLUR_SIGMA
    k = _gauss1d(sigma, radiance.dtype, radiance.device)
    var_gain = float((k * k).sum() ** 2)
    zr, rr, vr = ldr[bi, reference], radiance[bi, reference], variance[bi, reference] * var_gain
    t_ref = times[bi, reference].view(b_, 1, 1, 1)
    sat_code, dark_code = W.SATURATION_CODE - W.SATURATION_RAMP, W.DARK_CODE + W.DARK_RAMP

    def level(code: float) -> torch.Tensor:
        return response.inverse(torch.full((1, 3, 1, 1), code, dtype=ldr.dtype, device=ldr.device)) / t_ref

    sat_level, dark_level = level(sat_code), level(dark_code)
    ref_sat, ref_dark = zr >= sat_code, zr <= dark_code
    any_sat, any_dark = bool(ref_sat.any()), bool(ref_dark.any())
    masks = torch.zeros(b_, n, 1, h, w_, dtype=ldr.dtype, device=ldr.device)
    ok_r = None
    for i in range(n):
        if bool((reference == i).all()):
            continue  # the reference's own mask is 0
        ri, vi = radiance[:, i], variance[:, i]
        if cache is not None and i in cache:
            valid, pairf, keep, den, xr, lo, hi, ref_var = cache[i]
        else:
            ok_r = _well_exposed(zr) if ok_r is None else ok_r
            valid = _well_exposed(ldr[:, i])
            pairf = (valid & ok_r).to(radiance.dtype)
            den = _blur(pairf, sigma)
            keep, den = den > 0.5, den.clamp_min(1e-6)
            xr = torch.where(keep, _blur(rr * pairf, sigma) / den, rr)
            lo, hi = _minf(xr), _maxf(xr)
            ref_var = vr + (tolerance * xr) ** 2
            if cache is not None:
                cache[i] = (valid, pairf, keep, den, xr, lo, hi, ref_var)
        if _cv_ok(ri) and _cv_ok(vi):
            score = _score_numpy(ri, vi, pairf, keep, den, lo, hi, ref_var, var_gain, sigma)
        else:
            xi = torch.where(keep, _blur(ri * pairf, sigma).div_(den), ri)
            sd = torch.mul(vi, var_gain).add_(ref_var).sqrt_()
            score = torch.maximum(xi - hi, lo - xi).clamp_min_(0).div_(sd)  # relu(xi - hi) + relu(lo - xi)
        # where the reference is clipped, the frame is tested against the clipping level; computed
        # densely and selected (boolean-mask indexing of full images is several times slower on CPU)
        if any_sat:
            score = torch.where(ref_sat, F.relu(sat_level - _maxf(ri)) / torch.sqrt(vi + (tolerance * sat_level) ** 2), score)
        if any_dark:
            score = torch.where(ref_dark, F.relu(_minf(ri) - dark_level) / torch.sqrt(vi + (tolerance * dark_level) ** 2), score)
        ghost = (score.masked_fill_(~valid, 0).amax(dim=1, keepdim=True) > threshold).to(ldr.dtype)
        ghost = (F.avg_pool2d(ghost, 5, stride=1, padding=2, count_include_pad=False) >= MIN_FRACTION).to(ldr.dtype)
        ghost = _maxf(ghost, 2 * DILATION + 1)
        soft = _blur(ghost, DILATION / 2)
        # snap rounding residue (the blur of a constant 1 need not sum to exactly 1): a fully masked
        # frame must get exactly zero weight
        masks[:, i] = torch.where(soft > 1 - 1e-6, 1.0, torch.where(soft < 1e-6, 0.0, soft))
    masks[bi, reference] = 0
    return masks


def _linearize_codes(ints: torch.Tensor, times: torch.Tensor, response: Response, noise: NoiseModel, bits: int):
    """Per-frame radiance, its variance and the noise-optimal weight of an integer-coded bracket,
    by per-code tables (the float-path formulas evaluated at the codes). Each (B, N, 3, H, W) float32."""
    levels = 2**bits
    size = max(levels, 256) if ints.dtype == torch.uint8 else levels
    idx = (ints if ints.dtype == torch.uint8 else ints.to(torch.int32)).contiguous().numpy()
    z = torch.linspace(0, 1, levels, dtype=torch.float64)
    codes = z.view(1, 1, 1, levels, 1).expand(1, 1, 3, levels, 1)
    inv = response.inverse(codes).to(torch.float64)
    dark = W.dark_taper(codes).reshape(3, levels)
    high = _table(W.saturation_taper(z), size)
    radiance, var, w = (torch.empty(ints.shape, dtype=torch.float32) for _ in range(3))
    rn, vn, wn = radiance.numpy(), var.numpy(), w.numpy()
    for b in range(ints.shape[0]):
        for i in range(ints.shape[1]):
            t = torch.tensor([[float(times[b, i])]], dtype=torch.float64)
            v = W.radiance_variance(codes, t, response, noise, bits, linear=inv).reshape(3, levels)
            x = inv.reshape(3, levels) / t.item()
            hi = gather(high, channel_max(idx[b, i]), np.empty(idx.shape[-2:], np.float32))
            for c in range(3):
                gather(_table(x[c], size), idx[b, i, c], rn[b, i, c])
                gather(_table(v[c], size), idx[b, i, c], vn[b, i, c])
                gather(_table(dark[c] / v[c], size), idx[b, i, c], wn[b, i, c])
                wn[b, i, c] *= hi
    return radiance, var, w


def _table(t: torch.Tensor, size: int) -> np.ndarray:
    a = t.reshape(-1).numpy().astype(np.float32)
    return np.concatenate([a, np.full(size - a.size, a[-1], np.float32)]) if a.size < size else a


def merge_granados2013(
    ldr: torch.Tensor,
    exposure_times,
    response: Response | None = None,
    *,
    reference: int | None = None,
    noise: NoiseModel | None = None,
    bits: int | None = 8,
    threshold: float = DEFAULT_THRESHOLD,
    tolerance: float = DEFAULT_TOLERANCE,
    calibrate: bool = True,
    return_masks: bool = False,
    valid: torch.Tensor | None = None,
):
    """Ghost-free merge of an aligned bracket with noise-optimal weights and a consistency test.

    Args:
        ldr: (B, N, 3, H, W), N >= 2, display-referred RGB codes in [0, 1] (or uint8 / uint16).
            Frames must already be globally aligned (``hdrkit.align``); only moving objects are
            handled here.
        exposure_times: (B, N) linear exposure times, any order.
        response: camera response; default gamma 2.2.
        reference: index of the frame whose content is kept; default the middle frame by exposure
            time (``N // 2`` in sorted order).
        noise: Poisson-Gaussian noise model; default ``weights.DEFAULT_NOISE``.
        bits: code depth for the quantization noise (ignored for integer input).
        threshold: z-score above which a frame disagrees with the reference.
        tolerance: relative radiometric tolerance added to the noise (response and JPEG errors).
        calibrate: map every frame onto the reference's radiometry with a robust fitted curve
            (``calibrate_to_reference``) before testing and merging; absorbs response and exposure
            errors of real cameras. Kept per frame only if it lowers the frame's ghost fraction.
        return_masks: also return the (B, N, 1, H, W) soft ghost masks.
        valid: optional (B, N, 1, H, W) bool or float in [0, 1] from the aligner (``FlowAlignResult.masks``):
            each frame's weight is multiplied by it, so 0 (occluded, outside the frame) gives that pixel of
            that frame no weight; the reference frame is always used.

    Returns:
        hdr: (B, 3, H, W) linear radiance in units of the shortest exposure, [0, inf); with the
        reference's geometry. Pixels that no trusted frame covers take the reference's own
        (clipped) estimate; pixels clipped in every frame take the shortest frame's value where
        the reference is saturated, the longest's where it is not, unless that frame is a ghost
        there. Differentiable in float ``ldr`` (the masks are treated as constants).
    """
    z, ints, times, bits, ref = prepare_bracket(ldr, exposure_times, bits, reference)
    response = response or GammaResponse(2.2)
    noise = noise or W.DEFAULT_NOISE
    b_ = z.shape[0]
    if ref is None:
        reference_idx = times.argsort(dim=1)[:, z.shape[1] // 2]
    else:
        reference_idx = torch.full((b_,), ref, dtype=torch.long, device=z.device)
    if z.device.type == "cpu" and z.dtype == torch.float32 and not (z.requires_grad and torch.is_grad_enabled()):
        from hdrkit.merge.deghost_codes import frame_codes, merge_codes

        if ints is not None:
            codes = [[(ints[b, i].numpy() if ints.dtype in (torch.uint8, torch.uint16) else ints[b, i].to(torch.int32).numpy(), bits)
                      for i in range(ints.shape[1])] for b in range(ints.shape[0])]
        else:
            codes = frame_codes(z, bits)
        if codes is not None:  # per-code tables, masks at reduced resolution, banded merge
            with torch.no_grad():
                return merge_codes(codes, times, reference_idx, response, noise, bits, threshold, tolerance, calibrate, valid,
                                   return_masks)
    if ints is None:
        ints = as_code_indices(z, bits)
    if ints is not None and ints.device.type == "cpu" and z.dtype == torch.float32 and not (z.requires_grad and torch.is_grad_enabled()):
        with torch.no_grad():
            radiance, var, w = _linearize_codes(ints, times, response, noise, bits)
    else:
        t = times[:, :, None, None, None]
        x = response.inverse(z)
        radiance = x / t
        var = W.radiance_variance(z, times, response, noise, bits, linear=x)
        w = W.clip_taper(z) / var
    args = (times, reference_idx, response, threshold, tolerance)
    cache: dict = {}
    masks = _ghost_masks(z.detach(), radiance.detach(), var.detach(), *args, cache=cache)
    if calibrate:
        # keep the calibration for a frame only if it clearly explains more of the frame (ghost area below
        # CALIBRATION_KEEP of the uncalibrated one): a fit hijacked by moving objects is dropped
        gains = calibrate_to_reference(z.detach(), radiance.detach(), reference_idx)
        # the reference's gain is 1, so its quantities in ``cache`` still hold
        rad_cal = radiance * gains
        masks_cal = _ghost_masks(z.detach(), rad_cal.detach(), (var * gains * gains).detach(), *args, cache=cache)
        better = masks_cal.mean(dim=(2, 3, 4), keepdim=True) < CALIBRATION_KEEP * masks.mean(dim=(2, 3, 4), keepdim=True)
        masks = torch.where(better, masks_cal, masks)
        radiance = torch.where(better, rad_cal, radiance)
    w = w * (1 - masks)
    if valid is not None:  # the aligner's occlusion masks; the reference is always trusted
        keep = valid.to(w.device, w.dtype).expand(w.shape[0], w.shape[1], 1, *w.shape[-2:]).clone()
        keep[torch.arange(b_, device=z.device), reference_idx] = 1
        w = w * keep
        masks = torch.maximum(masks, 1 - keep)
    bi = torch.arange(b_, device=z.device)
    # zero total weight: the shortest frame if the reference is saturated (else the longest), when
    # that frame is not a ghost there; otherwise the reference's own clipped estimate
    order = times.argsort(dim=1)
    saturated = z[bi, reference_idx].amax(dim=1, keepdim=True) >= W.SATURATION_CODE - W.SATURATION_RAMP
    pick = torch.where(saturated, order[:, 0].view(-1, 1, 1, 1), order[:, -1].view(-1, 1, 1, 1))
    static_fb = radiance.gather(1, pick[:, None].expand(-1, 1, 3, -1, -1))[:, 0]
    fb_mask = masks.gather(1, pick[:, None])[:, 0]
    fallback = torch.where(fb_mask < 0.5, static_fb, radiance[bi, reference_idx])
    hdr = weighted_mean(radiance, w, fallback)
    return (hdr, masks) if return_masks else hdr


merge_deghost = merge_granados2013
"""Generic name for the default deghosting merge."""
