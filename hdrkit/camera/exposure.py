"""The LDR image formation model, forward (``expose``) and inverse (``linearize``), in one place.

Forward: ``ldr = Q_bits(f(clip(noise(hdr * t), 0, 1)))``; inverse: ``linear = f^-1(ldr) / t``.
Radiance is in units of the shortest exposure: exposing ``hdr`` with ``t = 1`` gives the
shortest frame, so ``exposure_times`` are usually normalized to ``t / t.min()``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hdrkit.camera.response import GammaResponse, Response
from hdrkit.errors import HdrkitError

__all__ = ["NoiseModel", "expose", "linearize", "normalize_times"]


@dataclass(frozen=True)
class NoiseModel:
    """Poisson-Gaussian sensor noise in normalized raw units: ``var(x) = a * x + b`` per channel.

    ``a`` (shot) and ``b`` (read) follow darktable's noise profiles (raw values scaled to [0, 1]).
    """

    a: tuple[float, float, float] = (0.0, 0.0, 0.0)
    b: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self):
        # darktable fits can give a slightly negative read-noise term; a variance cannot be negative
        if len(self.a) != 3 or len(self.b) != 3:
            raise HdrkitError("NoiseModel needs three 'a' and three 'b' values (R, G, B)")
        object.__setattr__(self, "a", tuple(max(float(v), 0.0) for v in self.a))
        object.__setattr__(self, "b", tuple(max(float(v), 0.0) for v in self.b))

    def variance(self, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel noise variance of linear signal ``x`` (..., 3, H, W)."""
        a = torch.as_tensor(self.a, dtype=x.dtype, device=x.device).view(3, 1, 1)
        b = torch.as_tensor(self.b, dtype=x.dtype, device=x.device).view(3, 1, 1)
        return a * x.clamp_min(0) + b

    def sample(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw a noisy copy of ``x``: scaled Poisson shot noise plus Gaussian read noise."""
        a = torch.as_tensor(self.a, dtype=x.dtype, device=x.device).view(3, 1, 1)
        b = torch.as_tensor(self.b, dtype=x.dtype, device=x.device).view(3, 1, 1)
        safe_a = a.clamp_min(1e-12)
        shot = torch.where(a > 0, torch.poisson((x.clamp_min(0) / safe_a).to(torch.float64), generator=generator).to(x.dtype) * safe_a, x)
        read = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device) * b.sqrt()
        return shot + read


def normalize_times(exposure_times: torch.Tensor) -> torch.Tensor:
    """Divide by the shortest exposure per bracket: (B, N) -> (B, N) with min 1."""
    t = torch.as_tensor(exposure_times)
    if not torch.isfinite(t).all() or (t <= 0).any():
        raise HdrkitError("exposure times must be finite and positive")
    return t / t.min(dim=-1, keepdim=True).values


def _check_bracket(images: torch.Tensor, exposure_times: torch.Tensor, name: str) -> torch.Tensor:
    if images.ndim != 5 or images.shape[2] != 3:
        raise HdrkitError(f"{name} must have shape (B, N, 3, H, W), got {tuple(images.shape)}")
    t = torch.as_tensor(exposure_times, dtype=images.dtype, device=images.device)
    if t.shape != images.shape[:2]:
        raise HdrkitError(f"exposure_times must have shape {tuple(images.shape[:2])}, got {tuple(t.shape)}")
    if (t <= 0).any() or not torch.isfinite(t).all():
        raise HdrkitError("exposure times must be finite and positive")
    return t


def expose(
    hdr: torch.Tensor,
    exposure_times: torch.Tensor,
    response: Response | None = None,
    noise: NoiseModel | None = None,
    bits: int | None = 8,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Simulate an LDR bracket from a radiance map.

    Args:
        hdr: (B, 3, H, W) linear radiance, [0, inf).
        exposure_times: (B, N) linear exposure factors (t = 1 maps radiance 1 to sensor saturation).
        response: camera response; default gamma 2.2.
        noise: optional Poisson-Gaussian noise applied to the linear sensor signal before clipping.
        bits: quantization depth (8, 10, 12, 16), or None for no quantization.
        generator: torch RNG for reproducible noise.

    Returns:
        ldr: (B, N, 3, H, W) display-referred codes in [0, 1].
    """
    if hdr.ndim != 4 or hdr.shape[1] != 3:
        raise HdrkitError(f"hdr must have shape (B, 3, H, W), got {tuple(hdr.shape)}")
    response = response or GammaResponse(2.2)
    t = torch.as_tensor(exposure_times, dtype=hdr.dtype, device=hdr.device)
    if t.ndim != 2 or t.shape[0] != hdr.shape[0]:
        raise HdrkitError(f"exposure_times must have shape (B, N) with B={hdr.shape[0]}, got {tuple(t.shape)}")
    x = hdr[:, None] * t[:, :, None, None, None]
    if noise is not None:
        x = noise.sample(x, generator)
    y = response.forward(x.clamp(0, 1))
    if bits is not None:
        levels = float(2**bits - 1)
        y = torch.round(y * levels) / levels
    return y


def linearize(ldr: torch.Tensor, exposure_times: torch.Tensor, response: Response | None = None) -> torch.Tensor:
    """Invert the response and divide by exposure: (B, N, 3, H, W) codes -> radiance estimates.

    Args:
        ldr: (B, N, 3, H, W) display-referred codes in [0, 1].
        exposure_times: (B, N) linear exposure factors.
        response: camera response; default gamma 2.2.

    Returns:
        (B, N, 3, H, W) per-frame radiance estimates ``f^-1(ldr) / t``.
    """
    t = _check_bracket(ldr, exposure_times, "ldr")
    response = response or GammaResponse(2.2)
    return response.inverse(ldr) / t[:, :, None, None, None]
