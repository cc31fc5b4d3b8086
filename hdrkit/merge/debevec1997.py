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

import cv2
import numpy as np
import torch

from hdrkit.camera.exposure import NoiseModel, normalize_times
from hdrkit.camera.response import GammaResponse, Response
from hdrkit.errors import HdrkitError
from hdrkit.merge import weights as W
from hdrkit.merge.lut import as_code_indices, channel_max, gather, run_bands

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


def _f32(t: torch.Tensor, size: int) -> np.ndarray:
    """A float32 numpy table, padded with its last value to ``size`` entries (256 for ``cv2.LUT``)."""
    a = t.detach().to(torch.float64).reshape(-1).numpy().astype(np.float32)
    return np.concatenate([a, np.full(size - a.size, a[-1], np.float32)]) if a.size < size else a


def _lut_merge(ints, times, response, weighting, noise, bits, time_power: int = 0):
    """Integer-code fast path (CPU, no autograd): per-code tables gathered per pixel and accumulated
    in one fused pass over cache-sized row bands.

    Same values as the float path (the tables are the float-path formulas evaluated at the codes):
    ``num_c = sum_i s_i(max code) (w x / t)_ic(z_ic)``, ``den_c = sum_i s_i w_ic(z_ic)``; for
    ``'opencv_hat'`` ``exp(sum_i w_i (log x_ic - log t_i) / sum_i w_i)`` with per-pixel ``w_i``.
    ``time_power`` multiplies the ``'hat'`` / ``'gaussian'`` weights by ``t_i ** time_power``
    (Robertson 2003 uses 2).
    """
    levels = 2**bits
    size = max(levels, 256) if ints.dtype == torch.uint8 else levels
    b_, n, _, h, w_ = ints.shape
    idx_all = (ints if ints.dtype == torch.uint8 else ints.to(torch.int32)).contiguous().numpy()
    z = torch.linspace(0, 1, levels, dtype=torch.float64)
    codes = z.view(1, 1, 1, levels, 1).expand(1, 1, 3, levels, 1)
    inv = response.inverse(codes).to(torch.float64)  # (1, 1, 3, K, 1)
    hat = weighting == "opencv_hat"
    out = torch.empty(b_, 3, h, w_, dtype=torch.float32)
    out_np = out.numpy()
    tiny = float(torch.finfo(torch.float32).tiny)
    if hat:
        wtab = _f32(W.opencv_hat_table(levels, torch.float32) / 3.0, size)
        logx = inv.clamp_min(torch.finfo(torch.float32).tiny).log().reshape(3, levels)
    else:
        high = _f32(W.saturation_taper(z), size)
        sat = _f32((z >= W.SATURATION_CODE - W.SATURATION_RAMP).double(), size)
        if weighting in ("hat", "gaussian"):
            shape = W.hat_shape(codes) if weighting == "hat" else W.gaussian_shape(codes)
            wbase = (shape * W.dark_taper(codes)).reshape(3, levels)
    for b in range(b_):
        tb = [float(times[b, i]) for i in range(n)]
        if hat:
            vtabs = [[_f32(logx[c] - math.log(t), size) for c in range(3)] for t in tb]
        else:
            vtabs, wtabs, xtabs = [], [], []
            for t in tb:
                if weighting == "noise_optimal":
                    tt = torch.tensor([[t]], dtype=torch.float64)
                    var = W.radiance_variance(codes, tt, response, noise or W.DEFAULT_NOISE, bits, linear=inv)
                    wbase = (W.dark_taper(codes) / var).reshape(3, levels)
                x = inv.reshape(3, levels) / t
                wt = wbase * t**time_power if weighting != "noise_optimal" else wbase
                xtabs.append([_f32(x[c], size) for c in range(3)])
                vtabs.append([_f32(wt[c] * x[c], size) for c in range(3)])
                wtabs.append([_f32(wt[c], size) for c in range(3)])
            order = sorted(range(n), key=lambda i: tb[i])
            short, long = order[0], order[-1]

        def band(r0: int, r1: int, b: int = b) -> None:
            num = out_np[b, :, r0:r1]
            shape = num.shape[1:]
            buf, scale = np.empty(shape, np.float32), np.empty(shape, np.float32)
            den = np.empty((1 if hat else 3, *shape), np.float32)
            for i in range(n):
                idx = idx_all[b, i, :, r0:r1]
                if hat:
                    gather(wtab, idx[0], scale)
                    scale += gather(wtab, idx[1], buf)
                    scale += gather(wtab, idx[2], buf)
                else:
                    gather(high, channel_max(idx), scale)
                for c in range(3):
                    v = gather(vtabs[i][c], idx[c], buf)
                    if i == 0:
                        cv2.multiply(scale, v, dst=num[c])
                    else:
                        cv2.accumulateProduct(scale, v, num[c])
                    if hat:
                        continue
                    d = gather(wtabs[i][c], idx[c], buf)
                    if i == 0:
                        cv2.multiply(scale, d, dst=den[c])
                    else:
                        cv2.accumulateProduct(scale, d, den[c])
                if hat:
                    if i == 0:
                        den[0] = scale
                    else:
                        den[0] += scale
            if hat:
                for c in range(3):
                    cv2.divide(num[c], den[0], dst=num[c])
                    np.exp(num[c], out=num[c])
                return
            for c in range(3):
                zero = den[c] <= 0
                np.maximum(den[c], tiny, out=den[c])
                cv2.divide(num[c], den[c], dst=num[c])
                if zero.any():
                    si, li = idx_all[b, short, :, r0:r1], idx_all[b, long, :, r0:r1]
                    saturated = gather(sat, channel_max(si), scale) > 0.5
                    fb = np.where(saturated, gather(xtabs[short][c], si[c], buf), gather(xtabs[long][c], li[c], np.empty_like(buf)))
                    np.copyto(num[c], fb, where=zero)

        run_bands(h, w_, band)
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
            uint16 integer codes (then ``bits`` is 8 / 16). Integer codes, and float32 codes that
            all lie on the grid ``k / (2^bits - 1)`` (as read from files), take a lookup-table path
            when autograd is off; it gives the same result as the float path.
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
    if ints is None:
        ints = as_code_indices(z, bits)
    if ints is not None and ints.device.type == "cpu":
        with torch.no_grad():
            return _lut_merge(ints, times, response, weighting, noise, bits)
    if z is None:
        z = ints.to(torch.float32) / float(2**bits - 1)
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
