"""The mu-law range compressor used as the training and metric domain (Kalantari & Ramamoorthi 2017)."""

from __future__ import annotations

import math

import torch

__all__ = ["MU", "mu_law", "inverse_mu_law"]

MU = 5000.0
"""mu of the mu-law compressor, as in Kalantari & Ramamoorthi 2017 and the papers that follow it."""


def mu_law(hdr: torch.Tensor, mu: float = MU) -> torch.Tensor:
    """``log(1 + mu * H) / log(1 + mu)``; ``hdr`` (..., 3, H, W) linear, expected in [0, 1]."""
    return torch.log1p(mu * hdr) / math.log1p(mu)


def inverse_mu_law(compressed: torch.Tensor, mu: float = MU) -> torch.Tensor:
    """Inverse of ``mu_law``: ``((1 + mu) ** y - 1) / mu``."""
    return torch.expm1(compressed * math.log1p(mu)) / mu
