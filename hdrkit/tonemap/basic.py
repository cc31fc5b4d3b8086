"""Simple display transforms: exposure + gamma / sRGB encoding, automatic preview exposure, mu-law.

Shared conventions of ``hdrkit.tonemap``: input ``hdr`` is (3, H, W) or (B, 3, H, W) linear
radiance in [0, inf) (negative values are clamped to 0; NaN/Inf are rejected); output has the same
shape, display-referred in [0, 1], encoded as the ``encode`` argument says: ``'srgb'`` (IEC
61966-2-1 transfer function), ``'linear'`` (no encoding), or a number ``g`` for ``y = x ** (1 / g)``.
Statistics (log-average, maximum, percentiles) are per image of a batch.

Automatic preview exposure (``auto_exposure``): ``'percentile'`` scales so the ``percentile``-th
luminance lands on ``target`` (default: the 99th percentile on 1.0, i.e. about 1 % of pixels clip);
``'log_average'`` scales so the log-average luminance lands on ``target`` (Reinhard's key, 0.18).

References:
    IEC 61966-2-1:1999 (sRGB). ITU-R BT.709 (luminance weights).
    N. Kalantari, R. Ramamoorthi, "Deep high dynamic range imaging of dynamic scenes", SIGGRAPH 2017 (mu-law).
"""

from __future__ import annotations

import math

import torch

from hdrkit.camera.response import SRGBResponse
from hdrkit.errors import HdrkitError
from hdrkit.tonemap.mu_law import MU, mu_law

__all__ = [
    "LUMINANCE_WEIGHTS",
    "LOG_DELTA",
    "luminance",
    "log_average",
    "encode_display",
    "auto_exposure",
    "exposure_gamma",
    "tonemap_mu_law",
]

LUMINANCE_WEIGHTS = (0.2126, 0.7152, 0.0722)
"""Rec. 709 / sRGB relative luminance weights."""

LOG_DELTA = 1e-6
"""The small offset in the log-average ``exp(mean(log(delta + L)))`` (Reinhard et al. 2002, eq. 1)."""

_TINY = 1e-12


def as_batch(hdr: torch.Tensor, name: str = "hdr") -> tuple[torch.Tensor, bool]:
    """Validate and return ``hdr`` as (B, 3, H, W) clamped at 0, plus whether it was unbatched."""
    if not isinstance(hdr, torch.Tensor) or not hdr.is_floating_point():
        raise HdrkitError(f"{name} must be a floating-point torch tensor of shape (3, H, W) or (B, 3, H, W)")
    if hdr.ndim not in (3, 4) or hdr.shape[-3] != 3:
        raise HdrkitError(f"{name} must have shape (3, H, W) or (B, 3, H, W), got {tuple(hdr.shape)}")
    if not torch.isfinite(hdr).all():
        raise HdrkitError(f"{name} contains NaN or Inf: clean it (e.g. torch.nan_to_num) before tone mapping")
    single = hdr.ndim == 3
    x = hdr[None] if single else hdr
    return x.clamp_min(0), single


def luminance(hdr: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) linear RGB -> (..., 1, H, W) Rec. 709 luminance."""
    w = torch.tensor(LUMINANCE_WEIGHTS, dtype=hdr.dtype, device=hdr.device).view(3, 1, 1)
    return (hdr * w).sum(dim=-3, keepdim=True)


def log_average(lum: torch.Tensor, delta: float = LOG_DELTA) -> torch.Tensor:
    """(B, 1, H, W) luminance -> (B, 1, 1, 1) log-average ``exp(mean(log(delta + L)))``."""
    return torch.exp(torch.log(delta + lum).mean(dim=(1, 2, 3), keepdim=True))


def encode_display(linear: torch.Tensor, encode: str | float = "srgb") -> torch.Tensor:
    """Clamp display-linear values to [0, 1] and encode them: 'srgb', 'linear' or a gamma number."""
    x = linear.clamp(0, 1)
    if isinstance(encode, str):
        if encode == "srgb":
            return SRGBResponse().forward(x)
        if encode == "linear":
            return x
        raise HdrkitError(f"unknown encode {encode!r}: use 'srgb', 'linear' or a gamma such as 2.2")
    gamma = float(encode)
    if not gamma > 0:
        raise HdrkitError(f"encode gamma must be positive, got {encode}")
    return x.clamp_min(_TINY).pow(1.0 / gamma) * (x > 0)


def color_from_luminance(hdr: torch.Tensor, lum: torch.Tensor, lum_out: torch.Tensor, saturation: float = 1.0) -> torch.Tensor:
    """Rescale colour to a new luminance: ``C_out = (C / L) ** saturation * L_out`` (0 where L = 0)."""
    safe = lum.clamp_min(_TINY)
    ratio = hdr / safe
    if saturation != 1.0:
        ratio = ratio.clamp_min(_TINY).pow(saturation)
    return torch.where(lum > 0, ratio * lum_out, torch.zeros_like(hdr))


def _finish(out: torch.Tensor, single: bool) -> torch.Tensor:
    return out[0] if single else out


def auto_exposure(
    hdr: torch.Tensor,
    method: str = "percentile",
    *,
    percentile: float = 99.0,
    target: float | None = None,
) -> torch.Tensor:
    """Scale factor per image that exposes ``hdr`` for preview.

    Args:
        hdr: (3, H, W) or (B, 3, H, W) linear radiance.
        method: 'percentile' (the ``percentile``-th luminance -> ``target``, default 1.0) or
            'log_average' (log-average luminance -> ``target``, default 0.18).
        percentile: in (0, 100].
        target: display-linear value the statistic maps to.

    Returns:
        (B,) scales (a 0-dim tensor for a single image); 1 for an all-black image.
    """
    x, single = as_batch(hdr)
    lum = luminance(x)
    if method == "percentile":
        if not 0 < percentile <= 100:
            raise HdrkitError(f"percentile must be in (0, 100], got {percentile}")
        flat = lum.flatten(1)
        k = min(max(int(math.ceil(percentile / 100.0 * flat.shape[1])), 1), flat.shape[1])
        stat = flat.kthvalue(k, dim=1).values  # nearest-rank percentile (torch.quantile caps at 16M values)
        target = 1.0 if target is None else target
    elif method == "log_average":
        stat = log_average(lum).flatten()
        target = 0.18 if target is None else target
        stat = torch.where(lum.flatten(1).amax(dim=1) > 0, stat, torch.zeros_like(stat))
    else:
        raise HdrkitError(f"unknown auto-exposure method {method!r}: use 'percentile' or 'log_average'")
    if stat.le(0).any():
        stat = torch.where(stat > 0, stat, lum.flatten(1).amax(dim=1))
    scale = torch.where(stat > 0, target / stat.clamp_min(_TINY), torch.ones_like(stat))
    return scale[0] if single else scale


def exposure_gamma(
    hdr: torch.Tensor,
    scale: float | torch.Tensor | None = None,
    *,
    encode: str | float = "srgb",
    auto: str = "percentile",
) -> torch.Tensor:
    """Expose and encode: ``encode(clip(hdr * scale, 0, 1))``.

    Args:
        hdr: (3, H, W) or (B, 3, H, W) linear radiance in [0, inf).
        scale: linear exposure multiplier (a number or (B,) tensor); None picks it with
            ``auto_exposure(hdr, auto)``.
        encode: 'srgb' (default), 'linear' or a gamma number (e.g. 2.2).
        auto: auto-exposure method when ``scale`` is None.

    Returns:
        Same shape as ``hdr``, display codes in [0, 1].
    """
    x, single = as_batch(hdr)
    if scale is None:
        s = auto_exposure(x, auto)
    else:
        s = torch.as_tensor(scale, dtype=x.dtype, device=x.device)
        if not torch.isfinite(s).all() or (s < 0).any():
            raise HdrkitError(f"scale must be finite and non-negative, got {scale}")
    s = s.reshape(-1, 1, 1, 1) if s.ndim else s
    return _finish(encode_display(x * s, encode), single)


def tonemap_mu_law(hdr: torch.Tensor, mu: float = MU, peak: float | None = None) -> torch.Tensor:
    """mu-law display mapping ``log(1 + mu * H / peak) / log(1 + mu)`` clipped to [0, 1].

    Args:
        hdr: (3, H, W) or (B, 3, H, W) linear radiance.
        mu: compression strength (5000 as in Kalantari & Ramamoorthi 2017).
        peak: radiance that maps to 1. None uses each image's maximum (so the output spans up to 1);
            pass 1.0 for data already normalized to [0, 1] (the training/metric domain).

    Returns:
        Same shape, in [0, 1] (the mu-law curve is its own encoding; no further gamma).
    """
    x, single = as_batch(hdr)
    if peak is None:
        p = x.flatten(1).amax(dim=1).clamp_min(_TINY).view(-1, 1, 1, 1)
    else:
        if not peak > 0:
            raise HdrkitError(f"peak must be positive, got {peak}")
        p = peak
    return _finish(mu_law((x / p).clamp(0, 1), mu), single)
