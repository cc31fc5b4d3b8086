"""Per-code lookup tables for merging integer-coded brackets fast (no autograd, CPU).

A weight or radiance that depends on a pixel's code only is evaluated once per code level (with the
same formulas as the float path) and then gathered per pixel: ``cv2.LUT`` for 8-bit planes,
``numpy.take`` for deeper codes. The per-pixel work runs on row bands small enough to stay in the
CPU caches, spread over ``torch.get_num_threads()`` threads (OpenCV and numpy release the GIL).
Float brackets whose values all lie on the code grid of ``bits`` (``k / (2^bits - 1)``, as
``hdrkit.io`` reads files) are detected and quantized to their indices.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np
import torch

from hdrkit.parallel import parallel_map

__all__ = ["GRID_TOLERANCE", "BAND_PIXELS", "as_code_indices", "gather", "channel_max", "run_bands"]

GRID_TOLERANCE = 1e-3
"""Largest distance (in code steps, or 2 float32 ulps at 1 if larger) of a float value from the code
grid for the bracket to be treated as integer codes."""

BAND_PIXELS = 1 << 18
"""Pixels per row band of the banded kernels: a few MiB of float32 planes per band (L3-resident),
few enough bands that the per-call overhead stays small."""


def as_code_indices(ldr: torch.Tensor, bits: int | None, index_dtype=np.int32) -> torch.Tensor | None:
    """Integer codes (uint8 for ``bits <= 8``, else ``index_dtype``) of a float32 bracket on the code grid.

    Args:
        ldr: (..., H, W) float32 codes in [0, 1].
        bits: code depth; None or more than 16 bits gives None.
        index_dtype: numpy dtype of codes deeper than 8 bits (int32, or uint16 for half the memory).

    Returns:
        the indices ``round(ldr * (2^bits - 1))`` with ``ldr``'s shape, or None if ``ldr`` is not
        float32 (float64 callers keep their precision), needs autograd, lives off the CPU or has a
        value off the grid (or NaN, or outside [0, 1]).
    """
    if ldr.dtype != torch.float32 or bits is None or not 1 <= int(bits) <= 16:
        return None
    if ldr.device.type != "cpu" or ldr.numel() == 0 or (ldr.requires_grad and torch.is_grad_enabled()):
        return None
    peak = 2 ** int(bits) - 1
    tol = max(GRID_TOLERANCE / peak, 2.4e-7)
    h, w = ldr.shape[-2:]
    planes = ldr.detach().contiguous().reshape(-1, h, w).numpy()
    if peak <= 255:
        rows = planes.reshape(-1, w)  # all planes as one tall image, checked in row bands
        out = np.empty(rows.shape, np.uint8)
        grid = np.zeros(256, np.float32)
        grid[: peak + 1] = np.arange(peak + 1) / peak
        bad = []

        def check(r0: int, r1: int) -> None:
            if bad:
                return
            p, o = rows[r0:r1], out[r0:r1]
            cv2.convertScaleAbs(p, dst=o, alpha=float(peak))  # round(|z| * peak), saturated to 255
            diff = cv2.absdiff(p, cv2.LUT(o, grid))
            if not cv2.checkRange(diff, True, 0.0, tol)[0]:  # off the grid, outside [0, 1], NaN or Inf
                bad.append((r0, r1))

        run_bands(rows.shape[0], w, check)
        return None if bad else torch.from_numpy(out).view(ldr.shape)
    out = np.empty(planes.shape, index_dtype)
    scaled, codes, diff = np.empty((h, w), np.float32), np.empty((h, w), np.uint16), np.empty((h, w), np.float32)
    for p, o in zip(planes, out):
        cv2.multiply(p, float(np.float32(peak)), dst=scaled)
        cv2.multiply(scaled, 1.0, dst=codes, dtype=cv2.CV_16U)  # round half to even, saturated to [0, 65535]
        # z * peak - round(z * peak) in code steps (NaN, Inf or outside [0, 1] fail too)
        cv2.subtract(scaled, codes, dst=diff, dtype=cv2.CV_32F)
        if not cv2.checkRange(diff, True, -tol * peak, tol * peak)[0]:
            return None
        np.copyto(o, codes, casting="unsafe")
    return torch.from_numpy(out).view(ldr.shape)


def gather(table: np.ndarray, index: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out[...] = table[index]``: float32 table (256 entries for uint8 ``index``), 2-D planes."""
    if index.dtype == np.uint8:
        return cv2.LUT(index, table, dst=out)
    return np.take(table, index, out=out, mode="clip")


def channel_max(planes) -> np.ndarray:
    """Per-pixel maximum of three integer (R, W) code planes."""
    a, b, c = planes
    if a.dtype == np.uint8:
        return cv2.max(cv2.max(a, b), c)
    return np.maximum(np.maximum(a, b), c)


def run_bands(height: int, width: int, fn: Callable[[int, int], None], pixels: int = BAND_PIXELS) -> None:
    """Call ``fn(r0, r1)`` for row bands of about ``pixels`` pixels covering ``height`` rows, on
    ``torch.get_num_threads()`` threads."""
    rows = max(1, min(height, pixels // max(width, 1)))
    parallel_map(lambda r0: fn(r0, min(height, r0 + rows)), list(range(0, height, rows)))
