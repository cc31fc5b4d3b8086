"""``BracketBatch``: the one batched bracket type every method consumes (see ``hdrkit.methods``).

Exposure times are normalized once, here, so that each item's shortest exposure is 1; ``reference`` is
always a ``(B,)`` long tensor. Build one with :meth:`BracketBatch.from_frames` (a single ``(N, 3, H, W)``
bracket or a ``(B, N, 3, H, W)`` batch) or :meth:`BracketBatch.from_bracket` (a decoded ``Bracket``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from hdrkit.errors import HdrkitError

if TYPE_CHECKING:
    from hdrkit.camera.response import Response
    from hdrkit.io.bracket import Bracket

__all__ = ["BracketBatch"]


@dataclass(frozen=True, eq=False)
class BracketBatch:
    """A batch of aligned-or-not exposure brackets in the canonical layout.

    Attributes:
        ldr: (B, N, 3, H, W) float display-referred codes in [0, 1].
        exposure_times: (B, N) float32 linear exposures, each row's shortest is 1.
        reference: (B,) long index of each item's reference frame.
        bits: stored code depth of the frames (8, 16, ...), or None if unknown.
        response: the camera response the frames were made with, or None.

    The fields are fixed after construction (``replace`` returns a modified copy); the tensors themselves
    are not copied.
    """

    ldr: torch.Tensor
    exposure_times: torch.Tensor
    reference: torch.Tensor
    bits: int | None = None
    response: Response | None = None

    def __post_init__(self) -> None:
        ldr = self.ldr
        if not isinstance(ldr, torch.Tensor) or ldr.ndim != 5 or ldr.shape[2] != 3:
            shape = tuple(ldr.shape) if isinstance(ldr, torch.Tensor) else type(ldr).__name__
            raise HdrkitError(f"ldr must have shape (B, N, 3, H, W), got {shape}")
        if not ldr.is_floating_point():
            raise HdrkitError(f"ldr must hold float codes in [0, 1], got {ldr.dtype}")
        b, n = ldr.shape[:2]
        if n < 1:
            raise HdrkitError("a bracket needs at least 1 frame, got 0")
        t = torch.as_tensor(self.exposure_times, dtype=torch.float32, device=ldr.device)
        if t.shape != (b, n):
            raise HdrkitError(f"exposure_times must have shape ({b}, {n}), got {tuple(t.shape)}")
        if not torch.isfinite(t).all() or (t <= 0).any():
            raise HdrkitError("exposure times must be finite and positive")
        ref = torch.as_tensor(self.reference, device=ldr.device)
        if ref.is_floating_point() or ref.dtype == torch.bool:
            raise HdrkitError(f"reference must be integer frame indices, got {ref.dtype}")
        ref = ref.long().reshape(-1)
        if ref.numel() == 1 and b > 1:
            ref = ref.expand(b)
        if ref.shape != (b,) or (ref < 0).any() or (ref >= n).any():
            raise HdrkitError(f"reference must be {b} frame index(es) in 0..{n - 1}, got {ref.tolist()}")
        if self.bits is not None and (not isinstance(self.bits, int) or self.bits < 1):
            raise HdrkitError(f"bits must be a positive integer or None, got {self.bits!r}")
        object.__setattr__(self, "exposure_times", t / t.min(dim=-1, keepdim=True).values)
        object.__setattr__(self, "reference", ref)

    @classmethod
    def from_frames(cls, ldr: torch.Tensor, exposure_times, reference=None, *, bits: int | None = None,
                    response: Response | None = None) -> BracketBatch:
        """One bracket ``(N, 3, H, W)`` with times ``(N,)``, or a batch ``(B, N, 3, H, W)`` with ``(B, N)``.

        ``reference``: an int (broadcast), a ``(B,)`` sequence/tensor, or None for the middle frame.
        Times may be in any unit (seconds, relative); they are divided by each item's shortest.
        """
        ldr = torch.as_tensor(ldr)
        if not ldr.is_floating_point():
            raise HdrkitError(f"ldr must hold float codes in [0, 1], got {ldr.dtype} (divide integer codes first)")
        t = torch.as_tensor(exposure_times, dtype=torch.float32, device=ldr.device)
        if ldr.ndim == 4:
            ldr = ldr[None]
            t = t.reshape(1, -1) if t.ndim <= 1 else t
        if ldr.ndim != 5:
            raise HdrkitError(f"ldr must have shape (N, 3, H, W) or (B, N, 3, H, W), got {tuple(ldr.shape)}")
        if reference is None:
            reference = ldr.shape[1] // 2
        return cls(ldr, t, reference, bits=bits, response=response)

    @classmethod
    def from_bracket(cls, bracket: Bracket, reference: int | None = None, *,
                     response: Response | None = None) -> BracketBatch:
        """A decoded ``Bracket`` (sorted, shortest first) as a batch of one; ``bits`` is its deepest frame's."""
        bits = max(bracket.bits) if bracket.bits else None
        return cls.from_frames(bracket.ldr, bracket.exposure_times, reference, bits=bits, response=response)

    @property
    def batch_size(self) -> int:
        return int(self.ldr.shape[0])

    @property
    def frames(self) -> int:
        return int(self.ldr.shape[1])

    def replace(self, **changes) -> BracketBatch:
        """A copy with some fields changed (validated and normalized again)."""
        return dataclasses.replace(self, **changes)

    def reference_frames(self) -> torch.Tensor:
        """(B, 3, H, W): each item's reference frame."""
        return self.ldr[torch.arange(self.batch_size, device=self.ldr.device), self.reference]
