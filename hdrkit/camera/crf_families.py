"""Parametric camera response curves that hdrkit generates itself, for a response basis that needs no data files.

:func:`synthetic_response_curves` draws forward curves ``f: [0, 1] -> [0, 1]`` (``f(0) = 0``,
``f(1) = 1``, non-decreasing) from families that cover the shapes of measured responses:

- power laws ``x ** (1 / gamma)``, compressive and expansive (gamma 0.4 .. 4);
- power laws with a linear toe, the shape of sRGB and Rec. 709 (IEC 61966-2-1; ITU-R BT.709-6);
- logarithmic curves ``log(1 + a x) / log(1 + a)`` (film scanning and "log" video profiles);
- Naka-Rushton / Michaelis-Menten curves ``x^n (1 + s^n) / (x^n + s^n)``: S-shaped in log exposure
  with a shoulder, like film characteristic curves (Naka & Rushton 1966);
- Bernstein polynomials with non-decreasing coefficients (monotone by construction) in ``x ** p``:
  bumps and knees that the closed forms lack;
- convex combinations and compositions ``b(a(x))`` of two such curves.

Their principal components (:func:`hdrkit.camera.emor2004.shipped_basis`) play the role of
Grossberg & Nayar's EMoR basis when ``invemor.txt`` is not available. Least-squares fits of the 151
public DoRF curves leave an inverse-response RMS of median 0.0008, max 0.014 with 7 components and
median 0.0002, max 0.0095 with 11 (the first 11 of ``emor.txt``: 0.0003, 0.004), without the
basis having seen any measured curve.

References:
    M. D. Grossberg and S. K. Nayar, "Modeling the space of camera response functions",
    IEEE TPAMI 26(10), 2004.
    K. I. Naka and W. A. H. Rushton, "S-potentials from colour units in the retina of fish",
    J. Physiol. 185, 1966.
"""

from __future__ import annotations

from math import comb

import numpy as np

__all__ = ["CURVE_SAMPLES", "SYNTHETIC_CURVES", "SYNTHETIC_SEED", "FAMILIES", "synthetic_response_curves"]

#: Samples per curve, uniform in irradiance over [0, 1] (the EMoR / DoRF grid).
CURVE_SAMPLES = 1024

#: Number of curves drawn for the shipped basis and prior.
SYNTHETIC_CURVES = 3000

#: Seed of the shipped curve set (the basis and prior are the same on every machine).
SYNTHETIC_SEED = 2004

#: Parameter ranges, each drawn log-uniformly unless said otherwise.
GAMMA_RANGE = (0.4, 4.0)
TOE_POWER_RANGE = (0.25, 0.8)  # uniform; sRGB is 1/2.4, Rec. 709 0.45
TOE_BREAK_RANGE = (1e-3, 0.1)
LOG_SLOPE_RANGE = (0.3, 3000.0)
NAKA_EXPONENT_RANGE = (0.3, 3.0)
NAKA_SEMI_SATURATION_RANGE = (0.03, 3.0)
BERNSTEIN_DEGREES = (3, 8)  # inclusive
BERNSTEIN_WARP_RANGE = (0.5, 3.0)  # the polynomial is in x ** (1 / warp)

FAMILIES = ("gamma", "toe_power", "log", "naka_rushton", "bernstein", "blend")


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _toe_power(x: np.ndarray, p: float, b: float) -> np.ndarray:
    """``(1 + a) x^p - a`` above ``b``, linear below, with value and slope continuous at ``b`` (sRGB-like)."""
    a = b**p * (1 - p) / (1 - b**p * (1 - p))
    s = (1 + a) * p * b ** (p - 1)
    return np.where(x >= b, (1 + a) * np.maximum(x, b) ** p - a, s * x)


def _bernstein(u: np.ndarray, coef: np.ndarray) -> np.ndarray:
    n = coef.size - 1
    return sum(c * comb(n, k) * u**k * (1 - u) ** (n - k) for k, c in enumerate(coef))


def _draw(rng: np.random.Generator, family: str, x: np.ndarray) -> np.ndarray:
    if family == "gamma":
        return x ** (1.0 / _log_uniform(rng, *GAMMA_RANGE))
    if family == "toe_power":
        return _toe_power(x, float(rng.uniform(*TOE_POWER_RANGE)), _log_uniform(rng, *TOE_BREAK_RANGE))
    if family == "log":
        a = _log_uniform(rng, *LOG_SLOPE_RANGE)
        return np.log1p(a * x) / np.log1p(a)
    if family == "naka_rushton":
        n, s = _log_uniform(rng, *NAKA_EXPONENT_RANGE), _log_uniform(rng, *NAKA_SEMI_SATURATION_RANGE)
        return x**n * (1 + s**n) / (x**n + s**n)
    if family == "bernstein":
        deg = int(rng.integers(BERNSTEIN_DEGREES[0], BERNSTEIN_DEGREES[1] + 1))
        coef = np.concatenate([[0.0], np.sort(rng.uniform(0, 1, deg - 1)), [1.0]])
        return _bernstein(x ** (1.0 / _log_uniform(rng, *BERNSTEIN_WARP_RANGE)), coef)
    a, b = (_draw(rng, str(rng.choice(FAMILIES[:-1])), x) for _ in range(2))
    if rng.random() < 0.5:
        w = float(rng.uniform(0, 1))
        return w * a + (1 - w) * b
    return np.interp(a, x, b)  # b(a(x))


def synthetic_response_curves(count: int = SYNTHETIC_CURVES, seed: int = SYNTHETIC_SEED, samples: int = CURVE_SAMPLES) -> np.ndarray:
    """Forward response curves drawn evenly from :data:`FAMILIES`.

    Returns:
        (count, samples) float64 curves at irradiance ``linspace(0, 1, samples)``, each
        non-decreasing with ``f(0) = 0`` and ``f(1) = 1``; the same for the same arguments.
    """
    rng = np.random.default_rng(seed)
    x = np.linspace(0.0, 1.0, samples)
    curves = np.empty((count, samples))
    for i in range(count):
        f = _draw(rng, FAMILIES[i % len(FAMILIES)], x)
        f = np.maximum.accumulate(np.clip(f, 0.0, 1.0))
        curves[i] = (f - f[0]) / (f[-1] - f[0])
    return curves
