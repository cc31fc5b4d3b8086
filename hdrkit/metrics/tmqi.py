"""TMQI, the tone-mapped image quality index of Yeganeh & Wang 2013, in torch (float64).

TMQI scores a tone-mapped (display-referred) image against the HDR radiance map it was made from,
without a reference LDR image. It combines two terms on luminance:

* **Structural fidelity** ``S``: an SSIM-like comparison of local structure between the HDR and the
  LDR luminance, at 5 scales (a 2x2 mean and decimation by 2 between scales), with an 11 x 11
  Gaussian window (sigma 1.5, 'valid' windows only). Per window

  ``s = (2 p_h p_l + C1) / (p_h^2 + p_l^2 + C1) * (sigma_hl + C2) / (sigma_h sigma_l + C2)``

  where ``p = Phi((sigma - u) / (u / 3))`` maps each local standard deviation through a cumulative
  normal whose threshold ``u = 128 / (1.4 CSF(f))`` comes from the Mannos & Sakrison contrast
  sensitivity ``CSF(f) = 100 * 2.6 (0.0192 + 0.114 f) exp(-(0.114 f)^1.1)`` at the scale's spatial
  frequency ``f = 16, 8, 4, 2, 1`` cycles/degree. The per-scale means combine as
  ``S = prod(s_l ^ w_l)``. The HDR luminance is first min-max scaled to [0, 2^32 - 1]; the LDR
  luminance is taken on its 8-bit scale [0, 255].
* **Statistical naturalness** ``N = P_m(mean) * P_d(d)`` (each normalised to peak 1): a Gaussian of
  the mean LDR luminance (mean 115.94, sd 27.99) times a Beta(4.4, 10.1) density of ``d / 64.29``,
  ``d`` the mean of the standard deviations of non-overlapping 11 x 11 blocks.

``TMQI = a S^alpha + (1 - a) N^beta`` with ``a = 0.8012``, ``alpha = 0.3046``, ``beta = 0.7088``.

Faithful to the authors' MATLAB code (``TMQI.m``, version 1.0), including its conventions:
luminance ``Y = 0.2126 R + 0.7152 G + 0.0722 B`` of the HDR linear RGB and of the LDR *codes*
(gamma-encoded values times 255, no linearisation); the scale factor ``round((2^32 - 1) / (max -
min))``; the 2x2 mean with symmetric padding on the bottom/right (so an odd side gives
``ceil(n / 2)`` samples); the block deviations with MATLAB's ``std`` (``n - 1`` normalisation) over
``blkproc`` blocks, the image zero-padded to a multiple of 11 and every block counted. Differences,
on purpose: local (co)variances are computed in a numerically stable two-pass form (row deviations
from the row mean, then the law of total variance down the columns) instead of ``E[x^2] - E[x]^2``,
which on the 2^32-scaled HDR cancels to noise of magnitude ~10 where the HDR is flat (the reference
then calls a flat region "visible"; here its deviation is exactly 0); LDR codes are used as given
(not rounded to integers). A negative per-scale mean (an anti-correlated image) makes ``S`` NaN, as
in the reference.

Inputs: ``hdr`` linear RGB radiance (any positive scale; only ratios and the range matter) and
``ldr`` display codes in [0, 1], both torch ``(3, H, W)`` / ``(B, 3, H, W)`` (channel-first) or numpy
``(H, W, 3)`` / ``(B, H, W, 3)`` (channel-last); a single channel is taken as luminance. Images
need at least 161 pixels per side, so that the fifth scale still holds an 11 x 11 window.

References:
    H. Yeganeh, Z. Wang, "Objective Quality Assessment of Tone-Mapped Images", IEEE Transactions on
    Image Processing 22(2), 657-667, 2013; MATLAB code TMQI.m (Yeganeh & Wang, 2012),
    https://ece.uwaterloo.ca/~z70wang/research/tmqi/.
    J. L. Mannos, D. J. Sakrison, "The effects of a visual fidelity criterion on the encoding of
    images", IEEE Transactions on Information Theory 20(4), 1974 (the CSF).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from hdrkit.errors import HdrkitError

__all__ = [
    "TMQI_A",
    "TMQI_ALPHA",
    "TMQI_BETA",
    "TMQI_LEVELS",
    "TMQI_LEVEL_WEIGHTS",
    "TMQI_WINDOW",
    "TMQI_SIGMA",
    "TMQI_C1",
    "TMQI_C2",
    "TMQI_HDR_RANGE",
    "TMQI_LDR_RANGE",
    "NATURAL_MEAN",
    "NATURAL_MEAN_SD",
    "NATURAL_STD_BETA",
    "NATURAL_STD_SCALE",
    "NATURAL_BLOCK",
    "TMQI_LUMINANCE",
    "TMQI_MIN_SIZE",
    "TMQIScore",
    "tmqi",
    "tmqi_score",
    "structural_fidelity",
    "statistical_naturalness",
    "csf_mannos",
]

TMQI_A = 0.8012
"""Weight ``a`` of structural fidelity in ``Q = a S^alpha + (1 - a) N^beta`` (Yeganeh & Wang 2013, eq. 20)."""
TMQI_ALPHA = 0.3046
"""Exponent ``alpha`` on ``S`` (Yeganeh & Wang 2013, fitted to subjective rankings)."""
TMQI_BETA = 0.7088
"""Exponent ``beta`` on ``N`` (Yeganeh & Wang 2013)."""

TMQI_LEVELS = 5
"""Number of scales of the structural fidelity."""
TMQI_LEVEL_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
"""Per-scale exponents ``w_l`` of ``S = prod(s_l ^ w_l)``, finest first (those of MS-SSIM, Wang et al. 2003)."""
TMQI_WINDOW = 11
"""Side of the Gaussian window of the local statistics (MATLAB ``fspecial('gaussian', 11, 1.5)``)."""
TMQI_SIGMA = 1.5
"""Standard deviation of the Gaussian window, pixels."""
TMQI_C1 = 0.01
"""Stabiliser of the signal-visibility term (TMQI.m ``Slocal``)."""
TMQI_C2 = 10.0
"""Stabiliser of the structure (correlation) term (TMQI.m ``Slocal``)."""
TMQI_FINEST_FREQUENCY = 16.0
"""Spatial frequency (cycles/degree) assigned to the finest scale; halved at each coarser scale."""
TMQI_CSF_PEAK_SCALE = 100.0
"""The factor 100 in the reference's ``CSF = 100 * 2.6 (0.0192 + 0.114 f) exp(-(0.114 f)^1.1)``."""
TMQI_THRESHOLD_NUMERATOR = 128.0
"""``u = 128 / (1.4 CSF)``: the mean of the visibility threshold (TMQI.m); its sd is ``u / 3``."""
TMQI_THRESHOLD_CSF_GAIN = 1.4
"""The factor 1.4 in ``u = 128 / (1.4 CSF)`` (TMQI.m)."""
TMQI_HDR_RANGE = 2.0**32 - 1.0
"""The HDR luminance is min-max scaled to [0, 2^32 - 1] before the structural comparison."""
TMQI_LDR_RANGE = 255.0
"""LDR codes are compared on the 8-bit scale [0, 255]."""

NATURAL_MEAN = 115.94
"""Mean of the Gaussian model of mean LDR luminance (0-255) of natural images (Yeganeh & Wang 2013)."""
NATURAL_MEAN_SD = 27.99
"""Standard deviation of that Gaussian."""
NATURAL_STD_BETA = (4.4, 10.1)
"""Beta(alpha, beta) model of the mean block standard deviation, normalised by :data:`NATURAL_STD_SCALE`."""
NATURAL_STD_SCALE = 64.29
"""Normaliser of the mean block standard deviation (TMQI.m: ``betapdf(sig ./ 64.29, 4.4, 10.1)``)."""
NATURAL_BLOCK = 11
"""Side of the non-overlapping blocks of the naturalness contrast statistic."""

TMQI_LUMINANCE = (0.2126, 0.7152, 0.0722)
"""Y row of TMQI.m's RGB-to-XYZ matrix (Rec. 709 / sRGB primaries)."""

TMQI_MIN_SIZE = 2 ** (TMQI_LEVELS - 1) * (TMQI_WINDOW - 1) + 1
"""Smallest side (161 px) whose fifth scale (``ceil(n / 16)`` px) still holds one 11 x 11 window."""


class TMQIScore(NamedTuple):
    """TMQI of one image (floats) or a batch (``(B,)`` float64 arrays).

    Attributes:
        q: TMQI in [0, 1] (higher is better).
        s: structural fidelity in [0, 1] (NaN if a scale's mean is negative, as in the reference).
        n: statistical naturalness in [0, 1].
        s_levels: per-scale structural fidelity means, finest first: a tuple of 5 floats, or
            ``(B, 5)``.
    """

    q: float | np.ndarray
    s: float | np.ndarray
    n: float | np.ndarray
    s_levels: tuple[float, ...] | np.ndarray


def csf_mannos(frequency: float) -> float:
    """Contrast sensitivity at ``frequency`` cycles/degree as TMQI.m uses it (Mannos & Sakrison 1974, x100)."""
    return TMQI_CSF_PEAK_SCALE * 2.6 * (0.0192 + 0.114 * frequency) * math.exp(-((0.114 * frequency) ** 1.1))


def _as_luminance(x: object, name: str) -> tuple[torch.Tensor, bool]:
    """Image -> ``(B, 1, H, W)`` float64 luminance and whether the input was batched."""
    if isinstance(x, np.ndarray):
        if x.ndim not in (3, 4) or x.shape[-1] not in (1, 3):
            raise HdrkitError(f"{name}: numpy arrays are channel-last (H, W, 3) or (B, H, W, 3), got {x.shape}")
        if not np.issubdtype(x.dtype, np.floating):
            raise HdrkitError(f"{name}: expected a float array, got {x.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(x)).movedim(-1, -3)
    elif isinstance(x, torch.Tensor):
        if x.ndim not in (3, 4) or x.shape[-3] not in (1, 3):
            raise HdrkitError(f"{name}: torch tensors are channel-first (3, H, W) or (B, 3, H, W), got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise HdrkitError(f"{name}: expected a float tensor, got {x.dtype}")
        t = x.detach()
    else:
        raise HdrkitError(f"{name}: expected a torch.Tensor or numpy.ndarray, got {type(x).__name__}")
    batched = t.ndim == 4
    t = (t if batched else t[None]).to(torch.float64)
    if not torch.isfinite(t).all():
        raise HdrkitError(f"{name}: contains NaN or infinite values")
    if t.shape[1] == 3:
        w = torch.tensor(TMQI_LUMINANCE, dtype=torch.float64, device=t.device).view(1, 3, 1, 1)
        t = (t * w).sum(dim=1, keepdim=True)
    return t, batched


def _gaussian_taps(device: torch.device) -> torch.Tensor:
    """Normalised 1-D taps whose outer product is MATLAB's ``fspecial('gaussian', 11, 1.5)``."""
    k = torch.arange(TMQI_WINDOW, dtype=torch.float64, device=device) - (TMQI_WINDOW - 1) / 2
    g = torch.exp(-(k * k) / (2 * TMQI_SIGMA**2))
    return g / g.sum()


def _valid_filter(x: torch.Tensor, taps: list[float], dim: int) -> torch.Tensor:
    """'Valid' correlation of ``x`` with 1-D ``taps`` along ``dim`` (-1 rows, -2 columns), as shifted sums.

    (float64 ``conv2d`` has no fast CPU kernel; 11 fused multiply-adds are several times faster.)
    """
    n_out = x.shape[dim] - len(taps) + 1
    out = x.narrow(dim, 0, n_out) * taps[0]
    for k in range(1, len(taps)):
        out.add_(x.narrow(dim, k, n_out), alpha=taps[k])
    return out


def _local_moments(x: torch.Tensor, y: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gaussian-weighted local variances and covariance over 'valid' 11 x 11 windows, two-pass.

    Args:
        x, y: ``(B, 1, H, W)`` float64.
        g: ``(11,)`` normalised taps (the window is ``outer(g, g)``).

    Returns:
        ``var_x, var_y, cov_xy``, each ``(B, 1, H - 10, W - 10)``. Row moments come from deviations
        about each row segment's own mean; the column pass adds the spread of the row means (law of
        total variance), so no large squares are subtracted.
    """
    taps = g.tolist()
    mx, my = _valid_filter(x, taps, -1), _valid_filter(y, taps, -1)
    vx, vy, cxy = torch.zeros_like(mx), torch.zeros_like(mx), torch.zeros_like(mx)
    dx, dy = torch.empty_like(mx), torch.empty_like(mx)
    for k, tap in enumerate(taps):
        torch.sub(x.narrow(-1, k, mx.shape[-1]), mx, out=dx)
        torch.sub(y.narrow(-1, k, mx.shape[-1]), my, out=dy)
        vx.addcmul_(dx, dx, value=tap)
        vy.addcmul_(dy, dy, value=tap)
        cxy.addcmul_(dx, dy, value=tap)
    mux, muy = _valid_filter(mx, taps, -2), _valid_filter(my, taps, -2)
    var_x, var_y, cov = _valid_filter(vx, taps, -2), _valid_filter(vy, taps, -2), _valid_filter(cxy, taps, -2)
    dx, dy = torch.empty_like(mux), torch.empty_like(mux)
    for k, tap in enumerate(taps):
        torch.sub(mx.narrow(-2, k, mux.shape[-2]), mux, out=dx)
        torch.sub(my.narrow(-2, k, mux.shape[-2]), muy, out=dy)
        var_x.addcmul_(dx, dx, value=tap)
        var_y.addcmul_(dy, dy, value=tap)
        cov.addcmul_(dx, dy, value=tap)
    return var_x, var_y, cov


def _downsample(x: torch.Tensor) -> torch.Tensor:
    """TMQI.m's ``imfilter(x, ones(2) / 4, 'symmetric', 'same')`` then ``(1:2:end, 1:2:end)``."""
    pad_h, pad_w = x.shape[-2] % 2, x.shape[-1] % 2
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    return F.avg_pool2d(x, 2)


def structural_fidelity(l_hdr: torch.Tensor, l_ldr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-scale structural fidelity of TMQI on prepared luminance.

    Args:
        l_hdr: ``(B, 1, H, W)`` float64 HDR luminance already scaled to [0, 2^32 - 1].
        l_ldr: ``(B, 1, H, W)`` float64 LDR luminance on [0, 255].

    Returns:
        ``(S, s_levels)``: ``(B,)`` and ``(B, 5)``.
    """
    g = _gaussian_taps(l_hdr.device)
    levels = []
    frequency = TMQI_FINEST_FREQUENCY
    for level in range(TMQI_LEVELS):
        var_h, var_l, cov = _local_moments(l_hdr, l_ldr, g)
        sd_h, sd_l = var_h.clamp_min(0).sqrt(), var_l.clamp_min(0).sqrt()
        u = TMQI_THRESHOLD_NUMERATOR / (TMQI_THRESHOLD_CSF_GAIN * csf_mannos(frequency))
        p_h = torch.special.ndtr((sd_h - u) / (u / 3))
        p_l = torch.special.ndtr((sd_l - u) / (u / 3))
        s_map = (2 * p_h * p_l + TMQI_C1) / (p_h * p_h + p_l * p_l + TMQI_C1) * ((cov + TMQI_C2) / (sd_h * sd_l + TMQI_C2))
        levels.append(s_map.mean(dim=(1, 2, 3)))
        if level + 1 < TMQI_LEVELS:
            l_hdr, l_ldr = _downsample(l_hdr), _downsample(l_ldr)
            frequency /= 2
    s_levels = torch.stack(levels, dim=1)
    w = torch.tensor(TMQI_LEVEL_WEIGHTS, dtype=torch.float64, device=s_levels.device)
    return s_levels.pow(w).prod(dim=1), s_levels


def statistical_naturalness(l_ldr: torch.Tensor) -> torch.Tensor:
    """Statistical naturalness of TMQI.

    Args:
        l_ldr: ``(B, 1, H, W)`` float64 LDR luminance on [0, 255].

    Returns:
        ``(B,)`` in [0, 1]: 1 when the mean is 115.94 and the mean 11 x 11 block deviation is the
        mode of the Beta model, ``64.29 * 3.4 / 12.5 = 17.49``.
    """
    mean = l_ldr.mean(dim=(1, 2, 3))
    h, w = l_ldr.shape[-2:]
    b = NATURAL_BLOCK
    padded = F.pad(l_ldr, (0, (-w) % b, 0, (-h) % b))  # blkproc pads with zeros on the bottom/right
    blocks = padded.unfold(2, b, b).unfold(3, b, b).flatten(-2)
    block_sd = blocks.std(dim=-1, correction=1)  # MATLAB std: n - 1 normalisation
    d = block_sd.mean(dim=(1, 2, 3))
    a, bb = NATURAL_STD_BETA
    mode = (a - 1) / (a + bb - 2)
    x = d / NATURAL_STD_SCALE
    inside = (x > 0) & (x < 1)
    xc = x.clamp(1e-300, 1 - 1e-16)
    # Beta density over its value at the mode: the Beta function cancels
    log_pc = (a - 1) * torch.log(xc / mode) + (bb - 1) * torch.log((1 - xc) / (1 - mode))
    p_contrast = torch.where(inside, torch.exp(log_pc), torch.zeros_like(x))
    p_mean = torch.exp(-0.5 * ((mean - NATURAL_MEAN) / NATURAL_MEAN_SD) ** 2)
    return p_mean * p_contrast


def tmqi_score(hdr: object, ldr: object) -> TMQIScore:
    """TMQI with its parts: quality ``q``, structural fidelity ``s``, naturalness ``n``, per-scale ``s_levels``.

    Args:
        hdr: linear HDR RGB (or luminance), torch ``(3, H, W)`` / ``(B, 3, H, W)`` or numpy
            ``(H, W, 3)`` / ``(B, H, W, 3)``; any positive scale.
        ldr: the tone-mapped image, display codes in [0, 1] (e.g. sRGB-encoded), same layout and size.

    Returns:
        A :class:`TMQIScore` of floats for one image or ``(B,)`` arrays for a batch.

    Raises:
        HdrkitError: mismatched shapes, a side under 161 px, NaN/Inf, or LDR values outside [0, 1].
    """
    l_hdr, batched = _as_luminance(hdr, "hdr")
    l_ldr, batched_ldr = _as_luminance(ldr, "ldr")
    if l_hdr.shape != l_ldr.shape or batched != batched_ldr:
        raise HdrkitError(f"hdr and ldr must have the same layout and size, got {tuple(l_hdr.shape)} and "
                          f"{tuple(l_ldr.shape)} (as B, 1, H, W)")
    h, w = l_hdr.shape[-2:]
    if min(h, w) < TMQI_MIN_SIZE:
        raise HdrkitError(f"TMQI needs images of at least {TMQI_MIN_SIZE}x{TMQI_MIN_SIZE} pixels (5 scales of an "
                          f"11x11 window), got {h}x{w}")
    lo, hi = float(l_ldr.min()), float(l_ldr.max())
    if lo < 0 or hi > 1:
        raise HdrkitError(f"ldr must hold display codes in [0, 1], got values in [{lo:.4g}, {hi:.4g}]")
    l_ldr = l_ldr.to(l_hdr.device) * TMQI_LDR_RANGE
    lmin = l_hdr.amin(dim=(1, 2, 3), keepdim=True)
    span = l_hdr.amax(dim=(1, 2, 3), keepdim=True) - lmin
    factor = torch.where(span > 0, torch.round(TMQI_HDR_RANGE / span.clamp_min(1e-300)), torch.zeros_like(span))
    factor = torch.where((factor == 0) & (span > 0), TMQI_HDR_RANGE / span.clamp_min(1e-300), factor)  # span > 2^33
    s, s_levels = structural_fidelity(factor * (l_hdr - lmin), l_ldr)
    n = statistical_naturalness(l_ldr)
    q = TMQI_A * s.pow(TMQI_ALPHA) + (1 - TMQI_A) * n.pow(TMQI_BETA)
    q, s, n, s_levels = (v.cpu().numpy() for v in (q, s, n, s_levels))
    if batched:
        return TMQIScore(q, s, n, s_levels)
    return TMQIScore(float(q[0]), float(s[0]), float(n[0]), tuple(float(v) for v in s_levels[0]))


def tmqi(hdr: object, ldr: object) -> float | np.ndarray:
    """TMQI quality ``Q`` in [0, 1] of the tone-mapped ``ldr`` against its source ``hdr``.

    Args and raises as :func:`tmqi_score`. Returns a float for one image, ``(B,)`` for a batch.
    """
    return tmqi_score(hdr, ldr).q
