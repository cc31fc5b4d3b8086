"""One entry point for recovering the camera response from a bracket, by method name.

``'calibrate'`` in ``hdrkit merge --response``, :func:`hdrkit.pipeline.resolve_response` and
``hdrkit eval`` means :data:`DEFAULT_CALIBRATION`; ``'calibrate:NAME'`` picks a method of
:data:`CALIBRATION_METHODS`, as ``hdrkit calibrate --method NAME`` does.
"""

from __future__ import annotations

from hdrkit.camera.response import TabulatedResponse
from hdrkit.errors import HdrkitError

__all__ = ["CALIBRATION_METHODS", "DEFAULT_CALIBRATION", "calibration_method", "recover_response"]

#: Method names: ``emor`` (Grossberg & Nayar 2004 prior, :mod:`hdrkit.camera.emor2004`), ``debevec``
#: (Debevec & Malik 1997), ``robertson`` (Robertson et al. 2003).
CALIBRATION_METHODS = ("emor", "debevec", "robertson")

#: The method behind a plain ``'calibrate'``: the EMoR prior, which gets more DoRF curves within 0.02
#: RMS than Debevec 1997 at both +-2 and +-3 EV brackets (``benchmarks/results/calibrate_emor.md``).
DEFAULT_CALIBRATION = "emor"


def calibration_method(spec: str) -> str | None:
    """The method named by a response spec: ``'calibrate'`` -> the default, ``'calibrate:NAME'`` -> NAME, else None."""
    if spec == "calibrate":
        return DEFAULT_CALIBRATION
    if isinstance(spec, str) and spec.startswith("calibrate:"):
        name = spec.split(":", 1)[1]
        if name not in CALIBRATION_METHODS:
            raise HdrkitError(f"unknown calibration method {name!r} in {spec!r}: use calibrate:{'|'.join(CALIBRATION_METHODS)}")
        return name
    return None


def recover_response(ldr, exposure_times, *, method: str = DEFAULT_CALIBRATION, bits: int = 8) -> TabulatedResponse:
    """Recover the inverse response of a static bracket with ``method`` (one of :data:`CALIBRATION_METHODS`).

    ldr: (N, 3, H, W) or (1, N, 3, H, W) codes in [0, 1]; exposure_times: (N,) or (1, N) linear;
    bits: the codes' bit depth. Returns a :class:`~hdrkit.camera.response.TabulatedResponse`
    normalized to ``f^-1(1) = 1``.
    """
    if method == "emor":
        from hdrkit.camera.emor2004 import recover_response_emor2004 as recover
    elif method == "debevec":
        from hdrkit.camera.debevec1997 import recover_response_debevec1997 as recover
    elif method == "robertson":
        from hdrkit.camera.robertson2003 import recover_response_robertson2003 as recover
    else:
        raise HdrkitError(f"unknown calibration method {method!r}: use {', '.join(CALIBRATION_METHODS)}")
    return recover(ldr, exposure_times, bits=bits)
