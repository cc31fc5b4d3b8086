"""Geometric and colour augmentation applied identically to every frame of a bracket and its label.

Kalantari & Ramamoorthi (SIGGRAPH 2017, Sec. 5) augment training scenes with flips, rotations by
multiples of 90 degrees and colour-channel swapping; these are exact (no resampling), so the
bracket's exposure relationships and the label stay consistent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hdrkit.errors import HdrkitError

__all__ = [
    "Augmentation",
    "sample_augmentation",
    "apply_augmentation",
    "apply_augmentation_np",
    "random_crop_box",
    "crop",
]

IDENTITY_PERMUTATION = (0, 1, 2)


@dataclass(frozen=True)
class Augmentation:
    """``rot90`` quarter turns (counter-clockwise, 0-3), then a horizontal ``flip``, then the
    colour ``permutation`` (output channel c is input channel ``permutation[c]``)."""

    rot90: int = 0
    flip: bool = False
    permutation: tuple[int, int, int] = IDENTITY_PERMUTATION


def sample_augmentation(rng: np.random.Generator, geometric: bool = True, colour: bool = True) -> Augmentation:
    """Uniform over the 8 dihedral transforms and, if ``colour``, the 6 channel permutations."""
    k = int(rng.integers(4)) if geometric else 0
    f = bool(rng.integers(2)) if geometric else False
    perm = tuple(int(v) for v in rng.permutation(3)) if colour else IDENTITY_PERMUTATION
    return Augmentation(k, f, perm)


def apply_augmentation(x: torch.Tensor, aug: Augmentation) -> torch.Tensor:
    """Apply ``aug`` to (..., 3, H, W) (frames and label alike); (..., C, H, W) for C != 3 skips colour.

    Returns a tensor of shape (..., 3, W, H) for odd ``rot90``, else (..., 3, H, W).
    """
    if x.ndim < 3:
        raise HdrkitError(f"expected (..., C, H, W), got {tuple(x.shape)}")
    if aug.rot90 % 4:
        x = torch.rot90(x, aug.rot90 % 4, dims=(-2, -1))
    if aug.flip:
        x = torch.flip(x, dims=(-1,))
    if aug.permutation != IDENTITY_PERMUTATION and x.shape[-3] == 3:
        x = x[..., list(aug.permutation), :, :]
    return x


def apply_augmentation_np(x: np.ndarray, aug: Augmentation) -> np.ndarray:
    """``apply_augmentation`` for numpy arrays (..., C, H, W); returns a contiguous array.

    Channels are permuted on the contiguous input first and the geometric transform is done as one
    strided copy, which is several times faster on CPU than chaining torch ``rot90``/``flip``.
    """
    if x.ndim < 3:
        raise HdrkitError(f"expected (..., C, H, W), got {x.shape}")
    if aug.permutation != IDENTITY_PERMUTATION and x.shape[-3] == 3:
        x = x[..., list(aug.permutation), :, :]
    if aug.rot90 % 4:
        x = np.rot90(x, aug.rot90 % 4, axes=(-2, -1))
    if aug.flip:
        x = x[..., ::-1]
    return np.ascontiguousarray(x)


def random_crop_box(rng: np.random.Generator, height: int, width: int, size: int | tuple[int, int]) -> tuple[int, int, int, int]:
    """A uniformly placed ``(top, left, h, w)`` box of ``size`` inside an ``height x width`` image."""
    ph, pw = (size, size) if isinstance(size, int) else size
    if ph > height or pw > width:
        raise HdrkitError(f"patch {ph}x{pw} does not fit in a {height}x{width} image; use a smaller patch_size")
    return int(rng.integers(height - ph + 1)), int(rng.integers(width - pw + 1)), ph, pw


def crop(x, box: tuple[int, int, int, int]):
    """Crop a tensor or array (..., H, W) to ``box = (top, left, h, w)`` (a view)."""
    t, l, h, w = box
    return x[..., t: t + h, l: l + w]
