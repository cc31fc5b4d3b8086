"""Training patches: random crops across scenes with consistent augmentation, decoded scenes cached.

Follows the patch-based training of Kalantari & Ramamoorthi, "Deep High Dynamic Range Imaging of
Dynamic Scenes", SIGGRAPH 2017: crops of the bracket and of the aligned ground truth at the same
place, flipped/rotated/colour-swapped identically (``hdrkit.data.transforms``).
"""

from __future__ import annotations

import numpy as np
import torch

from hdrkit.data.transforms import apply_augmentation_np, crop, random_crop_box, sample_augmentation
from hdrkit.errors import HdrkitError

__all__ = ["PatchDataset", "PATCHES_PER_SCENE"]

PATCHES_PER_SCENE = 64
"""Default patches drawn per scene and epoch."""

_CODE_SCALE = 65535.0


class PatchDataset(torch.utils.data.Dataset):
    """Random training patches from a list of scenes.

    Args:
        scenes: ``Scene`` objects (``hdrkit.data.kalantari2017.Scene``) or any iterable of them,
            e.g. a ``KalantariDataset``; each needs ``hdr``. They are decoded once and kept in memory
            (LDR codes as uint16, i.e. exact for 8- and 16-bit sources to within 1/65535; HDR as float32).
        patch_size: square patch side (or (h, w)).
        patches_per_scene: length of one epoch is ``len(scenes) * patches_per_scene``.
        augment: flips, 90-degree rotations and colour-channel permutations (Kalantari 2017).
        seed: base seed; item ``i`` of epoch ``e`` is drawn from ``default_rng([seed, e, i])``, so
            items are reproducible and independent of worker scheduling. Call ``set_epoch``.

    Items are dicts: ``ldr`` (N, 3, p, p) float32 codes in [0, 1], ``exposure_times`` (N,) float32
    (shortest 1), ``hdr`` (3, p, p) float32 radiance in units of the shortest exposure,
    ``reference`` (int) and ``scene`` (int index). Scenes with different N cannot share a batch.
    A scene with a ``priors`` attribute (a dict of spatial arrays ``(..., H, W)``, e.g. a network's
    ``prepare`` output) has them cropped and augmented alike, as item ``priors``; 2-D priors ``(C, K)`` are
    per-scene curves (e.g. a true inverse response per channel): kept whole, channels permuted with the colours.
    """

    def __init__(self, scenes, patch_size: int | tuple[int, int] = 128, patches_per_scene: int = PATCHES_PER_SCENE,
                 augment: bool = True, seed: int = 0):
        self.patch = (patch_size, patch_size) if isinstance(patch_size, int) else tuple(patch_size)
        if min(self.patch) < 1:
            raise HdrkitError(f"patch_size must be positive, got {patch_size}")
        if patches_per_scene < 1:
            raise HdrkitError(f"patches_per_scene must be >= 1, got {patches_per_scene}")
        self.ldr, self.hdr, self.times, self.refs, self.names, self.priors = [], [], [], [], [], []
        for s in scenes:
            if s.hdr is None:
                raise HdrkitError(f"scene {s.name}: no ground truth HDR; patches need labels")
            h, w = s.ldr.shape[-2:]
            if self.patch[0] > h or self.patch[1] > w:
                raise HdrkitError(f"scene {s.name} is {h}x{w}, smaller than patch_size {self.patch}")
            codes = torch.round(torch.as_tensor(s.ldr).clamp(0, 1) * _CODE_SCALE).to(torch.int32).numpy()
            self.ldr.append(np.ascontiguousarray(codes.astype(np.uint16)))
            self.hdr.append(np.ascontiguousarray(torch.as_tensor(s.hdr).float().numpy()))
            self.times.append(torch.as_tensor(s.exposure_times, dtype=torch.float32))
            self.refs.append(int(s.reference))
            self.names.append(s.name)
            self.priors.append({k: np.ascontiguousarray(np.asarray(v, dtype=np.float32))
                                for k, v in (getattr(s, "priors", None) or {}).items()})
        if not self.ldr:
            raise HdrkitError("PatchDataset needs at least one scene")
        self.patches_per_scene = int(patches_per_scene)
        self.augment = augment
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw a fresh set of patches (deterministic per epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.ldr) * self.patches_per_scene

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < len(self):
            raise IndexError(i)
        k = i // self.patches_per_scene
        rng = np.random.default_rng([self.seed, self.epoch, i])
        h, w = self.hdr[k].shape[-2:]
        box = random_crop_box(rng, h, w, self.patch)
        ldr = np.ascontiguousarray(crop(self.ldr[k], box))
        hdr = np.ascontiguousarray(crop(self.hdr[k], box))
        priors = {name: v if v.ndim == 2 else crop(v, box) for name, v in self.priors[k].items()}
        if self.augment:
            aug = sample_augmentation(rng)
            ldr, hdr = apply_augmentation_np(ldr, aug), apply_augmentation_np(hdr, aug)
            priors = {name: _augment_prior(v, aug) for name, v in priors.items()}
        ldr = torch.from_numpy(ldr.astype(np.float32) * np.float32(1.0 / _CODE_SCALE))
        hdr = torch.from_numpy(hdr)
        item = {"ldr": ldr, "exposure_times": self.times[k].clone(), "hdr": hdr,
                "reference": self.refs[k], "scene": k}
        if priors:
            item["priors"] = {name: torch.from_numpy(np.ascontiguousarray(v)) for name, v in priors.items()}
        return item


def _augment_prior(v: np.ndarray, aug) -> np.ndarray:
    """A prior under ``aug``: spatial ``(..., C, H, W)`` as the images; a per-scene ``(3, K)`` curve only has its
    channels permuted (``(C, K)`` with ``C != 3`` stays)."""
    if v.ndim != 2:
        return apply_augmentation_np(v, aug)
    return np.ascontiguousarray(v[list(aug.permutation)]) if v.shape[0] == 3 else v
