"""The deghosting merge on integer codes: the fast path of ``merge_granados2013`` (CPU, no autograd).

The algorithm is the one in ``hdrkit.merge.deghost`` (read that module first); this is how it runs
on code-valued brackets (as ``hdrkit.io`` reads files, or as ``hdrkit.align`` resamples them: 8- or
16-bit grids, per frame):

- everything that depends on one code (radiance ``f^-1(z) / t``, its noise variance, the
  noise-optimal weight, well-exposedness, log radiance) is a per-code table, gathered per pixel
  (``cv2.LUT`` for 8-bit codes, ``numpy.take`` for 16-bit codes);
- the ghost test and the radiometric calibration fit run on images reduced by ``mask_factor``
  (a power of two; 1, i.e. full resolution, up to ~1 MP): radiance, masks and variances are
  averaged over factor x factor blocks (radiance over the pixels that pass the same masks as in the
  full-resolution test), the comparison blur is narrowed so that block averaging plus blur smooth
  as much as the full-resolution blur, the noise is propagated through both (the z-score's
  variance factor), the max / min filters of the clipped-reference tests see block maxima /
  minima, and the cleaning, dilation and softening of the ghost map are scaled by the factor.
  The soft masks are then upsampled bilinearly. With factor 1 every step is the full-resolution
  one, the same values as the float path to float rounding;
- the merge itself (weights, calibration gains, masks, weighted mean, fallbacks) runs at full
  resolution in row bands on ``torch.get_num_threads()`` threads, with no full-size temporaries
  but the output (and the masks, when asked for).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from hdrkit.camera.exposure import NoiseModel
from hdrkit.camera.response import Response
from hdrkit.merge import weights as W
from hdrkit.merge.deghost import BLUR_SIGMA, CALIBRATION_BINS, CALIBRATION_MAX_SLOPE, DILATION, MIN_FRACTION
from hdrkit.merge.lut import BAND_PIXELS, as_code_indices, channel_max, gather

__all__ = ["MASK_PIXELS", "mask_factor", "frame_codes", "merge_codes"]

MASK_PIXELS = 480_000
"""Ghost masks are computed on images of at least this many pixels: the factor is the largest power
of two that keeps ``H * W / factor**2`` at or above it (1 for images up to ~1.9 MP, 2 for 1920x1080,
4 for 6000x4000)."""


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
    ``[b][i] = (codes (3, H, W) uint8 or int32, code bits)``, or None when a frame is on neither grid.
    """
    out = []
    for b in range(z.shape[0]):
        row = []
        for i in range(z.shape[1]):
            for depth in dict.fromkeys([d for d in (bits, 16) if d is not None and 1 <= d <= 16]):
                c = as_code_indices(z[b, i], depth)
                if c is not None:
                    row.append((c.numpy(), depth))
                    break
            else:
                return None
        out.append(row)
    return out


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
    """Block maxima (``op = cv2.dilate``) or minima (``cv2.erode``) over s x s."""
    if s == 1:
        return a
    a = _pad(a, s)
    return np.ascontiguousarray(op(a, np.ones((s, s), np.uint8), anchor=(0, 0))[::s, ::s])


def _majority(mask: np.ndarray, s: int) -> np.ndarray:
    """(H, W) uint8 0/255 -> bool: set where more than half of the s x s block is."""
    if s == 1:
        return mask > 0
    return _down(mask, s) > 128


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

    def _f32(self, t: torch.Tensor) -> np.ndarray:
        a = t.reshape(-1).numpy().astype(np.float32)
        return np.concatenate([a, np.full(self.size - a.size, a[-1], np.float32)]) if a.size < self.size else a

    def _u8(self, t: torch.Tensor) -> np.ndarray:
        a = t.numpy().astype(np.uint8)
        return np.concatenate([a, np.full(self.size - a.size, a[-1], np.uint8)]) if a.size < self.size else a


def _take(table: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return cv2.LUT(idx, table) if idx.dtype == np.uint8 else np.take(table, idx, mode="clip")


def _flag(codes: np.ndarray, table: np.ndarray) -> np.ndarray:
    """uint8 0/255 plane: where ``table`` (uint8 0/1 per code, set on one interval of codes) is set."""
    on = np.flatnonzero(table)
    if on.size == 0:
        return np.zeros(codes.shape, np.uint8)
    return cv2.inRange(codes, int(on[0]), int(on[-1]))


class _Frame:
    """Reduced-resolution quantities of one frame that do not depend on the frame it is compared with
    (each (3, h, w), float32 unless said): block means of radiance ``x`` and variance ``v``, block
    maxima / minima of radiance, well-exposed (bool, majority), and for the reference saturated and
    dark (bool, majority). ``full_x`` / ``full_well`` keep the full-resolution radiance and well-exposed
    planes (uint8 0/255) for the pair inputs; ``release()`` drops them."""

    def __init__(self, codes: np.ndarray, tab: _Tables, s: int, is_ref: bool):
        self.codes, self.tab = codes, tab
        self.x, self.v, self.xmax, self.xmin, self.well, self.sat, self.dark = ([] for _ in range(7))
        self.full_x, self.full_well = [], []
        for c in range(3):
            x = _take(tab.x[c], codes[c])
            well = _flag(codes[c], tab.well)
            self.full_x.append(x)
            self.full_well.append(well)
            self.x.append(_down(x, s))
            self.v.append(_down(_take(tab.v[c], codes[c]), s))
            self.xmax.append(_down_extreme(x, s, cv2.dilate))
            self.xmin.append(_down_extreme(x, s, cv2.erode))
            self.well.append(_majority(well, s))
            if is_ref:
                self.sat.append(_majority(_flag(codes[c], tab.sat), s))
                self.dark.append(_majority(_flag(codes[c], tab.dark), s))

    def release(self) -> None:
        self.full_x, self.full_well = [], []


def _pair_inputs(fi: _Frame, fr: _Frame, s: int, calibrate: bool) -> dict:
    """Reduced-resolution quantities of a (frame, reference) pair: per channel the share ``P`` of the
    block where both are well exposed and the block sums (means) of each radiance over those pixels;
    for the calibration the same over pixels well exposed in every channel of both (``PA``, ``XA``)."""
    out = {"P": [], "XI": [], "XR": [], "XAI": [], "XAR": []}
    pairs = [cv2.bitwise_and(a, b) for a, b in zip(fi.full_well, fr.full_well)]
    one = np.zeros(256, np.float32)
    one[255] = 1.0
    pa = None
    if calibrate:
        pa = cv2.LUT(cv2.bitwise_and(cv2.bitwise_and(pairs[0], pairs[1]), pairs[2]), one)
        out["PA"] = _down(pa, s)
    for c in range(3):
        pf = cv2.LUT(pairs[c], one)
        xi, xr = fi.full_x[c], fr.full_x[c]
        out["P"].append(_down(pf, s))
        out["XI"].append(_down(cv2.multiply(xi, pf), s))
        out["XR"].append(_down(cv2.multiply(xr, pf), s))
        if calibrate:
            out["XAI"].append(_down(cv2.multiply(xi, pa), s))
            out["XAR"].append(_down(cv2.multiply(xr, pa), s))
    return out


class _Test:
    """The ghost test of one frame against the reference at reduced resolution (see the module docstring)."""

    def __init__(self, fi: _Frame, fr: _Frame, pair: dict, s: int, levels: tuple[np.ndarray, np.ndarray], threshold: float,
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
            den = _blur(pair["P"][c], k)
            keep = den > 0.5
            np.maximum(den, 1e-6, out=den)
            xr = np.where(keep, _blur(pair["XR"][c], k) / den, fr.x[c]).astype(np.float32)
            ref_var = fr.v[c] * np.float32(g) + (np.float32(tol) * xr) ** 2
            self.ref.append((keep, den, xr, cv2.erode(xr, kern), cv2.dilate(xr, kern), ref_var))

    def ghost(self, gain: np.ndarray | None) -> np.ndarray:
        """(h, w) uint8 0/1 ghost detections of the frame (its radiance times ``gain``, if given)."""
        fi, pair, k, g, tol = self.fi, self.pair, self.k, self.gain, self.tolerance
        kern = np.ones((3, 3), np.uint8)
        best = None
        for c in range(3):
            keep, den, xr, lo, hi, ref_var = self.ref[c]
            xi_sum, x_plain, v = pair["XI"][c], fi.x[c], fi.v[c]
            xmax, xmin = fi.xmax[c], fi.xmin[c]
            if gain is not None:
                xi_sum, x_plain, v = xi_sum * gain, x_plain * gain, v * (gain * gain)
                xmax, xmin = xmax * gain, xmin * gain
            xi = _blur(xi_sum, k)
            np.divide(xi, den, out=xi)
            np.copyto(xi, x_plain, where=~keep)
            sd = v * np.float32(g)
            sd += ref_var
            np.sqrt(sd, out=sd)
            score = np.subtract(xi, hi)
            np.subtract(lo, xi, out=xi)
            np.maximum(score, xi, out=score)
            np.maximum(score, 0, out=score)
            score /= sd
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


def _soften(ghost: np.ndarray, s: int) -> np.ndarray:
    """(h, w) uint8 0/1 detections -> soft mask in [0, 1]: isolated detections removed (share of the
    ``MIN_FRACTION`` window), dilated, blurred, rounding residue snapped (as ``_ghost_masks``)."""
    win = 5 if s == 1 else 3
    g = ghost.astype(np.float32)
    total = cv2.boxFilter(g, -1, (win, win), normalize=False, borderType=cv2.BORDER_CONSTANT)
    count = cv2.boxFilter(np.ones_like(g), -1, (win, win), normalize=False, borderType=cv2.BORDER_CONSTANT)
    clean = (total / count >= MIN_FRACTION).astype(np.uint8)
    r = max(1, int(round(DILATION / s)))
    dil = cv2.dilate(clean, np.ones((2 * r + 1, 2 * r + 1), np.uint8)).astype(np.float32)
    soft = _blur(dil, _gauss(DILATION / 2 / s))
    soft[soft > 1 - 1e-6] = 1.0
    soft[soft < 1e-6] = 0.0
    return soft


def _calibration(fi: _Frame, fr: _Frame, pair: dict, k: np.ndarray, s: int):
    """Fit of ``calibrate_to_reference`` at reduced resolution: (knots, values) of log(X_ref / X_i) as
    a function of log radiance, from the blurred block radiance on every 4th full-resolution row."""
    den = _blur(pair["PA"], k)
    keep = den > 0.5
    np.maximum(den, 1e-6, out=den)
    step = max(1, 4 // s)
    sub = (slice(None, None, step), slice(None))  # every 4th full-resolution row, as calibrate_to_reference
    both = pair["PA"][sub] > 0.5 if s > 1 else pair["PA"][sub] > 0

    def grey_log(sums, plain):
        logs = [np.log(np.maximum(np.where(keep, _blur(a, k) / den, b)[sub], 1e-12)) for a, b in zip(sums, plain)]
        return ((logs[0] + logs[1] + logs[2]) / 3)[both]

    li, lr = grey_log(pair["XAI"], fi.x), grey_log(pair["XAR"], fr.x)
    return _fit_log_correction(li.astype(np.float32), lr.astype(np.float32))


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
    idx = np.searchsorted(edges, m, side="left")
    counts = np.bincount(idx, minlength=bins)
    order = np.lexsort((d, idx))  # by bin, then by d within the bin (stable)
    ds, ms = d[order], m[order]
    starts = np.cumsum(counts) - counts
    keep = counts >= max(20, int(0.002 * li.size))
    if not keep.any():
        return np.zeros(1), np.array([float(_lower_median(d))])
    sel = np.flatnonzero(keep)
    mid = starts[sel] + (counts[sel] - 1) // 2
    knots = np.array([_lower_median(ms[starts[k] : starts[k] + counts[k]].copy()) for k in sel], np.float32)
    vals = ds[mid]
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


def _up(mask: np.ndarray, s: int, h: int, w: int) -> np.ndarray:
    """Reduced-resolution mask -> (h, w) by bilinear interpolation (block centres), clipped to [0, 1]."""
    if s == 1:
        return mask
    up = cv2.resize(mask, (mask.shape[1] * s, mask.shape[0] * s), interpolation=cv2.INTER_LINEAR)[:h, :w]
    return np.clip(up, 0, 1, out=np.ascontiguousarray(up))


def _parallel(fn, items: list) -> list:
    from hdrkit.align.warp import parallel_map

    return parallel_map(fn, items)


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
        tabs = [_Tables(codes[b][i][1], tb[i], response, noise, noise_bits) for i in range(n)]
        t_ref = torch.tensor(tb[r], dtype=torch.float64)
        levels = tuple((response.inverse(torch.full((1, 3, 1, 1), code, dtype=torch.float32)).double() / t_ref).reshape(3).numpy()
                       for code in (sat_code, dark_code))
        others = [i for i in range(n) if i != r]
        frames = _parallel(lambda i: _Frame(codes[b][i][0], tabs[i], s, i == r), list(range(n)))

        def detect(i: int):
            pair = _pair_inputs(frames[i], frames[r], s, calibrate)
            test = _Test(frames[i], frames[r], pair, s, levels, threshold, tolerance)
            mask = _soften(test.ghost(None), s)
            fit = None
            if calibrate:
                fit = _compose(*_calibration(frames[i], frames[r], pair, test.k, s))
                lx = np.log(np.maximum(np.stack(frames[i].x), 1e-12)).mean(axis=0, dtype=np.float32)
                gain = np.exp(_correction(lx, fit))
                mask_cal = _soften(test.ghost(gain), s)
                if mask_cal.mean(dtype=np.float64) < mask.mean(dtype=np.float64):
                    return mask_cal, fit
            return mask, None

        found = dict(zip(others, _parallel(detect, others)))
        for f in frames:
            f.release()
        soft = {i: _up(found[i][0], s, h, w) for i in others}
        fits = {i: found[i][1] for i in others}
        keep = None
        if valid is not None:
            keep = valid.detach().to("cpu", torch.float32).expand(b_, n, 1, h, w)[b, :, 0].numpy()
        order = sorted(range(n), key=lambda i: tb[i])
        short, long = order[0], order[-1]
        out = hdr[b].numpy()

        def band(r0: int, r1: int) -> None:
            rows = slice(r0, r1)
            num = out[:, rows]
            den = np.zeros((3, r1 - r0, w), np.float32)
            xs, ms = {}, {}
            for i in range(n):
                c_i, tab = codes[b][i][0][:, rows], tabs[i]
                x = np.stack([_take(tab.x[c], c_i[c]) for c in range(3)])
                if fits.get(i) is not None:
                    x *= np.exp(_correction(_log_grey(x), fits[i]))[None]
                wt = np.stack([_take(tab.w[c], c_i[c]) for c in range(3)])
                wt *= gather(tab.hi, channel_max(c_i), np.empty((r1 - r0, w), np.float32))[None]
                m = None
                if i != r:
                    m = soft[i][rows]
                    wt *= (1 - m)[None]
                    if keep is not None:  # the aligner's masks: no weight, and the frame is no fallback there
                        k_i = keep[i, rows]
                        wt *= k_i[None]
                        m = np.maximum(m, 1 - k_i)
                if i == 0:
                    np.multiply(wt, x, out=num)
                else:
                    num += wt * x
                den += wt
                if i in (r, short, long):
                    xs[i], ms[i] = x, m
            ref_sat = _take(tabs[r].sat, channel_max(codes[b][r][0][:, rows])) > 0
            static_fb = np.where(ref_sat[None], xs[short], xs[long])
            fb_mask = np.where(ref_sat, _mask_or_zero(ms[short], (r1 - r0, w)), _mask_or_zero(ms[long], (r1 - r0, w)))
            fallback = np.where((fb_mask < 0.5)[None], static_fb, xs[r])
            zero = den <= 0
            np.maximum(den, np.float32(np.finfo(np.float32).tiny), out=den)
            np.divide(num, den, out=num)
            np.copyto(num, fallback, where=zero)

        _bands(h, w, band)
        if return_masks:
            for i in others:
                m = soft[i]
                if keep is not None:
                    m = np.maximum(m, 1 - keep[i])
                masks_out[b, i, 0] = torch.from_numpy(np.ascontiguousarray(m, dtype=np.float32))
    return (hdr, masks_out) if return_masks else hdr


def _mask_or_zero(m: np.ndarray | None, shape) -> np.ndarray:
    return np.zeros(shape, np.float32) if m is None else m


def _bands(height: int, width: int, fn) -> None:
    """``fn(r0, r1)`` over row bands of about ``BAND_PIXELS / 4`` pixels (the merge holds a dozen
    planes per band) on ``torch.get_num_threads()`` threads."""
    rows = max(1, min(height, (BAND_PIXELS // 4) // max(width, 1)))
    _parallel(lambda r0: fn(r0, min(height, r0 + rows)), list(range(0, height, rows)))
