"""Robertson et al. (2003) maximum-likelihood merge of an aligned exposure bracket.

With sensor signal ``x_i = f^-1(z_i)`` and exposure ``t_i``, the estimate is
``X = sum_i w(z_i) t_i x_i / sum_i w(z_i) t_i^2``: frames are weighted by ``w(z) t^2``, so longer
exposures (less relative noise) count more.

Reference:
    Robertson, Borman & Stevenson, "Estimation-theoretic approach to dynamic range enhancement using
    multiple exposures", J. Electronic Imaging 12(2), 219-228, 2003.
"""

from __future__ import annotations

import torch

from hdrkit.camera.exposure import NoiseModel
from hdrkit.camera.response import GammaResponse, Response
from hdrkit.errors import HdrkitError
from hdrkit.merge import weights as W
from hdrkit.merge.debevec1997 import _lut_merge, fallback_radiance, prepare_bracket, weighted_mean
from hdrkit.merge.lut import as_code_indices

__all__ = ["merge_robertson2003", "ROBERTSON_WEIGHTINGS"]

ROBERTSON_WEIGHTINGS = ("gaussian", "opencv_gaussian")


def merge_robertson2003(
    ldr: torch.Tensor,
    exposure_times,
    response: Response | None = None,
    *,
    weighting: str = "gaussian",
    noise: NoiseModel | None = None,
    bits: int | None = 8,
    reference: int | None = None,
) -> torch.Tensor:
    """Merge an aligned bracket with Robertson's estimator.

    Args:
        ldr: (B, N, 3, H, W), N >= 2, display-referred RGB codes in [0, 1] (or uint8 / uint16).
        exposure_times: (B, N) linear exposure times, any order.
        response: camera response; default gamma 2.2.
        weighting: ``'gaussian'`` (Robertson's bell with clipped codes at zero weight and the
            shortest/longest-frame fallback of ``merge_debevec1997``) or ``'opencv_gaussian'``
            (OpenCV's ``MergeRobertson``: the bell alone per channel, 0 where every weight is 0).
        noise, reference: accepted for a shared signature; unused.
        bits: code depth of float input; with ``'gaussian'``, integer codes and float32 codes on
            this grid take the lookup-table path of ``merge_debevec1997`` (same values, no autograd).

    Returns:
        hdr: (B, 3, H, W) linear radiance in units of the shortest exposure, [0, inf).
        Differentiable in float ``ldr``.
    """
    if weighting not in ROBERTSON_WEIGHTINGS:
        raise HdrkitError(f"unknown weighting {weighting!r} for Robertson: use one of {', '.join(ROBERTSON_WEIGHTINGS)}")
    integer = isinstance(ldr, torch.Tensor) and not ldr.is_floating_point()
    z, ints, times, bits, _ = prepare_bracket(ldr, exposure_times, bits, reference, need_float=not integer or weighting != "gaussian")
    response = response or GammaResponse(2.2)
    if weighting == "gaussian":
        # integer codes (or float32 codes on the grid of ``bits``) without autograd: lookup tables
        ints = as_code_indices(z, bits) if ints is None else ints
        if ints is not None and ints.device.type == "cpu":
            with torch.no_grad():
                return _lut_merge(ints, times, response, "gaussian", None, bits, time_power=2)
    if z is None:
        z = ints.to(torch.float32) / float(2**bits - 1)
    t = times[:, :, None, None, None]
    x = response.inverse(z)
    if weighting == "opencv_gaussian":
        w = W.gaussian_shape(z) * t * t
        return (w * x / t).sum(1) / (w.sum(1) + 2.220446049250313e-16)
    w = W.gaussian(z) * t * t
    radiance = x / t
    return weighted_mean(radiance, w, fallback_radiance(z, radiance, times))
