"""Input checks, code binning and sample selection for camera-response recovery.

Samples are chosen from the cumulative histograms of the frames, following Grossberg & Nayar:
for a static scene and a monotonic response, the pixel at quantile ``q`` of one exposure is the
pixel at quantile ``q`` of every other exposure, so the codes ``Q_j(q)`` of all frames at a common
quantile form one "pseudo-pixel" correspondence without registering pixels (the brightness
transfer function ``T = H_k^-1 o H_j`` of the paper). Quantiles are picked so that every code
level occupied in any frame is hit, which covers the code range evenly instead of following the
image content as a random or grid selection of pixel positions does. Histograms average many
pixels, so each correspondence is far less noisy than a single pixel.

References:
    Grossberg & Nayar, "Determining the camera response from images: what is knowable?",
    IEEE TPAMI 25(11), 2003.
    Debevec & Malik, "Recovering high dynamic range radiance maps from photographs", SIGGRAPH 1997.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from hdrkit.errors import HdrkitError

__all__ = [
    "MAX_PIXELS",
    "default_levels",
    "prepare_bracket",
    "cumulative_histograms",
    "select_samples_grossberg2003",
]

#: Pixels per frame read for histograms and Robertson's iterations; larger frames are subsampled
#: on a regular grid (a 1500x1000 frame is read every 3rd pixel). Histograms of such a subsample
#: differ from the full ones by sampling noise only and are 9x cheaper to build.
MAX_PIXELS = 2**18

#: Code bins used for 16-bit (and 10/12-bit) input: the response is solved on this many levels
#: and tabulated at them (Robertson et al. 2003 and Debevec & Malik 1997 both solve one unknown per
#: level, which would be 65536 unknowns and too few samples per level at 16 bits).
HIGH_BIT_LEVELS = 1024


def default_levels(bits: int) -> int:
    """Number of code levels solved for ``bits``-deep input: ``2**bits`` up to 8 bits, else 1024."""
    return 2**bits if bits <= 8 else HIGH_BIT_LEVELS


def prepare_bracket(ldr, exposure_times, bits: int, levels: int | None, max_pixels: int = MAX_PIXELS):
    """Validate a bracket and bin its codes.

    Args:
        ldr: (N, 3, H, W) or (1, N, 3, H, W) display-referred codes in [0, 1] (torch or numpy).
        exposure_times: (N,) or (1, N) linear exposure times (any unit; only ratios matter).
        bits: bit depth of the codes (8..16); defines the default number of levels.
        levels: code levels to solve for (2..2**bits), or None for :func:`default_levels`.
        max_pixels: frames with more pixels are subsampled on a regular grid.

    Returns:
        ``(bins, log_t, levels)``: bins (C, N, M) int64 in [0, levels - 1] (level k is the code
        k / (levels - 1)), log_t (N,) float64 natural logs of the times, and the level count.
    """
    if not isinstance(bits, (int, np.integer)) or not 2 <= bits <= 16:
        raise HdrkitError(f"bits must be an integer bit depth in 2..16 (8 for JPEG/PNG, 16 for TIFF), got {bits!r}")
    levels = default_levels(int(bits)) if levels is None else levels
    if not isinstance(levels, (int, np.integer)) or not 16 <= levels <= 2**bits:
        raise HdrkitError(f"levels must be an integer in 16..{2**bits} for bits={bits}, got {levels!r}")
    x = torch.as_tensor(ldr)
    if x.ndim == 5:
        if x.shape[0] != 1:
            raise HdrkitError(f"ldr: response recovery takes one bracket (B = 1), got B = {x.shape[0]}; loop over brackets")
        x = x[0]
    if x.ndim != 4 or x.shape[1] != 3:
        raise HdrkitError(f"ldr must have shape (N, 3, H, W) or (1, N, 3, H, W), got {tuple(x.shape)}")
    n = x.shape[0]
    if n < 2:
        raise HdrkitError(f"ldr: response recovery needs at least 2 exposures, got {n}")
    t = torch.as_tensor(exposure_times, dtype=torch.float64).reshape(-1) if exposure_times is not None else None
    if t is None or t.numel() != n:
        got = "None" if t is None else t.numel()
        raise HdrkitError(f"exposure_times must hold one time per frame ({n}), got {got}")
    if not torch.isfinite(t).all() or (t <= 0).any():
        raise HdrkitError("exposure_times must be finite and positive (linear seconds, not EV)")
    if torch.unique(t).numel() < 2:
        raise HdrkitError("exposure_times are all equal: response recovery needs different exposures")
    if not x.is_floating_point():
        raise HdrkitError(f"ldr must be floating point codes in [0, 1], got dtype {x.dtype}; divide integer images by 2**bits - 1")
    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()
    h, w = x.shape[-2:]
    step = max(1, math.ceil(math.sqrt(h * w / max_pixels)))
    xs = x.detach().cpu().numpy()[..., step // 2 :: step, step // 2 :: step]
    if not np.isfinite(xs).all():  # checked on the pixels read only, for speed
        raise HdrkitError("ldr contains NaN or Inf; codes must be finite values in [0, 1]")
    bins = np.rint(np.clip(xs, 0, 1) * (levels - 1)).astype(np.int64)
    bins = bins.transpose(1, 0, 2, 3).reshape(3, n, -1)
    return bins, torch.log(t).numpy(), int(levels)


def cumulative_histograms(bins: np.ndarray, levels: int) -> np.ndarray:
    """Normalized cumulative histograms: bins (..., M) ints -> (..., levels) with ``F[m] = P(code <= m)``."""
    lead = bins.shape[:-1]
    flat = bins.reshape(-1, bins.shape[-1])
    offs = (np.arange(flat.shape[0]) * levels)[:, None]
    counts = np.bincount((flat + offs).ravel(), minlength=flat.shape[0] * levels).reshape(flat.shape[0], levels)
    cdf = np.cumsum(counts, axis=1) / flat.shape[1]
    return cdf.reshape(*lead, levels)


def select_samples_grossberg2003(bins: np.ndarray, levels: int, samples: int | None = None, per_level: int = 1) -> np.ndarray:
    """Pseudo-pixel correspondences from cumulative histograms (Grossberg & Nayar 2003).

    For every frame ``j`` and occupied level ``m``, ``per_level`` evenly spaced quantiles inside
    that level's step of the cumulative histogram ``(F_j(m-1), F_j(m)]`` are taken; the union over
    frames is sorted, and each quantile ``q`` is read back in every frame ``k`` as a fractional
    code: the level ``m = Q_k(q)`` plus the position of ``q`` inside its step,
    ``m - 1/2 + (q - F_k(m-1)) / (F_k(m) - F_k(m-1))``, which assumes pixels are spread evenly
    inside a quantization step. The fraction removes the +-1/2 level rounding of the brightness
    transfer function, which otherwise biases the recovered curve by a few percent at 8 bits.

    Args:
        bins: (N, M) integer code levels of one channel in N frames (the same pixels in each frame).
        levels: number of code levels.
        samples: keep at most this many pseudo-pixels, evenly spread in rank; None keeps all.
        per_level: quantiles taken in each occupied level step.

    Returns:
        ``(codes, level)``: (P, N) float64 fractional codes in [0, levels - 1] and the (P, N)
        int64 quantization level each one lies in (0 and ``levels - 1`` mean clipped).
    """
    if bins.ndim != 2:
        raise HdrkitError(f"bins must have shape (N, M), got {bins.shape}")
    cdf = cumulative_histograms(bins, levels)
    lo = np.concatenate([np.zeros((cdf.shape[0], 1)), cdf[:, :-1]], axis=1)
    occupied = cdf > lo
    frac = (np.arange(per_level) + 0.5) / per_level
    q = (lo[occupied][:, None] + frac * (cdf[occupied] - lo[occupied])[:, None]).ravel()
    q = np.unique(q)
    if samples is not None and q.size > samples:
        q = q[np.round(np.linspace(0, q.size - 1, samples)).astype(np.int64)]
    level = np.stack([np.minimum(np.searchsorted(c, q, side="left"), levels - 1) for c in cdf], axis=1)
    f_lo = np.take_along_axis(lo.T, level, axis=0)
    f_hi = np.take_along_axis(cdf.T, level, axis=0)
    pos = (q[:, None] - f_lo) / np.maximum(f_hi - f_lo, 1e-300)
    codes = np.clip(level - 0.5 + pos, 0, levels - 1)
    return codes, level
