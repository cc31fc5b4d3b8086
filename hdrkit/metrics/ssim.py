"""SSIM-L and SSIM-mu exactly as the Kalantari-protocol papers compute them, plus a torch SSIM for losses.

The protocol (``calculate_ssim`` in HDR-Transformer's and SCTNet's ``utils/utils.py``), itself the
SSIM of Wang et al. 2004:

* images are scaled to [0, 255] and clipped (``clip(x * 255, 0, 255)``, no rounding);
* local statistics use an 11 x 11 Gaussian window with sigma 1.5 (``cv2.getGaussianKernel``);
* the maps are cropped by 5 px on each side, i.e. only 'valid' windows count, so the border mode of
  the filter never matters;
* ``C1 = (0.01 * 255)^2``, ``C2 = (0.03 * 255)^2``;
* the score is the mean of the SSIM map over all valid pixels and all RGB channels (no luma).

SSIM-mu applies the same to ``mu_law(x)`` (mu = 5000). The fast path filters in float32 with the
separable ``cv2.sepFilter2D`` on mean-centred images (several times faster; agrees with the float64
path to about 1e-7 or better); ``precise=True`` filters in float64 with the 2-D ``cv2.filter2D``
window, as the protocol does. ``ssim_torch`` is the same definition as a differentiable separable
grouped convolution, for losses.

Shapes follow :mod:`hdrkit.metrics.psnr`: torch ``(C, H, W)`` / ``(B, C, H, W)``, numpy
``(H, W, C)`` / ``(B, H, W, C)``; images must be at least 11 x 11.

References:
    Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli, "Image Quality Assessment: From Error
    Visibility to Structural Similarity", IEEE TIP 13(4), 2004.
    Z. Liu et al., "Ghost-free High Dynamic Range Imaging with Context-aware Transformer", ECCV 2022.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from hdrkit.errors import HdrkitError
from hdrkit.metrics.psnr import mu_law_np, per_image
from hdrkit.tonemap.mu_law import MU

__all__ = [
    "SSIM_WINDOW",
    "SSIM_SIGMA",
    "SSIM_K1",
    "SSIM_K2",
    "gaussian_window",
    "ssim_map",
    "ssim",
    "ssim_l",
    "ssim_mu",
    "ssim_torch",
]

SSIM_WINDOW = 11
"""Gaussian window size (Wang et al. 2004; the protocol's ``cv2.getGaussianKernel(11, 1.5)``)."""
SSIM_SIGMA = 1.5
"""Gaussian window standard deviation in pixels (Wang et al. 2004)."""
SSIM_K1 = 0.01
"""Luminance stabiliser: ``C1 = (K1 * data_range)^2`` (Wang et al. 2004)."""
SSIM_K2 = 0.03
"""Contrast stabiliser: ``C2 = (K2 * data_range)^2`` (Wang et al. 2004)."""

_PAD = SSIM_WINDOW // 2


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """Normalised 1-D Gaussian taps ``(size,)`` float64, identical to ``cv2.getGaussianKernel(size, sigma)``."""
    return cv2.getGaussianKernel(size, sigma, cv2.CV_64F).ravel()


def _check_size(h: int, w: int) -> None:
    if h < SSIM_WINDOW or w < SSIM_WINDOW:
        raise HdrkitError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, got {h}x{w}")


def ssim_map(
    x: np.ndarray, y: np.ndarray, data_range: float = 255.0, precise: bool = False, border: str = "valid"
) -> np.ndarray:
    """SSIM map of two ``(H, W)`` or ``(H, W, C)`` arrays (Wang et al. 2004, Gaussian 11 x 11, sigma 1.5).

    Args:
        x, y: images already in their SSIM domain (e.g. [0, 255]), same shape.
        data_range: sets ``C1 = (0.01 data_range)^2`` and ``C2 = (0.03 data_range)^2``.
        precise: float64 with the 2-D ``cv2.filter2D`` window (the protocol) instead of float32 with
            the separable ``cv2.sepFilter2D``.
        border: ``"valid"``: crop 5 px per side (the protocol); ``"replicate"``: keep every pixel,
            pad by edge replication (MATLAB ``ssim``, used by PU21-SSIM).

    Returns:
        ``(H - 10, W - 10[, C])`` for ``"valid"``, ``(H, W[, C])`` for ``"replicate"``, in the
        working dtype.
    """
    if border not in ("valid", "replicate"):
        raise HdrkitError(f"border must be 'valid' or 'replicate', got {border!r}")
    _check_size(x.shape[0], x.shape[1])
    dtype = np.float64 if precise else np.float32
    x = np.ascontiguousarray(x, dtype=dtype)
    y = np.ascontiguousarray(y, dtype=dtype)
    k = gaussian_window().astype(dtype)
    bmode = cv2.BORDER_REFLECT_101 if border == "valid" else cv2.BORDER_REPLICATE
    if precise:
        win = np.outer(k, k)
        filt = lambda z: cv2.filter2D(z, -1, win, borderType=bmode)  # noqa: E731
    else:
        filt = lambda z: cv2.sepFilter2D(z, -1, k, k, borderType=bmode)  # noqa: E731
    c1 = dtype(SSIM_K1 * data_range) ** 2
    c2 = dtype(SSIM_K2 * data_range) ** 2
    shift_x = shift_y = dtype(0)
    if not precise:
        # (Co)variances are shift-invariant: centring each image on its mean avoids most of the float32
        # cancellation in E[x^2] - E[x]^2 (error ~1e-8 instead of ~1e-6 on mu-law images). A scalar
        # mean: per-channel broadcasting over a last axis of 3 is slow in numpy.
        shift_x = dtype(x.mean(dtype=np.float64))
        shift_y = dtype(y.mean(dtype=np.float64))
        x, y = x - shift_x, y - shift_y
    # The arithmetic runs on the full, contiguous maps (strided crops are slow); the crop comes last.
    # In-place steps keep the number of full-size temporaries (memory traffic) low.
    mu_x, mu_y = filt(x), filt(y)
    s_xy = filt(x * y)
    s_xy -= mu_x * mu_y
    s_sum = filt(x * x)
    s_sum += filt(y * y)
    s_sum -= mu_x * mu_x
    s_sum -= mu_y * mu_y
    if not precise:
        mu_x += shift_x
        mu_y += shift_y
    num = mu_x * mu_y
    num *= 2
    num += c1
    s_xy *= 2
    s_xy += c2
    num *= s_xy
    den = mu_x * mu_x
    den += mu_y * mu_y
    den += c1
    s_sum += c2
    den *= s_sum
    num /= den
    return num[_PAD:-_PAD, _PAD:-_PAD] if border == "valid" else num


def ssim(x: np.ndarray, y: np.ndarray, data_range: float = 255.0, precise: bool = False) -> float:
    """Protocol SSIM of two ``(H, W[, C])`` arrays: mean of the 'valid' map over pixels and channels."""
    return float(ssim_map(x, y, data_range, precise).mean(dtype=np.float64))


def _to255(x: np.ndarray) -> np.ndarray:
    return np.clip(x * x.dtype.type(255.0), 0.0, 255.0)


def ssim_l(pred: object, target: object, *, precise: bool = False) -> float | np.ndarray:
    """SSIM-L: protocol SSIM of the linear images, ``clip(x * 255, 0, 255)``, data range 255.

    Args:
        pred, target: linear HDR, expected in [0, 1]; torch ``(C, H, W)`` / ``(B, C, H, W)`` or
            numpy ``(H, W, C)`` / ``(B, H, W, C)``.
        precise: float64 ``cv2.filter2D`` (bit-level protocol) instead of the float32 fast path.

    Returns:
        SSIM in [-1, 1] (1 for identical images): a float, or ``(B,)`` for a batch.
    """
    return per_image(lambda p, t: ssim(_to255(p), _to255(t), 255.0, precise), pred, target,
                     np.float64 if precise else np.float32)


def ssim_mu(pred: object, target: object, *, mu: float = MU, precise: bool = False) -> float | np.ndarray:
    """SSIM-mu: protocol SSIM of ``clip(mu_law(x) * 255, 0, 255)`` (mu = 5000).

    Args:
        pred, target: linear HDR, expected in [0, 1]; shapes as :func:`ssim_l`.
        mu: compressor parameter.
        precise: float64 ``cv2.filter2D`` instead of the float32 fast path.
    """
    def one(p: np.ndarray, t: np.ndarray) -> float:
        # mu_law of a negative value below -1/mu is undefined: clip at 0 first (the result is
        # clipped to [0, 255] anyway, as in the protocol).
        return ssim(_to255(mu_law_np(np.maximum(p, 0), mu)), _to255(mu_law_np(np.maximum(t, 0), mu)), 255.0, precise)

    return per_image(one, pred, target, np.float64 if precise else np.float32)


def ssim_torch(
    pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, reduction: str = "mean"
) -> torch.Tensor:
    """Differentiable SSIM (same definition as :func:`ssim`: Gaussian 11 x 11, sigma 1.5, 'valid').

    One fused separable grouped convolution over the five statistics; no clipping or scaling, so
    pass images in their SSIM domain (e.g. ``mu_law(hdr)`` with ``data_range=1``).

    Args:
        pred, target: ``(C, H, W)`` or ``(B, C, H, W)``, same shape, float; H, W >= 11.
        data_range: sets ``C1`` and ``C2``.
        reduction: ``"mean"`` (scalar over everything, for losses), ``"per_image"`` (``(B,)`` or
            ``()``: mean over channels and pixels, the protocol's per-image value) or ``"none"``
            (the map, ``(..., C, H - 10, W - 10)``).

    Returns:
        A tensor as described by ``reduction``; use ``1 - ssim_torch(...)`` as a loss.
    """
    if pred.shape != target.shape or pred.ndim not in (3, 4):
        raise HdrkitError(f"ssim_torch: pred and target must both be (C, H, W) or (B, C, H, W), got "
                          f"{tuple(pred.shape)} and {tuple(target.shape)}")
    if reduction not in ("mean", "per_image", "none"):
        raise HdrkitError(f"ssim_torch: reduction must be 'mean', 'per_image' or 'none', got {reduction!r}")
    single = pred.ndim == 3
    x = pred.unsqueeze(0) if single else pred
    y = target.unsqueeze(0) if single else target
    _check_size(x.shape[-2], x.shape[-1])
    c = x.shape[1]
    g = torch.as_tensor(gaussian_window(), dtype=x.dtype, device=x.device)
    # (co)variances are shift-invariant: centring each image limits float32 cancellation
    shift_x = x.mean(dim=(-2, -1), keepdim=True).detach()
    shift_y = y.mean(dim=(-2, -1), keepdim=True).detach()
    x, y = x - shift_x, y - shift_y
    stats = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    n = stats.shape[1]
    stats = F.conv2d(stats, g.view(1, 1, 1, -1).expand(n, 1, 1, SSIM_WINDOW), groups=n)
    stats = F.conv2d(stats, g.view(1, 1, -1, 1).expand(n, 1, SSIM_WINDOW, 1), groups=n)
    mu_x, mu_y, e_xx, e_yy, e_xy = stats.split(c, dim=1)
    s_xx, s_yy, s_xy = e_xx - mu_x * mu_x, e_yy - mu_y * mu_y, e_xy - mu_x * mu_y
    mu_x, mu_y = mu_x + shift_x, mu_y + shift_y
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    smap = ((2 * mu_x * mu_y + c1) * (2 * s_xy + c2)) / ((mu_x * mu_x + mu_y * mu_y + c1) * (s_xx + s_yy + c2))
    if reduction == "mean":
        return smap.mean()
    if reduction == "per_image":
        vals = smap.mean(dim=(-3, -2, -1))
        return vals[0] if single else vals
    return smap[0] if single else smap
