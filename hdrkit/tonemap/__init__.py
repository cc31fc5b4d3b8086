"""Tone mapping: HDR radiance (3, H, W) / (B, 3, H, W) in [0, inf) -> display values in [0, 1].

Operators (all torch, differentiable almost everywhere, per-image statistics):

- ``'mu_law'``: ``tonemap_mu_law`` (Kalantari & Ramamoorthi 2017, mu = 5000), its own encoding;
- ``'reinhard'``: ``tonemap_reinhard2002`` global (key 0.18, ``l_white``), sRGB-encoded;
- ``'reinhard_local'``: ``tonemap_reinhard2002_local`` dodging-and-burning, sRGB-encoded;
- ``'drago'``: ``tonemap_drago2003`` (bias 0.85, Ld_max 100), sRGB-encoded;
- ``'durand'``: ``tonemap_durand2002`` bilateral base/detail with automatic exposure and contrast,
  sRGB-encoded (the preview default of ``hdrkit merge`` and ``hdrkit tonemap``: best mean TMQI);
- ``'exposure_gamma'``: ``exposure_gamma`` (scale, automatic by default, then sRGB or gamma).

``tonemap(hdr, op, **kwargs)`` dispatches by name through the ``TONEMAPPERS`` dict.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch

from hdrkit.errors import HdrkitError
from hdrkit.tonemap.basic import auto_exposure, encode_display, exposure_gamma, luminance, tonemap_mu_law
from hdrkit.tonemap.drago2003 import tonemap_drago2003
from hdrkit.tonemap.durand2002 import tonemap_durand2002
from hdrkit.tonemap.mu_law import MU, inverse_mu_law, mu_law
from hdrkit.tonemap.reinhard2002 import tonemap_reinhard2002, tonemap_reinhard2002_local

__all__ = [
    "TONEMAPPERS",
    "DEFAULT_TONEMAPPER",
    "tonemap",
    "MU",
    "mu_law",
    "inverse_mu_law",
    "tonemap_mu_law",
    "tonemap_reinhard2002",
    "tonemap_reinhard2002_local",
    "tonemap_drago2003",
    "tonemap_durand2002",
    "exposure_gamma",
    "auto_exposure",
    "encode_display",
    "luminance",
]

TONEMAPPERS: dict[str, Callable[..., torch.Tensor]] = {
    "mu_law": tonemap_mu_law,
    "reinhard": tonemap_reinhard2002,
    "reinhard_local": tonemap_reinhard2002_local,
    "drago": tonemap_drago2003,
    "durand": tonemap_durand2002,
    "exposure_gamma": exposure_gamma,
}

DEFAULT_TONEMAPPER = "durand"
"""The preview operator of ``hdrkit merge``, ``hdrkit tonemap`` and the demo: the best mean TMQI over the shared
radiance maps (``benchmarks/results/tonemap_tmqi.md``)."""


def tonemap(hdr: torch.Tensor, op: str = DEFAULT_TONEMAPPER, **kwargs) -> torch.Tensor:
    """Tone map ``hdr`` with the operator named ``op`` (a key of ``TONEMAPPERS``).

    Args:
        hdr: (3, H, W) or (B, 3, H, W) linear radiance in [0, inf).
        op: operator name (default :data:`DEFAULT_TONEMAPPER`).
        **kwargs: the operator's keyword arguments (unknown ones raise ``HdrkitError``).

    Returns:
        Same shape as ``hdr``, display values in [0, 1].
    """
    fn = TONEMAPPERS.get(op)
    if fn is None:
        raise HdrkitError(f"unknown tone mapper {op!r}: use one of {', '.join(TONEMAPPERS)}")
    params = list(inspect.signature(fn).parameters)[1:]
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        raise HdrkitError(f"tone mapper {op!r} has no option {', '.join(unknown)}: it accepts {', '.join(params)}")
    return fn(hdr, **kwargs)
