"""Summary statistics of a radiance map, as ``hdrkit info`` prints them."""

from __future__ import annotations

import math

import torch

__all__ = ["luminance", "hdr_stats"]

REC709_LUMA = (0.2126, 0.7152, 0.0722)
"""Rec. ITU-R BT.709 luminance weights for linear RGB."""


def luminance(hdr: torch.Tensor) -> torch.Tensor:
    """Linear luminance of ``hdr`` (..., 3, H, W) -> (..., 1, H, W)."""
    w = torch.tensor(REC709_LUMA, dtype=hdr.dtype, device=hdr.device).view(3, 1, 1)
    return (hdr * w).sum(dim=-3, keepdim=True)


def hdr_stats(hdr: torch.Tensor, low_quantile: float = 0.001, high_quantile: float = 0.999) -> dict[str, str]:
    """Size, value range, dynamic range in stops and the fraction of clipped pixels.

    Dynamic range is ``log2(L_high / L_low)`` over the given luminance quantiles of non-zero pixels
    (robust to isolated hot or dead pixels); the full-range figure uses min and max. A pixel counts
    as clipped when a channel sits at that channel's maximum value and more than 0.01 % of pixels share
    it (a plateau, as left by sensor saturation), or when it is zero in every channel.
    """
    x = hdr.detach().to(torch.float64)
    c, h, w = x.shape[-3:]
    lum = luminance(x).flatten()
    pos = lum[lum > 0]
    if pos.numel() >= 2:
        sample = pos if pos.numel() <= 4_000_000 else pos[torch.randperm(pos.numel())[:4_000_000]]
        lo, hi = torch.quantile(sample, torch.tensor([low_quantile, high_quantile], dtype=torch.float64)).tolist()
        robust = math.log2(hi / lo) if lo > 0 else float("inf")
        full = math.log2(pos.max().item() / pos.min().item())
    else:
        robust = full = 0.0
    flat = x.reshape(c, -1)
    at_max = flat == flat.max(dim=1, keepdim=True).values
    plateau = at_max.float().mean(dim=1) > 1e-4
    clipped_hi = (at_max & plateau[:, None]).any(dim=0)
    black = (flat <= 0).all(dim=0)
    return {
        "size": f"{w} x {h} ({c} channels)",
        "min": f"{x.min().item():.6g}",
        "max": f"{x.max().item():.6g}",
        "mean": f"{x.mean().item():.6g}",
        "dynamic range": f"{robust:.2f} stops ({low_quantile:g}-{high_quantile:g} quantiles); {full:.2f} stops min-max",
        "clipped": f"{100 * clipped_hi.float().mean().item():.3f} % at the maximum, {100 * black.float().mean().item():.3f} % black",
    }
