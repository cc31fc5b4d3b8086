"""Scale-invariant metrics for single-image HDR reconstruction, whose output has no absolute scale.

A network that expands one LDR image to HDR cannot know the exposure, so its output is compared
after the best global scale ``s`` for ``s * pred ~ target``:

* ``space="log"`` (default): least squares on log values, ``log s = mean(log t - log p)``, i.e. the
  ratio of geometric means. Robust: highlights and dark pixels weigh the same per stop.
* ``space="linear"``: least squares on linear values, ``s = <p, t> / <p, p>``; dominated by the
  brightest pixels.

Logs use a floor relative to each image's maximum (``LOG_FLOOR`` x max) so zeros stay finite. An
all-zero (or all-negative) prediction has no scale: both metrics return NaN for it rather than raise,
so one degenerate output does not stop an evaluation run.

* :func:`log_rmse_scale_invariant`: RMSE of ``log p - log t`` after the best log-domain scale, i.e.
  their standard deviation (Eigen et al. 2014 with lambda = 1); natural log, divide by ln 2 for stops.
* :func:`psnr_scale_invariant`: PSNR after scaling ``pred``, normalising both images by the target's
  maximum and clipping to [0, 1]; ``domain="mu"`` (default) applies mu-law (5000) first, like PSNR-mu.
* :func:`log2_rmse_regions`: the single-image HDR numbers: log2 RMSE (stops) over the pixels the LDR
  input clipped and over its well-exposed pixels (:func:`exposure_regions`), after one global scale
  fitted in the log domain on the well-exposed pixels (``fit="exposed"``, the default) or on the whole
  image (``fit="all"``). Fitting on the well-exposed pixels anchors the scale to what the photo measured,
  so the error over the clipped pixels counts a wrong highlight magnitude in full: a method cannot move
  the scale to trade its highlight error against the rest of the image.

Shapes follow :mod:`hdrkit.metrics.psnr`; all computation is float64.

References:
    D. Eigen, C. Puhrsch, R. Fergus, "Depth Map Prediction from a Single Image using a Multi-Scale
    Deep Network", NeurIPS 2014 (the scale-invariant log error).
    Y.-L. Liu et al., "Single-Image HDR Reconstruction by Learning to Reverse the Camera Pipeline",
    CVPR 2020 (scale-aligned evaluation of single-image HDR).
"""

from __future__ import annotations

import math

import numpy as np

from hdrkit.errors import HdrkitError
from hdrkit.metrics.psnr import as_image_batch, mu_law_np, per_image, psnr
from hdrkit.tonemap.mu_law import MU

__all__ = [
    "psnr_mu_best_scale", "LOG_FLOOR", "CLIPPED_CODE", "WELL_EXPOSED", "SINGLE_IMAGE_METRICS", "best_scale",
    "exposure_regions", "log2_rmse_regions", "log_rmse_scale_invariant", "psnr_scale_invariant"]

LOG_FLOOR = 1e-5
"""Values below ``LOG_FLOOR * max(image)`` (about 17 stops down) are raised to it before taking logs."""


def _log(x: np.ndarray, floor: float) -> np.ndarray:
    peak = float(x.max())
    if peak <= 0:
        raise HdrkitError("scale-invariant metrics need images with at least one positive value")
    return np.log(np.maximum(x, floor * peak))


def best_scale(pred: np.ndarray, target: np.ndarray, space: str = "log", floor: float = LOG_FLOOR) -> float:
    """Global factor ``s`` minimising the error of ``s * pred`` against ``target`` (arrays, same shape).

    Args:
        pred, target: linear, non-negative.
        space: ``"log"`` (geometric-mean ratio) or ``"linear"`` (``<p, t> / <p, p>``).
        floor: relative floor for logs.
    """
    if space == "log":
        return float(math.exp(np.mean(_log(target, floor) - _log(pred, floor), dtype=np.float64)))
    if space == "linear":
        den = float(np.sum(pred * pred, dtype=np.float64))
        if den <= 0:
            raise HdrkitError("pred is all zero; no scale can match it to the target")
        return float(np.sum(pred * target, dtype=np.float64)) / den
    raise HdrkitError(f"space must be 'log' or 'linear', got {space!r}")


def log_rmse_scale_invariant(pred: object, target: object, *, floor: float = LOG_FLOOR) -> float | np.ndarray:
    """Scale-invariant log RMSE (natural log) over all pixels and channels.

    0 when ``pred = s * target``; NaN for an all-zero ``pred``.

    Args:
        pred, target: linear HDR, any positive scale; torch ``(C, H, W)`` / ``(B, C, H, W)`` or
            numpy ``(H, W, C)`` / ``(B, H, W, C)``.
        floor: relative floor for logs (:data:`LOG_FLOOR`).
    """
    def one(p: np.ndarray, t: np.ndarray) -> float:
        if not p.max() > 0:
            return math.nan
        d = _log(p, floor) - _log(t, floor)
        return float(np.sqrt(np.mean(np.square(d - d.mean(dtype=np.float64)), dtype=np.float64)))

    return per_image(one, pred, target, np.float64)


def psnr_scale_invariant(
    pred: object, target: object, *, space: str = "log", domain: str = "mu", mu: float = MU
) -> float | np.ndarray:
    """PSNR after the best global scale of ``pred``, both normalised by ``max(target)`` and clipped to [0, 1].

    NaN when ``pred`` has no positive value.

    Args:
        pred, target: linear HDR, any positive scale; shapes as :func:`log_rmse_scale_invariant`.
        space: where the scale is fitted, ``"log"`` or ``"linear"`` (:func:`best_scale`).
        domain: ``"mu"`` (PSNR of the mu-law images, as PSNR-mu) or ``"linear"`` (as PSNR-L).
        mu: mu-law parameter for ``domain="mu"``.
    """
    if domain not in ("mu", "linear"):
        raise HdrkitError(f"domain must be 'mu' or 'linear', got {domain!r}")

    def one(p: np.ndarray, t: np.ndarray) -> float:
        p = np.maximum(p, 0)
        t = np.maximum(t, 0)
        peak = float(t.max())
        if peak <= 0:
            raise HdrkitError("target has no positive value; psnr_scale_invariant cannot normalise it")
        if not p.max() > 0:
            return math.nan
        s = best_scale(p, t, space)
        p = np.clip(p * (s / peak), 0, 1)
        t = t / peak
        if domain == "mu":
            p, t = mu_law_np(p, mu), mu_law_np(t, mu)
        return psnr(p, t, 1.0)

    return per_image(one, pred, target, np.float64)


def psnr_mu_best_scale(pred: object, target: object, *, mu: float = MU, log_range: float = 3.0, iterations: int = 40) -> float:
    """PSNR-mu (Kalantari protocol, clipped to [0, 1]) of ``s * pred`` at the global ``s`` that maximizes it.

    For merges with an unknown (recovered) response, whose radiance is right only up to a global factor. The
    factor is found by golden-section search on ``log s`` in ``[-log_range, log_range]``.
    """
    from hdrkit.metrics.psnr import psnr_mu

    f = lambda ls: float(psnr_mu(pred * math.exp(ls), target, mu=mu))  # noqa: E731
    a, b = -log_range, log_range
    g = (math.sqrt(5) - 1) / 2
    for _ in range(iterations):
        c, d = b - g * (b - a), a + g * (b - a)
        if f(c) > f(d):
            b = d
        else:
            a = c
    return f((a + b) / 2)


CLIPPED_CODE = 0.99
"""A pixel of the LDR input is clipped when any channel's code is at least this (8-bit codes 253-255: the
top code, plus the noise and JPEG ringing around saturated areas)."""

WELL_EXPOSED = (0.05, 0.95)
"""A pixel is well exposed when every channel's code lies in this range: above it the response saturates
(0.95 is the threshold where Eilertsen et al. 2017's HDRCNN starts to replace the input), below it 8-bit
quantization and noise dominate (code 0.05 is about 8 % per code step through a gamma 2.2 response)."""

SINGLE_IMAGE_METRICS = ("log2_rmse_clipped", "log2_rmse_exposed")
"""The keys of :func:`log2_rmse_regions`, lower is better (stops)."""


def exposure_regions(ldr) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks ``(clipped, well_exposed)``, each ``(H, W)``, of one LDR image.

    Args:
        ldr: display-referred codes in [0, 1]; torch ``(3, H, W)`` or numpy ``(H, W, 3)``.
    """
    x, batched = as_image_batch(ldr, "ldr", np.float32)
    if batched:
        raise HdrkitError(f"exposure_regions takes one image, got a batch of {x.shape[0]}")
    x = x[0]
    return x.max(axis=-1) >= CLIPPED_CODE, (x.min(axis=-1) >= WELL_EXPOSED[0]) & (x.max(axis=-1) <= WELL_EXPOSED[1])


def log2_rmse_regions(pred, target, ldr, *, fit: str = "exposed", floor: float = LOG_FLOOR) -> dict[str, float]:
    """Log2 RMSE in stops over the clipped and the well-exposed pixels of ``ldr`` after the best global scale.

    ``log2 s = mean(log2 target - log2 pred)`` over the fit pixels and all channels (the least-squares scale
    in the log domain); then ``sqrt(mean((log2 s pred - log2 target)^2))`` over each region's pixels and
    channels. Logs use the relative floor of :func:`log_rmse_scale_invariant`.

    Args:
        pred, target: linear HDR of one image, any positive scale; torch ``(3, H, W)`` or numpy ``(H, W, 3)``.
        ldr: the LDR input the prediction was made from, same layout, codes in [0, 1] (defines the regions).
        fit: ``"exposed"`` (default: scale fitted on the well-exposed pixels) or ``"all"`` (whole image).
            With no well-exposed pixel the whole image is used.

    Returns:
        ``{"log2_rmse_clipped": ..., "log2_rmse_exposed": ...}``; NaN for an empty region or an all-zero ``pred``.
    """
    if fit not in ("exposed", "all"):
        raise HdrkitError(f"fit must be 'exposed' or 'all', got {fit!r}")
    p, pb = as_image_batch(pred, "pred", np.float64)
    t, tb = as_image_batch(target, "target", np.float64)
    if pb or tb or p.shape != t.shape:
        raise HdrkitError(f"pred and target must be one image each of the same shape, got {p.shape} and {t.shape}")
    clipped, exposed = exposure_regions(ldr)
    if clipped.shape != p.shape[1:3]:
        raise HdrkitError(f"ldr is {clipped.shape[0]}x{clipped.shape[1]} but the images are {p.shape[1]}x{p.shape[2]}")
    nan = {k: math.nan for k in SINGLE_IMAGE_METRICS}
    p, t = p[0], t[0]
    if not p.max() > 0:
        return nan
    d = (_log(p, floor) - _log(t, floor)) / math.log(2)
    region = exposed if fit == "exposed" and exposed.any() else np.ones_like(exposed)
    d = d - d[region].mean(dtype=np.float64)
    rms = lambda m: float(np.sqrt(np.mean(np.square(d[m]), dtype=np.float64))) if m.any() else math.nan  # noqa: E731
    return {"log2_rmse_clipped": rms(clipped), "log2_rmse_exposed": rms(exposed)}
