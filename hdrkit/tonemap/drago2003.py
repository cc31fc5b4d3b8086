"""Drago et al. 2003 adaptive logarithmic mapping.

World luminance is divided by its log-average (the world adaptation luminance), then

``Ld = (Ld_max * 0.01 / log10(Lw_max + 1)) * ln(Lw + 1) / ln(2 + 8 * (Lw / Lw_max) ** (ln b / ln 0.5))``

with bias ``b = 0.85`` and display peak ``Ld_max = 100`` cd/m^2 (so ``Lw_max`` maps to
``Ld_max / 100 = 1``). Colour: ``C_out = (C / L) ** saturation * Ld``, clamped to [0, 1] and
encoded (sRGB by default; the paper uses its own Rec. 709-style gamma 2.2 curve).

OpenCV's ``createTonemapDrago(gamma, saturation, bias)`` applies the same curve but drops the
``Ld_max / log10`` factor and instead divides the mapped RGB by its maximum before a plain gamma,
so the two agree up to a per-image scale and the encoding (see tests).

Reference:
    F. Drago, K. Myszkowski, T. Annen, N. Chiba, "Adaptive logarithmic mapping for displaying
    high contrast scenes", Computer Graphics Forum 22(3), Eurographics 2003.
"""

from __future__ import annotations

import math

import torch

from hdrkit.errors import HdrkitError
from hdrkit.tonemap.basic import _finish, as_batch, color_from_luminance, encode_display, log_average, luminance

__all__ = ["tonemap_drago2003", "BIAS", "LD_MAX"]

BIAS = 0.85
"""Bias ``b`` of the adaptive logarithm base (the paper's preferred value)."""

LD_MAX = 100.0
"""Maximum display luminance in cd/m^2 (the paper's reference display)."""


def tonemap_drago2003(
    hdr: torch.Tensor,
    bias: float = BIAS,
    ld_max: float = LD_MAX,
    *,
    saturation: float = 1.0,
    encode: str | float = "srgb",
) -> torch.Tensor:
    """Drago 2003 adaptive logarithmic mapping.

    Args:
        hdr: (3, H, W) or (B, 3, H, W) linear radiance in [0, inf).
        bias: bias ``b`` in (0, 1); smaller is brighter.
        ld_max: display peak in cd/m^2; the output is ``Ld`` in units of 100 cd/m^2.
        saturation: exponent on ``C / L``.
        encode: 'srgb', 'linear' or a gamma number.

    Returns:
        Same shape as ``hdr``, display values in [0, 1].
    """
    if not 0 < bias < 1:
        raise HdrkitError(f"bias must be in (0, 1), got {bias}")
    if not ld_max > 0:
        raise HdrkitError(f"ld_max must be positive, got {ld_max}")
    x, single = as_batch(hdr)
    lum = luminance(x)
    lw = lum / log_average(lum)
    lw_max = lw.flatten(1).amax(dim=1).view(-1, 1, 1, 1).clamp_min(1e-6)
    exponent = math.log(bias) / math.log(0.5)
    base = torch.log(2.0 + 8.0 * (lw / lw_max).clamp_min(1e-12).pow(exponent))
    ld = (ld_max * 0.01 / torch.log10(lw_max + 1.0)) * torch.log1p(lw) / base
    return _finish(encode_display(color_from_luminance(x, lum, ld, saturation), encode), single)
