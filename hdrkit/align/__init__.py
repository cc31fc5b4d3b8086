"""Bracket alignment: Ward's MTB translations, robust homographies, dense residual flow, and the warps that apply them.

All aligners take ``ldr`` (N, 3, H, W) or (B, N, 3, H, W) display-referred codes in [0, 1] and
return an ``AlignResult`` whose ``transforms`` map reference pixel coordinates to frame pixel
coordinates (``aligned_i(p) = frame_i(T_i p)``, pixel centres at integers). The default reference
is the middle frame by exposure. Pixels with no source inside their own frame are filled with the
reference re-exposed to that frame's exposure (``f(clip(f^-1(ref) * t_i / t_ref, 0, 1))``), so a
merge sees consistent data without a mask; ``AlignResult.valid`` marks the genuine pixels.

Every estimate must earn its place: frames are compared on a common exposure (or, without usable
times, rank-matched), clipped pixels are ignored, and a translation or homography is kept only if it
lowers a robust photometric cost of the identity by 5 % (``hdrkit.align.select``); otherwise the
frame is left untouched. ``AlignResult.info['method']`` records per frame what was kept.

``'flow'`` (``align_flow_dis``) adds a gated dense optical flow on top of the homography for parallax and
non-rigid motion, and returns a ``FlowAlignResult`` whose ``masks`` (occluded or outside the frame: 0)
a mask-aware merge (``merge_granados2013(valid=...)``) respects.
"""

from __future__ import annotations

import torch

from hdrkit.align.flow import FlowAlignResult, align_flow_dis
from hdrkit.align.homography import align_homography
from hdrkit.align.mtb import align_mtb_ward2003
from hdrkit.align.warp import AlignResult, as_bracket, check_reference, default_reference, shift_image, warp_homography
from hdrkit.camera.response import Response
from hdrkit.errors import HdrkitError

__all__ = ["AlignResult", "FlowAlignResult", "align", "align_mtb_ward2003", "align_homography", "align_flow_dis", "warp_homography",
           "shift_image", "ALIGN_METHODS"]

ALIGN_METHODS = ("none", "mtb", "homography", "flow")


def align(
    ldr: torch.Tensor,
    exposure_times: torch.Tensor | None = None,
    method: str = "none",
    reference: int | None = None,
    response: Response | None = None,
) -> AlignResult:
    """Align a bracket with ``method`` 'none' (identity), 'mtb' (translation), 'homography' or 'flow'
    (homography plus gated dense residual flow, with occlusion masks: ``align_flow_dis``).

    Args:
        ldr: (N, 3, H, W) or (B, N, 3, H, W) codes in [0, 1], RGB; or integer codes as decoded (uint8 /
            uint16, CPU), which 'none', 'mtb' and 'homography' return as codes of the same type and
            'flow' as float codes in [0, 1].
        exposure_times: (N,) or (B, N) linear times; required for 'homography' and 'flow'.
        method: one of ``ALIGN_METHODS``.
        reference: reference frame index; default the middle frame by exposure.
        response: camera response; default gamma 2.2.

    Returns:
        ``AlignResult`` (see ``hdrkit.align.warp.AlignResult``); a ``FlowAlignResult`` for 'flow'.
    """
    if method == "mtb":
        return align_mtb_ward2003(ldr, reference, exposure_times=exposure_times, response=response)
    if method == "homography":
        return align_homography(ldr, exposure_times, response, reference)
    if method == "flow":
        return align_flow_dis(ldr, exposure_times, reference, response)
    if method != "none":
        raise HdrkitError(f"unknown alignment method {method!r}: use one of {', '.join(ALIGN_METHODS)}")
    x, t, batched = as_bracket(ldr, exposure_times)
    b, n, _, h, w = x.shape
    refs = []
    for bi in range(b):
        r = check_reference(reference, n)
        refs.append(default_reference(x[bi], None if t is None else t[bi]) if r is None else r)
    transforms = torch.eye(3, dtype=torch.float64).repeat(b, n, 1, 1)
    valid = torch.ones((b, n, 1, h, w), dtype=torch.bool, device=x.device)
    info = {"method": [["none"] * n for _ in range(b)]}
    if not batched:
        return AlignResult(ldr, transforms[0], valid[0], refs[0], {"method": info["method"][0]})
    return AlignResult(ldr, transforms, valid, refs, info)
