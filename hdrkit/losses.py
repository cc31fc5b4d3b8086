"""Training losses by name (``LOSSES``), all on radiance in units of the shortest exposure.

The mu-law losses compare ``mu_law(clip(x))`` (mu = 5000), the domain of the PSNR-mu metric, as
Kalantari & Ramamoorthi 2017 (squared error) and Yan et al. 2019 (L1) train. The clip is leaky above 1
(slope 0.01) so a prediction above saturation still gets a gradient back towards the target.

Single-image networks must learn the radiance above the clip level that these losses discard: ``log_l1``
compares logs, unclipped, as HDRCNN (Eilertsen et al. 2017, eq. 19) and SingleHDR train in the log domain.
"""

from __future__ import annotations

import math

import torch

from hdrkit.tonemap.mu_law import MU, mu_law

__all__ = ["LOSSES", "LOG_EPS", "UNCLIPPED_LOSSES", "leaky_clip", "log_l1", "mu_l1", "mu_l2", "l1"]

LOG_EPS = 1.0 / 255
"""``log_l1``'s offset, ``log(H + eps)``: about the linear value of code 0.08 through gamma 2.2, so the
noisy, coarsely quantized shadows weigh less than the rest (HDRCNN's eq. 19 offset, value our choice)."""


def leaky_clip(x: torch.Tensor, slope: float = 0.01) -> torch.Tensor:
    """``clip(x, 0, 1)`` with slope ``slope`` above 1 (values below 0 are clipped)."""
    x = x.clamp_min(0)
    return torch.where(x > 1, 1 + slope * (x - 1), x)


def mu_l1(pred: torch.Tensor, target: torch.Tensor, mu: float = MU) -> torch.Tensor:
    """Mean absolute error after the mu-law compressor (Yan et al. 2019)."""
    return (mu_law(leaky_clip(pred), mu) - mu_law(target.clamp(0, 1), mu)).abs().mean()


def mu_l2(pred: torch.Tensor, target: torch.Tensor, mu: float = MU) -> torch.Tensor:
    """Mean squared error after the mu-law compressor (Kalantari & Ramamoorthi 2017)."""
    return (mu_law(leaky_clip(pred), mu) - mu_law(target.clamp(0, 1), mu)).square().mean()


def l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error of linear radiance clipped to [0, 1]."""
    return (leaky_clip(pred) - target.clamp(0, 1)).abs().mean()


def _soft_log(x: torch.Tensor, eps: float) -> torch.Tensor:
    """``log(x + eps)``, continued linearly (same slope at 0) below 0, so negative outputs get a gradient."""
    return torch.where(x >= 0, torch.log(x.clamp_min(0) + eps), math.log(eps) + x / eps)


def log_l1(pred: torch.Tensor, target: torch.Tensor, eps: float = LOG_EPS) -> torch.Tensor:
    """Mean absolute difference of ``log(H + eps)``, unclipped: the loss of single-image networks."""
    return (_soft_log(pred, eps) - torch.log(target.clamp_min(0) + eps)).abs().mean()


LOSSES = {"mu_l1": mu_l1, "mu_l2": mu_l2, "l1": l1, "log_l1": log_l1}

UNCLIPPED_LOSSES = ("log_l1",)
"""Losses that see radiance above 1 (the only ones a single-image network can learn highlights from)."""
