"""Akyüz, Fleming, Riecke, Reinhard & Bülthoff, "Do HDR displays support LDR content? A psychophysical
evaluation", ACM TOG (SIGGRAPH) 26(3), 2007: the linear expansion of luminance to the display's range.

``L_w = k ((L_d - L_d,min) / (L_d,max - L_d,min)) ** gamma`` on the luminance of the linearized photo, with
the display peak ``k`` and ``gamma = 1``, the setting the paper's observers preferred (as in Banterle's HDR
Toolbox ``AkyuzEO``). Nothing is reconstructed above the clip: it is the "stretch what is there" baseline.
"""

from __future__ import annotations

import torch

from hdrkit.expand.common import linear_luminance, with_luminance

__all__ = ["AKYUZ_PEAK", "AKYUZ_GAMMA", "expand_akyuz2007"]

AKYUZ_PEAK = 3000.0
"""k: peak luminance in cd/m^2 of the BrightSide DR37-P display of the study."""

AKYUZ_GAMMA = 1.0
"""gamma: linear scaling, preferred in the study over the non-linear variants."""


def expand_akyuz2007(ldr: torch.Tensor, response=None, *, peak: float = AKYUZ_PEAK,
                     gamma: float = AKYUZ_GAMMA) -> torch.Tensor:
    """Linear expansion of one photo per batch item.

    Args:
        ldr: (B, 3, H, W) display-referred codes in [0, 1].
        response: the camera response to linearize with (``Response``); None: gamma 2.2.
        peak: output luminance of the brightest pixel (cd/m^2 on the study's display).
        gamma: exponent of the normalized luminance.

    Returns:
        (B, 3, H, W) float32 linear radiance, luminance in ``[0, peak]``.
    """
    linear, lum = linear_luminance(ldr, response)
    lo = lum.amin(dim=(1, 2, 3), keepdim=True)
    hi = lum.amax(dim=(1, 2, 3), keepdim=True)
    norm = ((lum - lo) / (hi - lo).clamp_min(1e-12)).clamp(0, 1)
    return with_luminance(linear, lum, peak * norm**gamma)
