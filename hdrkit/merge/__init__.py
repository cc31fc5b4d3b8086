"""Classical merging of aligned exposure brackets: radiance merges, exposure fusion, deghosting.

``MERGE_METHODS`` maps a short name to a ``MergeMethod``; ``merge`` dispatches by name. The
default method, ``'deghost'``, is the noise-optimal merge with a consistency test against the
reference frame (``merge_granados2013``).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

import torch

from hdrkit.errors import HdrkitError
from hdrkit.merge.debevec1997 import merge_debevec1997
from hdrkit.merge.deghost import merge_deghost, merge_granados2013
from hdrkit.merge.mertens2007 import fuse_mertens2007
from hdrkit.merge.robertson2003 import merge_robertson2003

__all__ = [
    "MergeMethod",
    "MERGE_METHODS",
    "merge",
    "merge_debevec1997",
    "merge_robertson2003",
    "merge_granados2013",
    "merge_deghost",
    "fuse_mertens2007",
]


@dataclass(frozen=True)
class MergeMethod:
    """A registered merge: ``fn``, a one-line ``summary``, ``output`` ('hdr' radiance or 'ldr'
    display-referred) and whether it ``handles_motion``."""

    fn: Callable
    summary: str
    output: str
    handles_motion: bool


def _fuse(ldr, exposure_times=None, **kw):
    return fuse_mertens2007(ldr, **kw)


MERGE_METHODS: dict[str, MergeMethod] = {
    "deghost": MergeMethod(merge_granados2013, "noise-optimal merge keeping the reference where frames disagree (Granados 2013-like)", "hdr", True),
    "debevec": MergeMethod(merge_debevec1997, "weighted mean of per-frame radiance, noise-optimal weights by default (Debevec 1997)", "hdr", False),
    "robertson": MergeMethod(merge_robertson2003, "Robertson 2003 ML estimate with Gaussian weights", "hdr", False),
    "mertens": MergeMethod(_fuse, "exposure fusion, LDR display-referred output in [0, 1] (Mertens 2007)", "ldr", False),
}


def merge(ldr: torch.Tensor, exposure_times=None, method: str = "deghost", **kwargs) -> torch.Tensor:
    """Merge a bracket with the method registered as ``method`` in ``MERGE_METHODS``.

    Args:
        ldr: (B, N, 3, H, W) display-referred codes in [0, 1] (or uint8 / uint16).
        exposure_times: (B, N) linear exposure times (unused by 'mertens').
        method: a key of ``MERGE_METHODS``.
        **kwargs: passed to the method's function; unknown names raise ``HdrkitError``.

    Returns:
        (B, 3, H, W): radiance in units of the shortest exposure for 'hdr' methods, display codes
        in [0, 1] for 'ldr' methods.
    """
    if method not in MERGE_METHODS:
        raise HdrkitError(f"unknown merge method {method!r}: use one of {', '.join(MERGE_METHODS)}")
    entry = MERGE_METHODS[method]
    fn = fuse_mertens2007 if method == "mertens" else entry.fn
    params = inspect.signature(fn).parameters
    bad = [k for k in kwargs if k not in params or k in ("ldr", "exposure_times")]
    if bad:
        allowed = [k for k in params if k not in ("ldr", "exposure_times")]
        raise HdrkitError(f"merge method {method!r} got unknown option(s) {bad}: allowed {allowed}")
    if entry.output == "hdr" and exposure_times is None:
        raise HdrkitError(f"merge method {method!r} needs exposure_times (B, N)")
    return entry.fn(ldr, exposure_times, **kwargs)
