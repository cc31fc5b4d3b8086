"""HDR image quality metrics: the Kalantari protocol (PSNR/SSIM-L and -mu), PU21, scale-invariant, HDR-FLIP, TMQI.

Every metric takes ``(pred, target)`` as torch ``(C, H, W)`` / ``(B, C, H, W)`` (channel-first) or
numpy ``(H, W, C)`` / ``(B, H, W, C)`` (channel-last) linear HDR, returns a float per image (a
``(B,)`` array for a batch), and is listed by name in :data:`METRICS`. Protocol scores are computed
per image and then averaged over scenes (:func:`aggregate`), as HDR-Transformer and SCTNet do.
See ``docs/metrics.md`` for the protocol details, HDR-VDP and ColorVideoVDP.

Tone-mapping quality is a different comparison (a display image against the radiance map it was made
from), so it has its own registry, :data:`TONE_MAPPING_METRICS`, called as ``fn(hdr, ldr)``:
:func:`tmqi` (Yeganeh & Wang 2013; :func:`tmqi_score` also returns its structural fidelity and
naturalness).

Single-image HDR is also scored against its LDR input: :func:`log2_rmse_regions` (keys
:data:`SINGLE_IMAGE_METRICS`) gives the log2 RMSE over the pixels the input clipped and over its
well-exposed pixels, called as ``fn(pred, target, ldr)``.

Example:
    >>> scores = [compute_metrics(pred, gt) for pred, gt in pairs]   # doctest: +SKIP
    >>> means = aggregate(scores)  # {'psnr_mu': ..., 'psnr_l': ..., 'ssim_mu': ..., 'ssim_l': ...}
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from hdrkit.errors import HdrkitError
from hdrkit.metrics.flip import hdr_flip, hdr_flip_map
from hdrkit.metrics.psnr import as_image_batch, mu_law_np, psnr_l, psnr_mu, psnr_mu_tanh, psnr_torch
from hdrkit.metrics.pu21 import pu21_decode, pu21_encode, pu21_psnr, pu21_ssim
from hdrkit.metrics.scale_invariant import (SINGLE_IMAGE_METRICS, best_scale, exposure_regions, log2_rmse_regions,
                                           log_rmse_scale_invariant, psnr_mu_best_scale, psnr_scale_invariant)
from hdrkit.metrics.ssim import ssim_l, ssim_mu, ssim_torch
from hdrkit.metrics.tmqi import TMQIScore, tmqi, tmqi_score

__all__ = [
    "METRICS",
    "TONE_MAPPING_METRICS",
    "PROTOCOL_METRICS",
    "LOWER_IS_BETTER",
    "compute_metrics",
    "aggregate",
    "psnr_l",
    "psnr_mu",
    "psnr_mu_tanh",
    "ssim_l",
    "ssim_mu",
    "pu21_encode",
    "pu21_decode",
    "pu21_psnr",
    "pu21_ssim",
    "best_scale",
    "psnr_scale_invariant",
    "psnr_mu_best_scale",
    "log_rmse_scale_invariant",
    "log2_rmse_regions",
    "exposure_regions",
    "SINGLE_IMAGE_METRICS",
    "hdr_flip",
    "hdr_flip_map",
    "psnr_torch",
    "ssim_torch",
    "mu_law_np",
    "tmqi",
    "tmqi_score",
    "TMQIScore",
]

METRICS: dict[str, Callable[..., float | np.ndarray]] = {
    "psnr_mu": psnr_mu,
    "psnr_l": psnr_l,
    "ssim_mu": ssim_mu,
    "ssim_l": ssim_l,
    "psnr_mu_tanh": psnr_mu_tanh,
    "pu21_psnr": pu21_psnr,
    "pu21_ssim": pu21_ssim,
    "psnr_scale_invariant": psnr_scale_invariant,
    "log_rmse_scale_invariant": log_rmse_scale_invariant,
    "psnr_mu_best_scale": psnr_mu_best_scale,
    "hdr_flip": hdr_flip,
}
"""Every metric by name; each is called as ``fn(pred, target)``."""

TONE_MAPPING_METRICS: dict[str, Callable[..., float | np.ndarray]] = {
    "tmqi": tmqi,
}
"""Tone-mapped image quality by name; each is called as ``fn(hdr, ldr)`` (ldr: display codes in [0, 1])
and returns a float per image (``(B,)`` for a batch), higher is better."""

PROTOCOL_METRICS = ("psnr_mu", "psnr_l", "ssim_mu", "ssim_l")
"""The four numbers the Kalantari-protocol papers report (default of :func:`compute_metrics`)."""

LOWER_IS_BETTER = frozenset({"log_rmse_scale_invariant", "hdr_flip", *SINGLE_IMAGE_METRICS})
"""Metrics where smaller is better; all others are higher-is-better."""

_TAKES_PRECISE = frozenset({"psnr_mu", "psnr_l", "ssim_mu", "ssim_l"})


def compute_metrics(
    pred: object, target: object, names: Sequence[str] = PROTOCOL_METRICS, *, precise: bool = False
) -> dict[str, float | np.ndarray]:
    """Compute several metrics of one image (or a batch) after converting the inputs once.

    Args:
        pred, target: linear HDR; torch ``(C, H, W)`` / ``(B, C, H, W)`` or numpy ``(H, W, C)`` /
            ``(B, H, W, C)``; the protocol expects values in [0, 1].
        names: keys of :data:`METRICS`, in the order wanted.
        precise: float64 (bit-level protocol) for PSNR/SSIM instead of the float32 fast path.

    Returns:
        ``{name: value}``: floats for one image, ``(B,)`` arrays for a batch.
    """
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise HdrkitError(f"unknown metric(s) {unknown}; choose from {sorted(METRICS)}")
    dtype = np.float64 if precise else np.float32
    p, batched = as_image_batch(pred, "pred", dtype)
    t, _ = as_image_batch(target, "target", dtype)
    if not batched:
        p, t = p[0], t[0]
    out: dict[str, float | np.ndarray] = {}
    for name in names:
        kwargs = {"precise": precise} if name in _TAKES_PRECISE else {}
        out[name] = METRICS[name](p, t, **kwargs)
    return out


def aggregate(results: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Average per-image (per-scene) results, key by key: the arithmetic mean (PSNR in dB, as the papers).

    Args:
        results: one ``{name: float}`` per scene, all with the same keys.

    Returns:
        ``{name: mean}``; an ``inf`` PSNR (an identical pair) makes that mean ``inf``.
    """
    rows = list(results)
    if not rows:
        raise HdrkitError("aggregate needs at least one result")
    keys = list(rows[0])
    for i, row in enumerate(rows):
        if set(row) != set(keys):
            raise HdrkitError(f"result {i} has keys {sorted(row)}, expected {sorted(keys)}")
    return {k: float(np.mean([float(row[k]) for row in rows], dtype=np.float64)) for k in keys}
