"""PSNR-L, PSNR-mu and the NTIRE tanh-normalised PSNR-mu, as the Kalantari-protocol papers compute them.

The protocol is the evaluation code of HDR-Transformer (Liu et al. 2022, ``test.py`` and
``utils/utils.py`` of liuzhen03/HDR-Transformer-PyTorch) and SCTNet (Tel et al. 2023), which score
Kalantari & Ramamoorthi 2017 test scenes:

* PSNR-L: ``skimage.metrics.peak_signal_noise_ratio(label, pred, data_range=1.0)`` on the linear
  images, i.e. ``10 log10(1 / MSE)`` with the MSE over all pixels and all channels.
* PSNR-mu: the same after ``mu_law`` (mu = 5000) on both images.

Both images here are clipped to [0, 1] first (``clip=True``). Kalantari labels and sigmoid outputs
already lie in [0, 1], so on protocol data clipping changes nothing; it only keeps out-of-range
predictions from scoring a meaningless PSNR. Pass ``clip=False`` for the literal protocol.

Input convention (shared by every numpy-facing metric in :mod:`hdrkit.metrics`):
``torch.Tensor`` inputs are channel-first, ``(C, H, W)`` or ``(B, C, H, W)``; ``numpy.ndarray``
inputs are channel-last, ``(H, W, C)``, ``(B, H, W, C)`` or ``(H, W)``. Values are linear HDR
(relative, the protocol expects [0, 1]). A single image gives a ``float``; a batch gives a
``numpy.ndarray`` of shape ``(B,)`` with one value per image (average those over scenes, never the
pixels of a batch).

References:
    N. K. Kalantari, R. Ramamoorthi, "Deep High Dynamic Range Imaging of Dynamic Scenes", SIGGRAPH 2017.
    Z. Liu et al., "Ghost-free High Dynamic Range Imaging with Context-aware Transformer", ECCV 2022.
    E. Perez-Pellitero et al., "NTIRE 2021 Challenge on High Dynamic Range Imaging", CVPRW 2021.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from hdrkit.errors import HdrkitError
from hdrkit.tonemap.mu_law import MU

__all__ = [
    "as_image_batch",
    "mu_law_np",
    "per_image",
    "psnr",
    "psnr_l",
    "psnr_mu",
    "psnr_mu_tanh",
    "psnr_torch",
    "NTIRE_PERCENTILE",
]

NTIRE_PERCENTILE = 99.0
"""Percentile of the reference used to normalise before tanh in the NTIRE 2021/22 HDR challenge."""


def as_image_batch(x: object, name: str, dtype: type = np.float32) -> tuple[np.ndarray, bool]:
    """Convert a metric input to a channel-last numpy batch ``(B, H, W, C)``.

    Args:
        x: ``torch.Tensor`` ``(C, H, W)`` / ``(B, C, H, W)`` or ``numpy.ndarray`` ``(H, W)`` /
            ``(H, W, C)`` / ``(B, H, W, C)``, float, finite.
        name: argument name used in error messages.
        dtype: ``numpy.float32`` (fast path) or ``numpy.float64`` (precise path).

    Returns:
        ``(batch, batched)``: the array (a view when no conversion is needed) and whether the input
        had a batch dimension.
    """
    if isinstance(x, torch.Tensor):
        t = x.detach()
        if t.ndim not in (3, 4):
            raise HdrkitError(f"{name}: torch tensors must be (C, H, W) or (B, C, H, W), got {tuple(t.shape)}")
        batched = t.ndim == 4
        if t.shape[-3] not in (1, 3) and t.shape[-1] in (1, 3):
            raise HdrkitError(f"{name}: torch tensors are channel-first (C, H, W); got {tuple(t.shape)}: permute it")
        if not t.is_floating_point():
            raise HdrkitError(f"{name}: expected a float tensor of linear HDR values, got {t.dtype}")
        t = t if batched else t.unsqueeze(0)
        arr = t.permute(0, 2, 3, 1).to("cpu", torch.float64 if dtype == np.float64 else torch.float32).numpy()
    elif isinstance(x, np.ndarray):
        if x.ndim not in (2, 3, 4):
            raise HdrkitError(f"{name}: numpy arrays must be (H, W), (H, W, C) or (B, H, W, C), got {x.shape}")
        if x.ndim >= 3 and x.shape[-1] not in (1, 3) and x.shape[-3] in (1, 3):
            raise HdrkitError(f"{name}: numpy arrays are channel-last (H, W, C); got {x.shape}: transpose it")
        if not np.issubdtype(x.dtype, np.floating):
            raise HdrkitError(f"{name}: expected a float array of linear HDR values, got {x.dtype}")
        batched = x.ndim == 4
        arr = x[None, ..., None] if x.ndim == 2 else (x if batched else x[None])
        arr = arr.astype(dtype, copy=False)
    else:
        raise HdrkitError(f"{name}: expected a torch.Tensor or numpy.ndarray, got {type(x).__name__}")
    if not np.isfinite(arr).all():
        raise HdrkitError(f"{name}: contains NaN or infinite values")
    return arr, batched


def _pair(pred: object, target: object, dtype: type) -> tuple[np.ndarray, np.ndarray, bool]:
    p, batched = as_image_batch(pred, "pred", dtype)
    t, _ = as_image_batch(target, "target", dtype)
    if p.shape != t.shape:
        raise HdrkitError(f"pred and target must have the same shape, got {p.shape} and {t.shape} (as B, H, W, C)")
    return p, t, batched


def per_image(
    fn: Callable[[np.ndarray, np.ndarray], float],
    pred: object,
    target: object,
    dtype: type = np.float32,
) -> float | np.ndarray:
    """Apply ``fn(pred_hwc, target_hwc) -> float`` per image; a float for one image, ``(B,)`` for a batch."""
    p, t, batched = _pair(pred, target, dtype)
    vals = np.array([fn(a, b) for a, b in zip(p, t)], dtype=np.float64)
    return vals if batched else float(vals[0])


def mu_law_np(x: np.ndarray, mu: float = MU) -> np.ndarray:
    """numpy twin of :func:`hdrkit.tonemap.mu_law`: ``log(1 + mu x) / log(1 + mu)``, same dtype as ``x``."""
    return (np.log1p(x * x.dtype.type(mu)) / x.dtype.type(math.log1p(mu))).astype(x.dtype, copy=False)


def psnr(pred: np.ndarray, target: np.ndarray, data_range: float = 1.0) -> float:
    """``10 log10(data_range^2 / MSE)`` over all elements, MSE accumulated in float64 (as scikit-image).

    Identical images give ``inf``.
    """
    mse = float(np.mean(np.square(pred - target), dtype=np.float64))
    return math.inf if mse == 0.0 else 10.0 * math.log10(data_range * data_range / mse)


def _prep(x: np.ndarray, clip: bool) -> np.ndarray:
    return np.clip(x, 0.0, 1.0) if clip else x


def psnr_l(pred: object, target: object, *, clip: bool = True, precise: bool = False) -> float | np.ndarray:
    """PSNR-L: PSNR of the linear images, peak 1 (Kalantari protocol).

    Args:
        pred, target: linear HDR in [0, 1]; see the module docstring for shapes.
        clip: clip both to [0, 1] first (a no-op on protocol data).
        precise: compute in float64 instead of float32.

    Returns:
        PSNR in dB (``inf`` for identical images): a float, or ``(B,)`` for a batch.
    """
    return per_image(lambda p, t: psnr(_prep(p, clip), _prep(t, clip)), pred, target,
                     np.float64 if precise else np.float32)


def psnr_mu(
    pred: object, target: object, *, mu: float = MU, clip: bool = True, precise: bool = False
) -> float | np.ndarray:
    """PSNR-mu: PSNR after the mu-law compressor (mu = 5000), peak 1 (Kalantari protocol).

    Args:
        pred, target: linear HDR in [0, 1]; see the module docstring for shapes.
        mu: compressor parameter; 5000 in every paper that uses this protocol.
        clip: clip the linear images to [0, 1] before compressing.
        precise: compute in float64 instead of float32.
    """
    def one(p: np.ndarray, t: np.ndarray) -> float:
        return psnr(mu_law_np(_prep(p, clip), mu), mu_law_np(_prep(t, clip), mu))

    return per_image(one, pred, target, np.float64 if precise else np.float32)


def psnr_mu_tanh(
    pred: object, target: object, *, percentile: float = NTIRE_PERCENTILE, mu: float = MU
) -> float | np.ndarray:
    """NTIRE 2021/22 HDR challenge PSNR-mu: ``mu_law(tanh(x / p99(target)))``, peak 1.

    The challenge data are stored gamma-encoded (exponent 2.24) and linearised first; this function
    takes linear inputs, so that step is the caller's. No clipping (tanh bounds the values).
    """
    def one(p: np.ndarray, t: np.ndarray) -> float:
        norm = float(np.percentile(t, percentile))
        if norm <= 0.0:
            raise HdrkitError(f"target: its {percentile}th percentile is {norm}; psnr_mu_tanh needs a positive one")
        return psnr(mu_law_np(np.tanh(p / norm), mu), mu_law_np(np.tanh(t / norm), mu))

    return per_image(one, pred, target, np.float64)


def psnr_torch(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Differentiable PSNR for losses and validation: ``(..., C, H, W)`` -> one value per leading index.

    Args:
        pred, target: tensors of the same shape ``(C, H, W)`` or ``(B, C, H, W)``; no clipping.
        data_range: peak value.

    Returns:
        ``()`` for one image, ``(B,)`` for a batch; ``inf`` where the images are identical.
    """
    if pred.shape != target.shape or pred.ndim not in (3, 4):
        raise HdrkitError(f"psnr_torch: pred and target must both be (C, H, W) or (B, C, H, W), got "
                          f"{tuple(pred.shape)} and {tuple(target.shape)}")
    mse = (pred - target).square().mean(dim=(-3, -2, -1))
    return 10.0 * torch.log10(data_range * data_range / mse)
