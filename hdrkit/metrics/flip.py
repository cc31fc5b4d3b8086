"""HDR-FLIP (Andersson et al. 2021) through NVIDIA's ``flip-evaluator`` wheel, an optional extra.

HDR-FLIP tone maps both images at several exposures (ACES by default), computes LDR-FLIP on each
and keeps the per-pixel maximum; the score is the mean error, in [0, 1], lower is better. Inputs are
linear sRGB/Rec. 709, non-negative, any scale (the exposure range is derived from the reference).
The default 67 pixels per degree is FLIP's own observer (a 0.7 m wide, 3840-pixel display seen from 0.7 m).

Install with ``pip install hdrkit[flip]`` (the ``flip-evaluator`` wheel has no dependencies).
About 9.5 s for a 1500 x 1000 image on the 2-core reference machine.

References:
    P. Andersson, J. Nilsson, P. Shirley, T. Akenine-Moller, "Visualizing Errors in Rendered High
    Dynamic Range Images", Eurographics 2021 (short papers).
"""

from __future__ import annotations

import numpy as np

from hdrkit.errors import HdrkitError
from hdrkit.metrics.psnr import as_image_batch, per_image

__all__ = ["FLIP_PPD", "FLIP_TONEMAPPERS", "hdr_flip", "hdr_flip_map"]

FLIP_PPD = 67.0
"""FLIP's default observer, pixels per degree of visual angle (Andersson et al., HPG 2020)."""
FLIP_TONEMAPPERS = ("aces", "hable", "reinhard")
"""Tone mappers ``flip-evaluator`` accepts (it silently ignores other spellings, so we check)."""


def _flip_module():
    try:
        import flip_evaluator
    except ImportError:
        raise HdrkitError("hdr_flip needs the optional flip-evaluator package: pip install hdrkit[flip]") from None
    return flip_evaluator


def _evaluate(p: np.ndarray, t: np.ndarray, ppd: float, tonemapper: str) -> tuple[np.ndarray, float]:
    tm = tonemapper.lower()
    if tm not in FLIP_TONEMAPPERS:
        raise HdrkitError(f"tonemapper must be one of {FLIP_TONEMAPPERS}, got {tonemapper!r}")
    if p.shape[-1] != 3:
        raise HdrkitError(f"hdr_flip needs RGB images (3 channels), got {p.shape[-1]}")
    flip = _flip_module()
    ref = np.ascontiguousarray(np.maximum(t, 0), dtype=np.float32)
    test = np.ascontiguousarray(np.maximum(p, 0), dtype=np.float32)
    err_map, mean, _ = flip.evaluate(ref, test, "HDR", inputsRGB=True, applyMagma=False, computeMeanError=True,
                                     parameters={"ppd": float(ppd), "tonemapper": tm})
    return err_map[..., 0], float(mean)


def hdr_flip(
    pred: object, target: object, *, ppd: float = FLIP_PPD, tonemapper: str = "aces"
) -> float | np.ndarray:
    """Mean HDR-FLIP error of ``pred`` against the reference ``target`` (lower is better, 0 when equal).

    Args:
        pred, target: linear RGB HDR, non-negative (negatives are clipped); torch ``(3, H, W)`` /
            ``(B, 3, H, W)`` or numpy ``(H, W, 3)`` / ``(B, H, W, 3)``.
        ppd: observer pixels per degree.
        tonemapper: ``"aces"``, ``"hable"`` or ``"reinhard"``.

    Returns:
        A float in [0, 1], or ``(B,)`` for a batch.

    Raises:
        HdrkitError: if ``flip-evaluator`` is not installed.
    """
    return per_image(lambda p, t: _evaluate(p, t, ppd, tonemapper)[1], pred, target, np.float32)


def hdr_flip_map(pred: object, target: object, *, ppd: float = FLIP_PPD, tonemapper: str = "aces") -> np.ndarray:
    """Per-pixel HDR-FLIP error ``(H, W)`` float32 in [0, 1] for one image pair (shapes as :func:`hdr_flip`)."""
    p, batched = as_image_batch(pred, "pred")
    t, _ = as_image_batch(target, "target")
    if batched or p.shape != t.shape:
        raise HdrkitError(f"hdr_flip_map takes one image pair of equal shape, got {p.shape} and {t.shape} "
                          "(as B, H, W, C)")
    return _evaluate(p[0], t[0], ppd, tonemapper)[0]
