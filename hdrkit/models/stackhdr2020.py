"""Single-image HDR by recurrent exposure-stack generation and differentiable HDR synthesis.

Kim, Lee & Kang, "Differentiable HDR image synthesis using multi-exposure images", NeurIPS 2020 Workshop
on Differentiable Vision, Graphics, and Physics in Machine Learning (extended as AAAI 2021 "End-to-end
differentiable learning to HDR image synthesis for multi-exposure images"). Original code:
github.com/JungHeeKim29/DiffHDRsyn (MIT).

A recurrent-up and a recurrent-down network each turn the photo into ``STEPS`` brighter / darker
exposures, one EV apart, by recursion: the output of step ``k`` is the input of step ``k + 1``. Each
direction has three U-Nets with two 3x3 convolutions per level and Swish activations:

- a **global** 5-level U-Net (the tone of the next exposure) and a **local** 4-level U-Net (its edge map),
  each with a convolutional GRU (Siam et al. 2017) in the bottleneck whose state carries over the
  recursions, so the networks know how far they are from the input;
- a **refinement** U-Net that merges the current frame, the global output and the edge map.

The 7 frames (EV -3..+3) are merged by the differentiable HDR synthesis layer
(:func:`hdrkit.merge.synthesis_kim2020.synthesize_hdr_kim2020`: Debevec & Malik response recovery from
the generated stack, eq. 1, and the log-domain merge, eq. 2), so the loss on the HDR trains the
generators end to end. ``training_loss`` is the paper's eq. 4-7 with lambda = {1, 0.1, 1, 1, 1, 0.1}:

- global: L1 to the target exposures + 0.1 x the L1 distance of soft 64-bin histograms per channel;
- local: L1 of the edge map to Canny edges (sigma 2, OpenCV, thresholds 0.1 / 0.2 of the range as
  scikit-image's defaults) of the target exposure, computed without gradient;
- refinement: L1 to the target exposures + the mu-law HDR loss ``|log((1 + mu H_hat) / (1 + mu H))|``,
  mu = 5000, on the synthesized radiance + 0.1 x the contextual bilateral loss (CoBi, Zhang et al. 2019):
  ``mean_j min_k (cosine distance + w_s x spatial distance)``, w_s = 0.1, on VGG-19 relu3_4 and relu4_4
  features when ``vgg19_weights`` names a local torchvision-layout file, otherwise on 3x3 RGB patches (the
  RGB variant of CoBi in the same paper), at most 32x32 positions.

Deviations from the paper and the official code:

- Widths: the paper gives none; the official generator is one 5-level U-Net of 64..2048 channels per
  direction. Here every U-Net starts at ``width`` = 12 channels and doubles per level (the refinement
  U-Net has 4 levels, no GRU), sized for CPU training: 8,286,638 parameters = 2 directions x (global
  3,095,883 + local 772,369 + refinement 275,067), from ``sum(p.numel() for p in StackHDR().parameters())``
  (tested); most of them sit in the bottleneck GRUs, most of the compute in the full-resolution levels.
- Target exposures: the paper trains on VDS real stacks; here the frames at EV e are made from the ground
  truth radiance with a gamma curve ``clip(a (2^e H)^(1/g))`` fitted (per image, least squares in the
  log domain) to the input photo, which is itself the EV 0 frame.
- Residual outputs: the global and refinement outputs add their U-Net's output to the logit of their
  input (the official code averages a tanh output with the input); the edge map is a sigmoid.
- Inference on tiles: the response depends on the whole stack, so ``prepare`` (inference only) generates
  the stack from the photo downscaled to at most ``CALIBRATION_SIDE`` pixels, recovers ``g`` from it and
  hands it to every tile (packed like DFGNet's context); training and ``forward`` without priors
  recover ``g`` from the stack being merged, differentiably.
- Optimizer (the paper: gradient-centralized Adam, lr 1e-4, betas 0.5 / 0.999): hdrkit's Adam.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hdrkit.errors import HdrkitError
from hdrkit.merge.synthesis_kim2020 import SYNTHESIS_LEVELS, recover_log_response_kim2020, synthesize_hdr_kim2020
from hdrkit.models.base import MergeNet
from hdrkit.models.dfgnet import CONTEXT_BLOCK, IMAGENET_MEAN, IMAGENET_STD, load_vgg19_features, pack_context, unpack_context

__all__ = ["StackHDR", "STEPS", "LAMBDAS", "exposure_targets", "canny_edges", "soft_histogram", "cobi_loss"]

STEPS = 3
"""Recursions per direction: the stack spans EV -3..+3 in 1 EV steps (7 frames, the official code's)."""

LAMBDAS = (1.0, 0.1, 1.0, 1.0, 1.0, 0.1)
"""lambda_1..6 of eq. 4-7: global L1, histogram, edge, refinement L1, HDR, CoBi."""

MU = 5000.0
"""mu of the HDR loss (eq. 7)."""

HIST_BINS = 64
"""Soft-histogram bins per channel (the paper counts intensity levels; 64 triangular bins keep the
histogram differentiable and smooth)."""

CANNY_SIGMA = 2.0
"""Gaussian sigma of the Canny edge targets (the paper's sigma = 2)."""

COBI_SPATIAL = 0.1
"""w_s of CoBi (Zhang et al. 2019)."""

COBI_MAX_SIDE = 32
"""CoBi compares at most this many positions per side (the distance matrix is (32^2)^2 per image)."""

CALIBRATION_SIDE = 512
"""``prepare`` recovers the response from the stack generated on the photo downscaled to this long side."""

VGG_TAPS = (17, 26)
"""relu3_4 and relu4_4 in torchvision's VGG-19 ``features``."""


class DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(nn.Conv2d(cin, cout, 3, padding=1), nn.SiLU(), nn.Conv2d(cout, cout, 3, padding=1), nn.SiLU())


class ConvGRU(nn.Module):
    """Convolutional GRU cell (Siam et al. 2017): state (B, C, h, w), zero at the first recursion."""

    def __init__(self, ch: int):
        super().__init__()
        self.gates = nn.Conv2d(2 * ch, 2 * ch, 3, padding=1)
        self.candidate = nn.Conv2d(2 * ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor, h: torch.Tensor | None) -> torch.Tensor:
        h = torch.zeros_like(x) if h is None else h
        z, r = torch.sigmoid(self.gates(torch.cat([x, h], 1))).chunk(2, dim=1)
        n = torch.tanh(self.candidate(torch.cat([x, r * h], 1)))
        return (1 - z) * h + z * n


class UNet(nn.Module):
    """``levels``-level U-Net, two Swish convolutions per level, average pooling, bilinear upsampling,
    an optional ConvGRU on the bottleneck; returns (output, new state)."""

    def __init__(self, cin: int, cout: int, width: int, levels: int, recurrent: bool):
        super().__init__()
        ch = [width * 2**i for i in range(levels)]
        self.enc = nn.ModuleList([DoubleConv(cin if i == 0 else ch[i - 1], ch[i]) for i in range(levels)])
        self.gru = ConvGRU(ch[-1]) if recurrent else None
        self.dec = nn.ModuleList([DoubleConv(ch[i] + ch[i + 1], ch[i]) for i in reversed(range(levels - 1))])
        self.head = nn.Conv2d(width, cout, 3, padding=1)

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None):
        skips = []
        for i, enc in enumerate(self.enc):
            x = enc(F.avg_pool2d(x, 2) if i else x)
            skips.append(x)
        if self.gru is not None:
            x = h = self.gru(x, h)
        for dec, skip in zip(self.dec, reversed(skips[:-1])):
            x = dec(torch.cat([F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False), skip], 1))
        return self.head(x), h


def _logit(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(1e-3, 1 - 1e-3)
    return torch.log(x) - torch.log1p(-x)


class RecurrentStack(nn.Module):
    """The recurrent-up (or -down) network: global, local and refinement U-Nets applied ``steps`` times."""

    def __init__(self, width: int):
        super().__init__()
        self.global_net = UNet(3, 3, width, 5, recurrent=True)
        self.local_net = UNet(3, 1, width, 4, recurrent=True)
        self.refine_net = UNet(7, 3, width, 4, recurrent=False)

    def forward(self, x: torch.Tensor, steps: int) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """x (B, 3, H, W) in [0, 1] -> per step (global output, edge map (B, 1, H, W), refined frame)."""
        hg = hl = None
        out = []
        for _ in range(steps):
            gn, hg = self.global_net(x, hg)
            g = torch.sigmoid(gn + _logit(x))
            en, hl = self.local_net(x, hl)
            e = torch.sigmoid(en)
            rn, _ = self.refine_net(torch.cat([x, g, e], 1))
            x = torch.sigmoid(rn + _logit(g))
            out.append((g, e, x))
        return out


class StackHDR(MergeNet):
    """Kim, Lee & Kang 2020 (module docstring). Takes one frame: ``ldr`` (B, 1, 3, H, W).

    Args:
        width: channels of the first level of every U-Net.
        steps: recursions per direction (frames at EV -steps..+steps).
        vgg19_weights: local torchvision-layout VGG-19 weights for CoBi; None uses the RGB-patch CoBi.
        domain: merge of the synthesis layer, ``'log'`` (eq. 2) or ``'linear'``.
    """

    frames = 1
    size_divisor = CONTEXT_BLOCK  # the response prior's block grid; a multiple of the U-Nets' 16
    # receptive radius of refine: 297..300 px measured (gradient of one output pixel, 1664 px wide input,
    # width 16; three recursions of global (5 levels) + refinement U-Nets), plus slack
    context = 320
    # measured fp32 peak / pixel of refine at 384x384 with width 16: 1,407 (the stack, U-Net activations and
    # the synthesis layer); width 12 needs less
    bytes_per_pixel = 2000

    def __init__(self, width: int = 12, steps: int = STEPS, vgg19_weights: str | None = None, domain: str = "log"):
        super().__init__()
        if vgg19_weights is not None and not Path(vgg19_weights).is_file():
            raise HdrkitError(f"vgg19_weights: {vgg19_weights} does not exist")
        self.steps = int(steps)
        self.domain = domain
        self.vgg19_weights = vgg19_weights
        self.up = RecurrentStack(width)
        self.down = RecurrentStack(width)
        object.__setattr__(self, "_vgg", None)  # not a submodule: never in the state dict or the optimizer

    def evs(self, device=None) -> torch.Tensor:
        return torch.arange(-self.steps, self.steps + 1, device=device, dtype=torch.float32)

    def generate(self, x: torch.Tensor):
        """x (B, 3, H, W) -> (stack (B, 2 steps + 1, 3, H, W) at EV -steps..+steps, down outputs, up outputs)."""
        up = self.up(x, self.steps)
        down = self.down(x, self.steps)
        frames = [d[2] for d in reversed(down)] + [x] + [u[2] for u in up]
        return torch.stack(frames, 1), down, up

    def _merge(self, stack: torch.Tensor, t: torch.Tensor, g: torch.Tensor | None) -> torch.Tensor:
        times = t[:, :1] * torch.exp2(self.evs(stack.device))[None]
        with torch.autocast(stack.device.type, enabled=False):
            hdr = synthesize_hdr_kim2020(stack.float(), times.float(), domain=self.domain, log_response=g)
        return hdr * 2.0**-self.steps  # units of the input frame's exposure (the stack's shortest is EV -steps)

    def _pad(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        h, w = x.shape[-2:]
        ph, pw = -h % 16, -w % 16
        return (F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x), h, w

    def prepare(self, ldr, exposure_times, reference, response=None):
        """Under ``torch.inference_mode``: ``context``, the response recovered from the stack generated on
        the photo downscaled to ``CALIBRATION_SIDE``, packed for tiles (weight-dependent, so never cached)."""
        if not torch.is_inference_mode_enabled():
            return {}
        x = ldr[:, 0].float().clamp(0, 1)
        h, w = x.shape[-2:]
        s = min(1.0, CALIBRATION_SIDE / max(h, w))
        if s < 1:
            x = F.interpolate(x, size=(max(16, round(h * s)), max(16, round(w * s))), mode="area")
        xp, hh, ww = self._pad(x)
        stack = self.generate(xp)[0][..., :hh, :ww]
        g = recover_log_response_kim2020(stack, torch.exp2(self.evs(x.device))[None].expand(x.shape[0], -1))
        # padded past one block so the context has >= 2 channels (unpack_context reads the block size there)
        vec = F.pad(g.flatten(1).float(), (0, CONTEXT_BLOCK**2))
        return {"context": pack_context(vec, h, w)}

    def refine(self, ldr, exposure_times, reference, *, context=None):
        b = ldr.shape[0]
        x = ldr[torch.arange(b, device=ldr.device), reference].clamp(0, 1)
        xp, h, w = self._pad(x)
        stack = self.generate(xp)[0][..., :h, :w]
        t = exposure_times[torch.arange(b, device=ldr.device), reference][:, None]
        g = None if context is None else unpack_context(context, 3 * SYNTHESIS_LEVELS).view(b, 3, SYNTHESIS_LEVELS)
        return self._merge(stack, torch.ones_like(t), g) / t[:, :, None, None]

    # --------------------------------------------------------------------------------- training

    def training_loss(self, ldr, exposure_times, reference, hdr, *, priors, loss_fn):
        """Eq. 4-7 on one batch: ``ldr`` (B, 1, 3, H, W) the photos, ``hdr`` (B, 3, H, W) their radiance in
        units of the photo's exposure. ``loss_fn`` is not used (the paper's losses are fixed)."""
        l1, l2, l3, l4, l5, l6 = LAMBDAS
        b = ldr.shape[0]
        bi = torch.arange(b, device=ldr.device)
        x = ldr[bi, reference].float().clamp(0, 1)
        t = exposure_times[bi, reference].float()[:, None]
        y = hdr.float().clamp_min(0) * t[:, :, None, None]  # radiance in units of the photo's exposure
        xp, h, w = self._pad(x)
        stack, down, up = self.generate(xp)
        evs = [-(k + 1) for k in range(self.steps)] + [k + 1 for k in range(self.steps)]
        outs = [tuple(o[..., :h, :w] for o in step) for step in down + up]
        targets = exposure_targets(x, y, evs)
        edges = canny_edges(targets)
        glob = sum((o[0] - tg).abs().mean() for o, tg in zip(outs, targets)) / len(outs)
        hist = sum((soft_histogram(o[0]) - soft_histogram(tg)).abs().mean() for o, tg in zip(outs, targets)) / len(outs)
        edge = sum((o[1] - e).abs().mean() for o, e in zip(outs, edges)) / len(outs)
        ref = sum((o[2] - tg).abs().mean() for o, tg in zip(outs, targets)) / len(outs)
        cobi = sum(cobi_loss(o[2], tg, self._vgg19(x.device)) for o, tg in zip(outs, targets)) / len(outs)
        pred = self._merge(stack[..., :h, :w], torch.ones_like(t), None)
        hdr_loss = (torch.log1p(MU * pred) - torch.log1p(MU * y)).abs().mean()
        return l1 * glob + l2 * hist + l3 * edge + l4 * ref + l5 * hdr_loss + l6 * cobi

    def _vgg19(self, device):
        if self.vgg19_weights is None:
            return None
        if self._vgg is None:
            object.__setattr__(self, "_vgg", load_vgg19_features(self.vgg19_weights))
        return self._vgg.to(device)


def exposure_targets(photo: torch.Tensor, hdr: torch.Tensor, evs) -> list[torch.Tensor]:
    """Target frames at ``evs``: ``clip(a (2^e H)^(1/g), 0, 1)`` with ``a, g`` fitted to ``photo``.

    photo (B, 3, H, W) codes in [0, 1]; hdr (B, 3, H, W) its radiance (photo = f(hdr)). The fit is least
    squares of ``log photo = log a + log H / g`` over pixels with codes in (0.05, 0.95) (gamma 2.2 with
    ``a = 1`` when fewer than 16 such pixels); no gradient.
    """
    with torch.no_grad():
        lz = torch.log(photo.clamp_min(1e-6)).flatten(1)
        lh = torch.log(hdr.clamp_min(1e-8)).flatten(1)
        ok = ((photo > 0.05) & (photo < 0.95)).flatten(1).to(lz.dtype)
        n = ok.sum(1)
        mh, mz = (ok * lh).sum(1) / n.clamp_min(1), (ok * lz).sum(1) / n.clamp_min(1)
        cov = (ok * (lh - mh[:, None]) * (lz - mz[:, None])).sum(1)
        var = (ok * (lh - mh[:, None]) ** 2).sum(1)
        slope = (cov / var.clamp_min(1e-12)).clamp(1 / 4, 1)
        fit = n >= 16
        slope = torch.where(fit, slope, torch.full_like(slope, 1 / 2.2))
        off = torch.where(fit, mz - slope * mh, torch.zeros_like(mz))
        s, o = slope[:, None, None, None], off[:, None, None, None]
        return [torch.exp(o + s * (torch.log(hdr.clamp_min(1e-8)) + e * math.log(2))).clamp(0, 1) for e in evs]


def canny_edges(frames: list[torch.Tensor], sigma: float = CANNY_SIGMA) -> list[torch.Tensor]:
    """Canny edge maps (B, 1, H, W) in {0, 1} of the grey version of each (B, 3, H, W) frame: Gaussian
    blur with ``sigma``, then OpenCV's Canny at 0.1 / 0.2 of the L2 gradient range; no gradient."""
    import cv2

    out = []
    for f in frames:
        grey = (f.detach().float().mean(1) * 255).round().clamp(0, 255).to(torch.uint8).cpu().numpy()
        maps = []
        for g in grey:
            blur = cv2.GaussianBlur(g, (0, 0), sigma)
            maps.append(cv2.Canny(blur, 0.1 * 4 * 255, 0.2 * 4 * 255, L2gradient=True) > 0)
        out.append(torch.from_numpy(np.stack(maps)).to(f.device, f.dtype)[:, None])
    return out


def soft_histogram(x: torch.Tensor, bins: int = HIST_BINS) -> torch.Tensor:
    """Normalized histograms (B, 3, bins) of (B, 3, H, W) codes in [0, 1] with triangular (linear) binning."""
    u = x.clamp(0, 1).flatten(2) * (bins - 1)
    centers = torch.arange(bins, device=x.device, dtype=x.dtype)
    w = (1 - (u[..., None] - centers).abs()).clamp_min(0)
    return w.mean(2)


def _features(x: torch.Tensor, vgg) -> list[torch.Tensor]:
    if vgg is None:
        return [F.unfold(x, 3, padding=1).view(x.shape[0], 27, *x.shape[-2:])]
    mean = torch.tensor(IMAGENET_MEAN, device=x.device, dtype=x.dtype)[:, None, None]
    std = torch.tensor(IMAGENET_STD, device=x.device, dtype=x.dtype)[:, None, None]
    f, feats = (x - mean) / std, []
    for i, layer in enumerate(vgg):
        f = layer(f)
        if i in VGG_TAPS:
            feats.append(f)
        if i >= max(VGG_TAPS):
            break
    return feats


@functools.lru_cache(maxsize=8)
def _grid_distances(h: int, w: int) -> torch.Tensor:
    """(h w, h w) distances between the positions of an h x w grid in [0, 1]^2 coordinates."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    pos = torch.stack([yy.flatten(), xx.flatten()], 1)
    return torch.cdist(pos, pos)


def cobi_loss(pred: torch.Tensor, target: torch.Tensor, vgg=None, spatial: float = COBI_SPATIAL) -> torch.Tensor:
    """Contextual bilateral loss (eq. 7): mean over predicted features of the smallest ``cosine distance +
    spatial x coordinate distance`` to a target feature; (B, 3, H, W) images, features of ``vgg`` (taps
    ``VGG_TAPS``) or 3x3 RGB patches, at most ``COBI_MAX_SIDE`` positions per side."""
    s = COBI_MAX_SIDE * (1 if vgg is None else 4)
    if max(pred.shape[-2:]) > s:
        size = (max(1, pred.shape[-2] * s // max(pred.shape[-2:])), max(1, pred.shape[-1] * s // max(pred.shape[-2:])))
        pred, target = F.interpolate(pred, size=size, mode="area"), F.interpolate(target, size=size, mode="area")
    total = 0.0
    fp, ft = _features(pred, vgg), _features(target.detach(), vgg)
    for a, c in zip(fp, ft):
        b, ch, h, w = a.shape
        a = F.normalize(a.flatten(2) - c.flatten(2).mean(2, keepdim=True), dim=1)
        c = F.normalize(c.flatten(2) - c.flatten(2).mean(2, keepdim=True), dim=1)
        cos = 1 - a.transpose(1, 2) @ c  # (B, M, M)
        total = total + (cos + spatial * _grid_distances(h, w).to(a)).amin(2).mean()
    return total / len(fp)
