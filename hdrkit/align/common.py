"""Frames of a bracket put on a common exposure for comparison, and the clipping masks that go with them.

Codes are linearized with the camera response (``f^-1(ldr) / t``, radiance), each channel is clipped
to the radiance range that *both* frames expose well (codes in ``WELL_EXPOSED``), then converted to
grey, normalized to that range and gamma-encoded (``COMPARE_GAMMA``). Clipping both frames at the
same radiance makes the two grey images the same function of the scene radiance, so percentile
thresholds (Ward's MTB) and correlations (ECC) compare like with like. Pixels whose every channel
sits at the lower (upper) end of the range carry no information and are reported as dark (bright).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from hdrkit.camera.response import Response

__all__ = ["common_exposure_pair", "rank_matched_pair", "WELL_EXPOSED", "COMPARE_GAMMA", "MIN_RANGE_RATIO"]

WELL_EXPOSED = (0.02, 0.98)
"""Codes considered well exposed when building the common-exposure comparison images."""

COMPARE_GAMMA = 2.2
"""Display gamma applied to the common-exposure radiance before comparison."""

MIN_RANGE_RATIO = 1.5
"""The mutually well-exposed radiance range must span at least this ratio (else no common exposure)."""

_GREY = (54.0 / 256.0, 183.0 / 256.0, 19.0 / 256.0)  # Ward 2003's weights, as in hdrkit.align.mtb


def common_exposure_pair(
    frame: torch.Tensor, ref: torch.Tensor, t_frame: float, t_ref: float, response: Response, *, with_clipping: bool = False
):
    """Grey float32 images of ``frame`` and ``ref`` (each (3, H, W) codes) on a common exposure.

    Args:
        frame, ref: (3, H, W) display-referred codes in [0, 1].
        t_frame, t_ref: their linear exposure times.
        response: camera response used to linearize.
        with_clipping: also return each image's clipping masks.

    Returns:
        ``(frame_img, ref_img)`` (H, W) numpy float32 in [0, 1]; with ``with_clipping``,
        ``(frame_img, ref_img, (dark_f, bright_f), (dark_r, bright_r))`` with (H, W) bool torch
        masks of pixels whose channels are all at the lower / upper end of the common range.
        None when the well-exposed radiance ranges of the two frames do not overlap by
        ``MIN_RANGE_RATIO``.
    """
    codes = torch.tensor(WELL_EXPOSED, dtype=torch.float64).view(2, 1, 1, 1).expand(2, 3, 1, 1)
    lin = response.inverse(codes).mean(dim=(1, 2, 3))
    lo = float(lin[0]) / min(t_frame, t_ref)
    hi = float(lin[1]) / max(t_frame, t_ref)
    if not hi > lo * MIN_RANGE_RATIO:
        return None
    w = torch.tensor(_GREY).view(1, 3, 1, 1)
    imgs, clips = [], []
    for img, t in ((frame, t_frame), (ref, t_ref)):
        # clip each channel (not the grey) so channels saturated in one frame are clipped in both
        rad = (response.inverse(img.detach().float().cpu()) / t).clamp(lo, hi)
        g = F.conv2d(rad[None], w.to(rad.dtype))[0, 0] / hi
        imgs.append(g.pow(1.0 / COMPARE_GAMMA).numpy().astype(np.float32))
        clips.append(((rad <= lo).all(0), (rad >= hi).all(0)))
    if with_clipping:
        return imgs[0], imgs[1], clips[0], clips[1]
    return imgs[0], imgs[1]


def rank_matched_pair(frame: torch.Tensor, ref: torch.Tensor):
    """Response-free comparison images: grey codes of ``frame`` mapped onto ``ref``'s by their ranks.

    Used when no exposure times (or no common well-exposed radiance range) are available. Any
    monotonic response and exposure change preserve the order of pixel values, so mapping the frame's
    grey histogram onto the reference's (``np.interp`` of the frame's quantiles to the reference's)
    makes a static pair look alike, as in Ward's MTB.

    Args:
        frame, ref: (3, H, W) display-referred codes in [0, 1].

    Returns:
        ``(frame_img, ref_img, (dark_f, bright_f), (dark_r, bright_r))``: (H, W) numpy float32 images
        and (H, W) bool torch masks of pixels with every channel at most ``WELL_EXPOSED[0]`` (dark)
        or any channel at least ``WELL_EXPOSED[1]`` (bright).
    """
    w = torch.tensor(_GREY).view(1, 3, 1, 1)
    out, clips = [], []
    for img in (frame, ref):
        x = img.detach().float().cpu()
        out.append(F.conv2d(x[None], w)[0, 0].numpy())
        clips.append(((x <= WELL_EXPOSED[0]).all(0), (x >= WELL_EXPOSED[1]).any(0)))
    q = np.linspace(0.0, 1.0, 257)
    src, dst = np.quantile(out[0], q), np.quantile(out[1], q)
    src = src + np.linspace(0.0, 1e-6, src.size)  # strictly increasing for np.interp
    matched = np.interp(out[0], src, dst).astype(np.float32)
    return matched, out[1].astype(np.float32), clips[0], clips[1]
