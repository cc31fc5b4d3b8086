"""Per-pixel weights for merging an exposure bracket into radiance.

Every weight here is a function of the code value ``z`` in [0, 1] (and, for the noise-optimal
weights, of the exposure time, the response and a sensor noise model). All but ``opencv_hat``
are multiplied by ``clip_taper``, so clipped codes get exactly zero weight.

References:
    Debevec & Malik, "Recovering high dynamic range radiance maps from photographs", SIGGRAPH 1997
    (hat weights).
    Robertson, Borman & Stevenson, "Estimation-theoretic approach to dynamic range enhancement using
    multiple exposures", J. Electronic Imaging 12(2), 2003 (Gaussian-like weights).
    Granados, Ajdin, Wand, Theobalt, Seidel & Lensch, "Optimal HDR reconstruction with linear digital
    cameras", CVPR 2010 (inverse-variance weights from a Poisson-Gaussian noise model).
    Hanji, Zhong & Mantiuk, "Noise-aware merging of high dynamic range image stacks without camera
    calibration", ECCV Workshops 2020.
"""

from __future__ import annotations

import torch

from hdrkit.camera.exposure import NoiseModel
from hdrkit.camera.response import Response

__all__ = [
    "SATURATION_CODE",
    "SATURATION_RAMP",
    "DARK_CODE",
    "DARK_RAMP",
    "DEFAULT_NOISE",
    "WEIGHTINGS",
    "saturation_taper",
    "dark_taper",
    "hat_shape",
    "gaussian_shape",
    "clip_taper",
    "hat",
    "gaussian",
    "opencv_hat_table",
    "radiance_variance",
    "noise_optimal",
    "frame_weights",
]

SATURATION_CODE = 0.99
"""Codes at or above this (any channel of a pixel) count as saturated: weight 0 for the whole pixel.
0.99 (~252/255) leaves room for JPEG ringing around clipped highlights."""

SATURATION_RAMP = 0.04
"""Width of the smooth weight roll-off below ``SATURATION_CODE`` (so weights are C1 in the code)."""

DARK_CODE = 0.002
"""Codes at or below this (per channel) count as under-exposed (clipped at black): weight 0."""

DARK_RAMP = 0.01
"""Width of the smooth weight roll-off above ``DARK_CODE``."""

DEFAULT_NOISE = NoiseModel(a=(1.7e-5, 1.7e-5, 1.7e-5), b=(3.4e-8, 3.4e-8, 3.4e-8))
"""Poisson-Gaussian noise used when none is given: the median over darktable's noise profiles at
ISO 400 (a = 1.71e-5, b = 3.36e-8 in raw units normalized to saturation)."""

WEIGHTINGS = ("noise_optimal", "hat", "gaussian", "opencv_hat")


def _smoothstep(u: torch.Tensor) -> torch.Tensor:
    u = u.clamp(0, 1)
    return u * u * (3 - 2 * u)


def saturation_taper(ldr: torch.Tensor) -> torch.Tensor:
    """C1 roll-off to 0 at ``SATURATION_CODE`` of the codes given (callers pass the channel max)."""
    return _smoothstep((SATURATION_CODE - ldr) / SATURATION_RAMP)


def dark_taper(ldr: torch.Tensor) -> torch.Tensor:
    """C1 roll-off to 0 at ``DARK_CODE``, per value."""
    return _smoothstep((ldr - DARK_CODE) / DARK_RAMP)


def hat_shape(ldr: torch.Tensor) -> torch.Tensor:
    """Debevec & Malik (1997) triangle ``min(z, 1 - z)``."""
    return torch.minimum(ldr, 1 - ldr).clamp_min(0)


def gaussian_shape(ldr: torch.Tensor) -> torch.Tensor:
    """``exp(-16 (z - 1/2)^2)`` shifted and scaled to be 0 at z = 0 and 1 (OpenCV's RobertsonWeights)."""
    e4 = torch.exp(torch.tensor(4.0, dtype=ldr.dtype, device=ldr.device))
    return ((e4 * torch.exp(-((4 * ldr - 2) ** 2)) - 1) / (e4 - 1)).clamp_min(0)


def clip_taper(ldr: torch.Tensor) -> torch.Tensor:
    """Zero for clipped codes, one for well-exposed codes, a C1 ramp in between.

    Args:
        ldr: (..., 3, H, W) codes in [0, 1].

    Returns:
        (..., 3, H, W) factors in [0, 1]. Saturation is judged on the pixel's largest channel (a
        clipped channel corrupts the others after demosaicing and colour processing), under-exposure
        per channel.
    """
    return saturation_taper(ldr.amax(dim=-3, keepdim=True)) * dark_taper(ldr)


def hat(ldr: torch.Tensor) -> torch.Tensor:
    """Debevec & Malik (1997) triangle ``min(z, 1 - z)`` times ``clip_taper``."""
    return hat_shape(ldr) * clip_taper(ldr)


def gaussian(ldr: torch.Tensor) -> torch.Tensor:
    """Robertson et al. (2003) bell ``exp(-16 (z - 1/2)^2)``, shifted and scaled to be 0 at z = 0, 1.

    The same curve as OpenCV's ``RobertsonWeights``; multiplied by ``clip_taper``.
    """
    return gaussian_shape(ldr) * clip_taper(ldr)


def opencv_hat_table(levels: int = 256, dtype=torch.float32, device=None) -> torch.Tensor:
    """OpenCV >= 4.x ``MergeDebevec`` triangle over integer codes: ``w[i] = i`` below the middle,
    ``levels - 1 - i`` above, and ``w[0] = w[-1] = 1e-6``. (levels,)"""
    i = torch.arange(levels, dtype=dtype, device=device)
    w = torch.where(i < levels // 2, i, levels - 1 - i)
    w[0] = w[-1] = 1e-6
    return w


def radiance_variance(
    ldr: torch.Tensor,
    exposure_times: torch.Tensor,
    response: Response,
    noise: NoiseModel,
    bits: int | None,
    linear: torch.Tensor | None = None,
) -> torch.Tensor:
    """Variance of the per-frame radiance estimate ``f^-1(z) / t``.

    ``var = (a x + b + q(z)) / t^2`` with ``x = f^-1(z)`` the linear sensor signal, ``a, b`` the
    Poisson-Gaussian parameters and ``q(z) = (f^-1(z + d/2) - f^-1(z - d/2))^2 / 12`` the quantization
    noise (code step ``d = 1 / (2^bits - 1)``) carried through the inverse response.

    Args:
        ldr: (B, N, 3, H, W) codes in [0, 1].
        exposure_times: (B, N) exposure times (any unit; the variance is in radiance units of 1/t).
        response: camera response.
        noise: sensor noise model.
        bits: code depth, or None for no quantization noise.
        linear: optional precomputed ``f^-1(ldr)``.

    Returns:
        (B, N, 3, H, W) variances, strictly positive.
    """
    x = response.inverse(ldr) if linear is None else linear
    var = noise.variance(x)
    if bits is not None:
        half = 0.5 / (2**bits - 1)
        step = response.inverse(ldr + half) - response.inverse(ldr - half)
        var = var + step * step / 12.0
    t = exposure_times.to(ldr.dtype)[:, :, None, None, None]
    return var.clamp_min(1e-20) / (t * t)


def noise_optimal(
    ldr: torch.Tensor,
    exposure_times: torch.Tensor,
    response: Response,
    noise: NoiseModel,
    bits: int | None,
    linear: torch.Tensor | None = None,
) -> torch.Tensor:
    """Inverse-variance weights ``clip_taper(z) / radiance_variance`` (Granados et al. 2010).

    Shapes as in ``radiance_variance``. The weights are proportional to ``t^2``, so they are large
    numbers; only their ratios matter.
    """
    var = radiance_variance(ldr, exposure_times, response, noise, bits, linear)
    return clip_taper(ldr) / var


def frame_weights(
    ldr: torch.Tensor,
    exposure_times: torch.Tensor,
    response: Response,
    weighting: str,
    noise: NoiseModel | None,
    bits: int | None,
    linear: torch.Tensor | None = None,
) -> torch.Tensor:
    """Weights (B, N, 3, H, W) for ``weighting`` in ``WEIGHTINGS`` other than ``'opencv_hat'``."""
    if weighting == "noise_optimal":
        return noise_optimal(ldr, exposure_times, response, noise or DEFAULT_NOISE, bits, linear)
    if weighting == "hat":
        return hat(ldr)
    if weighting == "gaussian":
        return gaussian(ldr)
    raise ValueError(weighting)
