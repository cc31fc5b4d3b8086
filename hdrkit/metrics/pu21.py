"""PU21 perceptually uniform encoding and the PU21-PSNR / PU21-SSIM metrics (Mantiuk & Azimi 2021).

``V = p7 * (((p1 + p2 Y^p4) / (1 + p3 Y^p4))^p5 - p6)`` with the absolute luminance ``Y`` clamped to
[0.005, 10000] cd/m^2; the default parameter set is 'banding_glare', the one the authors recommend
(``pu21_encoder.m`` of gfxdisp/pu21). PU(100 cd/m^2) is about 256, so the PU range of an SDR display
matches 8-bit code values.

The metrics follow the official ``pu21_metric.m``:

* PU21-PSNR (its ``'PSNR'``): PSNR of the PU-encoded RGB values, peak 256, MSE over all pixels and
  channels;
* PU21-SSIM (its ``'SSIM'``): MATLAB ``ssim(P_test, P_ref, 'DynamicRange', 256)`` on the PU-encoded
  luminance ``Y = 0.212656 R + 0.715158 G + 0.072186 B``. MATLAB's ``ssim`` uses an 11 x 11 Gaussian
  (sigma 1.5), replicate padding and the mean of the whole map (no 'valid' crop); we do the same
  with ``cv2`` in float64. (Reproduced from MATLAB's documented behaviour, not run against MATLAB.)

PU21 needs absolute luminance. Relative HDR is mapped to cd/m^2 by one factor per image pair, taken
from the target and applied to both images: ``relative_to="target_max"`` maps the target's maximum to
``display_peak`` (what the official ``ex_hdr_images.m`` does), ``relative_to="one"`` maps the value
1.0 to ``display_peak``; ``display_peak=None`` means the inputs are already in cd/m^2. The default
peak is 1000 cd/m^2, a common HDR display. PU21 numbers depend on this choice: report it.

SCTNet's MATLAB script instead computes PU21 metrics on the mu-tonemapped 8-bit PNGs through an SDR
display model (``pu21_display_model_gog``, 55 cd/m^2 peak); those numbers are not comparable with
these.

Shapes follow :mod:`hdrkit.metrics.psnr`: torch ``(3, H, W)`` / ``(B, 3, H, W)``, numpy
``(H, W, 3)`` / ``(B, H, W, 3)``; one-channel inputs are taken as luminance.

References:
    R. K. Mantiuk, M. Azimi, "PU21: A novel perceptually uniform encoding for adapting existing
    quality metrics for HDR", Picture Coding Symposium (PCS) 2021.
"""

from __future__ import annotations

import numpy as np
import torch

from hdrkit.errors import HdrkitError
from hdrkit.metrics.psnr import per_image, psnr
from hdrkit.metrics.ssim import ssim_map

__all__ = [
    "PU21_PARAMS",
    "PU21_L_MIN",
    "PU21_L_MAX",
    "PU21_PEAK",
    "LUMINANCE_WEIGHTS",
    "DISPLAY_PEAK",
    "pu21_encode",
    "pu21_decode",
    "luminance",
    "to_absolute",
    "pu21_psnr",
    "pu21_ssim",
]

PU21_PARAMS: dict[str, tuple[float, ...]] = {
    "banding": (1.070275272, 0.4088273932, 0.153224308, 0.2520326168, 1.063512885, 1.14115047, 521.4527484),
    "banding_glare": (0.353487901, 0.3734658629, 8.277049286e-05, 0.9062562627, 0.09150303166, 0.9099517204,
                      596.3148142),
    "peaks": (1.043882782, 0.6459495343, 0.3194584211, 0.374025247, 1.114783422, 1.095360363, 384.9217577),
    "peaks_glare": (816.885024, 1479.463946, 0.001253215609, 0.9329636822, 0.06746643971, 1.573435413,
                    419.6006374),
}
"""PU21 parameter sets p1..p7 (``pu21_encoder.m``, updated 06/02/2020); 'banding_glare' is the default."""

PU21_L_MIN = 0.005
"""Lowest luminance PU21 encodes, cd/m^2 (lower values are clamped)."""
PU21_L_MAX = 10000.0
"""Highest luminance PU21 encodes, cd/m^2 (higher values are clamped)."""
PU21_PEAK = 256.0
"""Peak for PU21-PSNR and dynamic range for PU21-SSIM (``pu21_metric.m``)."""
LUMINANCE_WEIGHTS = (0.212656, 0.715158, 0.072186)
"""Linear Rec. 709 / sRGB RGB -> luminance weights used by ``pu21_metric.m``."""
DISPLAY_PEAK = 1000.0
"""Default luminance, cd/m^2, that relative HDR is mapped to (a common HDR display peak)."""


def _params(params: str) -> tuple[float, ...]:
    if params not in PU21_PARAMS:
        raise HdrkitError(f"unknown PU21 parameter set {params!r}; choose one of {sorted(PU21_PARAMS)}")
    return PU21_PARAMS[params]


def pu21_encode(y: np.ndarray | torch.Tensor, params: str = "banding_glare") -> np.ndarray | torch.Tensor:
    """Absolute linear luminance (or per-channel radiance) in cd/m^2 -> PU21 values.

    Args:
        y: any shape, numpy or torch (differentiable; gradient zero where clamped).
        params: PU21 parameter set name.

    Returns:
        PU values, same type and shape; about 0 at 0.005 cd/m^2, 256 at 100 cd/m^2, 595 at 10^4.
    """
    p1, p2, p3, p4, p5, p6, p7 = _params(params)
    if isinstance(y, torch.Tensor):
        yp = y.clamp(PU21_L_MIN, PU21_L_MAX).pow(p4)
        return p7 * (((p1 + p2 * yp) / (1 + p3 * yp)).pow(p5) - p6)
    yp = np.clip(y, PU21_L_MIN, PU21_L_MAX) ** p4
    return p7 * (((p1 + p2 * yp) / (1 + p3 * yp)) ** p5 - p6)


def pu21_decode(v: np.ndarray | torch.Tensor, params: str = "banding_glare") -> np.ndarray | torch.Tensor:
    """Inverse of :func:`pu21_encode`: PU21 values -> luminance in cd/m^2 (same type and shape)."""
    p1, p2, p3, p4, p5, p6, p7 = _params(params)
    if isinstance(v, torch.Tensor):
        vp = (v / p7 + p6).clamp_min(0).pow(1 / p5)
        return ((vp - p1).clamp_min(0) / (p2 - p3 * vp)).pow(1 / p4)
    vp = np.maximum(v / p7 + p6, 0) ** (1 / p5)
    return (np.maximum(vp - p1, 0) / (p2 - p3 * vp)) ** (1 / p4)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """``(..., 3)`` linear RGB -> ``(...)`` luminance with :data:`LUMINANCE_WEIGHTS`; ``(..., 1)`` is squeezed."""
    if rgb.shape[-1] == 1:
        return rgb[..., 0]
    if rgb.shape[-1] != 3:
        raise HdrkitError(f"luminance needs 1 or 3 channels, got {rgb.shape[-1]}")
    return rgb @ np.asarray(LUMINANCE_WEIGHTS, dtype=rgb.dtype)


def to_absolute(
    pred: np.ndarray, target: np.ndarray, display_peak: float | None = DISPLAY_PEAK, relative_to: str = "target_max"
) -> tuple[np.ndarray, np.ndarray]:
    """Scale a relative ``(H, W, C)`` pair to cd/m^2 with one factor taken from the target.

    Args:
        pred, target: linear images of the same shape.
        display_peak: cd/m^2 of the reference point; ``None`` if the inputs are already absolute.
        relative_to: ``"target_max"`` (target maximum -> ``display_peak``, as the official PU21
            example) or ``"one"`` (the value 1.0 -> ``display_peak``).
    """
    if display_peak is None:
        return pred, target
    if not display_peak > 0:
        raise HdrkitError(f"display_peak must be positive cd/m^2 (or None for absolute inputs), got {display_peak}")
    if relative_to == "one":
        return pred * display_peak, target * display_peak
    if relative_to != "target_max":
        raise HdrkitError(f"relative_to must be 'target_max' or 'one', got {relative_to!r}")
    peak = float(target.max())
    if peak <= 0:
        raise HdrkitError("target has no positive value; cannot map it to display luminance (pass relative_to='one')")
    scale = display_peak / peak
    return pred * scale, target * scale


def pu21_psnr(
    pred: object,
    target: object,
    *,
    display_peak: float | None = DISPLAY_PEAK,
    relative_to: str = "target_max",
    params: str = "banding_glare",
) -> float | np.ndarray:
    """PU21-PSNR: PSNR of PU21-encoded RGB values with peak 256 (``pu21_metric.m``, ``'PSNR'``).

    Args:
        pred, target: linear HDR, relative (see ``display_peak``) or absolute cd/m^2.
        display_peak, relative_to: the relative -> absolute mapping (:func:`to_absolute`).
        params: PU21 parameter set.

    Returns:
        dB; a float, or ``(B,)`` for a batch.
    """
    def one(p: np.ndarray, t: np.ndarray) -> float:
        p, t = to_absolute(p, t, display_peak, relative_to)
        return psnr(pu21_encode(p, params), pu21_encode(t, params), PU21_PEAK)

    return per_image(one, pred, target, np.float64)


def pu21_ssim(
    pred: object,
    target: object,
    *,
    display_peak: float | None = DISPLAY_PEAK,
    relative_to: str = "target_max",
    params: str = "banding_glare",
) -> float | np.ndarray:
    """PU21-SSIM: MATLAB-style SSIM of the PU21-encoded luminance, dynamic range 256 (``pu21_metric.m``).

    Args:
        pred, target: linear HDR RGB (or one-channel luminance), relative or absolute.
        display_peak, relative_to: the relative -> absolute mapping (:func:`to_absolute`).
        params: PU21 parameter set.
    """
    def one(p: np.ndarray, t: np.ndarray) -> float:
        p, t = to_absolute(p, t, display_peak, relative_to)
        vp = pu21_encode(luminance(p), params)
        vt = pu21_encode(luminance(t), params)
        return float(ssim_map(vp, vt, PU21_PEAK, precise=True, border="replicate").mean())

    return per_image(one, pred, target, np.float64)
