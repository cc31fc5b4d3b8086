"""SingleHDR: single-image HDR reconstruction by learning to reverse the camera pipeline.

Liu, Lai, Chen, Kao, Yang, Chuang & Huang, "Single-Image HDR Reconstruction by Learning to Reverse the Camera
Pipeline", CVPR 2020 (summarized with its equations in ``../shared/papers/qiu_survey_*.txt``, section 7, and
``liu_singlehdr_slides.txt``). Official code: ``alex04072000/SingleHDR`` (TensorFlow 1.10; ``dequantization_net.py``,
``linearization_net.py``, ``hallucination_net.py``, ``refinement_net.py``, ``training_code/``; no licence file),
read for the facts the paper leaves out; every difference is listed below.

The LDR image is modelled as ``L = Q(F(C(H)))`` (clipping, camera response, 8-bit quantization); the network
inverts the three steps in turn, then refines:

- **Dequantization-Net** ``D``: a U-Net on the LDR codes, six levels of widths 16-32-64-128-256-512, two
  convolutions per level each followed by leaky ReLU (slope 0.1); the first level's convolutions are 7x7, the
  second's 5x5, the rest 3x3 (the code's kernel sizes); 2x2 average pooling down, bilinear upsampling, a 3x3
  convolution and concatenation with the skip, a 3x3 convolution up; a 3x3 convolution to 3 channels, tanh,
  added to the input: ``I_deq = clip(L + tanh(D(L)), 0, 1)``.
- **Linearization-Net**: the image, its Sobel edges (x and y per channel, 6 channels) and the spatial-aware
  soft histogram ``h(i, j, c, b) = max(0, 1 - |I(i, j, c) - (2b - 1) / (2B)| B)`` (the paper's layer, at
  ``B`` = 4, 8 and 16 bins as the code's three histograms: 84 channels), 93 channels in all, go through a
  ResNet-18 (torchvision's layout, first convolution widened to 93 inputs), global average pooling and two
  fully connected layers (512 -> 512, ReLU, 512 -> K = 11) to the weights of K principal components of inverse
  responses: ``g = g0 + sum_k w_k h_k`` at 1024 codes, made monotonic by eq. 23 (differences ``g'_d``,
  ``g'_1 = 0``, shifted by their most negative value, integrated and normalized to end at 1), and applied to
  ``I_deq`` by linear interpolation: ``I_lin = g(I_deq)``.
- **Hallucination-Net** ``A``: the encoder-decoder of the code (HDRCNN's, Eilertsen et al. 2017): VGG-16
  convolutions to pool5 (3x3, ReLU, 2x2 max pooling), a 3x3 convolution 512 -> 512 with batch norm and ReLU,
  five resize-convolution upsamplings (nearest x2, reflect pad, 3x3 convolution, ReLU, batch norm, ReLU)
  512-512-512-256-128-64, each skip fused by a 1x1 convolution initialized to addition, a 1x1 convolution to 3
  channels with batch norm and ReLU, fused with the input; a final ReLU makes the residual positive, blended
  by the over-exposure mask of the paper: ``H_hal = I_lin + alpha relu(A(I_lin))``,
  ``alpha = max(0, I_lin - 0.95) / 0.05`` per channel.
- **Refinement-Net** ``R``: the Dequantization-Net's U-Net on ``[H_hal, I_lin, I_deq]`` (9 channels, the code's
  input), residual on ``H_hal``, ReLU (the code): ``H = relu(H_hal + R(...))``.

The output is ``H / t`` of the reference frame: ``I_lin = 1`` is the saturation level, so the radiance is in
units of the frame's exposure, and with one frame (``t = 1``) in hdrkit's canonical units.

Parameters: **52,099,983**, which follows from the layers above: Dequantization-Net 7,899,555 (the U-Net on
3 inputs: encoder levels 14,928 + 38,464 + 55,424 + 221,440 + 885,248 + 3,539,968, decoder 3,143,648, output
435; the sixth level and its decoder stage are 5,899,776 of it),
Linearization-Net 11,727,051 (ResNet-18 without its classifier, 11,176,512, plus 282,240 for the 90 extra
inputs of its 7x7 first convolution, FC 262,656 + 5,643; eq. 23 has none), Hallucination-Net 24,569,118
(VGG-16 convolutions 14,714,688, bottleneck with batch norm 2,360,832, five resize convolutions with batch
norm 6,271,296, skip fusions 1,222,080, output 222), Refinement-Net 7,904,259 (the U-Net on 9 inputs). The
official code's total is not published and its networks differ (a 5-level U-Net with a 256-wide bottleneck,
ResNet-50 stages to res3b with one FC layer, a 128-wide refinement bottleneck), so its count differs. The
inverse-response basis is a buffer, ``basis`` (K + 1, 1024): row 0 the mean curve ``g0``, rows 1..K the
components; it is saved and loaded with the weights, so shipped weights never need a file outside the package.

Training (``training_loss``, ``stage`` in ``model_options``), stage-wise then joint, as the paper:

1. ``dequantization``: ``L_deq = ||I_deq - I_n||^2``, ``I_n = F(C(H))`` the unquantized LDR (the true response
   applied to the clipped radiance).
2. ``linearization``: on the true ``I_n`` (the stages are independent, as the code trains each net on its
   ideal input), ``L_lin + lambda_crf L_crf`` with ``L_lin = ||g(I_n) - I_c||^2`` (``I_c = C(H)``) and
   ``L_crf = ||g - g_true||^2`` over the 1024 samples.
3. ``hallucination``: on the true ``I_c``, ``L_hal + lambda_p L_p + lambda_tv L_tv``:
   ``L_hal = ||log(H_hal + eps) - log(H + eps)||^2`` (eps = ``hdrkit.losses.LOG_EPS``), the perceptual term the
   code's: L1 between VGG features at pool1, pool2 and pool3 of both images through ``log(1 + 10 x) / log(11)``,
   and total variation (mean absolute difference of neighbours) of the prediction through the same curve.
4. ``joint`` (default): the whole pipeline on the LDR with ``lambda = {deq 1, lin 10, crf 1, hal 1,
   p 0.001, tv 0.1}`` (:data:`LOSS_WEIGHTS`), ``L_hal``, ``L_p``, ``L_tv`` on the refined output.

Every stage needs the true inverse response of each sample: ``priors['inverse_response']`` (B, 1 or 3, 1024),
the inverse curve at ``linspace(0, 1, 1024)`` codes (per channel, permuted with the colour augmentation).
``hdrkit.train`` rebuilds it for every single-image pair from the pairs' ``meta.json`` (``training_priors``);
other callers of ``training_loss`` without it get a one-line refusal.
VGG weights cannot be downloaded here: ``vgg19_weights`` (torchvision's ``vgg19-dcbb9e9d.pth`` layout, read
with DFGNet's loader) adds ``L_p``; without it the term is left out, and the weights' model card says so.

Deviations and readings:

- Linearization-Net backbone: the paper's ResNet-18 and two FC layers (hidden width 512, not given); the code
  uses ResNet-50's first two stages (to res3b, initialized from a CRF-estimation network, ``crf_net_v2.npy``)
  and one FC layer. Its histograms have ``B + 1`` bins centred on ``b / B``; the paper's formula is used here.
- Inverse-response basis: the paper and the code use Grossberg & Nayar's ``invemor.txt`` (first 11 of 25
  components). Here the basis is the mean and the first 11 principal components of the inverses of
  hdrkit's generated response curves (``hdrkit.camera.crf_families.synthetic_response_curves``: 1000
  curves from power, toe-power, log, Naka-Rushton and Bernstein families and their blends, seed 2020),
  computed once by :func:`inverse_response_basis` and then carried by the weights. Fitted to the inverses
  of the 151 public DoRF curves it leaves an RMS of median 0.0004, max 0.0083 (``invemor.txt``'s first 11:
  0.0004, 0.0025), without having seen a measured curve.
- Dequantization-Net depth: the paper's six levels; the released code has five (its 512 level commented out).
- Over-exposure mask: the paper's per-channel ``alpha`` with threshold 0.95; the code takes the maximum over
  channels and a threshold of 0.12 (``1 - 0.88``).
- Hallucination-Net: trained from scratch (the code initializes its VGG-16 encoder from Places weights and
  feeds ``255 x`` minus the VGG mean, dividing skips by 255); here the encoder sees ``I_lin`` unscaled.
- Losses: the paper's L2 losses (``L_hal`` in logs). The code's hallucination stage uses L1 on
  ``log(1 + 10 x) / log(11)`` instead, and its joint fine-tuning only that L1 on the mean-normalized refined
  output; the code's perceptual network is VGG-16, VGG-19 (same pools) here.
- Bilinear upsampling uses half-pixel centres (PyTorch ``align_corners=False``); TensorFlow 1's did not.
- Tiling. The inverse response is a whole-image quantity, and the chain D -> A -> R reaches 614 pixels
  (:data:`UNET_RADIUS` 230 + :data:`HALLUCINATION_RADIUS` 154 + 230, each measured as the support of the
  gradient and tested), too far for one tiled pass within the default memory budget. So under
  ``torch.inference_mode`` (``run_model``) ``prepare`` estimates the inverse response once, on the whole image
  downscaled to at most :data:`LINEARIZE_SIZE` pixels on its long side (its dequantized version, as in the
  pipeline), then computes ``I_deq`` and ``H_hal`` at full size, each stage tiled by ``run_model`` with its own
  exact radius (so exactly the whole-image values; in fp32, default budget), and ``refine`` runs the
  Refinement-Net alone on those priors (``context`` = 230). Elsewhere (training, validation, direct calls)
  ``refine`` runs the whole pipeline on the image it is given and estimates the response from it, as the code
  does on its 256x256 training crops.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hdrkit.camera.response import BatchedResponse
from hdrkit.errors import HdrkitError
from hdrkit.losses import LOG_EPS
from hdrkit.models.base import MergeNet
from hdrkit.models.dfgnet import IMAGENET_MEAN, IMAGENET_STD, load_vgg19_features

__all__ = ["SingleHDR", "LOSS_WEIGHTS", "STAGES", "inverse_response_basis", "monotonic_inverse_response",
           "soft_histogram", "sobel_edges"]

LEAKY_SLOPE = 0.1
"""Leaky ReLU slope of the U-Nets (paper Sec. 3.2; ``dequantization_net.py``)."""

UNET_WIDTHS = (16, 32, 64, 128, 256, 512)
"""Channels of the six U-Net levels (the code's 16-32-64-128-256 plus the paper's sixth level)."""

UNET_KERNELS = (7, 5, 3, 3, 3, 3)
"""Kernel size of the two convolutions of each encoder level (``dequantization_net.py``)."""

HIST_BINS = (4, 8, 16)
"""Bins of the three soft histograms (``linearization_net.py``: ``histogram_layer(img, 4 / 8 / 16)``)."""

CRF_SAMPLES = 1024
"""Samples of an inverse response (the EMoR grid)."""

CRF_COMPONENTS = 11
"""``K``, principal components of the inverse-response basis (the code's ``n_p - 1 = 11``)."""

BASIS_CURVES = 1000
"""Generated response curves whose inverses the default basis is the principal components of."""

BASIS_SEED = 2020
"""Seed of those curves (``synthetic_response_curves``), so a fresh model's basis is the same everywhere."""

FC_HIDDEN = 512
"""Width of the first fully connected layer of the Linearization-Net (not given in the paper)."""

OVEREXPOSED = 0.95
"""``gamma`` of the over-exposure mask ``alpha = max(0, I_lin - gamma) / (1 - gamma)`` (paper eq. for H)."""

VGG16_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
"""The Hallucination-Net's encoder: VGG-16 convolutions to pool5."""

DECODER_WIDTHS = (512, 512, 256, 128, 64)
"""Output channels of the five resize-convolution upsamplings (``hallucination_net.py: decoder``)."""

LINEARIZE_SIZE = 512
"""Long side of the downscaled whole image on which ``prepare`` estimates the inverse response."""

LOSS_WEIGHTS = {"deq": 1.0, "lin": 10.0, "crf": 1.0, "hal": 1.0, "p": 0.001, "tv": 0.1}
"""The paper's weights of the joint loss (Sec. 3.5)."""

TONE_SLOPE = 10.0
"""``log(1 + 10 x) / log(11)``: the curve the code's perceptual and TV terms compare images through."""

PERCEPTUAL_TAPS = (4, 9, 18)
"""VGG-19 ``features`` indices of pool1, pool2 and pool3 (the code's VGG-16 pools)."""

STAGES = ("joint", "dequantization", "linearization", "hallucination")
"""Training stages (``training_loss``): the three sub-networks alone, then the whole pipeline."""

SIZE_DIVISOR = 32
"""Five 2x poolings in each U-Net and in the VGG-16 encoder (and the context prior's block)."""

UNET_RADIUS = 230
"""Receptive radius of the U-Net (Dequantization- and Refinement-Net), pixels (support of the gradient of a
32x32 output block, every position on the pooling grid; ``tests/test_models_singlehdr.py``)."""

HALLUCINATION_RADIUS = 154
"""Receptive radius of the Hallucination-Net, pixels (measured likewise)."""

UNET_BYTES_PER_PIXEL = 600
"""Peak fp32 inference memory of a U-Net per pixel, measured at 512x512: 556 B (bf16 275)."""

HALLUCINATION_BYTES_PER_PIXEL = 2400
"""Peak fp32 inference memory of the Hallucination-Net per pixel, measured at 512x512: 2,293 B (bf16 1,746)."""


def _leaky(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, LEAKY_SLOPE)


class UNet(nn.Module):
    """The Dequantization-Net's U-Net (also the Refinement-Net): ``forward(x)`` -> (B, 3, H, W), no final
    activation; H and W multiples of 32."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.down = nn.ModuleList()
        cin = in_channels
        for w, k in zip(UNET_WIDTHS, UNET_KERNELS):
            self.down.append(nn.ModuleList([nn.Conv2d(cin, w, k, padding=k // 2), nn.Conv2d(w, w, k, padding=k // 2)]))
            cin = w
        self.up = nn.ModuleList()
        for w in reversed(UNET_WIDTHS[:-1]):
            self.up.append(nn.ModuleList([nn.Conv2d(cin, w, 3, padding=1), nn.Conv2d(2 * w, w, 3, padding=1)]))
            cin = w
        self.out = nn.Conv2d(cin, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, (c1, c2) in enumerate(self.down):
            if i:
                x = F.avg_pool2d(x, 2)
            x = _leaky(c2(_leaky(c1(x))))
            skips.append(x)
        for (c1, c2), skip in zip(self.up, reversed(skips[:-1])):
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = _leaky(c2(torch.cat([_leaky(c1(x)), skip], 1)))
        return self.out(x)


def sobel_edges(x: torch.Tensor) -> torch.Tensor:
    """Sobel derivatives (y, x) of each channel with reflect padding: (B, C, H, W) -> (B, 2C, H, W)."""
    k = torch.tensor([[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]], device=x.device, dtype=x.dtype)
    c = x.shape[1]
    w = torch.stack([k, k.t()])[:, None].repeat(c, 1, 1, 1)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), w, groups=c)


def soft_histogram(x: torch.Tensor, bins: int) -> torch.Tensor:
    """The spatial-aware soft histogram ``h(i, j, c, b) = max(0, 1 - d B)``, ``d = |I(i, j, c) - (2b - 1) / (2B)|``:
    (B, C, H, W) -> (B, C * bins, H, W), channel-major."""
    centres = (2 * torch.arange(1, bins + 1, device=x.device, dtype=x.dtype) - 1) / (2 * bins)
    h = (1 - (x[:, :, None] - centres[:, None, None]).abs() * bins).clamp_min(0)
    return h.flatten(1, 2)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class LinearizationNet(nn.Module):
    """Image + Sobel edges + soft histograms -> ResNet-18 -> global pooling -> 2 FC -> K basis weights."""

    def __init__(self):
        super().__init__()
        cin = 3 + 6 + 3 * sum(HIST_BINS)
        self.conv1 = nn.Conv2d(cin, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        layers, c = [], 64
        for i, w in enumerate((64, 128, 256, 512)):
            layers.append(nn.Sequential(BasicBlock(c, w, 1 if i == 0 else 2), BasicBlock(w, w, 1)))
            c = w
        self.layers = nn.Sequential(*layers)
        self.fc1 = nn.Linear(512, FC_HIDDEN)
        self.fc2 = nn.Linear(FC_HIDDEN, CRF_COMPONENTS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = torch.cat([x, sobel_edges(x)] + [soft_histogram(x, b) for b in HIST_BINS], 1)
        y = F.max_pool2d(F.relu(self.bn1(self.conv1(feats))), 3, 2, 1)
        y = self.layers(y).mean((2, 3))
        return self.fc2(F.relu(self.fc1(y)))


def monotonic_inverse_response(g: torch.Tensor) -> torch.Tensor:
    """Eq. 23: (..., N) curves -> non-decreasing curves from 0 to 1: differences ``g'_d = g_d - g_(d-1)``
    (d >= 2) shifted by ``min(min_d g'_d, 0)``, integrated and divided by their sum; ``g_1 = 0`` (the code's
    reading: the paper's ``g'_1 = 0`` shifted too would start the curve above 0)."""
    d = g.diff(dim=-1)
    d = d - d.amin(-1, keepdim=True).clamp_max(0)
    c = d.cumsum(-1)
    return F.pad(c / c[..., -1:].clamp_min(1e-12), (1, 0))


@functools.lru_cache(maxsize=2)
def _basis_numpy(components: int) -> np.ndarray:
    from scipy.sparse.linalg import eigsh

    from hdrkit.camera.crf_families import synthetic_response_curves

    forward = synthetic_response_curves(BASIS_CURVES, BASIS_SEED)
    e = np.linspace(0.0, 1.0, forward.shape[1])
    ramp = np.linspace(0.0, 1e-9, forward.shape[1])
    inv = np.stack([np.interp(e, f + ramp, e) for f in forward])  # f^-1 at the same 1024 codes
    mean = inv.mean(0)
    x = inv - mean
    var, vec = eigsh(x.T @ x, k=components, v0=np.ones(x.shape[1]))  # deterministic start
    comps = vec[:, np.argsort(var)[::-1]].T
    comps *= np.where(comps.sum(1, keepdims=True) < 0, -1.0, 1.0)  # a fixed sign per component
    return np.concatenate([mean[None], comps]).astype(np.float32)


def inverse_response_basis(components: int = CRF_COMPONENTS) -> torch.Tensor:
    """(K + 1, 1024) float32: mean and first K principal components of the inverses of hdrkit's generated
    response curves (``hdrkit.camera.crf_families``), at ``linspace(0, 1, 1024)`` codes. Deterministic."""
    return torch.from_numpy(_basis_numpy(components).copy())


class _Skip(nn.Module):
    """Concatenate and fuse with a 1x1 convolution initialized to ``x + skip`` (``skip_connection_layer``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.fuse = nn.Conv2d(2 * channels, channels, 1)
        with torch.no_grad():
            w = torch.zeros(channels, 2 * channels)
            idx = torch.arange(channels)
            w[idx, idx] = 1
            w[idx, channels + idx] = 1
            self.fuse.weight.copy_(w[:, :, None, None])
            self.fuse.bias.zero_()

    def forward(self, x, skip):
        return self.fuse(torch.cat([x, skip], 1))


class _Up(nn.Module):
    """Resize convolution: nearest x2, reflect pad, 3x3 convolution, ReLU, batch norm, ReLU (``deconv_layer``)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        x = F.pad(F.interpolate(x, scale_factor=2, mode="nearest"), (1, 1, 1, 1), mode="reflect")
        return F.relu(self.bn(F.relu(self.conv(x))))


class HallucinationNet(nn.Module):
    """HDRCNN's encoder-decoder as the official ``hallucination_net.py``; output before the positive ReLU."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.ModuleList()
        cin = 3
        for v in VGG16_LAYERS:
            if v != "M":
                self.encoder.append(nn.Conv2d(cin, v, 3, padding=1))
                cin = v
        self.bottleneck = nn.Conv2d(cin, cin, 3, padding=1)
        self.bottleneck_bn = nn.BatchNorm2d(cin)
        self.ups = nn.ModuleList()
        self.skips = nn.ModuleList()
        c = cin
        for w in DECODER_WIDTHS:  # each fused with the encoder's features before pool5 .. pool1 (as wide)
            self.ups.append(_Up(c, w))
            self.skips.append(_Skip(w))
            c = w
        self.head = nn.Conv2d(c, 3, 1)
        self.head_bn = nn.BatchNorm2d(3)
        self.input_skip = _Skip(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, skips, i = x, [], 0
        for v in VGG16_LAYERS:
            if v == "M":
                skips.append(y)
                y = F.max_pool2d(y, 2)
            else:
                y = F.relu(self.encoder[i](y))
                i += 1
        y = F.relu(self.bottleneck_bn(self.bottleneck(y)))
        for up, fuse, skip in zip(self.ups, self.skips, reversed(skips)):
            y = fuse(up(y), skip)
        y = F.relu(self.head_bn(self.head(y)))
        return self.input_skip(y, x)


def apply_inverse_response(codes: torch.Tensor, curves: torch.Tensor) -> torch.Tensor:
    """``g(codes)`` by linear interpolation: codes (B, C, H, W) in [0, 1], curves (B, 1024) or (B, C, 1024)
    at ``linspace(0, 1, 1024)`` codes; differentiable in both."""
    table = curves.float() if curves.ndim == 3 else curves.float()[:, None]
    return BatchedResponse(table).inverse(codes.float())


class _Stage(MergeNet):
    """One local stage of the pipeline (``fn(x)``, x (B, 3, H, W)) as a network ``run_model`` tiles."""

    frames = 1
    size_divisor = SIZE_DIVISOR

    def __init__(self, net: nn.Module, fn, context: int, bytes_per_pixel: int):
        super().__init__()
        self.net = net  # the stage's weights, moved and put in eval mode by run_model
        self.fn = fn
        self.context = context
        self.bytes_per_pixel = bytes_per_pixel

    def refine(self, ldr, exposure_times, reference):
        return self.fn(ldr[:, 0])


class SingleHDR(MergeNet):
    """SingleHDR (Liu et al., CVPR 2020): dequantization, linearization, hallucination, refinement (module docstring).

    Args:
        stage: the training stage (``STAGES``); inference is the same for every stage.
        vgg19_weights: VGG-19 weights (torchvision layout) for the perceptual term; None leaves it out.
    """

    frames = 1
    size_divisor = SIZE_DIVISOR
    training_priors = ("inverse_response",)  # hdrkit.train adds each pair's true inverse response
    context = UNET_RADIUS  # refine tiles only the Refinement-Net (prepare tiles the other stages)
    bytes_per_pixel = UNET_BYTES_PER_PIXEL

    def __init__(self, stage: str = "joint", vgg19_weights: str | None = None):
        super().__init__()
        if stage not in STAGES:
            raise HdrkitError(f"SingleHDR stage must be one of {', '.join(STAGES)}, got {stage!r}")
        if vgg19_weights is not None and not Path(vgg19_weights).is_file():
            raise HdrkitError(f"vgg19_weights: {vgg19_weights} does not exist")
        self.stage = stage
        self.vgg19_weights = vgg19_weights
        self.dequantization = UNet(3)
        self.linearization = LinearizationNet()
        self.hallucination = HallucinationNet()
        self.refinement = UNet(9)
        self.register_buffer("basis", inverse_response_basis())
        object.__setattr__(self, "_vgg", None)

    # -- the pipeline ------------------------------------------------------------------------------

    def dequantize(self, ldr: torch.Tensor) -> torch.Tensor:
        """``I_deq = clip(L + tanh(D(L)), 0, 1)``; (B, 3, H, W), H and W multiples of 32."""
        return (ldr + torch.tanh(self.dequantization(ldr))).clamp(0, 1)

    def inverse_response(self, image: torch.Tensor) -> torch.Tensor:
        """The Linearization-Net's monotonic inverse response of ``image`` (B, 3, H, W): (B, 1024) float32."""
        w = self.linearization(image).float()
        return monotonic_inverse_response(self.basis[0] + w @ self.basis[1:])

    def hallucinate(self, lin: torch.Tensor) -> torch.Tensor:
        """``H_hal = I_lin + alpha relu(A(I_lin))`` with the per-channel over-exposure mask."""
        alpha = ((lin - OVEREXPOSED) / (1 - OVEREXPOSED)).clamp(0, 1)
        return lin + alpha * F.relu(self.hallucination(lin).float())

    def _reference(self, ldr, exposure_times, reference):
        b = ldr.shape[0]
        bi = torch.arange(b, device=ldr.device)
        return ldr[bi, reference].clamp(0, 1), exposure_times[bi, reference].float()

    def prepare(self, ldr, exposure_times, reference, response=None):
        """Under ``torch.inference_mode`` (``run_model``), the whole-image priors: the inverse response of the
        image downscaled to ``LINEARIZE_SIZE`` (``curve``), then ``deq``, ``lin`` and ``hal`` (B, 3, H, W), each
        local stage tiled by ``run_model`` with its own receptive radius. Nothing otherwise."""
        if not torch.is_inference_mode_enabled():
            return {}
        from hdrkit.models.inference import run_model

        x, _ = self._reference(ldr, exposure_times, reference)
        h, w = x.shape[-2:]
        s = min(1.0, LINEARIZE_SIZE / max(h, w))
        size = [max(SIZE_DIVISOR, round(v * s / SIZE_DIVISOR) * SIZE_DIVISOR) for v in (h, w)]
        small = F.interpolate(x.float(), size=size, mode="bilinear", align_corners=False, antialias=s < 1)
        curve = self.inverse_response(self.dequantize(small.clamp(0, 1)))
        one, zero = torch.ones_like(exposure_times[:, :1]), torch.zeros_like(reference)
        deq = run_model(_Stage(self.dequantization, self.dequantize, UNET_RADIUS, UNET_BYTES_PER_PIXEL),
                        x[:, None], one, zero)
        lin = apply_inverse_response(deq, curve)
        hal = run_model(_Stage(self.hallucination, self.hallucinate, HALLUCINATION_RADIUS, HALLUCINATION_BYTES_PER_PIXEL),
                        lin[:, None], one, zero)
        return {"deq": deq, "lin": lin, "hal": hal}

    def pipeline(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every stage's output on LDR codes ``x`` (B, 3, H, W), H and W multiples of 32: ``deq``, ``curve``
        (B, 1024), ``lin``, ``hal`` and the refined ``hdr`` (frame units)."""
        deq = self.dequantize(x)
        curve = self.inverse_response(deq)
        lin = apply_inverse_response(deq, curve)
        hal = self.hallucinate(lin)
        return {"deq": deq.float(), "curve": curve, "lin": lin, "hal": hal, "hdr": self.refined(hal, lin, deq)}

    def refined(self, hal: torch.Tensor, lin: torch.Tensor, deq: torch.Tensor) -> torch.Tensor:
        """The Refinement-Net's output ``relu(H_hal + R([H_hal, I_lin, I_deq]))``."""
        return F.relu(hal + self.refinement(torch.cat([hal, lin, deq.float()], 1)).float())

    def refine(self, ldr, exposure_times, reference, *, deq=None, lin=None, hal=None, inverse_response=None):
        """The Refinement-Net on ``prepare``'s priors, or (without them) the whole pipeline on the reference frame.
        ``inverse_response`` is training data (``training_loss``) and is not used here."""
        x, t = self._reference(ldr, exposure_times, reference)
        h, w = x.shape[-2:]
        pad = (0, -w % SIZE_DIVISOR, 0, -h % SIZE_DIVISOR)
        if hal is None:
            out = self.pipeline(F.pad(x, pad, mode="replicate"))["hdr"]
        else:
            out = self.refined(*(F.pad(v.float(), pad, mode="replicate") for v in (hal, lin, deq)))
        return out[..., :h, :w] / t[:, None, None, None]

    # -- training ----------------------------------------------------------------------------------

    def training_loss(self, ldr, exposure_times, reference, hdr, *, priors, loss_fn):
        """The stage's loss (module docstring); ``loss_fn`` is not used. Needs ``priors['inverse_response']``."""
        g_true = priors.get("inverse_response")
        if g_true is None:
            raise HdrkitError("SingleHDR trains on single-image samples that carry their true inverse response "
                              "(priors['inverse_response'], (B, 1 or 3, 1024)); use a single-image data source")
        g_true = g_true.float()
        if g_true.ndim == 2:
            g_true = g_true[:, None]
        x, t = self._reference(ldr, exposure_times, reference)
        h, w = x.shape[-2:]
        h32, w32 = h // SIZE_DIVISOR * SIZE_DIVISOR, w // SIZE_DIVISOR * SIZE_DIVISOR
        if min(h32, w32) < SIZE_DIVISOR:
            raise HdrkitError(f"SingleHDR trains on patches of at least {SIZE_DIVISOR} px, got {h}x{w}")
        x = x[..., :h32, :w32]
        radiance = hdr[..., :h32, :w32].float().clamp_min(0) * t[:, None, None, None]  # frame units
        clipped = radiance.clamp(0, 1)  # I_c
        with torch.autocast(x.device.type, enabled=False):
            unquantized = BatchedResponse(g_true).forward(clipped)  # I_n = F(C(H))
        lw = LOSS_WEIGHTS
        if self.stage == "dequantization":
            return (self.dequantize(x).float() - unquantized).square().mean()
        if self.stage == "linearization":
            curve = self.inverse_response(unquantized)  # L_lin + lambda_crf L_crf, the joint loss's ratio
            return ((apply_inverse_response(unquantized, curve) - clipped).square().mean()
                    + lw["crf"] / lw["lin"] * (curve[:, None] - g_true).square().mean())
        if self.stage == "hallucination":
            return self._hdr_loss(self.hallucinate(clipped), radiance)
        p = self.pipeline(x)
        return (lw["deq"] * (p["deq"] - unquantized).square().mean()
                + lw["lin"] * (p["lin"] - clipped).square().mean()
                + lw["crf"] * (p["curve"][:, None] - g_true).square().mean()
                + self._hdr_loss(p["hdr"], radiance))

    def _hdr_loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``lambda_hal L_hal + lambda_p L_p + lambda_tv L_tv`` on radiance (B, 3, H, W) in frame units."""
        lw = LOSS_WEIGHTS
        loss = lw["hal"] * (torch.log(pred + LOG_EPS) - torch.log(target + LOG_EPS)).square().mean()
        tp = torch.log1p(TONE_SLOPE * pred) / math.log1p(TONE_SLOPE)
        loss = loss + lw["tv"] * ((tp[..., 1:, :] - tp[..., :-1, :]).abs().mean() + (tp[..., 1:] - tp[..., :-1]).abs().mean())
        if self.vgg19_weights is not None:
            tt = torch.log1p(TONE_SLOPE * target) / math.log1p(TONE_SLOPE)
            loss = loss + lw["p"] * self._perceptual(tp, tt)
        return loss

    def _perceptual(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self._vgg is None:
            object.__setattr__(self, "_vgg", load_vgg19_features(self.vgg19_weights))
        vgg = self._vgg.to(a.device)
        mean = torch.tensor(IMAGENET_MEAN, device=a.device)[:, None, None]
        std = torch.tensor(IMAGENET_STD, device=a.device)[:, None, None]
        a, b = (a - mean) / std, (b - mean) / std
        loss = 0
        for i, layer in enumerate(vgg):
            if i > max(PERCEPTUAL_TAPS):
                break
            a, b = layer(a), layer(b)
            if i in PERCEPTUAL_TAPS:
                loss = loss + (a - b).abs().mean()
        return loss
