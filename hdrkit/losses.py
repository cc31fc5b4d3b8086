"""Training losses by name (``LOSSES``), all on radiance in units of the shortest exposure.

The mu-law losses compare ``mu_law(clip(x))`` (mu = 5000), the domain of the PSNR-mu metric, as
Kalantari & Ramamoorthi 2017 (squared error) and Yan et al. 2019 (L1) train. The clip is leaky above 1
(slope 0.01) so a prediction above saturation still gets a gradient back towards the target.
"""

from __future__ import annotations

import torch

from hdrkit.tonemap.mu_law import MU, mu_law

__all__ = ["LOSSES", "leaky_clip", "mu_l1", "mu_l2", "l1"]


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


LOSSES = {"mu_l1": mu_l1, "mu_l2": mu_l2, "l1": l1}
