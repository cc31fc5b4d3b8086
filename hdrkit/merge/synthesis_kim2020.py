"""Differentiable HDR synthesis (Kim, Lee & Kang 2020): Debevec & Malik 1997 calibration and merge as torch ops.

Given a generated (or real) exposure stack, the layer recovers the log inverse response ``g`` by
Debevec & Malik's least squares (eq. 1 of the paper) and merges the stack into radiance with it
(eq. 2), so that a loss on the radiance reaches the frames through both steps:

- **Samples** are Grossberg & Nayar pseudo-pixels: the same histogram quantiles and fractional codes as
  the classical calibration (:func:`~hdrkit.camera.sampling.select_samples_grossberg2003`). Each sample's
  code is written as ``(L - 1) * mean of the frame's pixels in its quantization bin`` plus its
  (constant) position inside the bin, so it equals the classical code on quantized frames and moves
  with the pixels of that bin on continuous ones (gradient ``(L - 1) / count`` to each of them).
- **Eq. 1** is solved exactly as :func:`~hdrkit.camera.debevec1997.solve_debevec1997` does (same hat
  row weights, smoothness ``lambda`` and its weighting, radiances eliminated, ``g[L - 1] = 0``), but
  with a dense Cholesky solve of the ``L x L`` normal equations, so ``g`` is differentiable
  with respect to the sample codes and the exposure times.
- **Eq. 3**: ``g`` is made non-decreasing (running maximum, as :class:`~hdrkit.camera.TabulatedResponse`
  does) and applied piecewise-linearly between levels, so ``d g_hat / dZ = g(k + 1) - g(k)`` on
  ``[k, k + 1]`` (the paper writes the same slope as a backward difference).
- **Eq. 2**: ``ln E = sum_j w_j (g_hat(Z_j) - ln t_j) / sum_j w_j`` with hdrkit's hat weights
  (:func:`hdrkit.merge.weights.hat`: Debevec's triangle, zero on clipped codes), i.e. Debevec's
  weighted log-domain merge as in the official ``hdrlayer`` (``merge_type='log'``); ``domain='linear'``
  instead averages ``f^-1(Z_j) / t_j`` with :func:`~hdrkit.merge.merge_debevec1997` (``weighting='hat'``),
  the classical pipeline of ``hdrkit calibrate`` + ``hdrkit merge --method debevec``.

Deviation from the official code (``JungHeeKim29/DiffHDRsyn: hdrlayer.py``): there the response is
estimated in numpy without gradient and only the table lookup has a custom backward; here the whole
calibration is differentiable.

References:
    Kim, Lee & Kang, "Differentiable HDR image synthesis using multi-exposure images", NeurIPS 2020
    Workshop on Differentiable Vision, Graphics, and Physics in Machine Learning.
    Debevec & Malik, "Recovering high dynamic range radiance maps from photographs", SIGGRAPH 1997.
    Grossberg & Nayar, "Determining the camera response from images: what is knowable?", TPAMI 2003.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from hdrkit.camera.debevec1997 import (
    DEBEVEC_SMOOTHNESS,
    QUANTILES_PER_LEVEL,
    SMOOTHNESS_FLOOR,
    SMOOTHNESS_WEIGHT_POWER,
    hat_weights,
)
from hdrkit.camera.exposure import normalize_times
from hdrkit.camera.response import BatchedResponse
from hdrkit.camera.sampling import MAX_PIXELS, prepare_bracket, select_samples_grossberg2003
from hdrkit.errors import HdrkitError
from hdrkit.merge import weights as W
from hdrkit.merge.debevec1997 import fallback_radiance, merge_debevec1997, weighted_mean

__all__ = ["SYNTHESIS_LEVELS", "recover_log_response_kim2020", "apply_log_response", "synthesize_hdr_kim2020"]

#: Code levels of the recovered response: the paper's K + 1 = 256 (8-bit stacks).
SYNTHESIS_LEVELS = 256

DOMAINS = ("log", "linear")


def _smoothness_matrix(levels: int, smoothness: float, empty: np.ndarray) -> np.ndarray:
    """``lambda D^T W D`` of :func:`~hdrkit.camera.debevec1997.solve_debevec1997` plus its gauge ``g[L-1] = 0``, dense."""
    lam = smoothness * (levels / 256.0) ** 3
    d = np.zeros((levels - 2, levels))
    i = np.arange(levels - 2)
    d[i, i], d[i, i + 1], d[i, i + 2] = 1.0, -2.0, 1.0
    hat = np.maximum(hat_weights(levels)[1:-1], 2.0 / 255.0)
    ws = hat**SMOOTHNESS_WEIGHT_POWER + SMOOTHNESS_FLOOR * empty[1:-1]
    s = lam * (d.T * ws) @ d
    s[levels - 1, levels - 1] += 1.0
    return s


def _channel_system(x: torch.Tensor, bins: np.ndarray, log_t: torch.Tensor, levels: int, smoothness: float,
                    samples: int | None, per_level: int):
    """Normal equations ``(A, rhs)`` of eq. 1 for one channel; x (N, M) codes in [0, 1] with grad, bins (N, M)."""
    n = x.shape[0]
    codes, level = select_samples_grossberg2003(bins, levels, samples, per_level)
    v = hat_weights(levels)[level] ** 2
    keep = (v > 0).sum(axis=1) >= 2
    if not keep.any():
        raise HdrkitError("ldr: no pixel is well exposed in two frames; use a stack with overlapping exposures")
    codes, level, v = codes[keep], level[keep], v[keep]
    # mean code of each (frame, bin): differentiable in x, equal to the bin's level on quantized frames
    flat = torch.from_numpy(bins + levels * np.arange(n)[:, None]).to(x.device).reshape(-1)
    sums = torch.zeros(n * levels, dtype=x.dtype, device=x.device).index_add(0, flat, x.reshape(-1))
    count = torch.bincount(flat, minlength=n * levels).clamp_min(1).to(x.dtype)
    means = (sums / count).view(n, levels) * (levels - 1)
    lvl = torch.from_numpy(level).to(x.device)
    code = means.gather(1, lvl.T).T + torch.from_numpy(codes - level).to(x)
    vt = torch.from_numpy(v).to(x)
    vsum = vt.sum(dim=1, keepdim=True)
    scale = 1.0 / vt.shape[0]
    lo = torch.floor(code.detach()).clamp(0, levels - 2).long()
    frac = code - lo
    idx = torch.cat([lo, lo + 1], dim=1)
    coef = torch.cat([1 - frac, frac], dim=1)
    m = -(vt[:, :, None] * vt[:, None, :]) / vsum[:, :, None]
    m = m + torch.diag_embed(vt)
    m = m.repeat(1, 2, 2) * coef[:, :, None] * coef[:, None, :]
    pair = (idx[:, :, None] * levels + idx[:, None, :]).reshape(-1)
    a = torch.zeros(levels * levels, dtype=x.dtype, device=x.device).index_add(0, pair, m.reshape(-1) * scale)
    bbar = (vt * log_t).sum(dim=1, keepdim=True) / vsum
    r = (vt * (log_t - bbar)).repeat(1, 2) * coef
    rhs = torch.zeros(levels, dtype=x.dtype, device=x.device).index_add(0, idx.reshape(-1), r.reshape(-1) * scale)
    occupied = np.bincount(idx.detach().cpu().numpy().ravel(), weights=np.tile(v, (1, 2)).ravel(), minlength=levels)
    return a.view(levels, levels), rhs, occupied <= 0


def recover_log_response_kim2020(
    ldr: torch.Tensor,
    exposure_times: torch.Tensor,
    *,
    levels: int = SYNTHESIS_LEVELS,
    smoothness: float = DEBEVEC_SMOOTHNESS,
    samples: int | None = None,
    per_level: int = QUANTILES_PER_LEVEL,
    max_pixels: int = MAX_PIXELS,
) -> torch.Tensor:
    """Differentiable Debevec & Malik response recovery (eq. 1 of Kim et al. 2020).

    Args:
        ldr: (B, N, 3, H, W) display-referred codes in [0, 1] of a static stack, N >= 2 (may require grad).
        exposure_times: (B, N) linear exposure times (only ratios matter; may require grad).
        levels: code levels L of the response (256 for 8-bit stacks).
        smoothness, samples, per_level, max_pixels: as in
            :func:`~hdrkit.camera.debevec1997.recover_response_debevec1997`.

    Returns:
        g: (B, 3, L) log inverse response ``ln f^-1`` at codes ``linspace(0, 1, L)``, non-decreasing,
        ``g[..., L - 1] = 0``; differentiable with respect to ``ldr`` and ``exposure_times``.
    """
    if not isinstance(ldr, torch.Tensor) or ldr.ndim != 5 or ldr.shape[2] != 3:
        raise HdrkitError(f"ldr must be a tensor of shape (B, N, 3, H, W), got {getattr(ldr, 'shape', type(ldr).__name__)}")
    t = torch.as_tensor(exposure_times, device=ldr.device)
    t = t if t.is_floating_point() else t.double()
    if t.shape != ldr.shape[:2]:
        raise HdrkitError(f"exposure_times must have shape {tuple(ldr.shape[:2])}, got {tuple(t.shape)}")
    dtype = torch.float64  # the normal equations need double precision (condition ~1e8 at 256 levels)
    h, w = ldr.shape[-2:]
    step = max(1, math.ceil(math.sqrt(h * w / max_pixels)))
    systems, rhss = [], []
    for b in range(ldr.shape[0]):
        bins, _, lv = prepare_bracket(ldr[b].detach(), t[b].detach(), 8 if levels <= 256 else 16, levels, max_pixels)
        x = ldr[b, :, :, step // 2 :: step, step // 2 :: step].clamp(0, 1).to(dtype)
        log_t = torch.log(t[b].to(dtype))
        for c in range(3):
            a, rhs, empty = _channel_system(x[:, c].reshape(x.shape[0], -1), bins[c], log_t, lv, smoothness,
                                            samples, per_level)
            s = torch.from_numpy(_smoothness_matrix(lv, smoothness, empty)).to(a)
            systems.append(a + s)
            rhss.append(rhs)
    chol, info = torch.linalg.cholesky_ex(torch.stack(systems))  # symmetric positive definite
    g = torch.cholesky_solve(torch.stack(rhss)[..., None], chol)[..., 0]
    if info.any() or not torch.isfinite(g).all():
        raise HdrkitError("ldr: the response system is singular; use more overlapping exposures or a larger smoothness")
    g = torch.cummax(g, dim=-1).values
    g = (g - g[:, -1:]).view(ldr.shape[0], 3, -1)
    return g.to(ldr.dtype)


def apply_log_response(ldr: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear ``g_hat(Z)`` (eq. 3): ldr (B, N, 3, H, W) in [0, 1], g (B, 3, L) -> (B, N, 3, H, W).

    Between levels ``k`` and ``k + 1`` the slope in code units is ``g(k + 1) - g(k)``.
    """
    levels = g.shape[-1]
    u = ldr.clamp(0, 1) * (levels - 1)
    lo = torch.floor(u.detach()).clamp(0, levels - 2).long()
    frac = u - lo
    b, n, c, h, w = ldr.shape
    table = g[:, None, :, None, :].expand(b, n, c, 1, levels).reshape(b, n, c, levels)
    flat = lo.reshape(b, n, c, -1)
    g0 = table.gather(-1, flat).view_as(u)
    g1 = table.gather(-1, flat + 1).view_as(u)
    return g0 + frac * (g1 - g0)


def synthesize_hdr_kim2020(
    ldr: torch.Tensor,
    exposure_times: torch.Tensor,
    *,
    domain: str = "log",
    levels: int = SYNTHESIS_LEVELS,
    smoothness: float = DEBEVEC_SMOOTHNESS,
    samples: int | None = None,
    per_level: int = QUANTILES_PER_LEVEL,
    max_pixels: int = MAX_PIXELS,
    log_response: torch.Tensor | None = None,
    return_response: bool = False,
):
    """The differentiable HDR synthesis layer: recover the response from the stack (eq. 1), merge (eq. 2).

    Args:
        ldr: (B, N, 3, H, W) display-referred codes in [0, 1], a static stack of N >= 2 exposures.
        exposure_times: (B, N) linear exposure times.
        domain: ``'log'`` (the paper's eq. 2: weighted mean of ``g_hat(Z) - ln t``) or ``'linear'``
            (weighted mean of ``f^-1(Z) / t``, hdrkit's classical Debevec merge).
        levels, smoothness, samples, per_level, max_pixels: see :func:`recover_log_response_kim2020`.
        log_response: (B, 3, L) a response already recovered (e.g. from the whole image while the
            merge runs on a tile); None recovers it from ``ldr``.
        return_response: also return ``g``.

    Returns:
        hdr: (B, 3, H, W) linear radiance in units of the shortest exposure, with ``f^-1(1) = 1``;
        (hdr, g) when ``return_response``. Weights are hdrkit's hat weights (zero on clipped codes); a
        pixel with no usable code takes the shortest frame's value if saturated, else the longest's.
    """
    if domain not in DOMAINS:
        raise HdrkitError(f"domain must be one of {DOMAINS}, got {domain!r}")
    g = log_response
    if g is None:
        g = recover_log_response_kim2020(ldr, exposure_times, levels=levels, smoothness=smoothness, samples=samples,
                                         per_level=per_level, max_pixels=max_pixels)
    t = normalize_times(torch.as_tensor(exposure_times, device=ldr.device).to(ldr.dtype))
    if domain == "linear":
        inv = torch.exp(g).clone()
        inv[..., 0] = 0.0
        hdr = merge_debevec1997(ldr, t, BatchedResponse(inv), weighting="hat", bits=None)
    else:
        z = ldr.clamp(0, 1)
        log_x = apply_log_response(z, g) - torch.log(t)[:, :, None, None, None]
        fallback = fallback_radiance(z, log_x, t)
        hdr = torch.exp(weighted_mean(log_x, W.hat(z), fallback))
    return (hdr, g) if return_response else hdr
