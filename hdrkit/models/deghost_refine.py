"""DeghostRefine: a small network that corrects the classical deghosting merge instead of replacing it.

hdrkit's own design (no paper to follow). The classical pipeline does what it does well: linearize with
the camera response (known, or recovered by ``--response calibrate``), align globally, merge with the
noise-optimal deghosting merge (``merge_granados2013``). What it cannot do is use a moving region's
content from the other frames: its ghost masks fall back to the reference frame, which is clipped or
noisy there. So ``prepare`` adds dense optical flow (OpenCV DIS between exposure-matched frames, as
Kalantari & Ramamoorthi 2017 align with Liu's flow) and ``refine`` learns, per pixel, how to blend

    the deghost merge, every frame's radiance, and every non-reference frame's flow-warped radiance

with softmax weights, times a bounded multiplicative residual ``exp(0.5 tanh(r))``, and applies that
correction through a gate: ``out = deghost + E g (corrected - deghost)``, with a learned ``g = clip(x, 0, 1)``
and the classical evidence ``E``: 1 within ``EVIDENCE_RADIUS`` pixels of a pixel that the deghosting merge's
consistency test flagged in any frame, else 0. So where nothing moves (static scenes, static parts of
dynamic ones) the output is the classical merge to the bit, which a blend of candidates and a residual
cannot reproduce to the ~1e-4 precision the noise-optimal merge reaches there (without ``E`` the network
lost 8.5 dB on static 16-bit scenes while gaining 9 dB on dynamic ones). The blend starts (bias) on the deghost merge, so an
untrained or unsure network returns the classical result, and the output never leaves the hull of the
candidates by more than the residual's bound.

Architecture: per-frame encoders with shared weights (any N >= 2, any reference), at half resolution,
three levels (24, 32, 48 channels); mean and max pooling over frames at every level (order-invariant);
one decoder; per-frame 1x1 heads for the frame's two logits, a decoder head for the deghost logit and the
residual. Logits are upsampled bilinearly; the blend is computed at full resolution in float32.

Inputs per frame: mu-law (mu = 5000) of the frame's radiance and of its flow-warped radiance, its linear
exposure ``clip(H_i t_i)`` (shows clipping), its ghost mask, log2 of its exposure relative to the
reference and a reference flag; shared: mu-law of the deghost merge and of the reference's radiance.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hdrkit.camera.response import GammaResponse
from hdrkit.models.base import MergeNet
from hdrkit.tonemap.mu_law import mu_law

__all__ = ["DeghostRefineNet", "dis_flows_to_reference", "flow_warp_to_reference", "infer_bits", "remap_codes"]

FLOW_PRESET = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM
"""DIS preset of the flow prior (about 80 ms per 1500x1000 pair on this project's CPU)."""

DEGHOST_BIAS = 4.0
"""Initial logit of the deghost candidate: an untrained network returns the classical merge."""

EVIDENCE_RADIUS = 32
"""The correction is allowed only within this many pixels of a pixel the classical ghost test flagged."""

GATE_INIT = 0.9
"""Initial value of the correction gate (inside (0, 1), so it gets gradients from the start)."""

RESIDUAL_BOUND = 0.5
"""The residual multiplies the blend by ``exp(RESIDUAL_BOUND * tanh(r))``: within a factor of 1.65."""


def infer_bits(ldr: torch.Tensor) -> int:
    """8 if every code of the (float, [0, 1]) bracket lies on the 8-bit grid, else 16."""
    flat = ldr.detach().reshape(-1)
    x = flat[:: max(1, flat.numel() // 262144)].float() * 255.0  # a strided sample decides
    return 8 if (x - x.round()).abs().max().item() < 1e-3 else 16


def _grey8(x: np.ndarray) -> np.ndarray:
    """(3, H, W) linear exposure in [0, 1] -> uint8 gamma-2.2 grey for flow."""
    g = x.clip(0, 1).mean(axis=0) ** (1 / 2.2)
    return (g * 255.0 + 0.5).astype(np.uint8)


def dis_flows_to_reference(radiance: torch.Tensor, times: torch.Tensor, reference: int,
                           deadzone: float = 0.0) -> dict[int, np.ndarray]:
    """DIS optical flow from the reference to every other frame, between exposure-matched images.

    Args:
        radiance: (N, 3, H, W) linearized frames ``f^-1(I_i) / t_i``.
        times: (N,) linear exposure times.
        reference: index of the reference frame.
        deadzone: flow vectors shorter than this (pixels) are set to 0.

    Returns:
        ``{i: (H, W, 2) float32 flow}`` for every ``i != reference``: reference pixel ``(x, y)`` sees frame ``i``
        at ``(x + u, y + v)``. Both frames of a pair are compared at the longer exposure, clipped there, so
        saturation looks alike.
    """
    lin = radiance.detach().float().cpu().numpy()
    t = times.detach().double().cpu().numpy()
    dis = cv2.DISOpticalFlow_create(FLOW_PRESET)
    flows = {}
    for i in range(lin.shape[0]):
        if i == reference:
            continue
        c = max(t[i], t[reference])
        flow = dis.calc(_grey8(lin[reference] * c), _grey8(lin[i] * c), None)
        if deadzone > 0:
            flow[np.hypot(flow[..., 0], flow[..., 1]) < deadzone] = 0.0
        flows[i] = flow
    return flows


def remap_codes(codes: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """(3, H, W) float32 codes resampled (bilinear, replicated border) at ``pixel + flow`` ((H, W, 2))."""
    h, w = flow.shape[:2]
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.ascontiguousarray(codes.transpose(1, 2, 0))
    return cv2.remap(img, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE).transpose(2, 0, 1)


def flow_warp_to_reference(ldr: torch.Tensor, radiance: torch.Tensor, times: torch.Tensor, reference: int) -> torch.Tensor:
    """Warp every frame onto the reference with DIS optical flow between exposure-matched images.

    Args:
        ldr: (N, 3, H, W) codes in [0, 1] (one bracket, CPU or GPU; the flow runs on the CPU).
        radiance: (N, 3, H, W) linearized frames ``f^-1(I_i) / t_i``.
        times: (N,) linear exposure times.
        reference: index of the reference frame.

    Returns:
        (N, 3, H, W) codes, frame ``i`` resampled into the reference's geometry (the reference as is).
    """
    out = ldr.detach().float().cpu().numpy().copy()
    for i, flow in dis_flows_to_reference(radiance, times, reference).items():
        out[i] = remap_codes(out[i], flow)
    return torch.from_numpy(out).to(ldr.device, ldr.dtype)


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.LeakyReLU(0.1))


def _pool(f: torch.Tensor, b: int) -> torch.Tensor:
    """(B*N, C, h, w) per-frame features -> (B, 2C, h, w) mean and max over frames."""
    f = f.reshape(b, -1, *f.shape[1:])
    return torch.cat([f.mean(1), f.amax(1)], 1)


def _evidence(ghost: torch.Tensor, radius: int = EVIDENCE_RADIUS) -> torch.Tensor:
    """(B, N, 1, H, W) soft ghost masks -> (B, 1, H, W) in {0, 1}: any mask > 0 within ``radius`` pixels.

    Computed on 4x4 blocks (max), dilated separably, upsampled: cheap at any size, tile-consistent for tiles
    aligned to 4 pixels.
    """
    h, w = ghost.shape[-2:]
    g = (ghost.amax(1) > 0).float()
    g = F.max_pool2d(g, 4, 4, ceil_mode=True)
    r = radius // 4
    g = F.max_pool2d(g, (1, 2 * r + 1), 1, (0, r))
    g = F.max_pool2d(g, (2 * r + 1, 1), 1, (r, 0))
    return F.interpolate(g, scale_factor=4, mode="nearest")[..., :h, :w]


class DeghostRefineNet(MergeNet):
    """Learned per-pixel correction of the deghosting merge with flow-warped frames (hdrkit's own)."""

    frames = None
    size_divisor = 8
    context = 64  # receptive field of refine ~40 px; evidence dilation 32 px + one 4-px block
    bytes_per_pixel = 900

    FRAME_CHANNELS = 12
    SHARED_CHANNELS = 6

    def __init__(self, widths: tuple[int, int, int] = (24, 32, 48)):
        super().__init__()
        c0, c1, c2 = widths
        cin = self.FRAME_CHANNELS + self.SHARED_CHANNELS
        self.enc0 = nn.Sequential(_conv(cin, c0), _conv(c0, c0))
        self.enc1 = nn.Sequential(_conv(c0, c1, 2), _conv(c1, c1))
        self.enc2 = nn.Sequential(_conv(c1, c2, 2), _conv(c2, c2))
        self.mid = nn.Sequential(_conv(2 * c2, c2), _conv(c2, c2))
        self.dec1 = _conv(c2 + 2 * c1, c1)
        self.dec0 = _conv(c1 + 2 * c0, c0)
        self.frame_head = nn.Conv2d(c0 + c0, 2, 1)
        self.shared_head = nn.Conv2d(c0, 3, 1)  # deghost logit, residual, gate
        with torch.no_grad():
            self.shared_head.weight.zero_()
            self.shared_head.bias.copy_(torch.tensor([DEGHOST_BIAS, 0.0, GATE_INIT]))

    def prepare(self, ldr, exposure_times, reference, response=None):
        from hdrkit.merge.deghost import merge_granados2013

        response = response or GammaResponse(2.2)
        t = exposure_times[:, :, None, None, None]
        lin = response.inverse(ldr.float()) / t
        bits = infer_bits(ldr)
        deghost, ghost, warped = [], [], []
        for i in range(ldr.shape[0]):
            r = int(reference[i])
            d, m = merge_granados2013(ldr[i : i + 1].float(), exposure_times[i : i + 1], response, reference=r,
                                      bits=bits, return_masks=True)
            deghost.append(d)
            ghost.append(m)
            warped.append(flow_warp_to_reference(ldr[i], lin[i], exposure_times[i], r))
        lin_warped = response.inverse(torch.stack(warped)) / t
        return {"lin": lin, "lin_warped": lin_warped, "deghost": torch.cat(deghost), "ghost": torch.cat(ghost)}

    def refine(self, ldr, exposure_times, reference, *, lin, lin_warped, deghost, ghost):
        b, n, _, h, w = ldr.shape
        bi = torch.arange(b, device=ldr.device)
        half = lambda x: F.avg_pool2d(x.flatten(0, 1) if x.ndim == 5 else x, 2)  # noqa: E731
        t = exposure_times.reshape(b * n, 1, 1, 1)
        t_ref = exposure_times[bi, reference].repeat_interleave(n).reshape(b * n, 1, 1, 1)
        is_ref = (torch.arange(n, device=ldr.device)[None] == reference[:, None]).float().reshape(b * n, 1, 1, 1)
        lin_h, warped_h, ghost_h = half(lin), half(lin_warped), half(ghost)
        hh, ww = lin_h.shape[-2:]
        tm = lambda x: mu_law(x.clamp(0, 1))  # noqa: E731
        const = torch.cat([torch.log2(t / t_ref) / 4.0, is_ref], 1).expand(-1, -1, hh, ww)
        frame = torch.cat([tm(lin_h), tm(warped_h), (lin_h * t).clamp(0, 1), ghost_h, const], 1)
        ref_h = lin_h.reshape(b, n, 3, hh, ww)[bi, reference]
        shared = torch.cat([tm(half(deghost)), tm(ref_h)], 1).repeat_interleave(n, 0)
        x = torch.cat([frame, shared], 1)
        f0 = self.enc0(x)
        f1 = self.enc1(f0)
        f2 = self.enc2(f1)
        y = self.mid(_pool(f2, b))
        y = F.interpolate(y, size=f1.shape[-2:], mode="bilinear", align_corners=False)
        y = self.dec1(torch.cat([y, _pool(f1, b)], 1))
        y = F.interpolate(y, size=f0.shape[-2:], mode="bilinear", align_corners=False)
        y = self.dec0(torch.cat([y, _pool(f0, b)], 1))
        per_frame = self.frame_head(torch.cat([f0, y.repeat_interleave(n, 0)], 1)).reshape(b, n, 2, *f0.shape[-2:])
        shared_out = self.shared_head(y)
        logits = torch.cat([shared_out[:, :1], per_frame[:, :, 0], per_frame[:, :, 1]], 1)
        logits = F.interpolate(logits.float(), size=(h, w), mode="bilinear", align_corners=False)
        resid, gate = F.interpolate(shared_out[:, 1:].float(), size=(h, w), mode="bilinear", align_corners=False).unbind(1)
        # the reference's warped copy is itself: not a separate candidate
        mask = torch.zeros(b, 1 + 2 * n, 1, 1, device=ldr.device)
        mask[bi, 1 + n + reference] = -math.inf
        weights = torch.softmax(logits + mask, 1)
        d = deghost.float()
        # the blend candidate by candidate: no (B, 1 + 2N, 3, H, W) stack of full-size images
        blend = d * weights[:, :1]
        for k, cand in enumerate(list(lin.unbind(1)) + list(lin_warped.unbind(1))):
            if k >= n and bool((reference == k - n).all()):
                continue  # the reference's warped copy: weight 0
            blend = blend + cand.float() * weights[:, 1 + k : 2 + k]
        corrected = blend * torch.exp(RESIDUAL_BOUND * torch.tanh(resid[:, None]))
        return d + (_evidence(ghost) * gate[:, None].clamp(0, 1)) * (corrected - d)
