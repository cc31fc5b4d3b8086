"""Camera response recovery by Robertson, Borman & Stevenson (2003).

Alternates two closed-form steps on the pixels of a static bracket: the radiance of every pixel
``x_i = sum_j w_ij t_j I(Z_ij) / sum_j w_ij t_j^2`` given the inverse response ``I = f^-1`` at
every code level, then ``I_m`` = the mean of ``t_j x_i`` over all pixels and frames with code
``m``. There is no smoothness prior; the result is normalized to ``f^-1(1) = 1`` per channel.

For speed the iterations run on a regular-grid subsample of at most :data:`ROBERTSON_PIXELS`
pixels per frame (every code level of a natural image is still populated); each iteration is
then a few vectorized passes over about 10^5 values.

Differences from the paper. For clipping: levels 0 and ``L - 1`` get zero weight (they hold
clipped pixels, whose mean radiance says nothing about ``f^-1``), ``f^-1(1)`` is extrapolated
along the starting curve's shape above the highest observed level, ``f^-1(0) = 0``, and levels
nobody hit are interpolated. The start is the Debevec & Malik (1997) solution with its
smoothness prior, not a straight line: when all exposure ratios are powers of one ratio (any
regular bracket) the fixed point is not unique (Grossberg & Nayar 2003), and the iterations keep
whatever periodic error the start has. From a gamma-2.2 start, a gamma-1.5 camera is recovered
to 0.07 RMS even without noise; from the Debevec start, close to that start's accuracy (within 0.002..0.01 RMS on DoRF curves).

References:
    Robertson, Borman & Stevenson, "Estimation-theoretic approach to dynamic range enhancement
    using multiple exposures", Journal of Electronic Imaging 12(2), 2003.
    Grossberg & Nayar, "Determining the camera response from images: what is knowable?",
    IEEE TPAMI 25(11), 2003.
"""

from __future__ import annotations

import numpy as np

from hdrkit.camera.response import TabulatedResponse
from hdrkit.camera.debevec1997 import DEBEVEC_SMOOTHNESS, QUANTILES_PER_LEVEL, hat_weights, solve_debevec1997
from hdrkit.camera.sampling import prepare_bracket, select_samples_grossberg2003
from hdrkit.errors import HdrkitError

__all__ = [
    "ROBERTSON_PIXELS",
    "ROBERTSON_MAX_ITER",
    "ROBERTSON_TOL",
    "gaussian_weights",
    "recover_response_robertson2003",
]

#: Pixels per frame the iterations run on (regular-grid subsample of larger frames).
ROBERTSON_PIXELS = 2**16

#: Iteration cap; the paper's experiments and OpenCV use about 30.
ROBERTSON_MAX_ITER = 30

#: Stop when no level of ``f^-1`` moves by more than this (relative to ``f^-1(1) = 1``).
ROBERTSON_TOL = 1e-5



def gaussian_weights(levels: int) -> np.ndarray:
    """Robertson et al.'s ``w(z) = exp(-4 (z - c)^2 / c^2)``, ``c = (L - 1) / 2``, zero at both ends."""
    z = np.arange(levels, dtype=np.float64)
    c = (levels - 1) / 2.0
    w = np.exp(-4.0 * (z - c) ** 2 / c**2)
    w[0] = w[-1] = 0.0
    return w


def _finish(inv: np.ndarray, counts: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Fill unobserved levels, extrapolate the top level, set f^-1(0) = 0, normalize f^-1(1) = 1.

    Above the highest observed level the curve follows the shape of ``start`` (the Debevec
    solution, whose smoothness prior extrapolates), scaled to meet the observed values.
    """
    levels = inv.size
    z = np.arange(levels)
    seen = (counts > 0) & (z > 0) & (z < levels - 1) & (inv > 0)
    if seen.sum() < 2:
        raise HdrkitError("ldr: too few well-exposed code levels to recover a response; check the bracket")
    zs = z[seen]
    out = np.interp(z, zs, inv[seen])
    last = zs[-1]
    out[last + 1 :] = out[last] * start[last + 1 :] / max(start[last], 1e-300)
    out = np.maximum.accumulate(np.maximum(out, 0))
    out[0] = 0.0
    return out / out[-1]


def recover_response_robertson2003(
    ldr,
    exposure_times,
    *,
    bits: int = 8,
    max_iter: int = ROBERTSON_MAX_ITER,
    tol: float = ROBERTSON_TOL,
    levels: int | None = None,
    max_pixels: int = ROBERTSON_PIXELS,
) -> TabulatedResponse:
    """Recover the inverse camera response from a static bracket (Robertson et al. 2003).

    Args:
        ldr: (N, 3, H, W) or (1, N, 3, H, W) display-referred codes in [0, 1], RGB, N >= 2
            registered frames of a static scene (torch or numpy, floating point).
        exposure_times: (N,) or (1, N) linear exposure times (only their ratios matter).
        bits: bit depth the codes were quantized to (8 for JPEG/PNG, 16 for TIFF).
        max_iter: iteration cap.
        tol: convergence threshold on the largest change of ``f^-1`` at any level.
        levels: code levels to solve for; default ``2**bits`` up to 8 bits, else 1024.
        max_pixels: frames are subsampled on a regular grid to at most this many pixels.

    Returns:
        A :class:`~hdrkit.camera.response.TabulatedResponse` with ``inverse_table`` (3, levels)
        at codes ``linspace(0, 1, levels)``, non-decreasing, ``f^-1(0) = 0``, ``f^-1(1) = 1``.

    Raises:
        HdrkitError: fewer than 2 frames, a times/frames mismatch, bad ``bits``/``levels``/``max_iter``.
    """
    if not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise HdrkitError(f"max_iter must be a positive integer, got {max_iter!r}")
    if not tol >= 0:
        raise HdrkitError(f"tol must be >= 0, got {tol}")
    bins, log_t, levels = prepare_bracket(ldr, exposure_times, bits, levels, max_pixels)
    t = np.exp(log_t - log_t.min())[:, None]  # (N, 1), shortest = 1
    w = gaussian_weights(levels)
    tables = []
    for c in range(bins.shape[0]):
        z = bins[c]  # (N, M)
        wz = w[z]
        keep = (wz > 0).any(axis=0)
        z, wz = z[:, keep], wz[:, keep]
        counts = np.bincount(z[wz > 0], minlength=levels).astype(np.float64)
        codes, level = select_samples_grossberg2003(z, levels, None, QUANTILES_PER_LEVEL)
        inv = np.exp(solve_debevec1997(codes, log_t, levels, DEBEVEC_SMOOTHNESS, hat_weights(levels)[level]))
        inv[0] = 0.0
        start = inv / inv[-1]
        den = (wz * t**2).sum(axis=0)
        use = wz > 0
        zu = z[use]
        for _ in range(max_iter):
            x = (wz * t * inv[z]).sum(axis=0) / den  # (M,)
            tx = (t * x)[use]
            sums = np.bincount(zu, weights=tx, minlength=levels)
            new = np.divide(sums, counts, out=np.zeros(levels), where=counts > 0)
            new = _finish(new, counts, start)
            change = np.abs(new - inv).max()
            inv = new
            if change < tol:
                break
        tables.append(inv)
    return TabulatedResponse(np.stack(tables), name="robertson2003")
