"""Inference for every network in one place: device, dtype, channels_last, padding, overlapped tiling.

``run_model`` computes a network's whole-image priors once (``MergeNet.prepare``), then runs its learned
part (``MergeNet.refine``) on overlapping tiles sized to a memory budget. Each tile's input extends
``context + BLEND`` pixels past its core (aligned to the network's size divisor), so the core's output is
what the whole image would give; neighbouring outputs are cross-faded over ``BLEND`` pixels. Tiled output
equals untiled output up to float rounding for networks whose ``context`` covers their receptive field.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from hdrkit.errors import HdrkitError
from hdrkit.models.base import MergeNet, check_bracket

__all__ = ["DEFAULT_MAX_MEMORY", "DTYPES", "resolve_device", "run_model", "tile_size"]

DEFAULT_MAX_MEMORY = 4.0 * 2**30
"""Bytes of activations one tile may use: with the inputs, priors and output of a 6000x4000 bracket the
process stays under 8 GB."""

BLEND = 8
"""Width in pixels of the cross-fade between neighbouring tiles."""

DTYPES = {"fp32": None, "bf16": torch.bfloat16}


def resolve_device(device=None) -> torch.device:
    """``None``/``'auto'``: CUDA when present, else CPU; otherwise ``torch.device(device)``."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise HdrkitError(f"unknown device {device!r}: use cpu, cuda, cuda:N or auto") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise HdrkitError(f"device {device!r} asked for, but CUDA is not available here; use --device cpu")
    return dev


def _round_up(x: int, k: int) -> int:
    return -(-x // k) * k


def tile_size(model: MergeNet, batch: int, dtype: str = "fp32", max_memory: float | None = None) -> int:
    """Largest core tile side (a multiple of the size divisor) whose padded tile fits ``max_memory`` bytes."""
    budget = DEFAULT_MAX_MEMORY if max_memory is None else float(max_memory)
    bpp = model.bytes_per_pixel * batch * (0.5 if dtype == "bf16" else 1.0)
    side = int(math.sqrt(budget / bpp)) - 2 * _margin(model)
    d = model.size_divisor
    side = side // d * d
    if side < max(d, 32):
        raise HdrkitError(f"max_memory {budget / 2**20:.0f} MiB is too small for {type(model).__name__}; "
                          f"allow at least {(_margin(model) * 2 + 64) ** 2 * bpp / 2**20:.0f} MiB")
    return side


def _margin(model: MergeNet) -> int:
    return _round_up(model.context + BLEND, model.size_divisor)


def _crop(priors: dict, ys: slice, xs: slice) -> dict:
    return {k: v[..., ys, xs] for k, v in priors.items()}


def _pad_to(x: torch.Tensor, divisor: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    ph, pw = _round_up(h, divisor) - h, _round_up(w, divisor) - w
    if ph == 0 and pw == 0:
        return x
    shape = x.shape
    y = F.pad(x.reshape(-1, *shape[-3:]) if x.ndim > 4 else x, (0, pw, 0, ph), mode="replicate")
    return y.reshape(*shape[:-2], h + ph, w + pw)


def _refine(model, ldr, t, ref, priors, autocast_dtype):
    h, w = ldr.shape[-2:]
    d = model.size_divisor
    ldr_p = _pad_to(ldr, d)
    priors_p = {k: _pad_to(v, d) for k, v in priors.items()}
    dev = ldr.device.type
    with torch.autocast(dev, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
        out = model.refine(ldr_p, t, ref, **priors_p)
    return out[..., :h, :w].float()


def _ramp(n: int, lo: int, hi: int, core0: int, core1: int, total: int, device) -> torch.Tensor:
    """Cross-fade weights along one axis of a tile spanning ``[lo, hi)`` whose core is ``[core0, core1)``."""
    pos = torch.arange(lo, hi, device=device, dtype=torch.float32) + 0.5
    half = BLEND / 2
    up = ((pos - (core0 - half)) / BLEND).clamp(0, 1) if core0 > 0 else torch.ones_like(pos)
    down = (((core1 + half) - pos) / BLEND).clamp(0, 1) if core1 < total else torch.ones_like(pos)
    return torch.minimum(up, down)


def run_model(model: MergeNet, ldr: torch.Tensor, exposure_times, reference, *, response=None, device=None,
              dtype: str = "fp32", max_memory: float | None = None, tile: int | None = None) -> torch.Tensor:
    """Run ``model`` on a bracket in inference mode; returns (B, 3, H, W) float32 radiance on ``ldr``'s device.

    Args:
        ldr, exposure_times, reference, response: the canonical inputs (``hdrkit.models.base``).
        device: ``'cpu'``, ``'cuda'``, ``'auto'``/None (CUDA when present).
        dtype: ``'fp32'`` or ``'bf16'`` (autocast of the learned part; the final blend stays float32).
        max_memory: bytes of activations per tile (default ``DEFAULT_MAX_MEMORY``).
        tile: core tile side in pixels, overriding ``max_memory`` (0: never tile).
    """
    if dtype not in DTYPES:
        raise HdrkitError(f"unknown dtype {dtype!r}: use fp32 or bf16")
    ldr, t, ref = check_bracket(ldr, exposure_times, reference, model.frames)
    if not torch.isfinite(ldr).all():
        raise HdrkitError("the bracket contains NaN or Inf codes")
    dev = resolve_device(device)
    out_device = ldr.device
    model = model.to(dev).eval().to(memory_format=torch.channels_last)
    b, _, _, h, w = ldr.shape
    with torch.inference_mode():
        x, t, ref = ldr.to(dev, torch.float32), t.to(dev), ref.to(dev)
        priors = model.prepare(x, t, ref, response)
        side = tile_size(model, b, dtype, max_memory) if tile is None else int(tile)
        if side <= 0 or (side >= h and side >= w):
            return _refine(model, x, t, ref, priors, DTYPES[dtype]).to(out_device)
        d = model.size_divisor
        side = max(d, side // d * d)
        m = _margin(model)
        acc = torch.zeros(b, 3, h, w, device=dev)
        wsum = torch.zeros(1, 1, h, w, device=dev)
        for y0 in range(0, h, side):
            for x0 in range(0, w, side):
                y1, x1 = min(y0 + side, h), min(x0 + side, w)
                ys = slice(max(0, y0 - m), min(h, y1 + m))
                xs = slice(max(0, x0 - m), min(w, x1 + m))
                out = _refine(model, x[..., ys, xs], t, ref, _crop(priors, ys, xs), DTYPES[dtype])
                wy = _ramp(0, ys.start, ys.stop, y0, y1, h, dev)
                wx = _ramp(0, xs.start, xs.stop, x0, x1, w, dev)
                wt = (wy[:, None] * wx[None, :])[None, None]
                acc[..., ys, xs] += out * wt
                wsum[..., ys, xs] += wt
        return (acc / wsum.clamp_min(1e-12)).to(out_device)
