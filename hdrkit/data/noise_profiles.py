"""Sensor noise profiles (Poisson-Gaussian ``var = a * x + b``) measured by darktable.

The JSON follows darktable's ``noiseprofiles.json`` (as redistributed by HDRutils):
``{"noiseprofiles": [{"maker", "models": [{"model", "profiles": [{"name", "iso", "a": [r, g, b],
"b": [r, g, b]}]}]}]}`` with ``a`` (shot) and ``b`` (read) in raw values normalized to [0, 1].

Reference:
    Foi, Trimeche, Katkovnik & Egiazarian, "Practical Poissonian-Gaussian noise modeling and fitting
    for single-image raw-data", IEEE TIP 2008; darktable's noise profiling tool.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hdrkit.camera.exposure import NoiseModel
from hdrkit.errors import HdrkitError

__all__ = ["NoiseProfile", "load_noise_profiles", "sample_noise_profile"]

MAX_ISO = 3200
"""``sample_noise_profile`` default ISO ceiling: brackets are usually shot at low to moderate ISO."""


@dataclass(frozen=True)
class NoiseProfile:
    """One camera/ISO entry: ``maker``, ``model``, ``iso`` and the ``NoiseModel(a, b)``."""

    maker: str
    model: str
    iso: int
    noise: NoiseModel

    def to_dict(self) -> dict:
        return {"maker": self.maker, "model": self.model, "iso": self.iso, "a": list(self.noise.a), "b": list(self.noise.b)}


def load_noise_profiles(path: str | Path) -> list[NoiseProfile]:
    """Read every valid profile from a darktable-style JSON, in file order."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except OSError as e:
        raise HdrkitError(f"{p}: cannot read noise profiles ({e.strerror})") from None
    except json.JSONDecodeError as e:
        raise HdrkitError(f"{p}: not valid JSON ({e.msg} at line {e.lineno})") from None
    makers = data.get("noiseprofiles") if isinstance(data, dict) else None
    if not isinstance(makers, list):
        raise HdrkitError(f"{p}: expected a darktable noise profile JSON with a 'noiseprofiles' list")
    out = []
    for mk in makers:
        for model in mk.get("models", []):
            for prof in model.get("profiles", []):
                a, b = prof.get("a"), prof.get("b")
                if not (isinstance(a, list) and isinstance(b, list) and len(a) == 3 and len(b) == 3):
                    continue
                if not all(np.isfinite(v) and v >= 0 for v in a + b):
                    continue
                out.append(NoiseProfile(str(mk.get("maker", "")), str(model.get("model", "")), int(prof.get("iso", 0)),
                                        NoiseModel(tuple(float(v) for v in a), tuple(float(v) for v in b))))
    if not out:
        raise HdrkitError(f"{p}: no usable noise profiles (each needs 3-element 'a' and 'b')")
    return out


def sample_noise_profile(profiles: list[NoiseProfile], rng: np.random.Generator, max_iso: int = MAX_ISO) -> NoiseProfile:
    """Pick a random profile with ``iso <= max_iso`` (uniform over entries)."""
    pool = [p for p in profiles if p.iso <= max_iso] or list(profiles)
    if not pool:
        raise HdrkitError("no noise profiles to sample from")
    return pool[int(rng.integers(len(pool)))]
