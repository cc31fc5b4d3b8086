"""What every expansion operator does first and last: linearize and take luminance; put colour back."""

from __future__ import annotations

import torch

from hdrkit.camera.response import GammaResponse
from hdrkit.errors import HdrkitError
from hdrkit.stats import luminance

__all__ = ["DEFAULT_GAMMA", "linear_luminance", "with_luminance"]

DEFAULT_GAMMA = 2.2
"""Inverse response used when the photo's is unknown (the gamma removal of Banterle's HDR Toolbox examples)."""

_TINY = 1e-12


def linear_luminance(ldr: torch.Tensor, response=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(linear (B, 3, H, W), luminance (B, 1, H, W))`` of codes ``ldr`` (B, 3, H, W) in [0, 1]."""
    if not isinstance(ldr, torch.Tensor) or ldr.ndim != 4 or ldr.shape[1] != 3:
        shape = tuple(ldr.shape) if isinstance(ldr, torch.Tensor) else type(ldr).__name__
        raise HdrkitError(f"ldr must have shape (B, 3, H, W), got {shape}")
    x = ldr.float().clamp(0, 1)
    linear = (response or GammaResponse(DEFAULT_GAMMA)).inverse(x)
    return linear, luminance(linear)


def with_luminance(linear: torch.Tensor, lum: torch.Tensor, new_lum: torch.Tensor) -> torch.Tensor:
    """Scale ``linear`` so its luminance becomes ``new_lum`` (colour ratios kept; black stays black)."""
    return linear * (new_lum / lum.clamp_min(_TINY)) * (lum > _TINY)
