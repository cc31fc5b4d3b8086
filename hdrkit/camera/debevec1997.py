"""Camera response recovery by Debevec & Malik (1997).

The log inverse response ``g(z) = ln f^-1(z)`` at every code level and the log radiance of every
sample are the least-squares solution of ``w(Z_ij) [g(Z_ij) - ln E_i - ln t_j] = 0`` plus a
smoothness term ``sqrt(lambda) w(z)^(p/2) g''(z) = 0``. The sample radiances are eliminated in
closed form (each couples to the codes of one sample only), which leaves a ``levels x levels``
sparse symmetric positive-definite system, solved with SuperLU in a few milliseconds, so
thousands of samples cost nothing. Samples are pseudo-pixels picked from the cumulative
histograms (Grossberg & Nayar 2003, :mod:`hdrkit.camera.sampling`); they carry fractional codes
(their position inside a quantization step), with ``g`` interpolated linearly between levels.

``g`` is only defined up to an additive constant (a global scale of radiance); it is fixed by
normalizing ``f^-1(1) = 1`` in each channel, which also fixes the per-channel scale ambiguity
(white balance is not recovered). ``f^-1(0) = 0`` by the convention of
:mod:`hdrkit.camera.response`; monotonicity is enforced by a running maximum.

What the data cannot tell: when all exposure ratios are powers of one ratio ``r`` (the usual
bracket, e.g. 2 EV steps), any ``g + p(g)`` with ``p`` periodic of period ``ln r`` fits the
data equally well (Grossberg & Nayar 2003); only the smoothness prior picks the curve. Curves
with bumps on that scale (a few DoRF curves) are then recovered to 2..4% RMS, not better.
Code ``1`` is never observed unclipped, so ``f^-1`` between the last unclipped level and 1 is
an extrapolation of the prior too.

References:
    Debevec & Malik, "Recovering high dynamic range radiance maps from photographs",
    SIGGRAPH 1997.
    Grossberg & Nayar, "Determining the camera response from images: what is knowable?",
    IEEE TPAMI 25(11), 2003.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from hdrkit.camera.response import TabulatedResponse
from hdrkit.camera.sampling import MAX_PIXELS, prepare_bracket, select_samples_grossberg2003
from hdrkit.errors import HdrkitError

__all__ = [
    "DEBEVEC_SMOOTHNESS",
    "DEBEVEC_SAMPLES",
    "SMOOTHNESS_WEIGHT_POWER",
    "QUANTILES_PER_LEVEL",
    "SMOOTHNESS_FLOOR",
    "hat_weights",
    "solve_debevec1997",
    "recover_response_debevec1997",
]

#: Smoothness ``lambda`` for 256 levels, relative to hat weights in [0, 1] and per data sample
#: (the data term is divided by the number of samples, so the balance does not depend on how
#: many are used). For other level counts it is scaled by ``(levels / 256) ** 3``, which keeps
#: the penalty on the continuous curvature of ``g`` the same. Chosen on 22 DoRF curves exposed
#: from Poly Haven radiance maps with darktable noise (3 frames, 2 EV apart): 10..100 are within
#: 10% of each other; 0.3 or less lets the curve wiggle, 300 flattens knees. Debevec & Malik's
#: example used 50 with weights in code units and 50 pixels, which is a different scale.
DEBEVEC_SMOOTHNESS = 30.0

#: Power of the hat weight on the *squared* curvature rows. The paper multiplies rows by ``w``
#: (power 2 on squares); power 4 relaxes the prior faster towards the ends, where measured
#: responses bend most (shoulder/knee near white, toe near black): on DoRF curves with a knee
#: (e.g. DoRF 50, 96) power 2 leaves 0.04..0.05 RMS, power 4 0.003..0.011, smooth curves are unchanged.
#: The hat is floored at its 8-bit end value 2/255 so finer level grids (16-bit input) do not
#: get an ever weaker prior at their last levels.
SMOOTHNESS_WEIGHT_POWER = 4

#: Added to the curvature weights of levels no sample falls on, so they stay well posed
#: (many of 1024..4096 levels may be empty); levels with data keep the plain hat power.
SMOOTHNESS_FLOOR = 1e-6

#: Histogram quantiles per occupied code level and frame (see
#: :func:`~hdrkit.camera.sampling.select_samples_grossberg2003`); 3 frames at 8 bits give 3072
#: samples per channel. More than one averages the rounding of the other frames' codes.
QUANTILES_PER_LEVEL = 4

#: Default cap on samples per channel (None keeps every histogram quantile).
DEBEVEC_SAMPLES = None

WEIGHTINGS = ("hat", "uniform")


def hat_weights(levels: int) -> np.ndarray:
    """Debevec & Malik's hat ``w(z) = min(z, L-1-z)``, scaled to a peak of 1 and zero at both ends."""
    z = np.arange(levels, dtype=np.float64)
    w = np.minimum(z, levels - 1 - z)
    return w / w.max()


def solve_debevec1997(codes: np.ndarray, log_t: np.ndarray, levels: int, smoothness: float, weights: np.ndarray,
                      reference: np.ndarray | None = None) -> np.ndarray:
    """Solve Debevec & Malik's system for one channel.

    Args:
        codes: (P, N) fractional code levels of P samples in N exposures; ``g`` at a fractional
            level is interpolated linearly between its neighbours.
        log_t: (N,) natural logs of the exposure times.
        levels: number of code levels L.
        smoothness: ``lambda`` (see :data:`DEBEVEC_SMOOTHNESS`).
        weights: (P, N) row weights ``w`` (zero for clipped or unusable codes).
        reference: optional (L,) curve ``g_ref``: the smoothness term then penalizes the curvature
            of ``g - g_ref`` instead of ``g`` (a prior mean curve, e.g. an EMoR fit; finite everywhere).

    Returns:
        (L,) ``g = ln f^-1`` at each level, with ``g[L - 1] = 0``.
    """
    n = codes.shape[1]
    v = weights**2  # squared row weights, as in the paper's weighted rows
    keep = (v > 0).sum(axis=1) >= 2
    if not keep.any():
        raise HdrkitError("ldr: no pixel is well exposed in two frames; use a bracket with overlapping exposures")
    codes, v = codes[keep], v[keep]
    vsum = v.sum(axis=1, keepdims=True)
    scale = 1.0 / keep.sum()
    lo = np.minimum(np.floor(codes).astype(np.int64), levels - 2)
    frac = codes - lo
    idx = np.concatenate([lo, lo + 1], axis=1)  # (P, 2N)
    coef = np.concatenate([1.0 - frac, frac], axis=1)
    # Normal matrix with ln E_i eliminated: sum_jk (delta_jk v_j - v_j v_k / V) c_j c_k^T.
    m = -(v[:, :, None] * v[:, None, :]) / vsum[:, :, None]
    diag = np.arange(n)
    m[:, diag, diag] += v
    m = np.tile(m, (1, 2, 2)) * coef[:, :, None] * coef[:, None, :]
    rows = np.broadcast_to(idx[:, :, None], m.shape).ravel()
    cols = np.broadcast_to(idx[:, None, :], m.shape).ravel()
    a = scipy.sparse.coo_matrix((m.ravel() * scale, (rows, cols)), shape=(levels, levels)).tocsc()
    bbar = (v * log_t).sum(axis=1, keepdims=True) / vsum
    r = np.tile(v * (log_t - bbar), (1, 2)) * coef
    rhs = np.bincount(idx.ravel(), weights=r.ravel() * scale, minlength=levels)
    # Smoothness: lambda * sum_z w(z)^p (g[z-1] - 2 g[z] + g[z+1])^2, p = SMOOTHNESS_WEIGHT_POWER.
    lam = smoothness * (levels / 256.0) ** 3
    d = scipy.sparse.diags([1.0, -2.0, 1.0], [0, 1, 2], shape=(levels - 2, levels), format="csr")
    empty = np.bincount(idx.ravel(), weights=np.tile(v, (1, 2)).ravel(), minlength=levels) <= 0
    hat = np.maximum(hat_weights(levels)[1:-1], 2.0 / 255.0)  # no sharper than at 8 bits
    ws = scipy.sparse.diags(hat**SMOOTHNESS_WEIGHT_POWER + SMOOTHNESS_FLOOR * empty[1:-1])
    gauge = scipy.sparse.coo_matrix(([1.0], ([levels - 1], [levels - 1])), shape=(levels, levels))  # g[L-1] = 0
    smooth = lam * (d.T @ ws @ d)
    if reference is not None:
        rhs = rhs + smooth @ np.asarray(reference, dtype=np.float64)
    a = (a + smooth + gauge).tocsc()
    g = scipy.sparse.linalg.spsolve(a, rhs)
    if not np.all(np.isfinite(g)):
        raise HdrkitError("ldr: the response system is singular; use more overlapping exposures or a larger smoothness")
    return g - g[levels - 1]


def recover_response_debevec1997(
    ldr,
    exposure_times,
    *,
    bits: int = 8,
    smoothness: float = DEBEVEC_SMOOTHNESS,
    samples: int | None = DEBEVEC_SAMPLES,
    weighting: str = "hat",
    levels: int | None = None,
    max_pixels: int = MAX_PIXELS,
) -> TabulatedResponse:
    """Recover the inverse camera response from a static bracket (Debevec & Malik 1997).

    Args:
        ldr: (N, 3, H, W) or (1, N, 3, H, W) display-referred codes in [0, 1], RGB, N >= 2
            registered frames of a static scene (torch or numpy, floating point).
        exposure_times: (N,) or (1, N) linear exposure times (only their ratios matter).
        bits: bit depth the codes were quantized to (8 for JPEG/PNG, 16 for TIFF).
        smoothness: ``lambda`` of the curvature penalty, see :data:`DEBEVEC_SMOOTHNESS`.
        samples: pseudo-pixels per channel (Grossberg & Nayar histogram samples), None for all.
        weighting: ``'hat'`` (Debevec & Malik) or ``'uniform'`` (ends still excluded).
        levels: code levels to solve for; default ``2**bits`` up to 8 bits, else 1024.
        max_pixels: frames are subsampled on a grid to at most this many pixels for histograms.

    Returns:
        A :class:`~hdrkit.camera.response.TabulatedResponse` with ``inverse_table`` (3, levels)
        at codes ``linspace(0, 1, levels)``, non-decreasing, ``f^-1(0) = 0`` and ``f^-1(1) = 1``
        per channel.

    Raises:
        HdrkitError: fewer than 2 frames, a times/frames mismatch, bad ``bits``/``levels``.
    """
    if weighting not in WEIGHTINGS:
        raise HdrkitError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    if not smoothness > 0:
        raise HdrkitError(f"smoothness must be > 0 (it also keeps levels without data well posed), got {smoothness}")
    if samples is not None and samples < 16:
        raise HdrkitError(f"samples must be at least 16 (or None for all), got {samples}")
    bins, log_t, levels = prepare_bracket(ldr, exposure_times, bits, levels, max_pixels)
    w = hat_weights(levels)
    if weighting == "uniform":
        w = np.where(w > 0, 1.0, 0.0)
    tables = []
    for c in range(bins.shape[0]):
        codes, level = select_samples_grossberg2003(bins[c], levels, samples, QUANTILES_PER_LEVEL)
        g = solve_debevec1997(codes, log_t, levels, smoothness, w[level])
        inv = np.exp(g)
        inv[0] = 0.0
        tables.append(inv)
    return TabulatedResponse(np.stack(tables), name="debevec1997")
