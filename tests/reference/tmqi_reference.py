"""Independent, deliberately literal numpy/scipy transcription of the authors' TMQI.m (Yeganeh & Wang 2012).

Used by tests/test_metrics_tmqi.py to cross-check ``hdrkit.metrics.tmqi`` and to produce the frozen
known-answer numbers there. It shares no code with ``hdrkit`` and follows TMQI.m (version 1.0, from
https://ece.uwaterloo.ca/~z70wang/research/tmqi/) statement by statement, with MATLAB built-ins
replaced by their scipy equivalents:

* ``RGBtoYxy``: Y row ``[0.2126 0.7152 0.0722]`` of the RGB-to-XYZ matrix, on the HDR and on
  ``double(ldrImage)`` (8-bit codes, here ``ldr * 255``);
* ``L_hdr = round((2^32 - 1) / (lmax - lmin)) .* (L_hdr - lmin)``;
* ``fspecial('gaussian', 11, 1.5)``: the 2-D ``exp(-(x^2 + y^2) / (2 sigma^2))`` normalised to sum 1;
* ``filter2(window, img, 'valid')``: ``scipy.signal.correlate2d(img, window, 'valid')``;
* variances as ``filter2(w, x .* x) - mu .^ 2`` (the literal formula; it cancels badly where the
  2^32-scaled HDR is flat, so compare on textured images only);
* ``imfilter(x, ones(2) / 4, 'symmetric', 'same')`` then ``x(1:2:end, 1:2:end)``;
* ``normcdf``, ``normpdf``, ``betapdf``: ``scipy.stats``;
* ``blkproc(L, [11 11], @(x) std(x(:)) * ones(size(x)))``: zero padding to a multiple of 11 on the
  bottom/right, sample standard deviation (``ddof=1``), then ``mean2`` of the padded result.

Run it to print the frozen numbers used by the tests (``KNOWN_PAIR``)::

    python tests/reference/tmqi_reference.py
"""

from __future__ import annotations

import numpy as np
from scipy.signal import correlate2d
from scipy.stats import beta as beta_dist
from scipy.stats import norm


def rgb_to_y(rgb):
    """(H, W, 3) -> (H, W): Y of TMQI.m's RGBtoYxy."""
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    return np.asarray(rgb, dtype=np.float64) @ m[1]


def fspecial_gaussian(size=11, sigma=1.5):
    r = (size - 1) / 2
    y, x = np.mgrid[-r:r + 1, -r:r + 1]
    h = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    return h / h.sum()


def slocal(img1, img2, window, sf):
    c1, c2 = 0.01, 10.0
    window = window / window.sum()
    mu1 = correlate2d(img1, window, "valid")
    mu2 = correlate2d(img2, window, "valid")
    sigma1_sq = correlate2d(img1 * img1, window, "valid") - mu1 * mu1
    sigma2_sq = correlate2d(img2 * img2, window, "valid") - mu2 * mu2
    sigma1 = np.sqrt(np.maximum(0, sigma1_sq))
    sigma2 = np.sqrt(np.maximum(0, sigma2_sq))
    sigma12 = correlate2d(img1 * img2, window, "valid") - mu1 * mu2
    csf = 100.0 * 2.6 * (0.0192 + 0.114 * sf) * np.exp(-((0.114 * sf) ** 1.1))
    u_hdr = 128 / (1.4 * csf)
    sig_hdr = u_hdr / 3
    sigma1p = norm.cdf(sigma1, u_hdr, sig_hdr)
    u_ldr = u_hdr
    sig_ldr = u_ldr / 3
    sigma2p = norm.cdf(sigma2, u_ldr, sig_ldr)
    s_map = ((2 * sigma1p * sigma2p + c1) / (sigma1p * sigma1p + sigma2p * sigma2p + c1)) * (
        (sigma12 + c2) / (sigma1 * sigma2 + c2))
    return s_map.mean()


def imfilter_mean2_symmetric(x):
    padded = np.pad(x, ((0, 1), (0, 1)), mode="symmetric")
    return correlate2d(padded, np.ones((2, 2)) / 4, "valid")


def structural_fidelity(l_hdr, l_ldr, level=5, weight=(0.0448, 0.2856, 0.3001, 0.2363, 0.1333)):
    window = fspecial_gaussian()
    f = 32.0
    s_local = []
    for _ in range(level):
        f = f / 2
        s_local.append(slocal(l_hdr, l_ldr, window, f))
        l_hdr = imfilter_mean2_symmetric(l_hdr)[0::2, 0::2]
        l_ldr = imfilter_mean2_symmetric(l_ldr)[0::2, 0::2]
    s_local = np.array(s_local)
    return float(np.prod(s_local ** np.array(weight))), s_local


def statistical_naturalness(l_ldr):
    u = l_ldr.mean()
    h, w = l_ldr.shape
    padded = np.zeros((h + (-h) % 11, w + (-w) % 11))
    padded[:h, :w] = l_ldr
    sds = [padded[i:i + 11, j:j + 11].std(ddof=1)
           for i in range(0, padded.shape[0], 11) for j in range(0, padded.shape[1], 11)]
    sig = np.mean(sds)
    phat = (4.4, 10.1)
    beta_mode = (phat[0] - 1) / (phat[0] + phat[1] - 2)
    c_0 = beta_dist.pdf(beta_mode, phat[0], phat[1])
    c = beta_dist.pdf(sig / 64.29, phat[0], phat[1])
    pc = c / c_0
    muhat, sigmahat = 115.94, 27.99
    pb = norm.pdf(u, muhat, sigmahat) / norm.pdf(muhat, muhat, sigmahat)
    return float(pb * pc)


def tmqi(hdr_rgb, ldr_rgb01):
    """TMQI.m on (H, W, 3) linear HDR and (H, W, 3) display codes in [0, 1]: ``(Q, S, N, s_local)``."""
    a, alpha, beta = 0.8012, 0.3046, 0.7088
    l_hdr = rgb_to_y(hdr_rgb)
    lmin, lmax = l_hdr.min(), l_hdr.max()
    l_hdr = np.round((2.0**32 - 1) / (lmax - lmin)) * (l_hdr - lmin)
    l_ldr = rgb_to_y(np.asarray(ldr_rgb01, dtype=np.float64) * 255.0)
    s, s_local = structural_fidelity(l_hdr, l_ldr)
    n = statistical_naturalness(l_ldr)
    q = a * s**alpha + (1 - a) * n**beta
    return q, s, n, s_local


def known_pair(h=181, w=203):
    """The deterministic (no RNG) test pair: a textured, tinted HDR scene over ~12 stops and a tone map of it.

    Returns (H, W, 3) float64 arrays ``(hdr, ldr)``; odd sizes exercise the padding of both the
    pyramid and the naturalness blocks.
    """
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    log2_lum = (6.0 * np.sin(x / 37.0) * np.cos(y / 53.0) + 1.5 * np.sin(x / 3.1 + y / 4.3)
                + 0.8 * np.cos(x / 1.7 - y / 2.3) + 0.5 * np.sin((x * y) / 97.0))
    lum = 2.0 ** log2_lum
    tint = np.stack([1.0 + 0.2 * np.sin(y / 29.0), np.ones_like(x), 1.0 + 0.3 * np.cos(x / 41.0)], axis=-1)
    hdr = lum[..., None] * tint
    # a simple global operator: L / (1 + L) after a key of 0.18, gamma 1 / 2.2
    y_hdr = rgb_to_y(hdr)
    key = 0.18 / np.exp(np.mean(np.log(y_hdr)))
    lm = key * y_hdr
    ld = lm / (1 + lm)
    ldr = np.clip(hdr * (ld / y_hdr)[..., None], 0, 1) ** (1 / 2.2)
    return hdr, ldr


if __name__ == "__main__":
    q, s, n, s_local = tmqi(*known_pair())
    print(f"Q = {q!r}\nS = {s!r}\nN = {n!r}\ns_local = {[float(v) for v in s_local]!r}")
