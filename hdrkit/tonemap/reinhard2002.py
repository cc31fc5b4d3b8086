"""Reinhard et al. 2002 photographic tone reproduction: global operator and local dodging-and-burning.

Global: ``Lm = key / Lavg * L`` with ``Lavg`` the log-average luminance, then
``Ld = Lm * (1 + Lm / L_white**2) / (1 + Lm)`` (eq. 4; ``L_white = inf`` gives ``Lm / (1 + Lm)``).

Local (section 3.2): centre-surround responses ``V1(s) = Lm * G(sigma = s / 4)`` and
``V2(s) = V1(1.6 s)`` (Gaussians with ``alpha_1 = 1 / (2 sqrt 2)``, ``alpha_2 = 1.6 alpha_1``, so
``sigma = alpha * s / sqrt 2``) at scales ``s = 1.6 ** i``, ``i = 0 .. scales - 1``;
``V(s) = (V1 - V2) / (2**phi * key / s**2 + V1)``; per pixel the largest scale reached before
``|V| >= epsilon`` is chosen and ``Ld = Lm / (1 + V1(s_m))`` (eq. 9). This implementation is the
exact (not FFT, not approximated) version: separable sampled Gaussians truncated at 3 sigma with
replicate padding; 8 scales reach ``sigma = 6.7`` px for ``V1`` and 10.7 px for ``V2``.

Colour: ``C_out = (C / L) ** saturation * Ld`` (saturation 1 keeps the chromaticity), then clamped to
[0, 1] and encoded (sRGB by default).

OpenCV's ``createTonemapReinhard`` is *not* this operator: it implements Reinhard & Devlin 2005
("Dynamic range reduction inspired by photoreceptor physiology", parameters intensity,
light_adapt, color_adapt), so results agree only loosely (see tests).

Reference:
    E. Reinhard, M. Stark, P. Shirley, J. Ferwerda, "Photographic tone reproduction for digital
    images", ACM SIGGRAPH 2002 (Transactions on Graphics 21(3)).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from hdrkit.errors import HdrkitError
from hdrkit.tonemap.basic import _finish, as_batch, color_from_luminance, encode_display, log_average, luminance

__all__ = ["tonemap_reinhard2002", "tonemap_reinhard2002_local", "KEY", "PHI", "EPSILON", "SCALES", "SCALE_RATIO"]

KEY = 0.18
"""Key value ``a`` ("middle grey"), Reinhard et al. 2002."""

PHI = 8.0
"""Sharpening parameter of the local operator."""

EPSILON = 0.05
"""Threshold on the centre-surround response for the scale selection."""

SCALES = 8
"""Number of centre-surround scales ``s = 1.6 ** i``."""

SCALE_RATIO = 1.6
"""Ratio between consecutive scales and between surround and centre."""


def _scaled_luminance(x: torch.Tensor, key: float) -> tuple[torch.Tensor, torch.Tensor]:
    if not key > 0:
        raise HdrkitError(f"key must be positive, got {key}")
    lum = luminance(x)
    return lum, key / log_average(lum) * lum


def tonemap_reinhard2002(
    hdr: torch.Tensor,
    key: float = KEY,
    l_white: float | None = None,
    *,
    saturation: float = 1.0,
    encode: str | float = "srgb",
) -> torch.Tensor:
    """Reinhard 2002 global operator.

    Args:
        hdr: (3, H, W) or (B, 3, H, W) linear radiance in [0, inf).
        key: key value ``a``.
        l_white: smallest key-scaled luminance mapped to white; None uses the image's maximum
            ``Lm`` (the paper's default, so the brightest pixel maps to 1); ``float('inf')`` gives
            ``Lm / (1 + Lm)``.
        saturation: exponent on ``C / L``.
        encode: 'srgb', 'linear' or a gamma number.

    Returns:
        Same shape as ``hdr``, display values in [0, 1].
    """
    x, single = as_batch(hdr)
    lum, lm = _scaled_luminance(x, key)
    if l_white is None:
        lw2 = lm.flatten(1).amax(dim=1).clamp_min(1e-6).view(-1, 1, 1, 1) ** 2
        ld = lm * (1 + lm / lw2) / (1 + lm)
    elif math.isinf(l_white):
        ld = lm / (1 + lm)
    else:
        if not l_white > 0:
            raise HdrkitError(f"l_white must be positive, inf or None, got {l_white}")
        ld = lm * (1 + lm / l_white**2) / (1 + lm)
    return _finish(encode_display(color_from_luminance(x, lum, ld, saturation), encode), single)


def _gaussian_blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable sampled Gaussian (truncated at 3 sigma, replicate padding) of (B, 1, H, W)."""
    radius = max(1, int(math.ceil(3 * sigma)))
    k = torch.arange(-radius, radius + 1, dtype=img.dtype, device=img.device)
    g = torch.exp(-0.5 * (k / sigma) ** 2)
    g = g / g.sum()
    out = F.conv2d(F.pad(img, (radius, radius, 0, 0), mode="replicate"), g.view(1, 1, 1, -1))
    return F.conv2d(F.pad(out, (0, 0, radius, radius), mode="replicate"), g.view(1, 1, -1, 1))


def tonemap_reinhard2002_local(
    hdr: torch.Tensor,
    key: float = KEY,
    *,
    phi: float = PHI,
    epsilon: float = EPSILON,
    scales: int = SCALES,
    saturation: float = 1.0,
    encode: str | float = "srgb",
) -> torch.Tensor:
    """Reinhard 2002 local operator (automatic dodging and burning).

    Args:
        hdr: (3, H, W) or (B, 3, H, W) linear radiance in [0, inf).
        key: key value ``a``.
        phi: sharpening parameter.
        epsilon: centre-surround threshold for the scale selection.
        scales: number of scales ``1.6 ** i``.
        saturation: exponent on ``C / L``.
        encode: 'srgb', 'linear' or a gamma number.

    Returns:
        Same shape as ``hdr``, display values in [0, 1].
    """
    if scales < 1:
        raise HdrkitError(f"scales must be >= 1, got {scales}")
    x, single = as_batch(hdr)
    lum, lm = _scaled_luminance(x, key)
    s = [SCALE_RATIO**i for i in range(scales + 1)]
    blurs = torch.stack([_gaussian_blur(lm, si / 4.0) for si in s])  # V1 at s_0 .. s_scales
    v1, v2 = blurs[:-1], blurs[1:]
    s_sq = torch.tensor(s[:-1], dtype=x.dtype, device=x.device).view(-1, 1, 1, 1, 1) ** 2
    v = (v1 - v2) / (2.0**phi * key / s_sq + v1)
    below = (v.abs() < epsilon).to(torch.int64)
    run = torch.cumprod(below, dim=0).sum(dim=0, keepdim=True)  # leading scales with |V| < eps
    idx = (run - 1).clamp_min(0)
    v1_sel = torch.gather(v1, 0, idx)[0]
    ld = lm / (1 + v1_sel)
    return _finish(encode_display(color_from_luminance(x, lum, ld, saturation), encode), single)
