"""Durand & Dorsey 2002 bilateral tone mapping with automatic exposure and contrast (hdrkit's preview default).

Durand & Dorsey split log luminance into a *base* layer (an edge-preserving bilateral filter of it)
and a *detail* layer (the rest), compress only the base, and add the detail back, so large contrasts
shrink while local texture keeps its contrast and strong edges do not halo (the range kernel stops
the filter at them). Here, per image:

1. ``l = log2(L)`` of Rec. 709 luminance (black pixels stay black);
2. ``base = bilateral(l)`` with spatial sigma ``spatial_sigma`` times the image's longer side (the
   paper's 2 %) and range sigma ``range_sigma`` stops (the paper's 0.4 decades = 1.33 stops),
   computed on a bilateral grid (Paris & Durand 2006 / Chen et al. 2007: trilinear splat into a grid
   sampled at one sigma, a Gaussian blur of one cell, trilinear slicing), so the cost is linear in
   the pixels; ``detail = l - base``;
3. automatic exposure and contrast: the log-average of the base is placed on the photographic
   middle grey ``key`` (Reinhard et al. 2002); the base above it is compressed (never expanded) so
   that its ``highlight_percentile`` reaches ``white``, and the base below it so that its
   ``shadow_percentile`` reaches ``black`` (a continuous curve with slopes <= 1 either side of the
   key, where Durand & Dorsey use one slope fitting the whole base into a fixed 5:1 contrast);
4. ``log2(L_out) = curve(base) + detail_gain * detail``;
5. colour by ratio with a saturation exponent, ``C_out = (C / L) ** saturation * L_out`` (Schlick
   1994; Mantiuk et al. 2009 for the exponent), then out-of-gamut pixels are brought into [0, 1]
   without changing their hue, partly by darkening and partly by desaturating (:func:`fit_gamut`;
   per-channel clipping would shift hues toward yellow/cyan/magenta in bright saturated areas),
   then encoded (sRGB).

The defaults were chosen by mean TMQI on the shared HDR images (see
``benchmarks/results/tonemap_tmqi.md``) and by looking at the previews of the shared brackets.

References:
    F. Durand, J. Dorsey, "Fast bilateral filtering for the display of high-dynamic-range images",
    ACM SIGGRAPH 2002 (Transactions on Graphics 21(3)).
    S. Paris, F. Durand, "A fast approximation of the bilateral filter using a signal processing
    approach", ECCV 2006. J. Chen, S. Paris, F. Durand, "Real-time edge-aware image processing with
    the bilateral grid", ACM SIGGRAPH 2007.
    E. Reinhard, M. Stark, P. Shirley, J. Ferwerda, "Photographic tone reproduction for digital
    images", ACM SIGGRAPH 2002 (the key).
    C. Schlick, "Quantization techniques for visualization of high dynamic range pictures",
    Photorealistic Rendering Techniques (Eurographics Rendering Workshop), 1994 (colour by ratio).
    R. Mantiuk, R. Mantiuk, A. Tomaszewska, W. Heidrich, "Color correction for tone mapping",
    Computer Graphics Forum 28(2), Eurographics 2009.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from hdrkit.errors import HdrkitError
from hdrkit.tonemap.basic import _finish, as_batch, encode_display, luminance

__all__ = [
    "tonemap_durand2002",
    "bilateral_grid",
    "fit_gamut",
    "SPATIAL_SIGMA",
    "RANGE_SIGMA",
    "KEY",
    "WHITE",
    "BLACK",
    "HIGHLIGHT_PERCENTILE",
    "HIGHLIGHT_DARKEN",
    "SHADOW_PERCENTILE",
    "DETAIL_GAIN",
    "SATURATION",
]

SPATIAL_SIGMA = 0.02
"""Spatial sigma of the bilateral filter as a fraction of the image's longer side (Durand & Dorsey: 2 %)."""
RANGE_SIGMA = 0.4 * math.log2(10.0)
"""Range sigma in stops: Durand & Dorsey's 0.4 in log10 units, 1.33 stops."""
KEY = 0.18
"""Display luminance of the base layer's log-average: photographic middle grey (Reinhard et al. 2002)."""
WHITE = 1.0
"""Display luminance that the base layer's ``HIGHLIGHT_PERCENTILE`` is compressed to (at most)."""
BLACK = 2.0**-8
"""Display luminance that the base layer's ``SHADOW_PERCENTILE`` is lifted to (at least): 8 stops below white."""
HIGHLIGHT_PERCENTILE = 99.0
"""Percentile of the base layer (over non-black pixels) that must fit under ``WHITE``."""
SHADOW_PERCENTILE = 1.0
"""Percentile of the base layer (over non-black pixels) that must stay above ``BLACK``."""
DETAIL_GAIN = 1.3
"""Factor on the detail layer. Durand & Dorsey keep 1; a mild boost makes compressed scenes less flat (chosen on
the benchmark images: mean TMQI 0.904 at 1, 0.910 at 1.2, 0.912 at 1.3)."""
SATURATION = 0.8
"""Exponent on ``C / L`` (1 keeps the chromaticity ratios; < 1 desaturates compressed regions less garishly)."""
HIGHLIGHT_DARKEN = 0.5
"""Share (in log) of an out-of-gamut colour's excess taken out of luminance rather than saturation (:func:`fit_gamut`):
0 turns a bright sunset sky white, 1 keeps it orange but flattens its luminance (TMQI falls 0.008), 0.5 is between."""

_GRID_PAD = 2
"""Grid cells added on each side of every grid axis (the blur's reach)."""
_GRID_BLUR = (0.25, 0.5, 0.25)
"""Binomial taps blurring the grid per axis (a Gaussian of about one cell once combined with the splat)."""
_LOG_FLOOR_STOPS = 24.0
"""Luminance below the image maximum by more than this many stops is treated as black."""
_SPLAT_MAX_PIXELS = 2**22
"""Images above this many pixels (4.2 MP) are splatted into the bilateral grid from an area-averaged copy."""
_CHUNK_PIXELS = 2**20
"""Pixels per row band of the per-pixel passes (bounds the full-size temporaries on large images)."""


def _row_chunks(h: int, w: int) -> list[slice]:
    """Row bands of at most :data:`_CHUNK_PIXELS` pixels (at least one row each)."""
    rows = max(1, _CHUNK_PIXELS // max(w, 1))
    return [slice(r, min(r + rows, h)) for r in range(0, h, rows)]


def bilateral_grid(signal: torch.Tensor, spatial_sigma_px: float, range_sigma: float) -> torch.Tensor:
    """Edge-preserving smoothing of a scalar image by a bilateral grid.

    Pixels are splatted (trilinear) into a grid with one cell per sigma in space and in value, the
    grid is blurred, and every pixel reads it back (trilinear) at its own position and value, so
    smoothing stops at edges stronger than about ``range_sigma``. Images over
    :data:`_SPLAT_MAX_PIXELS` are splatted from an area-averaged copy (at most a few pixels per
    grid cell side lost, far below the cell size); the read-back is always at full resolution, in
    row bands, so memory stays a few full-size planes.

    Args:
        signal: ``(B, 1, H, W)`` float values (e.g. log2 luminance), finite.
        spatial_sigma_px: spatial sampling / sigma in pixels (> 0).
        range_sigma: range sampling / sigma in the signal's units (> 0).

    Returns:
        ``(B, 1, H, W)``: each pixel's weighted mean of pixels near it in space *and* value.
    """
    if not (spatial_sigma_px > 0 and range_sigma > 0):
        raise HdrkitError(f"bilateral sigmas must be positive, got {spatial_sigma_px} px and {range_sigma}")
    b, _, h, w = signal.shape
    dev, dt = signal.device, signal.dtype
    lo = signal.amin(dim=(1, 2, 3), keepdim=True)
    nz = int(math.ceil(float(((signal - lo).amax()) / range_sigma))) + 2 * _GRID_PAD + 1
    ny = int(math.ceil((h - 1) / spatial_sigma_px)) + 2 * _GRID_PAD + 1
    nx = int(math.ceil((w - 1) / spatial_sigma_px)) + 2 * _GRID_PAD + 1

    step = max(1, math.ceil(math.sqrt(h * w / _SPLAT_MAX_PIXELS)))
    src = signal if step == 1 else F.avg_pool2d(signal[..., : h // step * step, : w // step * step], step)
    sh, sw = src.shape[-2:]
    centre = (step - 1) / 2  # an averaged sample sits at the centre of its step x step block
    gy = (torch.arange(sh, device=dev, dtype=dt) * step + centre).view(1, 1, sh, 1).expand(b, 1, sh, sw)
    gx = (torch.arange(sw, device=dev, dtype=dt) * step + centre).view(1, 1, 1, sw).expand(b, 1, sh, sw)
    gy, gx = gy / spatial_sigma_px + _GRID_PAD, gx / spatial_sigma_px + _GRID_PAD
    gz = (src - lo) / range_sigma + _GRID_PAD
    values = torch.zeros(b, nz * ny * nx, device=dev, dtype=dt)
    weights = torch.zeros(b, nz * ny * nx, device=dev, dtype=dt)
    z0, y0, x0 = gz.floor(), gy.floor(), gx.floor()
    fz, fy, fx = gz - z0, gy - y0, gx - x0
    z0, y0, x0 = z0.long(), y0.long(), x0.long()
    flat_src = src.reshape(b, -1)
    for dz in (0, 1):
        wz = fz if dz else 1 - fz
        for dy in (0, 1):
            wy = fy if dy else 1 - fy
            for dx in (0, 1):
                wgt = (wz * wy * (fx if dx else 1 - fx)).reshape(b, -1)
                idx = (((z0 + dz) * ny + (y0 + dy)) * nx + (x0 + dx)).reshape(b, -1)
                weights.scatter_add_(1, idx, wgt)
                values.scatter_add_(1, idx, wgt * flat_src)
    grid = torch.stack([values, weights], dim=1).view(b * 2, 1, nz, ny, nx)
    taps = torch.tensor(_GRID_BLUR, device=dev, dtype=dt)
    for shape in ((3, 1, 1), (1, 3, 1), (1, 1, 3)):
        pad = [1 if s == 3 else 0 for s in reversed(shape) for _ in (0, 1)]
        grid = F.conv3d(F.pad(grid, pad), taps.view(1, 1, *shape))
    grid = grid.view(b, 2, nz, ny, nx)

    out = torch.empty_like(signal)
    # grid_sample coordinates in [-1, 1] (align_corners=True) along x -> nx, y -> ny, z -> nz
    col = ((torch.arange(w, device=dev, dtype=dt) / spatial_sigma_px + _GRID_PAD) / (nx - 1) * 2 - 1).view(1, 1, 1, w)
    for rows in _row_chunks(h, w):
        part = signal[..., rows, :]
        n_rows = part.shape[-2]
        row = (torch.arange(rows.start, rows.stop, device=dev, dtype=dt) / spatial_sigma_px + _GRID_PAD) / (ny - 1) * 2 - 1
        coords = torch.stack([col.expand(b, 1, n_rows, w), row.view(1, 1, n_rows, 1).expand(b, 1, n_rows, w),
                              ((part - lo) / range_sigma + _GRID_PAD) / (nz - 1) * 2 - 1], dim=-1)  # (B, 1, h, W, 3)
        sliced = F.grid_sample(grid, coords, mode="bilinear", padding_mode="border", align_corners=True)[:, :, 0]
        num, den = sliced[:, :1], sliced[:, 1:]
        out[..., rows, :] = torch.where(den > 1e-8, num / den.clamp_min(1e-8), part)
    return out


def fit_gamut(rgb: torch.Tensor, lum: torch.Tensor, darken: float = 0.0) -> torch.Tensor:
    """Bring display-linear colours into [0, 1] without changing their hue.

    A colour whose largest channel ``m`` exceeds 1 is first scaled by ``m ** -darken`` (same
    chromaticity, less luminance), then mixed with the grey of its (new) luminance until it fits
    (same luminance and hue, less saturation). ``darken = 0`` keeps luminance and gives up saturation
    (bright colours go toward white, like film); ``darken = 1`` keeps chromaticity and gives up
    luminance. Per-channel clipping would instead shift hues toward yellow, cyan and magenta.

    Args:
        rgb: ``(B, 3, H, W)`` non-negative display-linear RGB.
        lum: ``(B, 1, H, W)`` its Rec. 709 luminance.
        darken: in [0, 1], the share (in log) of the excess taken out of luminance.

    Returns:
        ``(B, 3, H, W)`` in [0, 1]; unchanged where already inside; white where the luminance left is >= 1.
    """
    if not 0 <= darken <= 1:
        raise HdrkitError(f"darken must be in [0, 1], got {darken}")
    peak = rgb.amax(dim=1, keepdim=True)
    if darken > 0:
        scale = torch.where(peak > 1, peak.clamp_min(1).pow(-darken), torch.ones_like(peak))
        rgb, lum, peak = rgb * scale, lum * scale, peak * scale
    grey = lum.clamp(0, 1)
    k = torch.where(peak > 1, (1 - grey) / (peak - grey).clamp_min(1e-12), torch.ones_like(peak)).clamp(0, 1)
    return (grey + k * (rgb - grey)).clamp(0, 1)


def _percentile(x: torch.Tensor, mask: torch.Tensor, q: float) -> torch.Tensor:
    """Per-image nearest-rank percentile of ``x`` over ``mask`` (``(B, 1, H, W)`` -> ``(B,)``)."""
    out = []
    for xi, mi in zip(x, mask):
        v = xi[mi]
        if v.numel() == 0:
            out.append(torch.zeros((), dtype=x.dtype, device=x.device))
            continue
        k = min(max(int(math.ceil(q / 100.0 * v.numel())), 1), v.numel())
        out.append(v.kthvalue(k).values)
    return torch.stack(out)


def tonemap_durand2002(
    hdr: torch.Tensor,
    key: float = KEY,
    *,
    white: float = WHITE,
    black: float = BLACK,
    highlight_percentile: float = HIGHLIGHT_PERCENTILE,
    shadow_percentile: float = SHADOW_PERCENTILE,
    detail_gain: float = DETAIL_GAIN,
    spatial_sigma: float = SPATIAL_SIGMA,
    range_sigma: float = RANGE_SIGMA,
    saturation: float = SATURATION,
    highlight_darken: float = HIGHLIGHT_DARKEN,
    encode: str | float = "srgb",
) -> torch.Tensor:
    """Durand & Dorsey 2002 bilateral base/detail tone mapping with automatic exposure and contrast.

    Args:
        hdr: (3, H, W) or (B, 3, H, W) linear radiance in [0, inf), any scale.
        key: display luminance of the base layer's log-average (middle grey).
        white: display luminance the base's ``highlight_percentile`` is compressed to, at most.
        black: display luminance the base's ``shadow_percentile`` is lifted to, at least.
        highlight_percentile, shadow_percentile: in (0, 100), over non-black pixels.
        detail_gain: factor on the detail layer.
        spatial_sigma: bilateral spatial sigma as a fraction of the longer image side.
        range_sigma: bilateral range sigma in stops.
        saturation: exponent on ``C / L``.
        highlight_darken: how out-of-gamut colours fit, in [0, 1]: 0 desaturates them at constant
            luminance, 1 darkens them at constant chromaticity (see :func:`fit_gamut`).
        encode: 'srgb', 'linear' or a gamma number.

    Returns:
        Same shape as ``hdr``, display values in [0, 1]; black stays black.
    """
    if not 0 < black < key < white:
        raise HdrkitError(f"need 0 < black < key < white, got black={black}, key={key}, white={white}")
    if not 0 < shadow_percentile < highlight_percentile < 100:
        raise HdrkitError(f"need 0 < shadow_percentile < highlight_percentile < 100, got {shadow_percentile}, "
                          f"{highlight_percentile}")
    if not (detail_gain >= 0 and saturation >= 0 and spatial_sigma > 0 and range_sigma > 0):
        raise HdrkitError("detail_gain and saturation must be >= 0, spatial_sigma and range_sigma > 0")
    x, single = as_batch(hdr)
    lum = luminance(x)
    peak = lum.amax(dim=(1, 2, 3), keepdim=True)
    lit = lum > peak * 2.0**-_LOG_FLOOR_STOPS
    floor = (peak * 2.0**-_LOG_FLOOR_STOPS).clamp_min(1e-30)
    log_lum = torch.log2(torch.maximum(lum, floor))
    del lum
    sigma_px = spatial_sigma * max(x.shape[-2:])
    base = bilateral_grid(log_lum, max(sigma_px, 1.0), range_sigma)
    n_lit = lit.sum(dim=(1, 2, 3)).clamp_min(1).to(x.dtype)
    anchor = (torch.where(lit, base, torch.zeros_like(base)).sum(dim=(1, 2, 3)) / n_lit).view(-1, 1, 1, 1)
    hi = _percentile(base, lit, highlight_percentile).view(-1, 1, 1, 1)
    lo = _percentile(base, lit, shadow_percentile).view(-1, 1, 1, 1)
    log_key = math.log2(key)
    slope_hi = torch.clamp((math.log2(white) - log_key) / (hi - anchor).clamp_min(1e-6), max=1.0)
    slope_lo = torch.clamp((log_key - math.log2(black)) / (anchor - lo).clamp_min(1e-6), max=1.0)
    out = torch.empty_like(x)
    for rows in _row_chunks(*x.shape[-2:]):  # per-pixel from here on: row bands bound the temporaries
        xb, lb, bb, lit_b = x[..., rows, :], log_lum[..., rows, :], base[..., rows, :], lit[..., rows, :]
        rel = bb - anchor
        curve = log_key + torch.where(rel > 0, slope_hi * rel, slope_lo * rel)
        lum_out = torch.exp2(curve + detail_gain * (lb - bb)) * lit_b
        ratio = xb / luminance(xb).clamp_min(1e-30)
        if saturation != 1.0:
            ratio = ratio.clamp_min(1e-30).pow(saturation)
        rgb = ratio * lum_out
        # the saturation exponent changes the luminance of ratio * L_out slightly: restore it
        rgb = rgb * (lum_out / luminance(rgb).clamp_min(1e-30))
        rgb = torch.where(lit_b, rgb, torch.zeros_like(rgb))
        out[..., rows, :] = encode_display(fit_gamut(rgb, lum_out, highlight_darken), encode)
    return _finish(out, single)
