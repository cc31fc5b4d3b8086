"""Dense optical-flow alignment on top of the homography, with occlusion and consistency masks.

One homography per frame (``hdrkit.align.homography``) removes the camera motion, however large; what
it cannot remove (parallax, non-rigid and object motion) is then estimated as a dense residual flow
between the reference and the homography-aligned frame, both on a common exposure
(``hdrkit.align.common.common_exposure_pair``: linearized with the response, each channel clipped to
the radiance range both frames expose well, grey, gamma-encoded; rank-matched codes when there is no
common range), the frame's image further mapped onto the reference's grey-level distribution
(quantile matching, which absorbs the error of an assumed response without relying on pixel
correspondences, which parallax breaks). The flow is OpenCV's DIS (Kroeger et al. 2016), computed in
both directions on images of at most ``FLOW_MAX_SIDE`` px.

Every frame is resampled once from its original pixels, at ``T_i (p + g(p) f(p))`` (``T_i`` the
homography, ``f`` the residual flow), with a gate ``g`` in [0, 1]. The flow is *checked* where neither
comparison image is clipped (dilated by 2 px) and the reference has texture (local std at least
``TEXTURE_MIN``); there it is switched on only where it explains the frame clearly better than the
homography alone: the local (7x7) mean photometric residual must drop by ``FLOW_GAIN`` (relative) and
``FLOW_MIN_GAIN`` (absolute), and the flow must move by ``FLOW_MIN_PX`` or more. Where it cannot be
checked (clipped or flat regions, e.g. a window saturated in the reference, whose content only a
shorter frame has) it is switched on where most checked pixels around are on (a push-pull pyramid
vote), so parallax is followed into such regions while static surroundings keep them unwarped. The
binary decision is dilated and blurred into ``g``. Where ``g = 0`` the frame is exactly the
homography-aligned one, so a static bracket is not resampled at all (measured: static scenes score
the same as with the homography, to the bit).

A frame's pixel is marked invalid (``valid`` False, mask 0) when its source lies outside the frame,
or when it is occluded: the forward flow ``f`` and the backward flow ``b`` (frame -> reference)
disagree, ``|f(p) + b(p + f(p))|^2 > FB_ALPHA (|f|^2 + |b|^2) + FB_BETA`` (Sundaram, Brox & Keutzer
2010), at a checked pixel where the flow-warped frame still differs in structure from the reference
(high-passed difference above ``OCCLUSION_RESIDUAL`` and ``OCCLUSION_SIGMAS`` times the pair's noise,
so that neither sensor noise nor a smooth photometric offset such as an assumed response's error
reads as occlusion). Clipped and flat pixels are not flagged: their flow is arbitrary, the frame's
own clipped codes get no weight in any merge, and the deghosting merge tests a frame against the
reference's clipping level there. Invalid pixels are filled with the reference re-exposed to the
frame's exposure, as in ``hdrkit.align.warp.apply_transforms``, so merges without masks see
consistent data; ``merge_granados2013(valid=masks)`` gives them no weight.

References:
    T. Kroeger, R. Timofte, D. Dai, L. Van Gool, "Fast optical flow using dense inverse search",
    ECCV 2016.
    N. Sundaram, T. Brox, K. Keutzer, "Dense point trajectories by GPU-accelerated large
    displacement optical flow", ECCV 2010 (forward-backward consistency).
    N. K. Kalantari, R. Ramamoorthi, "Deep high dynamic range imaging of dynamic scenes",
    SIGGRAPH 2017 (flow-aligned brackets as the input of a merge).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from hdrkit.align.common import common_exposure_pair, rank_matched_pair
from hdrkit.align.homography import align_homography
from hdrkit.align.warp import AlignResult, as_bracket, check_reference, default_reference, reexpose
from hdrkit.camera.response import GammaResponse, Response
from hdrkit.errors import HdrkitError

__all__ = ["FlowAlignResult", "align_flow_dis", "FLOW_MAX_SIDE", "FLOW_GAIN", "FLOW_MIN_GAIN", "FLOW_MIN_PX", "FB_ALPHA", "FB_BETA"]

FLOW_PRESET = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM
"""DIS preset (OpenCV); the finest scale is set to the full working resolution."""

FLOW_MAX_SIDE = 1280
"""Flows are computed on comparison images whose longest side is at most this (then upsampled)."""

FLOW_GAIN = 0.25
"""The flow is used where it lowers the local photometric residual by at least this fraction ..."""

FLOW_MIN_GAIN = 0.01
"""... and by at least this much in comparison-image units (gamma-encoded, [0, 1]) ..."""

FLOW_MIN_PX = 0.5
"""... and moves the pixel by at least this many pixels (sub-pixel residuals the merge tolerates)."""

FILL_UNCHECKED = True
"""Pixels where the flow cannot be checked (clipped or flat) use it when most checked pixels around them do."""

RESIDUAL_WINDOW = 7
"""Side of the box window over which photometric residuals are averaged for the gate."""

GATE_SIGMA = 2.0
"""The binary gate is dilated by ``2 * GATE_SIGMA`` px and blurred with this sigma into ``g``."""

FB_ALPHA = 0.01
FB_BETA = 0.5
"""Forward-backward test: occluded where ``|f + b|^2 > FB_ALPHA (|f|^2 + |b|^2) + FB_BETA`` (px^2)."""

TEXTURE_MIN = 0.01
"""The flow is checked (gate, occlusion) only where neither image is clipped and the reference's
comparison image has at least this local (7x7) standard deviation."""

OCCLUSION_RESIDUAL = 0.01
OCCLUSION_SIGMAS = 3.0
"""Occlusion also needs the flow-warped frame to differ in structure from the reference: the 7x7 mean
of the high-passed (``HIGHPASS_SIGMA``) difference must reach ``OCCLUSION_RESIDUAL`` and
``OCCLUSION_SIGMAS`` times the pair's noise (robust std of the high-passed difference before the flow)."""

HIGHPASS_SIGMA = 2.0
"""Gaussian whose blur is subtracted from difference images to drop smooth photometric offsets."""

OCCLUSION_DILATION = 2
"""Occluded pixels are cleaned of isolated detections and dilated by this many pixels."""

MASK_SIGMA = 1.0
"""The soft merge masks ramp from 0 (invalid) to 1 over about ``2 * MASK_SIGMA`` px inside valid regions."""


@dataclass
class FlowAlignResult(AlignResult):
    """``AlignResult`` plus what a mask-aware merge needs.

    Attributes (besides ``AlignResult``'s):
        masks: (N, 1, H, W) or (B, N, 1, H, W) float32 in [0, 1]: soft per-pixel merge weights, 0 where
            ``valid`` is False (outside the frame, occluded), 1 well inside valid regions; all 1 for the
            reference. ``merge_granados2013(valid=masks)`` gives masked pixels no weight.
        flow: (N, 2, H, W) or (B, N, 2, H, W) float32 (x, y) displacement in pixels from each reference
            pixel to where it was sampled in its frame (homography included), or None.
    """

    masks: torch.Tensor | None = None
    flow: torch.Tensor | None = None


def _dis(preset: int):
    dis = cv2.DISOpticalFlow_create(preset)
    dis.setFinestScale(0)
    return dis


def _to_u8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _remap(img: np.ndarray, fx: np.ndarray, fy: np.ndarray, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    return cv2.remap(img, gx + fx, gy + fy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _clean(mask: np.ndarray, size: int, fraction: float, dilate: int) -> np.ndarray:
    """Drop detections with less than ``fraction`` of their size x size window detected, then dilate."""
    m = mask.astype(np.float32)
    keep = (cv2.blur(m, (size, size), borderType=cv2.BORDER_REPLICATE) >= fraction) & mask
    if dilate > 0:
        keep = cv2.dilate(keep.astype(np.uint8), np.ones((2 * dilate + 1, 2 * dilate + 1), np.uint8)) > 0
    return keep


def _residual_flow(refi: np.ndarray, img: np.ndarray, clip_r, clip_f, dis) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Gated residual flow (H, W, 2) float32 (reference -> frame, pixels; exactly 0 where unused),
    where it is used (H, W) bool, occlusion (H, W) bool, on one pair of common-exposure images; plus notes."""
    h, w = refi.shape
    a8, b8 = _to_u8(refi), _to_u8(img)
    fwd = dis.calc(a8, b8, None)
    bwd = dis.calc(b8, a8, None)
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    fx, fy = fwd[..., 0], fwd[..., 1]
    # gate: the flow must explain the frame clearly better than the homography alone
    k = (RESIDUAL_WINDOW, RESIDUAL_WINDOW)
    e0 = cv2.blur(np.abs(refi - img), k, borderType=cv2.BORDER_REPLICATE)
    warped = _remap(img, fx, fy, gx, gy)
    e1 = cv2.blur(np.abs(refi - warped), k, borderType=cv2.BORDER_REPLICATE)
    moved = np.hypot(fx, fy) >= FLOW_MIN_PX
    clipped = cv2.dilate((clip_r | clip_f).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    mean = cv2.blur(refi, k, borderType=cv2.BORDER_REPLICATE)
    std = np.sqrt(np.maximum(cv2.blur(refi * refi, k, borderType=cv2.BORDER_REPLICATE) - mean * mean, 0.0))
    checked = ~clipped & (std >= TEXTURE_MIN)
    on = moved & (e1 <= (1.0 - FLOW_GAIN) * e0) & (e0 - e1 >= FLOW_MIN_GAIN) & checked
    on = _clean(on, 5, 0.3, 0)
    if FILL_UNCHECKED and not checked.all() and checked.any():  # where the flow cannot be checked, follow the checked pixels around
        on |= ~checked & (_push_pull(on.astype(np.float32)[..., None], checked)[..., 0] > 0.5)
    on = cv2.dilate(on.astype(np.uint8), np.ones((4 * int(GATE_SIGMA) + 1,) * 2, np.uint8)) > 0
    gate = cv2.GaussianBlur(on.astype(np.float32), (0, 0), GATE_SIGMA, borderType=cv2.BORDER_REPLICATE)
    gate[gate < 1e-3] = 0.0
    gate[gate > 1 - 1e-3] = 1.0
    flow = fwd * gate[..., None]
    # occlusion: forward-backward inconsistent where the flow can be checked and leaves a clear
    # residual (flat and clipped regions give arbitrary flows that the merge's own test against the
    # clipping level judges better)
    back = cv2.remap(bwd, gx + fx, gy + fy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    d2 = (fx + back[..., 0]) ** 2 + (fy + back[..., 1]) ** 2
    bad = d2 > FB_ALPHA * (fx * fx + fy * fy + back[..., 0] ** 2 + back[..., 1] ** 2) + FB_BETA
    floor = max(OCCLUSION_RESIDUAL, OCCLUSION_SIGMAS * _noise(refi - img, checked))
    bad &= checked & (_structure_residual(refi - warped, k) >= floor)
    occluded = _clean(bad, 3, 0.3, OCCLUSION_DILATION)
    used = np.abs(flow).max(axis=-1) > 0
    return flow, used, occluded, {"flow_fraction": float(used.mean()), "occluded_fraction": float(occluded.mean())}


def _highpass(d: np.ndarray) -> np.ndarray:
    return d - cv2.GaussianBlur(d, (0, 0), HIGHPASS_SIGMA, borderType=cv2.BORDER_REPLICATE)


def _structure_residual(d: np.ndarray, k: tuple[int, int]) -> np.ndarray:
    """Local mean of the high-passed difference image: structure that differs, not a smooth
    photometric offset (an assumed response, vignetting)."""
    return cv2.blur(np.abs(_highpass(d)), k, borderType=cv2.BORDER_REPLICATE)


def _noise(d: np.ndarray, where: np.ndarray) -> float:
    """Robust standard deviation (1.4826 MAD about 0) of the high-passed difference over ``where``:
    the noise of a pair, as long as less than half of those pixels move."""
    v = np.abs(_highpass(d)[where])
    return float(1.4826 * np.median(v)) if v.size else 0.0


def _push_pull(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Smooth interpolation of (H, W, C) ``values`` from the pixels where ``known`` (H, W) is True into
    the rest, by a push-pull pyramid (weighted means down, coarse estimates filling the holes up)."""
    w = known.astype(np.float32)
    levels = [(values * w[..., None], w)]
    while min(levels[-1][1].shape) > 4 and not (levels[-1][1] > 1e-3).all():
        vw, ww = levels[-1]
        size = (max(1, vw.shape[1] // 2), max(1, vw.shape[0] // 2))
        small = cv2.resize(vw, size, interpolation=cv2.INTER_AREA).reshape(size[1], size[0], -1)
        levels.append((small, cv2.resize(ww, size, interpolation=cv2.INTER_AREA)))
    vw, ww = levels[-1]
    est = vw / np.maximum(ww, 1e-6)[..., None]
    for vw, ww in reversed(levels[:-1]):
        up = cv2.resize(est, (vw.shape[1], vw.shape[0]), interpolation=cv2.INTER_LINEAR).reshape(vw.shape)
        a = np.minimum(ww, 1.0)[..., None]
        est = a * vw / np.maximum(ww, 1e-6)[..., None] + (1 - a) * up
    return est.astype(np.float32)


def _match_histogram(img: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Map ``img`` onto ``ref``'s grey-level distribution (quantile matching, monotonic): absorbs the
    error of an assumed response without trusting pixel correspondences, which parallax breaks."""
    q = np.linspace(0.0, 1.0, 257)
    src, dst = np.quantile(img, q), np.quantile(ref, q)
    src = src + np.linspace(0.0, 1e-6, src.size)  # strictly increasing for np.interp
    return np.interp(img, src, dst).astype(np.float32)


def _comparison_pair(frame: torch.Tensor, ref: torch.Tensor, t_frame: float, t_ref: float, response: Response):
    """Grey comparison images of ``frame`` and ``ref`` and their clipping masks (numpy), the frame's
    image photometrically matched to the reference's; rank-matched when no common exposure exists."""
    pair = common_exposure_pair(frame, ref, t_frame, t_ref, response, with_clipping=True)
    if pair is None:
        img, refi, cf, cr = rank_matched_pair(frame, ref)
    else:
        img, refi, cf, cr = pair
    img = _match_histogram(img, refi)
    clip_f = (cf[0] | cf[1]).numpy()
    clip_r = (cr[0] | cr[1]).numpy()
    return refi, img, clip_r, clip_f


def _resize(x: np.ndarray, size: tuple[int, int], interp=cv2.INTER_LINEAR) -> np.ndarray:
    return cv2.resize(x, (size[1], size[0]), interpolation=interp)


def _frame_flow(frame_h, ref, t_frame, t_ref, response, dis) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Full-resolution residual flow (H, W, 2), where it is used (H, W) and occlusion (H, W) of one frame."""
    h, w = ref.shape[-2:]
    refi, img, clip_r, clip_f = _comparison_pair(frame_h, ref, t_frame, t_ref, response)
    scale = min(1.0, FLOW_MAX_SIDE / max(h, w))
    if scale < 1.0:
        small = (max(8, round(h * scale)), max(8, round(w * scale)))
        refi, img = _resize(refi, small, cv2.INTER_AREA), _resize(img, small, cv2.INTER_AREA)
        clip_r = _resize(clip_r.astype(np.uint8), small, cv2.INTER_NEAREST) > 0
        clip_f = _resize(clip_f.astype(np.uint8), small, cv2.INTER_NEAREST) > 0
    flow, used, occ, notes = _residual_flow(refi, img, clip_r, clip_f, dis)
    if scale < 1.0:
        sy, sx = h / refi.shape[0], w / refi.shape[1]
        flow = _resize(flow, (h, w)) * np.array([sx, sy], np.float32)
        used = np.abs(flow).max(axis=-1) > 0
        occ = _resize(occ.astype(np.float32), (h, w)) > 0.0
    return flow, used, occ, notes


def _soft_mask(valid: torch.Tensor) -> torch.Tensor:
    """(1, H, W) bool -> float32 in [0, 1]: 0 where invalid, ramping up to 1 inside valid regions."""
    v = valid.float()
    if bool(valid.all()):
        return v
    blurred = torch.from_numpy(cv2.GaussianBlur(v[0].cpu().numpy(), (0, 0), MASK_SIGMA, borderType=cv2.BORDER_REPLICATE))
    soft = torch.where(valid[0].cpu(), blurred, torch.zeros_like(blurred))
    soft = torch.where(soft > 1 - 1e-3, torch.ones_like(soft), soft)
    return soft[None].to(valid.device)


def _sample_coords(homography: torch.Tensor, flow: torch.Tensor | None, h: int, w: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Frame coordinates ``T (p + flow(p))`` (x, y), each (H, W) float32, of every reference pixel centre
    ``p``; flow (2, H, W) in pixels (x, y) or None (the homography alone)."""
    ys = torch.arange(h, dtype=torch.float32, device=device).view(h, 1).expand(h, w)
    xs = torch.arange(w, dtype=torch.float32, device=device).view(1, w).expand(h, w)
    px, py = (xs, ys) if flow is None else (xs + flow[0].to(device, torch.float32), ys + flow[1].to(device, torch.float32))
    t = homography.to(torch.float64).tolist()
    z = t[2][0] * px + t[2][1] * py + t[2][2]
    z = torch.where(z.abs() < 1e-12, torch.full_like(z, 1e-12), z)
    return (t[0][0] * px + t[0][1] * py + t[0][2]) / z, (t[1][0] * px + t[1][1] * py + t[1][2]) / z


def _resample(frame: torch.Tensor, homography: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``frame`` (3, H, W) at ``T (p + flow(p))``; flow (2, H, W) in pixels (x, y).
    Returns the (3, H, W) samples (bilinear, border-replicated) and the (1, H, W) inside mask."""
    _, h, w = frame.shape
    sx, sy = _sample_coords(homography, flow, h, w, frame.device)
    inside = (sx >= -0.5) & (sx <= w - 0.5) & (sy >= -0.5) & (sy <= h - 0.5)
    grid = torch.stack([2.0 * sx / max(w - 1, 1) - 1.0, 2.0 * sy / max(h - 1, 1) - 1.0], dim=-1).to(frame.dtype)
    out = F.grid_sample(frame[None], grid[None], mode="bilinear", padding_mode="border", align_corners=True)[0]
    return out.clamp(0, 1), inside[None]


def align_flow_dis(
    ldr: torch.Tensor,
    exposure_times: torch.Tensor,
    reference=None,
    response: Response | None = None,
    *,
    initial: str = "homography",
    preset: int = FLOW_PRESET,
    keep_flow: bool = False,
) -> FlowAlignResult:
    """Align a bracket with a homography per frame plus a gated dense residual flow (OpenCV DIS).

    Args:
        ldr: (B, N, 3, H, W) or (N, 3, H, W) display-referred RGB codes in [0, 1] (float; uint8 / uint16
            codes are converted to that, and the result is float).
        exposure_times: (B, N) or (N,) linear exposure times (never EV).
        reference: (B,) tensor of reference indices, an int for every bracket, or None for the
            middle frame by exposure (``N // 2`` of the exposure-sorted bracket).
        response: camera response used to compare frames on a common exposure; default gamma 2.2.
        initial: global model estimated first, 'homography' (``align_homography``) or 'none'.
        preset: OpenCV DIS preset (``cv2.DISOPTICAL_FLOW_PRESET_*``).
        keep_flow: also return the total displacement field in ``AlignResult.flow``.

    Returns:
        ``FlowAlignResult`` (an ``AlignResult``) with the input's batching:
        ``ldr`` (B, N, 3, H, W) codes in [0, 1] in the reference's geometry, invalid pixels filled
        with the reference re-exposed to the frame's exposure;
        ``transforms`` (B, N, 3, 3) the homographies (reference -> frame pixel coordinates);
        ``valid`` (B, N, 1, H, W) bool, False where a frame's pixel came from outside the frame or
        is occluded (forward-backward inconsistent); the reference is all True;
        ``masks`` (B, N, 1, H, W) float32 in [0, 1], the soft merge weights that go with ``valid``
        (0 wherever ``valid`` is False);
        ``flow`` (with ``keep_flow``) (B, N, 2, H, W) float32, the (x, y) displacement in pixels from
        each reference pixel to where it was sampled in the frame (homography included);
        ``reference`` int (or list per bracket); ``info['method']`` per frame
        ('reference', '<initial model>' or '<initial model>+flow'), ``info['flow_fraction']`` and
        ``info['occluded_fraction']`` per frame.
    """
    if initial not in ("homography", "none"):
        raise HdrkitError(f"unknown initial alignment {initial!r}: use 'homography' or 'none'")
    if exposure_times is None:
        raise HdrkitError("align_flow_dis needs exposure_times (linear, (N,) or (B, N))")
    response = response or GammaResponse(2.2)
    if isinstance(ldr, torch.Tensor) and ldr.dtype in (torch.uint8, torch.uint16):  # codes as decoded: to [0, 1]
        ldr = ldr.to(torch.float32) / float(torch.iinfo(ldr.dtype).max)
    x, t, batched = as_bracket(ldr, exposure_times)
    b, n, _, h, w = x.shape
    if isinstance(reference, torch.Tensor) and reference.ndim == 1 and reference.numel() == b:
        ref_in = [int(r) for r in reference]
    elif isinstance(reference, (list, tuple)):
        ref_in = [int(r) for r in reference]
    else:
        ref_in = [None if reference is None else int(reference)] * b
    if len(ref_in) != b:
        raise HdrkitError(f"reference must be an int or have one entry per bracket ({b}), got {len(ref_in)}")
    dis = _dis(preset)
    out = torch.empty_like(x)
    transforms = torch.eye(3, dtype=torch.float64).repeat(b, n, 1, 1)
    valid = torch.ones((b, n, 1, h, w), dtype=torch.bool, device=x.device)
    masks = torch.ones((b, n, 1, h, w), dtype=torch.float32, device=x.device)
    flows = torch.zeros((b, n, 2, h, w), dtype=torch.float32) if keep_flow else None
    refs, notes, flow_frac, occ_frac = [], [], [], []
    for bi in range(b):
        r = check_reference(ref_in[bi], n)
        r = default_reference(x[bi], t[bi]) if r is None else r
        if initial == "homography":
            hres = align_homography(x[bi : bi + 1], t[bi : bi + 1], response, r)
            xh, tf, vh, note = hres.ldr[0], hres.transforms[0], hres.valid[0], list(hres.info["method"][0])
        else:
            xh, tf, vh, note = x[bi], transforms[bi], valid[bi], ["identity"] * n
            note[r] = "reference"
        transforms[bi] = tf
        ref = x[bi, r]
        ff, of = [0.0] * n, [0.0] * n
        for i in range(n):
            out[bi, i] = xh[i]
            if i == r:
                continue
            flow, used, occ, info = _frame_flow(xh[i], ref, float(t[bi, i]), float(t[bi, r]), response, dis)
            ff[i], of[i] = info["flow_fraction"], info["occluded_fraction"]
            ok = vh[i].clone()
            if ff[i] > 0:
                fl = torch.from_numpy(np.ascontiguousarray(flow.transpose(2, 0, 1)))
                warped, inside = _resample(x[bi, i], tf[i], fl)
                on = torch.from_numpy(used).to(x.device)[None]
                out[bi, i] = torch.where(on, warped, xh[i])
                ok = torch.where(on, inside, ok)
                note[i] = f"{note[i]}+flow"
                if flows is not None:
                    flows[bi, i] = fl
            if flows is not None:
                sx, sy = _sample_coords(tf[i], flows[bi, i] if ff[i] > 0 else None, h, w, "cpu")
                flows[bi, i, 0] = sx - torch.arange(w, dtype=torch.float32)
                flows[bi, i, 1] = sy - torch.arange(h, dtype=torch.float32)[:, None]
            ok &= ~torch.from_numpy(occ).to(x.device)[None]
            if not bool(ok.all()):
                fill = reexpose(ref, t[bi, i] / t[bi, r], response)
                out[bi, i] = torch.where(ok, out[bi, i], fill)
            valid[bi, i] = ok
            masks[bi, i] = _soft_mask(ok)
        refs.append(r)
        notes.append(note)
        flow_frac.append(ff)
        occ_frac.append(of)
    info = {"method": notes, "flow_fraction": flow_frac, "occluded_fraction": occ_frac}
    if not batched:
        info = {k: v[0] for k, v in info.items()}
        return FlowAlignResult(out[0], transforms[0], valid[0], refs[0], info, masks=masks[0], flow=None if flows is None else flows[0])
    return FlowAlignResult(out, transforms, valid, refs, info, masks=masks, flow=flows)

