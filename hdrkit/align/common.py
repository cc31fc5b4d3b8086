"""Frames of a bracket put on a common exposure for comparison, and the clipping masks that go with them.

Codes are linearized with the camera response (``f^-1(ldr) / t``, radiance), each channel is clipped
to the radiance range that *both* frames expose well (codes in ``WELL_EXPOSED``), then converted to
grey, normalized to that range and gamma-encoded (``COMPARE_GAMMA``). Clipping both frames at the
same radiance makes the two grey images the same function of the scene radiance, so percentile
thresholds (Ward's MTB) and correlations (ECC) compare like with like. Pixels whose every channel
sits at the lower (upper) end of the range carry no information and are reported as dark (bright).

Frames on an 8- or 16-bit code grid (as ``hdrkit.io`` reads files; ``bracket_codes``) are converted
with per-code tables (the same formulas evaluated once per code), and the comparison images can be
built at a reduced resolution (``downsample``), which is where the aligners estimate.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from hdrkit.camera.response import Response
from hdrkit.parallel import parallel_map

__all__ = ["common_exposure_pair", "comparison_images", "rank_matched_pair", "bracket_codes", "area_downsample", "WELL_EXPOSED", "COMPARE_GAMMA",
           "MIN_RANGE_RATIO"]

WELL_EXPOSED = (0.02, 0.98)
"""Codes considered well exposed when building the common-exposure comparison images."""

COMPARE_GAMMA = 2.2
"""Display gamma applied to the common-exposure radiance before comparison."""

MIN_RANGE_RATIO = 1.5
"""The mutually well-exposed radiance range must span at least this ratio (else no common exposure)."""

_GREY = (54.0 / 256.0, 183.0 / 256.0, 19.0 / 256.0)  # Ward 2003's weights, as in hdrkit.align.mtb


GRID_CHECK_STRIDE = 16
"""``bracket_codes`` checks every this-many-th row for values on the code grid."""


def bracket_codes(ldr: torch.Tensor) -> tuple[torch.Tensor | None, int | None]:
    """Integer codes of a bracket whose values lie on an 8- or 16-bit code grid, for the aligners.

    The grid is checked (``hdrkit.merge.lut.as_code_indices``) on every ``GRID_CHECK_STRIDE``-th row
    only: the codes serve to build comparison images and fills, where a value off the grid would merely
    be rounded to it (merges check every value themselves).

    Args:
        ldr: (..., 3, H, W) float32 codes in [0, 1] (as read from files), or uint8 / uint16 codes.

    Returns:
        ``(codes, bits)``: codes with ``ldr``'s shape, uint8 for 8 bits, uint16 for 16 bits;
        ``(None, None)`` for values off both grids, other dtypes, devices other than the CPU, or
        tensors that need autograd.
    """
    if ldr.dtype == torch.uint8:
        return ldr, 8
    if ldr.dtype == torch.uint16:
        return ldr, 16
    if ldr.dtype != torch.float32 or ldr.device.type != "cpu" or ldr.numel() == 0 or (ldr.requires_grad and torch.is_grad_enabled()):
        return None, None
    from hdrkit.merge.lut import as_code_indices

    h, w = ldr.shape[-2:]
    planes = ldr.detach().contiguous().reshape(-1, h, w).numpy()
    sample = torch.from_numpy(np.ascontiguousarray(planes[:, ::GRID_CHECK_STRIDE]))
    for bits in (8, 16):
        if as_code_indices(sample, bits) is None:
            continue
        codes = np.empty(planes.shape, np.uint8 if bits == 8 else np.uint16)

        def convert(k: int) -> None:
            if bits == 8:
                cv2.convertScaleAbs(planes[k], dst=codes[k], alpha=255.0)  # round(|z| * 255), saturated
            else:
                np.copyto(codes[k], np.rint(np.clip(planes[k] * np.float32(65535), 0, 65535)), casting="unsafe")

        parallel_map(convert, list(range(len(planes))))  # planes on threads
        return torch.from_numpy(codes).view(ldr.shape), bits
    return None, None


def area_downsample(img: np.ndarray, factor: int) -> np.ndarray:
    """Mean over ``factor`` x ``factor`` blocks of an (H, W) float32 image: (H // factor, W // factor).

    Trailing rows and columns that do not fill a block are dropped (as ``avg_pool2d`` does).
    """
    if factor == 1:
        return img
    h, w = img.shape
    hh, ww = h // factor, w // factor
    return cv2.resize(img[: hh * factor, : ww * factor], (ww, hh), interpolation=cv2.INTER_AREA)


def _tables(response: Response, t: float, lo: float, hi: float, levels: int) -> list[np.ndarray]:
    """Per-channel float32 tables over ``levels`` codes of the grey contribution ``w_c clip(f^-1(z) / t, lo, hi) / hi``
    (256 entries at least, for ``cv2.LUT``)."""
    z = torch.linspace(0, 1, levels, dtype=torch.float64).view(1, levels, 1).expand(3, levels, 1)
    rad = (response.inverse(z).to(torch.float64) / t).reshape(3, levels)
    grey = rad.clamp(lo, hi) * torch.tensor(_GREY, dtype=torch.float64).view(3, 1) / hi
    pad = max(256, levels) - levels
    return [np.concatenate([g, np.full(pad, g[-1])]).astype(np.float32) for g in grey.numpy()]


def _gather(table: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``table[index]`` of an (H, W) plane; deeper codes in row chunks (``numpy.take`` widens indices to intp)."""
    if index.dtype == np.uint8:
        return cv2.LUT(index, table)
    out = np.empty(index.shape, table.dtype)
    step = max(1, (1 << 20) // max(index.shape[1], 1))
    for r in range(0, index.shape[0], step):
        np.take(table, index[r : r + step], mode="clip", out=out[r : r + step])
    return out


def _gamma_encode(img: np.ndarray) -> np.ndarray:
    """``img ** (1 / COMPARE_GAMMA)`` of a non-negative (H, W) float32 image, as ``exp(log(img) / gamma)``
    (OpenCV's vectorized log and exp: 3x faster than ``cv2.pow``, within 4e-7 relative of it; 0 stays 0)."""
    out = cv2.log(img)
    cv2.multiply(out, 1.0 / COMPARE_GAMMA, dst=out)
    return cv2.exp(out, dst=out)


def _majority255(mask: np.ndarray, factor: int) -> np.ndarray:
    """(H, W) uint8 0/255 mask -> (H // factor, W // factor) 0/255: set where more than half of the block is."""
    if factor == 1:
        return mask
    return cv2.compare(area_downsample(mask, factor), 128, cv2.CMP_GT)


def comparison_images(
    frame: torch.Tensor,
    ref: torch.Tensor,
    t_frame: float,
    t_ref: float,
    response: Response,
    *,
    codes: tuple[torch.Tensor, torch.Tensor, int] | None = None,
    downsample: int = 1,
):
    """``common_exposure_pair`` with numpy masks, for the aligners: ``(frame_img, ref_img, (dark_f, bright_f),
    (dark_r, bright_r))`` with (H', W') float32 images and uint8 0/255 masks, or None (no common range).

    With ``codes`` the grey image is a sum of three per-code table look-ups, and a pixel is dark (bright)
    exactly when that sum equals the sum of the three lower (upper) clipping values.
    """
    levels = torch.tensor(WELL_EXPOSED, dtype=torch.float64).view(2, 1, 1, 1).expand(2, 3, 1, 1)
    lin = response.inverse(levels).mean(dim=(1, 2, 3))
    lo = float(lin[0]) / min(t_frame, t_ref)
    hi = float(lin[1]) / max(t_frame, t_ref)
    if not hi > lo * MIN_RANGE_RATIO:
        return None
    imgs, clips = [], []
    if codes is not None:
        bits = int(codes[2])
        for c, t in ((codes[0], t_frame), (codes[1], t_ref)):
            tabs = _tables(response, t, lo, hi, 2**bits)
            c = c.contiguous().numpy()
            g = _gather(tabs[0], c[0])
            g += _gather(tabs[1], c[1])
            g += _gather(tabs[2], c[2])
            # the same float32 sums as every fully clipped pixel's: codes 0 and the last are clipped in every channel
            g_dark = (tabs[0][0] + tabs[1][0]) + tabs[2][0]
            g_bright = (tabs[0][2**bits - 1] + tabs[1][2**bits - 1]) + tabs[2][2**bits - 1]
            dark, bright = cv2.compare(g, float(g_dark), cv2.CMP_LE), cv2.compare(g, float(g_bright), cv2.CMP_GE)
            imgs.append(_gamma_encode(area_downsample(g, downsample)))
            clips.append((_majority255(dark, downsample), _majority255(bright, downsample)))
    else:
        w = torch.tensor(_GREY).view(1, 3, 1, 1)
        for img, t in ((frame, t_frame), (ref, t_ref)):
            # clip each channel (not the grey) so channels saturated in one frame are clipped in both
            rad = (response.inverse(img.detach().float().cpu()) / t).clamp(lo, hi)
            g = F.conv2d(rad[None], w.to(rad.dtype))[0, 0] / hi
            if downsample > 1:
                g = torch.from_numpy(area_downsample(g.numpy(), downsample))
            imgs.append(g.pow(1.0 / COMPARE_GAMMA).numpy().astype(np.float32))
            dark, bright = ((m.numpy().view(np.uint8) * np.uint8(255)) for m in ((rad <= lo).all(0), (rad >= hi).all(0)))
            clips.append((_majority255(dark, downsample), _majority255(bright, downsample)))
    return imgs[0], imgs[1], clips[0], clips[1]


def common_exposure_pair(
    frame: torch.Tensor,
    ref: torch.Tensor,
    t_frame: float,
    t_ref: float,
    response: Response,
    *,
    with_clipping: bool = False,
    codes: tuple[torch.Tensor, torch.Tensor, int] | None = None,
    downsample: int = 1,
):
    """Grey float32 images of ``frame`` and ``ref`` (each (3, H, W) codes) on a common exposure.

    Args:
        frame, ref: (3, H, W) display-referred codes in [0, 1].
        t_frame, t_ref: their linear exposure times.
        response: camera response used to linearize.
        with_clipping: also return each image's clipping masks.
        codes: optional ``(frame_codes, ref_codes, bits)``, the same frames as integer codes ((3, H, W),
            ``bracket_codes``): the images are then built from per-code tables (the same values to float
            rounding).
        downsample: integer factor: images and masks at (H // factor, W // factor), the clipped radiance
            averaged over factor x factor blocks before the gamma encoding and a pixel reported clipped
            when most of its block is.

    Returns:
        ``(frame_img, ref_img)`` (H, W) numpy float32 in [0, 1]; with ``with_clipping``,
        ``(frame_img, ref_img, (dark_f, bright_f), (dark_r, bright_r))`` with (H, W) bool torch
        masks of pixels whose channels are all at the lower / upper end of the common range.
        None when the well-exposed radiance ranges of the two frames do not overlap by
        ``MIN_RANGE_RATIO``.
    """
    out = comparison_images(frame, ref, t_frame, t_ref, response, codes=codes, downsample=downsample)
    if out is None:
        return None
    img_f, img_r, clip_f, clip_r = out
    if not with_clipping:
        return img_f, img_r
    as_bool = lambda m: torch.from_numpy(m > 0)  # noqa: E731
    return img_f, img_r, tuple(map(as_bool, clip_f)), tuple(map(as_bool, clip_r))


def rank_matched_pair(frame: torch.Tensor, ref: torch.Tensor, *, downsample: int = 1):
    """Response-free comparison images: grey codes of ``frame`` mapped onto ``ref``'s by their ranks.

    Used when no exposure times (or no common well-exposed radiance range) are available. Any
    monotonic response and exposure change preserve the order of pixel values, so mapping the frame's
    grey histogram onto the reference's (``np.interp`` of the frame's quantiles to the reference's)
    makes a static pair look alike, as in Ward's MTB.

    Args:
        frame, ref: (3, H, W) display-referred codes in [0, 1].
        downsample: integer factor: images and masks at (H // factor, W // factor) (block means of
            the grey codes; a pixel is clipped when most of its block is).

    Returns:
        ``(frame_img, ref_img, (dark_f, bright_f), (dark_r, bright_r))``: (H, W) numpy float32 images
        and (H, W) bool torch masks of pixels with every channel at most ``WELL_EXPOSED[0]`` (dark)
        or any channel at least ``WELL_EXPOSED[1]`` (bright).
    """
    w = torch.tensor(_GREY).view(1, 3, 1, 1)
    out, clips = [], []
    for img in (frame, ref):
        x = img.detach().float().cpu()
        out.append(area_downsample(F.conv2d(x[None], w)[0, 0].numpy(), downsample))
        dark, bright = (x <= WELL_EXPOSED[0]).all(0), (x >= WELL_EXPOSED[1]).any(0)
        if downsample > 1:
            dark, bright = (torch.from_numpy(_majority255(m.numpy().view(np.uint8) * np.uint8(255), downsample) > 0) for m in (dark, bright))
        clips.append((dark, bright))
    q = np.linspace(0.0, 1.0, 257)
    src, dst = np.quantile(out[0], q), np.quantile(out[1], q)
    src = src + np.linspace(0.0, 1e-6, src.size)  # strictly increasing for np.interp
    matched = np.interp(out[0], src, dst).astype(np.float32)
    return matched, out[1].astype(np.float32), clips[0], clips[1]
