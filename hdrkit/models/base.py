"""The base class of every learned merge network.

Every network takes the canonical bracket and returns radiance:

    forward(ldr, exposure_times, reference, response=None) -> hdr

- ``ldr`` (B, N, 3, H, W): display-referred RGB codes in [0, 1], globally aligned to the reference.
- ``exposure_times`` (B, N): linear, the shortest = 1 (``hdrkit.camera.normalize_times``).
- ``reference`` (B,) long: index of the frame whose geometry the output has.
- ``response``: the camera response of the frames (a ``Response``), for networks that linearize with it;
  networks trained in the Kalantari 2017 convention (``H = I ** 2.2 / t``) ignore it.
- returns (B, 3, H, W) float32 linear radiance in units of the shortest exposure.

A network is split in two so that inference can tile it: ``prepare`` computes whole-image, non-learned
priors (classical merges, optical flow, linearization; no gradient), returned as a dict of spatial tensors
``(B, ..., H, W)``; ``refine`` is the learned part with a finite receptive field (``context`` pixels),
which sees the bracket and the priors cropped to the same tile. ``forward`` is ``refine(prepare(...))``.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from hdrkit.errors import HdrkitError

__all__ = ["MergeNet", "check_bracket"]


def check_bracket(ldr: torch.Tensor, exposure_times: torch.Tensor, reference, frames: int | None = None,
                  min_frames: int = 2):
    """Validate the canonical inputs; returns ``(ldr, exposure_times float32, reference (B,) long)``.

    ``frames``: the exact N the network takes (1 for single-image networks), or None for any N >= ``min_frames``.
    """
    if not isinstance(ldr, torch.Tensor) or ldr.ndim != 5 or ldr.shape[2] != 3:
        shape = tuple(ldr.shape) if isinstance(ldr, torch.Tensor) else type(ldr).__name__
        raise HdrkitError(f"ldr must have shape (B, N, 3, H, W), got {shape}")
    b, n = ldr.shape[:2]
    if frames is not None and n != frames:
        raise HdrkitError(f"this network takes exactly {frames} frames, got {n}; pass a {frames}-frame bracket "
                          "or choose a method that takes any number (`hdrkit methods`)")
    if frames is None and n < min_frames:
        raise HdrkitError(f"a bracket needs at least {min_frames} frames, got {n}")
    t = torch.as_tensor(exposure_times, device=ldr.device, dtype=torch.float32)
    if t.shape != (b, n):
        raise HdrkitError(f"exposure_times must have shape ({b}, {n}), got {tuple(t.shape)}")
    ref = torch.as_tensor(reference, device=ldr.device).long().reshape(-1)
    if ref.numel() == 1 and b > 1:
        ref = ref.expand(b)
    if ref.shape != (b,) or (ref < 0).any() or (ref >= n).any():
        raise HdrkitError(f"reference must be {b} frame indices in 0..{n - 1}, got {reference}")
    return ldr, t, ref


class MergeNet(nn.Module):
    """A learned multi-exposure merge (see the module docstring for the calling convention).

    Class attributes a subclass sets:
        frames: the exact number of frames it takes (1: a single-image network), or None for any N >= 2.
        size_divisor: height and width given to ``refine`` are padded to a multiple of this.
        context: receptive radius of ``refine`` in pixels; tiles overlap by at least this much, so tiled
            output equals untiled output.
        bytes_per_pixel: peak activation memory of ``refine`` per pixel in float32 inference (measured),
            used to choose the tile size for a memory budget.
        unused_parameters: names of parameters that exist only to match the official code's state
            dict and take no part in ``forward`` (the gradient test skips them).
        inert_parameters: names of parameters that take part in ``forward`` but whose gradient is zero by
            construction (a convolution's bias right before a batch norm, which subtracts it again); kept
            because the official layer list has them; the gradient test checks that it stays ~0.
    """

    frames: ClassVar[int | None] = None
    size_divisor: ClassVar[int] = 1
    context: ClassVar[int] = 0
    bytes_per_pixel: ClassVar[int] = 4096
    unused_parameters: ClassVar[tuple[str, ...]] = ()
    inert_parameters: ClassVar[tuple[str, ...]] = ()

    def prepare(self, ldr: torch.Tensor, exposure_times: torch.Tensor, reference: torch.Tensor,
                response=None) -> dict[str, torch.Tensor]:
        """Whole-image priors for ``refine`` (none by default); spatial tensors ``(B, ..., H, W)``."""
        return {}

    def refine(self, ldr: torch.Tensor, exposure_times: torch.Tensor, reference: torch.Tensor,
               **priors: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def training_loss(self, ldr: torch.Tensor, exposure_times: torch.Tensor, reference: torch.Tensor,
                      hdr: torch.Tensor, *, priors: dict[str, torch.Tensor], loss_fn) -> torch.Tensor:
        """The loss of one training batch: by default ``loss_fn(forward(...), hdr)``.

        A network overrides it when a training stage optimizes something else (e.g. DFGNet's disentangle
        network, trained on the frames alone); ``fit`` then calls it directly (single process only).
        """
        return loss_fn(self(ldr, exposure_times, reference, priors=priors).float(), hdr)

    def forward(self, ldr: torch.Tensor, exposure_times: torch.Tensor, reference, response=None, *,
                priors: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """``refine(prepare(...))``; ``priors`` already computed (e.g. cached for training) skip ``prepare``."""
        ldr, t, ref = check_bracket(ldr, exposure_times, reference, self.frames)
        if priors is None:
            with torch.no_grad():
                priors = self.prepare(ldr, t, ref, response)
        return self.refine(ldr, t, ref, **priors)
