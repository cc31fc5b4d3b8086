"""Weighted merge of an aligned exposure bracket into radiance (Debevec & Malik 1997).

Each frame gives a radiance estimate ``f^-1(z) / t``; the merge is their weighted mean. The default
weights are inverse noise variances (Granados et al. 2010, Hanji et al. 2020), which makes the
mean the minimum-variance unbiased combination under a Poisson-Gaussian sensor model plus
quantization. ``'opencv_hat'`` reproduces OpenCV's ``MergeDebevec`` (log-domain mean, hat weights
averaged over channels) for comparison.

References:
    Debevec & Malik, "Recovering high dynamic range radiance maps from photographs", SIGGRAPH 1997.
    Granados et al., "Optimal HDR reconstruction with linear digital cameras", CVPR 2010.
    Hanji, Zhong & Mantiuk, "Noise-aware merging of high dynamic range image stacks without camera
    calibration", ECCV Workshops 2020.
"""

from __future__ import annotations

import math

import torch

from hdrkit.camera.exposure import NoiseModel, normalize_times
from hdrkit.camera.response import GammaResponse, Response
from hdrkit.errors import HdrkitError
from hdrkit.merge import weights as W

__all__ = ["merge_debevec1997", "prepare_bracket", "fallback_radiance", "weighted_mean"]


def prepare_bracket(ldr: torch.Tensor, exposure_times, bits: int | None, reference: int | None = None, need_float: bool = True):
    """Validate a bracket and return ``(codes, integer_codes, times, bits, reference)``.

    ``ldr`` may be float codes in [0, 1] or integer codes (uint8: 8 bits, uint16: 16 bits); then
    ``integer_codes`` is that tensor and ``codes`` its float32 version in [0, 1] (None if
    ``need_float`` is False). ``times`` are the
    exposure times divided by their minimum per bracket, (B, N) in the dtype of ``codes``.
    """
    if not isinstance(ldr, torch.Tensor):
        raise HdrkitError("ldr must be a torch tensor of shape (B, N, 3, H, W)")
    if ldr.ndim != 5 or ldr.shape[2] != 3:
        raise HdrkitError(f"ldr must have shape (B, N, 3, H, W), got {tuple(ldr.shape)}")
    if ldr.shape[1] < 2:
        raise HdrkitError(f"a bracket needs at least 2 frames, got N={ldr.shape[1]}")
    ints = None
    if ldr.dtype in (torch.uint8, torch.uint16, torch.int16, torch.int32):
        depth = 8 if ldr.dtype == torch.uint8 else 16
        ints = ldr
        bits = depth
        ldr = ldr.to(torch.float32) / float(2**depth - 1) if need_float else None
    elif not ldr.is_floating_point():
        raise HdrkitError(f"ldr must be float codes in [0, 1] or uint8/uint16 codes, got {ldr.dtype}")
    ref_t = ints if ldr is None else ldr
    times = torch.as_tensor(exposure_times, dtype=torch.float32 if ldr is None else ldr.dtype, device=ref_t.device)
    if times.shape != ref_t.shape[:2]:
        raise HdrkitError(f"exposure_times must have shape {tuple(ref_t.shape[:2])} (B, N), got {tuple(times.shape)}")
    times = normalize_times(times)
    if bits is not None and not 1 <= int(bits) <= 32:
        raise HdrkitError(f"bits must be between 1 and 32 (or None), got {bits}")
    n = ref_t.shape[1]
    if reference is not None:
        if not -n <= int(reference) < n:
            raise HdrkitError(f"reference frame {reference} out of range for N={n} frames")
        reference = int(reference) % n
    return ldr, ints, times, bits, reference


def fallback_radiance(ldr: torch.Tensor, radiance: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    """Radiance for pixels with zero total weight: the shortest frame's estimate where it is
    saturated (clipped in every frame by over-exposure), else the longest frame's (under-exposed in
    every frame). ldr, radiance: (B, N, 3, H, W); returns (B, 3, H, W)."""
    order = times.argsort(dim=1)
    b = torch.arange(ldr.shape[0], device=ldr.device)
    short, long = order[:, 0], order[:, -1]
    saturated = ldr[b, short].amax(dim=1, keepdim=True) >= W.SATURATION_CODE - W.SATURATION_RAMP
    return torch.where(saturated, radiance[b, short], radiance[b, long])


def weighted_mean(radiance: torch.Tensor, weights: torch.Tensor, fallback: torch.Tensor) -> torch.Tensor:
    """``sum_i w_i X_i / sum_i w_i`` over frames (dim 1), ``fallback`` where all weights are 0."""
    num = (weights * radiance).sum(dim=1)
    den = weights.sum(dim=1)
    return torch.where(den > 0, num / den.clamp_min(torch.finfo(den.dtype).tiny), fallback)


def _lut_merge(ints, times, response, weighting, noise, bits):
    """8/16-bit fast path: per-frame lookup tables indexed by the integer codes (no autograd).

    Same values as the float path: the tables are the float-path formulas evaluated at the codes.
    """
    levels = 2**bits
    dev = ints.device
    b_, n, _, h, w_ = ints.shape
    codes = torch.linspace(0, 1, levels, dtype=torch.float64, device=dev).view(1, 1, 1, levels, 1).expand(1, 1, 3, levels, 1)
    inv = response.inverse(codes).to(torch.float64)  # (1, 1, 3, K, 1)
    offs = (torch.arange(3, device=dev, dtype=torch.int32) * levels).view(3, 1, 1)

    def take(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        # index_select with int32 indices is ~10x faster than advanced indexing on CPU
        return table.index_select(0, index.reshape(-1)).view(index.shape)

    out = torch.empty(b_, 3, h, w_, dtype=torch.float32, device=dev)
    z = codes.reshape(3, levels)[0]
    high = W.saturation_taper(z).float()
    if weighting == "opencv_hat":
        wtab = (W.opencv_hat_table(levels, torch.float32, dev) / 3.0).repeat(3)
        ltab = inv.clamp_min(torch.finfo(torch.float32).tiny).log().reshape(-1)
    elif weighting in ("hat", "gaussian"):
        shape = W.hat_shape(codes) if weighting == "hat" else W.gaussian_shape(codes)
        wtab = (shape * W.dark_taper(codes)).float().reshape(-1)
    for b in range(b_):
        num = den = None
        xtabs = []
        for i in range(n):
            t = float(times[b, i])
            idx = torch.add(ints[b, i], offs)  # uint8/uint16 + int32 -> int32 in one pass
            if weighting == "opencv_hat":
                wc = take(wtab, idx)
                wp = wc[0:1] + wc[1:2]
                wp += wc[2:3]
                value = take((ltab - math.log(t)).float(), idx)
            else:
                if weighting == "noise_optimal":
                    tt = torch.tensor([[t]], dtype=torch.float64, device=dev)
                    var = W.radiance_variance(codes, tt, response, noise or W.DEFAULT_NOISE, bits, linear=inv)
                    wtab = (W.dark_taper(codes) / var).float().reshape(-1)
                xtabs.append((inv / t).float().reshape(-1))
                wp = take(wtab, idx).mul_(take(high, ints[b, i].amax(dim=0, keepdim=True).to(torch.int32)))
                value = take(xtabs[-1], idx)
            if num is None:
                num, den = wp * value, wp
            else:
                num.addcmul_(wp, value)
                den.add_(wp)
        if weighting == "opencv_hat":
            out[b] = num.div_(den).exp_()
            continue
        out[b] = num.div_(den.clamp_min(torch.finfo(torch.float32).tiny))
        zero = den <= 0
        if zero.any():
            order = times[b].argsort()
            s_, l_ = int(order[0]), int(order[-1])
            saturated = ints[b, s_].amax(dim=0, keepdim=True).float() / (levels - 1) >= W.SATURATION_CODE - W.SATURATION_RAMP
            fb = torch.where(saturated, take(xtabs[s_], ints[b, s_].to(torch.int32) + offs), take(xtabs[l_], ints[b, l_].to(torch.int32) + offs))
            out[b] = torch.where(zero, fb, out[b])
    return out


def merge_debevec1997(
    ldr: torch.Tensor,
    exposure_times,
    response: Response | None = None,
    *,
    weighting: str = "noise_optimal",
    noise: NoiseModel | None = None,
    bits: int | None = 8,
    reference: int | None = None,
) -> torch.Tensor:
    """Merge an aligned bracket into radiance by a weighted mean of per-frame estimates.

    Args:
        ldr: (B, N, 3, H, W), N >= 2, display-referred RGB codes in [0, 1] (float), or uint8 /
            uint16 integer codes (then ``bits`` is 8 / 16 and a lookup-table path is used, which
            gives the same result as the float path but has no autograd).
        exposure_times: (B, N) linear exposure times (seconds or relative), any order.
        response: camera response; default gamma 2.2.
        weighting: ``'noise_optimal'`` (default; inverse variance of ``f^-1(z)/t`` under
            ``noise`` plus quantization, Granados 2010), ``'hat'`` (Debevec 1997), ``'gaussian'``
            (Robertson 2003) or ``'opencv_hat'`` (OpenCV >= 4 ``MergeDebevec``: per-pixel hat
            weights averaged over channels, mean of log radiance, no clip handling).
        noise: Poisson-Gaussian sensor noise for ``'noise_optimal'``; default
            ``weights.DEFAULT_NOISE`` (darktable median at ISO 400).
        bits: code depth used for the quantization noise term (ignored for integer input).
        reference: accepted for a signature shared with the deghosting merge; a static merge
            trusts every frame, so it has no effect beyond validation.

    Returns:
        hdr: (B, 3, H, W) linear radiance in units of the shortest exposure (times divided by
        their minimum), [0, inf). Except for ``'opencv_hat'``, clipped codes get zero weight; a
        pixel saturated in every frame takes the shortest frame's value and a pixel under-exposed
        in every frame the longest frame's value. The float path is differentiable in ``ldr``.
    """
    if weighting not in W.WEIGHTINGS:
        raise HdrkitError(f"unknown weighting {weighting!r}: use one of {', '.join(W.WEIGHTINGS)}")
    integer = isinstance(ldr, torch.Tensor) and not ldr.is_floating_point()
    z, ints, times, bits, _ = prepare_bracket(ldr, exposure_times, bits, reference, need_float=not integer)
    response = response or GammaResponse(2.2)
    if ints is not None:
        with torch.no_grad():
            return _lut_merge(ints, times, response, weighting, noise, bits)
    t = times[:, :, None, None, None]
    x = response.inverse(z)
    if weighting == "opencv_hat":
        levels = 2 ** (bits or 8)
        k = torch.round(z.detach() * (levels - 1)).clamp(0, levels - 1).long()
        w = W.opencv_hat_table(levels, z.dtype, z.device)[k].mean(dim=2, keepdim=True)
        logx = x.clamp_min(torch.finfo(x.dtype).tiny).log() - t.log()
        return torch.exp((w * logx).sum(1) / w.sum(1))
    w = W.frame_weights(z, times, response, weighting, noise, bits, linear=x)
    radiance = x / t
    return weighted_mean(radiance, w, fallback_radiance(z, radiance, times))
