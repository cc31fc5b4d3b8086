"""The deghosting merge on integer codes: the fast path of ``merge_granados2013`` (CPU, no autograd).

The algorithm is the one in ``hdrkit.merge.deghost`` (read that module first); this is how it runs
on code-valued brackets (as ``hdrkit.io`` reads files, or as ``hdrkit.align`` resamples them: 8- or
16-bit grids, per frame):

- everything that depends on one code (radiance ``f^-1(z) / t``, its noise variance, the
  noise-optimal weight, well-exposedness) is a per-code table, gathered per pixel (``cv2.LUT`` for
  8-bit codes, ``numpy.take`` for 16-bit codes);
- the ghost test and the radiometric calibration fit run on images reduced by ``mask_factor``
  (a power of two; 1, i.e. full resolution, up to ~1.9 MP, 2 for 1920x1080): radiance and variance
  are averaged over factor x factor blocks (radiance over the pixels that pass the same masks as in
  the full-resolution test), the comparison blur is narrowed so that block averaging plus blur smooth
  as much as the full-resolution blur, the noise is propagated through both (the z-score's variance
  factor), a block counts as well exposed in the frame only if all its pixels are and as clipped in
  the reference if any pixel is (so block means never mix clipped and unclipped pixels), and the max /
  min filters of the clipped-reference tests see block maxima / minima. Isolated detections are
  removed on the blocks; dilation and softening then run at full resolution as in the float path.
  With factor 1 every step is the full-resolution one: the same values as the float path to float
  rounding (tested);
- the merge itself (weights, calibration gains, masks, weighted mean, fallbacks) runs at full
  resolution in row bands on ``torch.get_num_threads()`` threads; the first pass over the codes is
  banded too, so no full-size temporaries exist but the output and the soft masks (and, up to
  ``CACHE_PIXELS``, the frames' radiance).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from hdrkit.camera.exposure import NoiseModel
from hdrkit.camera.response import Response
from hdrkit.merge import weights as W
from hdrkit.merge.deghost import (BLUR_SIGMA, CALIBRATION_BINS, CALIBRATION_KEEP, CALIBRATION_MAX_SLOPE, DILATION, MIN_FRACTION,
                                  outside_score)
from hdrkit.merge.lut import BAND_PIXELS, as_code_indices, channel_max, gather, run_bands
from hdrkit.parallel import parallel_map

__all__ = ["MASK_PIXELS", "mask_factor", "frame_codes", "merge_codes"]

MASK_PIXELS = 480_000
"""Ghost masks are computed on images of at least this many pixels: the factor is the largest power
of two that keeps ``H * W / factor**2`` at or above it (1 for images up to ~1.9 MP, 2 for 1920x1080,
4 for 6000x4000)."""


MIN_BLOCK_FRACTION = MIN_FRACTION
"""With blocks, a detection survives only if at least this share of its 3 x 3 blocks is detected (2 of 9)."""

CACHE_PIXELS = 8_000_000
"""Up to this many pixels per frame, the full-resolution radiance planes of deeper-than-8-bit frames computed
for the ghost test are kept for the merge (3 float32 planes per frame) instead of being looked up again with
``numpy.take`` (an 8-bit ``cv2.LUT`` look-up costs less than the copy)."""


def mask_factor(h: int, w: int) -> int:
    """Resolution factor of the ghost test for an H x W bracket (see ``MASK_PIXELS``)."""
    f = 1
    while h * w / (2 * f) ** 2 >= MASK_PIXELS:
        f *= 2
    return f


def frame_codes(z: torch.Tensor, bits: int | None) -> list[list[tuple[np.ndarray, int]]] | None:
    """Integer codes of every frame of a float32 CPU bracket, each on its own grid, or None.

    z: (B, N, 3, H, W) codes in [0, 1]. A frame is tried on the grid of ``bits`` (the bracket's
    depth), then on the 16-bit grid (frames resampled by ``hdrkit.align`` lie there). Returns
    ``[b][i] = (codes (3, H, W) uint8 or uint16, code bits)``, or None when a frame is on neither grid.
    """
    depths = list(dict.fromkeys([d for d in (bits, 16) if d is not None and 1 <= d <= 16]))

    def one(frame: torch.Tensor) -> tuple[np.ndarray, int] | None:
        for depth in depths:
            c = as_code_indices(frame, depth, np.uint16)
            if c is not None:
                return c.numpy(), depth
        return None

    out = [parallel_map(one, list(z[b])) for b in range(z.shape[0])]  # frames on threads
    return None if any(c is None for row in out for c in row) else out


def _gauss(sigma: float) -> np.ndarray:
    """Normalized 1-D Gaussian of radius ``max(1, round(2.5 sigma))`` (``deghost._gauss1d``); [1] for sigma 0."""
    if sigma <= 1e-6:
        return np.ones(1, np.float32)
    r = max(1, int(round(2.5 * sigma)))
    x = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).astype(np.float32)


def _blur(a: np.ndarray, k: np.ndarray) -> np.ndarray:
    return cv2.sepFilter2D(a, -1, k, k, borderType=cv2.BORDER_REPLICATE)


def _pad(a: np.ndarray, s: int) -> np.ndarray:
    h, w = a.shape
    ph, pw = -h % s, -w % s
    return cv2.copyMakeBorder(a, 0, ph, 0, pw, cv2.BORDER_REPLICATE) if ph or pw else a


def _down(a: np.ndarray, s: int) -> np.ndarray:
    """Block means over s x s (the image padded by replication to a multiple of s)."""
    if s == 1:
        return a
    a = _pad(a, s)
    return cv2.resize(a, (a.shape[1] // s, a.shape[0] // s), interpolation=cv2.INTER_AREA)


def _down_extreme(a: np.ndarray, s: int, op) -> np.ndarray:
    """Block maxima (``op = cv2.dilate``) or minima (``cv2.erode``) over s x s (a strided view)."""
    if s == 1:
        return a
    a = _pad(a, s)
    return op(a, np.ones((s, s), np.uint8), anchor=(0, 0))[::s, ::s]


def _any(mask: np.ndarray, s: int) -> np.ndarray:
    """(H, W) uint8 0/255 -> bool: set where any pixel of the s x s block is."""
    return mask > 0 if s == 1 else _down_extreme(mask, s, cv2.dilate) > 0


def _all(mask: np.ndarray, s: int) -> np.ndarray:
    """(H, W) uint8 0/255 -> bool: set where every pixel of the s x s block is."""
    return mask > 0 if s == 1 else _down_extreme(mask, s, cv2.erode) > 0


class _Tables:
    """Per-code tables of one frame: float32 radiance ``x``, variance ``v``, weight ``w`` (without the
    saturation taper), per channel; the saturation taper ``hi`` of the channel maximum; uint8
    well-exposed / saturated / dark flags of a code."""

    def __init__(self, bits: int, t: float, response: Response, noise: NoiseModel, noise_bits: int):
        levels = 2**bits
        self.size = max(levels, 256)
        z = torch.linspace(0, 1, levels, dtype=torch.float64)
        codes = z.view(1, 1, 1, levels, 1).expand(1, 1, 3, levels, 1)
        inv = response.inverse(codes).to(torch.float64)
        tt = torch.tensor([[t]], dtype=torch.float64)
        v = W.radiance_variance(codes, tt, response, noise, noise_bits, linear=inv).reshape(3, levels)
        x = inv.reshape(3, levels) / t
        dark = W.dark_taper(codes).reshape(3, levels)
        self.x = [self._f32(x[c]) for c in range(3)]
        self.v = [self._f32(v[c]) for c in range(3)]
        self.w = [self._f32(dark[c] / v[c]) for c in range(3)]
        self.hi = self._f32(W.saturation_taper(z))
        z32 = z.to(torch.float32)
        self.well = self._u8((z32 > W.DARK_CODE + W.DARK_RAMP) & (z32 < W.SATURATION_CODE - W.SATURATION_RAMP))
        self.sat = self._u8(z32 >= W.SATURATION_CODE - W.SATURATION_RAMP)
        self.dark = self._u8(z32 <= W.DARK_CODE + W.DARK_RAMP)
        self.span = {name: self._span(getattr(self, name)) for name in ("well", "sat", "dark")}

    @staticmethod
    def _span(flags: np.ndarray) -> tuple[int, int] | None:
        on = np.flatnonzero(flags)
        return (int(on[0]), int(on[-1])) if on.size else None

    def _f32(self, t: torch.Tensor) -> np.ndarray:
        a = t.reshape(-1).numpy().astype(np.float32)
        return np.concatenate([a, np.full(self.size - a.size, a[-1], np.float32)]) if a.size < self.size else a

    def _u8(self, t: torch.Tensor) -> np.ndarray:
        a = t.numpy().astype(np.uint8)
        return np.concatenate([a, np.full(self.size - a.size, a[-1], np.uint8)]) if a.size < self.size else a


def _take(table: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return cv2.LUT(idx, table) if idx.dtype == np.uint8 else np.take(table, idx, mode="clip")


def _take_into(table: np.ndarray, idx: np.ndarray, out: np.ndarray) -> np.ndarray:
    if idx.dtype == np.uint8:
        return cv2.LUT(idx, table, dst=out)
    return np.take(table, idx, mode="clip", out=out)


def _flag(codes: np.ndarray, span: tuple[int, int] | None) -> np.ndarray:
    """uint8 0/255 plane: codes in the closed interval ``span`` (``_Tables.span``; None: empty)."""
    if span is None:
        return np.zeros(codes.shape, np.uint8)
    return cv2.inRange(codes, span[0], span[1])


class _Frame:
    """Reduced-resolution quantities of one frame that do not depend on the frame it is compared with
    (each (3, h, w), float32 unless said): block means of radiance ``x`` and variance ``v``, block
    maxima / minima of radiance, well-exposed (bool: every pixel of the block), and for the reference
    saturated and dark (bool: any pixel of the block, so a block mean never mixes clipped and
    unclipped reference pixels in the dense test; the clipped-reference tests take over there).
    ``full_x``: the full-resolution radiance (3, H, W), kept for the merge of small brackets, else None."""

    def __init__(self, shape: tuple[int, int], is_ref: bool):
        h, w = shape
        f32 = lambda: np.empty((3, h, w), np.float32)  # noqa: E731
        self.x, self.v, self.xmax, self.xmin = f32(), f32(), f32(), f32()
        self.well = np.empty((3, h, w), bool)
        self.sat = np.empty((3, h, w), bool) if is_ref else None
        self.dark = np.empty((3, h, w), bool) if is_ref else None
        self.full_x = None


class _Pair:
    """Reduced-resolution quantities of a (frame, reference) pair: per channel the share ``P`` of the
    block where both are well exposed and the block means of each radiance over those pixels (``XI``,
    ``XR``, zero elsewhere); with blocks (factor > 1) the frame's extreme 3 x 3 max / min over the
    block's pixels where the reference is saturated / dark (``XMAX``, ``XMIN``); for the calibration,
    the same over the pixels well exposed in every channel of both (``PA`` (h, w), ``XA`` (2, 3, h, w):
    frame, reference) and the fit's samples (log radiance of the frame and of the reference,
    ``samples``)."""

    def __init__(self, shape: tuple[int, int], blocks: bool, calibrate: bool):
        h, w = shape
        self.P, self.XI, self.XR = (np.empty((3, h, w), np.float32) for _ in range(3))
        self.XMAX, self.XMIN = ((np.empty((3, h, w), np.float32) for _ in range(2)) if blocks else (None, None))
        self.PA, self.XA = (np.empty((h, w), np.float32), np.empty((2, 3, h, w), np.float32)) if calibrate else (None, None)
        self.samples = None


def _reduce(codes: list[np.ndarray], tabs: list[_Tables], r: int, s: int, calibrate: bool, keep_x: bool):
    """Pass 1 over the full-resolution codes in row bands (a multiple of ``s`` rows each, with a row of halo
    for the 3 x 3 filters, on threads): the ``_Frame`` of every frame and the ``_Pair`` of every other frame
    with the reference ``r``, whose ``samples`` are the calibration fit's samples (``_calibration_samples``)."""
    n = len(codes)
    h, w = codes[0].shape[-2:]
    lh, lw = -(-h // s), -(-w // s)
    frames = [_Frame((lh, lw), i == r) for i in range(n)]
    if keep_x:
        for f, c in zip(frames, codes):
            f.full_x = np.empty((3, h, w), np.float32) if c.dtype != np.uint8 else None
    pairs = {i: _Pair((lh, lw), s > 1, calibrate) for i in range(n) if i != r}
    one = np.zeros(256, np.float32)
    one[255] = 1.0
    kern = np.ones((3, 3), np.uint8)
    halo = 1 if s > 1 else 0
    big = np.float32(1e30)  # "no valid pixel" (times any calibration gain stays finite)

    def band(r0: int, r1: int) -> None:
        rows, low = slice(r0, r1), slice(r0 // s, -(-r1 // s))
        e0, e1 = max(0, r0 - halo), min(h, r1 + halo)
        inner = slice(r0 - e0, r0 - e0 + r1 - r0)
        exts, wells, clips = [], [], []
        for i in range(n):
            f, tab, c_e = frames[i], tabs[i], codes[i][:, e0:e1]
            ext = [_take(tab.x[c], c_e[c]) for c in range(3)]
            x = [a[inner] for a in ext]
            if f.full_x is not None:
                f.full_x[:, rows] = x
            well = [_flag(c_e[c], tab.span["well"]) for c in range(3)]
            exts.append(ext)
            wells.append(well)
            for c in range(3):
                f.x[c, low] = _down(x[c], s)
                f.v[c, low] = _down(_take(tab.v[c], codes[i][c, rows]), s)
                if s == 1:
                    f.xmax[c, low], f.xmin[c, low] = x[c], x[c]
                f.well[c, low] = _all(well[c][inner], s)
                if i == r:
                    clip = (_flag(codes[i][c, rows], tab.span["sat"]), _flag(codes[i][c, rows], tab.span["dark"]))
                    clips.append(clip)
                    f.sat[c, low] = _any(clip[0], s)
                    f.dark[c, low] = _any(clip[1], s)
        for i, pr in pairs.items():
            both = [cv2.bitwise_and(a, b) for a, b in zip(wells[i], wells[r])]  # with the halo rows
            for c in range(3):
                pf = cv2.LUT(both[c][inner], one)
                pr.P[c, low] = _down(pf, s)
                pr.XI[c, low] = _down(cv2.multiply(exts[i][c][inner], pf), s)
                pr.XR[c, low] = _down(cv2.multiply(exts[r][c][inner], pf), s)
                if s > 1:  # per pixel where the reference is clipped and the frame well exposed, the 3 x 3 max / min of
                    # the frame (as the full-resolution tests); for the block its most extreme one (no such pixel: +-big)
                    w_i = wells[i][c][inner]
                    for clip, plane, op, grow, none in ((clips[c][0], pr.XMAX, cv2.erode, cv2.dilate, big),
                                                        (clips[c][1], pr.XMIN, cv2.dilate, cv2.erode, -big)):
                        on = cv2.bitwise_and(w_i, clip)
                        if cv2.countNonZero(on):
                            plane[c, low] = _down_extreme(np.where(on > 0, grow(exts[i][c], kern)[inner], none), s, op)
                        else:  # no such pixel in the band (the common case away from highlights): the same, cheaply
                            plane[c, low] = none
            if calibrate:  # block means over the pixels well exposed in every channel of both
                pa = cv2.LUT(cv2.bitwise_and(cv2.bitwise_and(both[0], both[1]), both[2])[inner], one)
                pr.PA[low] = _down(pa, s)
                for j, src in enumerate((i, r)):
                    for c in range(3):
                        pr.XA[j, c, low] = _down(cv2.multiply(exts[src][c][inner], pa), s)

    rows = max(s, (BAND_PIXELS // 4) // max(w, 1) // s * s)
    parallel_map(lambda r0: band(r0, min(h, r0 + rows)), list(range(0, h, rows)))
    if calibrate:
        for i, pr in pairs.items():
            pr.samples = _calibration_samples(pr, frames[i], frames[r], s)
            pr.PA = pr.XA = None
    return frames, pairs


def _calibration_samples(pair: _Pair, fi: _Frame, fr: _Frame, s: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The samples of ``calibrate_to_reference``: channel-mean log radiance of the frame and of the reference,
    Gaussian-blurred over the pixels well exposed in every channel of both (``BLUR_SIGMA``), at every 4th image
    row, where such a pixel is. With blocks (``s`` > 1) the same from the block means (``PA``, ``XA``) with the
    blur narrowed as in the ghost test (block averaging plus blur smooth as much as the full-resolution blur),
    at every ``4 / s``-th block row (every block row for ``s`` >= 4): the same rows, block means for pixels. With
    ``s`` = 1 these are the float path's samples."""
    step = max(1, 4 // s)
    k = _gauss(math.sqrt(max(BLUR_SIGMA**2 - (s * s - 1) / 12.0, 0.0)) / s)
    den = _blur(pair.PA, k)[::step]
    keep = den > 0.5
    np.maximum(den, np.float32(1e-6), out=den)
    sel = pair.PA[::step] > 0
    if not sel.any():
        return None
    logs = []
    for j, f in enumerate((fi, fr)):
        acc = np.zeros(den.shape, np.float32)
        for c in range(3):
            xb = np.where(keep, _blur(pair.XA[j, c], k)[::step] / den, f.x[c][::step])
            acc += np.log(np.maximum(xb, np.float32(1e-12)))
        logs.append((acc / np.float32(3))[sel])
    return logs[0], logs[1]


class _Test:
    """The ghost test of one frame against the reference at reduced resolution (see the module docstring)."""

    def __init__(self, fi: _Frame, fr: _Frame, pair: _Pair, s: int, levels: tuple[np.ndarray, np.ndarray], threshold: float,
                 tolerance: float):
        sigma = math.sqrt(max(BLUR_SIGMA**2 - (s * s - 1) / 12.0, 0.0)) / s
        self.k = _gauss(sigma)
        self.gain = float((self.k.astype(np.float64) ** 2).sum() ** 2) / (s * s)
        self.fi, self.fr, self.pair, self.s = fi, fr, pair, s
        self.sat_level, self.dark_level = levels
        self.threshold, self.tolerance = threshold, tolerance
        self.ref = []  # per channel: keep, den, xr, lo, hi, ref_var (independent of the frame's gain)
        k, g, tol = self.k, self.gain, tolerance
        kern = np.ones((3, 3), np.uint8)
        for c in range(3):
            den = _blur(pair.P[c], k)
            keep = den > 0.5
            np.maximum(den, 1e-6, out=den)
            xr = np.where(keep, _blur(pair.XR[c], k) / den, fr.x[c]).astype(np.float32)
            ref_var = fr.v[c] * np.float32(g) + (np.float32(tol) * xr) ** 2
            self.ref.append((keep, den, xr, cv2.erode(xr, kern), cv2.dilate(xr, kern), ref_var))

    def _dense(self, c: int, gain: np.ndarray | None, xmax: np.ndarray, xmin: np.ndarray):
        """The dense test of channel ``c``: ``(score, v, xmax, xmin)``, the z-score of the frame's blurred
        radiance outside the reference's local [min, max] (in units of the combined noise), the frame's
        variance, and ``xmax`` / ``xmin`` (the frame's extremes for the clipped-reference tests), all
        with the frame's radiance times ``gain`` when given."""
        keep, den, _, lo, hi, ref_var = self.ref[c]
        xi_sum, x_plain, v = self.pair.XI[c], self.fi.x[c], self.fi.v[c]
        if gain is not None:
            xi_sum, x_plain, v = xi_sum * gain, x_plain * gain, v * (gain * gain)
            xmax, xmin = xmax * gain, xmin * gain
        xi = _blur(xi_sum, self.k)
        np.divide(xi, den, out=xi)
        np.copyto(xi, x_plain, where=~keep)
        return outside_score(xi, lo, hi, v, self.gain, ref_var), v, xmax, xmin

    def ghost(self, gain: np.ndarray | None) -> np.ndarray:
        """(h, w) uint8 0/1 ghost detections of the frame (its radiance times ``gain``, if given).

        At full resolution each pixel takes the dense test, or the saturated / dark-reference test
        where the reference is clipped, and none where the frame is not well exposed (as
        ``_ghost_masks``). A block (factor > 1) is a ghost when any of these fires: the dense test on
        its averages where they are trustworthy (its neighbourhood is mostly well exposed in both, or
        every pixel is well exposed in the frame and none clipped in the reference), the clipped-reference
        tests on the block's most extreme 3 x 3 max / min among the frame's well-exposed pixels.
        """
        if self.s > 1:
            return self._ghost_blocks(gain)
        fi, tol = self.fi, self.tolerance
        kern = np.ones((3, 3), np.uint8)
        best = None
        for c in range(3):
            score, v, xmax, xmin = self._dense(c, gain, fi.xmax[c], fi.xmin[c])
            sat, dark = self.fr.sat[c], self.fr.dark[c]
            if sat.any():
                lvl = np.float32(self.sat_level[c])
                alt = np.maximum(lvl - cv2.dilate(xmax, kern), 0) / np.sqrt(v + (np.float32(tol) * lvl) ** 2)
                np.copyto(score, alt, where=sat)
            if dark.any():
                lvl = np.float32(self.dark_level[c])
                alt = np.maximum(cv2.erode(xmin, kern) - lvl, 0) / np.sqrt(v + (np.float32(tol) * lvl) ** 2)
                np.copyto(score, alt, where=dark)
            score[~fi.well[c]] = 0
            best = score if best is None else np.maximum(best, score, out=best)
        return (best > self.threshold).view(np.uint8)

    def _ghost_blocks(self, gain: np.ndarray | None) -> np.ndarray:
        fi, fr, tol = self.fi, self.fr, self.tolerance
        best = None
        for c in range(3):
            keep = self.ref[c][0]
            score, v, xmax, xmin = self._dense(c, gain, self.pair.XMAX[c], self.pair.XMIN[c])
            sat, dark = fr.sat[c], fr.dark[c]
            score[~(keep | (fi.well[c] & ~sat & ~dark))] = 0
            if sat.any():
                lvl = np.float32(self.sat_level[c])
                alt = np.maximum(lvl - xmax, 0) / np.sqrt(v + (np.float32(tol) * lvl) ** 2)
                np.maximum(score, alt, out=score, where=sat)
            if dark.any():
                lvl = np.float32(self.dark_level[c])
                alt = np.maximum(xmin - lvl, 0) / np.sqrt(v + (np.float32(tol) * lvl) ** 2)
                np.maximum(score, alt, out=score, where=dark)
            best = score if best is None else np.maximum(best, score, out=best)
        return (best > self.threshold).view(np.uint8)


def _soften(ghost: np.ndarray, s: int, shape: tuple[int, int]) -> np.ndarray:
    """(h, w) uint8 0/1 detections -> (H, W) soft mask in [0, 1] (``shape``: the full resolution):
    isolated detections removed (``MIN_FRACTION`` of the 5 x 5 window at full resolution, ``MIN_BLOCK_FRACTION``
    of 3 x 3 blocks otherwise), then at full resolution as ``_ghost_masks``: dilated by ``DILATION``, blurred
    with ``DILATION / 2``, rounding residue snapped."""
    win, least = (5, MIN_FRACTION) if s == 1 else (3, MIN_BLOCK_FRACTION)
    g = ghost.astype(np.float32)
    total = cv2.boxFilter(g, -1, (win, win), normalize=False, borderType=cv2.BORDER_CONSTANT)
    count = cv2.boxFilter(np.ones_like(g), -1, (win, win), normalize=False, borderType=cv2.BORDER_CONSTANT)
    clean = (total / count >= least).astype(np.uint8)
    if s > 1:  # each block's decision to its pixels
        h, w = shape
        lh, lw = clean.shape
        clean = np.ascontiguousarray(cv2.resize(clean, (lw * s, lh * s), interpolation=cv2.INTER_NEAREST)[:h, :w])
    dil = cv2.dilate(clean, np.ones((2 * DILATION + 1, 2 * DILATION + 1), np.uint8))
    k = _gauss(DILATION / 2)
    soft = cv2.sepFilter2D(dil, cv2.CV_32F, k, k, borderType=cv2.BORDER_REPLICATE)  # the 0/1 plane, blurred in float32
    soft[soft > 1 - 1e-6] = 1.0
    soft[soft < 1e-6] = 0.0
    return soft


def _calibration(pair: _Pair) -> tuple[np.ndarray, np.ndarray]:
    """The fit of ``calibrate_to_reference``: (knots, values) of log(X_ref / X_i) as a function of log radiance."""
    if pair.samples is None:
        return np.zeros(1), np.zeros(1)
    return _fit_log_correction(*pair.samples)


def _lower_median(a: np.ndarray):
    """``torch.median``: the lower of the two middle values."""
    return np.partition(a, (a.size - 1) // 2)[(a.size - 1) // 2]


def _fit_log_correction(li: np.ndarray, lr: np.ndarray, bins: int = CALIBRATION_BINS) -> tuple[np.ndarray, np.ndarray]:
    """``hdrkit.merge.deghost._fit_log_correction`` in numpy (same steps, same values): li, lr (M,)
    float32 log radiance of the frame and the reference; returns float64 (knots, values)."""
    d = lr - li
    if li.size < 100:
        return np.zeros(1), np.array([float(_lower_median(d)) if d.size else 0.0])
    m = 0.5 * (li + lr)
    q = [0.005, 0.995]
    (lo_m, hi_m), (lo_i, hi_i), (lo_r, hi_r) = (np.quantile(a, q).astype(np.float32) for a in (m, li, lr))
    lo, hi = max(lo_m, lo_i, lo_r), min(hi_m, hi_i, hi_r)
    if not hi > lo:
        return np.zeros(1), np.array([float(_lower_median(d))])
    edges = np.linspace(float(lo), float(hi), bins + 1, dtype=np.float32)[1:-1]
    idx = np.searchsorted(edges, m, side="left").astype(np.int16)
    counts = np.bincount(idx, minlength=bins)
    order = np.argsort(idx, kind="stable")  # grouped by bin (a radix sort); medians by partition within each bin
    ds, ms = d[order], m[order]
    starts = np.cumsum(counts) - counts
    keep = counts >= max(20, int(0.002 * li.size))
    if not keep.any():
        return np.zeros(1), np.array([float(_lower_median(d))])
    sel = np.flatnonzero(keep)
    knots = np.array([_lower_median(ms[starts[k] : starts[k] + counts[k]]) for k in sel], np.float32)
    vals = np.array([_lower_median(ds[starts[k] : starts[k] + counts[k]]) for k in sel], np.float32)
    good = np.concatenate([[True], knots[1:] > knots[:-1] + np.float32(1e-6)])
    knots, vals = knots[good], vals[good]
    start = int(np.argmax(counts[sel][good]))
    out = vals.copy()
    for k in list(range(start + 1, len(out))) + list(range(start - 1, -1, -1)):
        prev = k - 1 if k > start else k + 1
        step = np.float32(CALIBRATION_MAX_SLOPE * float(abs(knots[k] - knots[prev])))
        out[k] = min(max(out[k], out[prev] - step), out[prev] + step)
    return knots.astype(np.float64), out.astype(np.float64)


def _compose(knots: np.ndarray, vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Breakpoints and values of ``l -> corr(l + corr(l) / 2)``, ``corr`` the piecewise-linear fit (flat
    beyond the knots): piecewise linear again, with breaks at the knots and at their pre-images under
    the strictly increasing ``l + corr(l) / 2`` (slope in [1/2, 3/2]), flat beyond its end breaks."""
    if knots.size == 1:
        return knots, vals
    phi = knots + 0.5 * vals
    pre = np.interp(knots, phi, knots)
    pre = np.where(knots < phi[0], knots - 0.5 * vals[0], np.where(knots > phi[-1], knots - 0.5 * vals[-1], pre))
    bp = np.unique(np.concatenate([knots, pre]))
    return bp, np.interp(bp + 0.5 * np.interp(bp, knots, vals), knots, vals)


def _correction(lx: np.ndarray, curve: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The composed correction (``_compose``) at log radiance ``lx``, float32."""
    bp, vals = curve
    if bp.size == 1:
        return np.full(lx.shape, vals[0], np.float32)
    return np.interp(lx, bp, vals).astype(np.float32)


def _log_grey(x: np.ndarray) -> np.ndarray:
    """Mean over channels of ``log(max(x, 1e-12))`` of (3, h, w) radiance (``grey_log``), float32."""
    out = cv2.log(np.maximum(x[0], np.float32(1e-12)))
    out += cv2.log(np.maximum(x[1], np.float32(1e-12)))
    out += cv2.log(np.maximum(x[2], np.float32(1e-12)))
    out /= 3
    return out


def merge_codes(
    codes: list[list[tuple[np.ndarray, int]]],
    times: torch.Tensor,
    reference: torch.Tensor,
    response: Response,
    noise: NoiseModel,
    noise_bits: int | None,
    threshold: float,
    tolerance: float,
    calibrate: bool,
    valid: torch.Tensor | None = None,
    return_masks: bool = False,
    factor: int | None = None,
):
    """``merge_granados2013`` of a code-valued bracket (see the module docstring).

    Args:
        codes: ``frame_codes`` of the (B, N, 3, H, W) bracket.
        times: (B, N) exposure times normalized to the shortest.
        reference: (B,) reference index per bracket.
        response, noise, threshold, tolerance, calibrate: as ``merge_granados2013``.
        noise_bits: code depth for the quantization noise term (the bracket's, not the grid's: a
            resampled 8-bit frame on the 16-bit grid keeps 8-bit quantization noise).
        valid: optional (B, N, 1, H, W) aligner masks (``merge_granados2013``'s ``valid``).
        return_masks: also return the (B, N, 1, H, W) soft ghost masks.
        factor: reduced resolution of the ghost test; default ``mask_factor(H, W)``.

    Returns:
        hdr (B, 3, H, W) float32, and the masks if asked.
    """
    b_, n = len(codes), len(codes[0])
    h, w = codes[0][0][0].shape[-2:]
    s = mask_factor(h, w) if factor is None else int(factor)
    hdr = torch.from_numpy(np.empty((b_, 3, h, w), np.float32))
    masks_out = torch.from_numpy(np.zeros((b_, n, 1, h, w), np.float32)) if return_masks else None
    sat_code, dark_code = W.SATURATION_CODE - W.SATURATION_RAMP, W.DARK_CODE + W.DARK_RAMP
    for b in range(b_):
        r = int(reference[b])
        tb = [float(times[b, i]) for i in range(n)]
        tabs = parallel_map(lambda i: _Tables(codes[b][i][1], tb[i], response, noise, noise_bits), list(range(n)))
        t_ref = torch.tensor(tb[r], dtype=torch.float64)
        levels = tuple((response.inverse(torch.full((1, 3, 1, 1), code, dtype=torch.float32)).double() / t_ref).reshape(3).numpy()
                       for code in (sat_code, dark_code))
        others = [i for i in range(n) if i != r]
        cached = h * w <= CACHE_PIXELS
        frames, pairs = _reduce([codes[b][i][0] for i in range(n)], tabs, r, s, calibrate, cached)

        def detect(i: int):
            pair = pairs[i]
            test = _Test(frames[i], frames[r], pair, s, levels, threshold, tolerance)
            mask = _soften(test.ghost(None), s, (h, w))
            fit = None
            if calibrate:
                fit = _compose(*_calibration(pair))
                lx = _log_grey(frames[i].x)
                gain = np.exp(_correction(lx, fit))
                mask_cal = _soften(test.ghost(gain), s, (h, w))
                if mask_cal.mean(dtype=np.float64) < CALIBRATION_KEEP * mask.mean(dtype=np.float64):
                    return mask_cal, fit
            return mask, None

        found = dict(zip(others, parallel_map(detect, others)))
        pairs = None  # the pass-1 arrays are not needed by the merge
        soft = {i: found[i][0] for i in others}
        fits = {i: found[i][1] for i in others}
        keep = None
        if valid is not None:
            keep = valid.detach().to("cpu", torch.float32).expand(b_, n, 1, h, w)[b, :, 0].numpy()
        order = sorted(range(n), key=lambda i: tb[i])
        short, long = order[0], order[-1]
        out = hdr[b].numpy()

        def band(r0: int, r1: int) -> None:
            rows, bh = slice(r0, r1), r1 - r0
            num = out[:, rows]
            den = np.zeros((3, bh, w), np.float32)
            wt = np.empty((3, bh, w), np.float32)
            factor = np.empty((bh, w), np.float32)
            xs, ms = {}, {}
            for i in range(n):
                c_i, tab = codes[b][i][0][:, rows], tabs[i]
                if frames[i].full_x is not None:  # read only, unless the calibration gain scales it
                    x = frames[i].full_x[:, rows]
                    if fits.get(i) is not None:
                        x = x.copy()
                else:
                    x = np.empty((3, bh, w), np.float32)
                    for c in range(3):
                        _take_into(tab.x[c], c_i[c], x[c])
                if fits.get(i) is not None:
                    x *= np.exp(_correction(_log_grey(x), fits[i]))[None]
                for c in range(3):
                    _take_into(tab.w[c], c_i[c], wt[c])
                gather(tab.hi, channel_max(c_i), factor)  # saturation taper of the channel maximum
                m = None
                if i != r:
                    m = soft[i][rows]
                    factor *= 1 - m
                    if keep is not None:  # the aligner's masks: no weight, and the frame is no fallback there
                        k_i = keep[i, rows]
                        factor *= k_i
                        m = np.maximum(m, 1 - k_i)
                wt *= factor[None]
                den += wt
                wt *= x
                if i == 0:
                    np.copyto(num, wt)
                else:
                    num += wt
                if i in (r, short, long):
                    xs[i], ms[i] = x, m
            zero = den <= 0
            np.maximum(den, np.float32(np.finfo(np.float32).tiny), out=den)
            np.divide(num, den, out=num)
            if zero.any():  # no trusted frame: the shortest / longest frame unless a ghost there, else the reference
                ref_sat = _take(tabs[r].sat, channel_max(codes[b][r][0][:, rows])) > 0
                static_fb = np.where(ref_sat[None], xs[short], xs[long])
                fb_mask = np.where(ref_sat, _mask_or_zero(ms[short], (bh, w)), _mask_or_zero(ms[long], (bh, w)))
                np.copyto(num, np.where((fb_mask < 0.5)[None], static_fb, xs[r]), where=zero)

        run_bands(h, w, band, BAND_PIXELS // 4)  # the merge holds a dozen planes per band
        if return_masks:
            for i in others:
                m = soft[i]
                if keep is not None:
                    m = np.maximum(m, 1 - keep[i])
                masks_out[b, i, 0] = torch.from_numpy(np.ascontiguousarray(m, dtype=np.float32))
    return (hdr, masks_out) if return_masks else hdr


def _mask_or_zero(m: np.ndarray | None, shape) -> np.ndarray:
    return np.zeros(shape, np.float32) if m is None else m
