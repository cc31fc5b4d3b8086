"""DeepHDR: HDR imaging of dynamic scenes as image translation, without optical flow (ResNet and U-Net).

Wu, Xu, Tai & Tang, "Deep High Dynamic Range Imaging with Large Foreground Motions", ECCV 2018 (summarized
with its equations in ``../shared/papers/qiu_survey_kalantari_wu_ahdrnet_hdrcnn_singlehdr.txt``, section 4).
Official code: ``elliottwu/DeepHDR`` (TensorFlow 1.4; ``model.py: generator``, ``ops.py``), which contains
the ResNet variant only.

The paper: a symmetric encoder-decoder in three parts. **Encoders**, one per exposure (unshared), are the
first two layers; the **merger** merges their features in the middle layers; the **decoder** decodes to
HDR. Encoding layers are 5x5 convolutions with stride 2, decoding layers 5x5 deconvolutions with stride 1/2,
the last deconvolution is followed by a flat (stride 1) 5x5 convolution giving the HDR; every layer except
the first and the output layer is followed by batch normalization, leaky ReLU (slope 0.2) in the encoder,
ReLU in the decoder (applied, as in the official code, to a layer's input: ``conv(act(x))``); channels
double from 64 to 512 while encoding and halve back to 64 while decoding. Per exposure the input is the
6-channel ``[I_i, H_i]`` with ``H_i = I_i ** gamma / t_i`` (eq. 9), both mapped to [-1, 1] (``2x - 1``) as in
the official code; the output is ``tanh``; the loss is the L2 distance after the mu-law (eq. 11, ``mu_l2``).

``deephdr_resnet`` (``DeepHDRResNet``), layer for layer as the official ``generator`` (``gf_dim`` = 64,
``num_res_blocks`` = 9), ``C`` = 64:

- encoder i (x3, unshared): conv 5x5/2 6 -> C; lrelu; conv 5x5/2 C -> 2C; BN;
- merger: concat of the three (6C = 384) -> lrelu -> conv 5x5/2 -> 4C (256); BN; then 9 residual blocks
  at 256 channels, each fed ``relu(x)`` and returning ``relu(x) + BN(conv3x3(relu(BN(conv3x3(relu(x))))))``
  (3x3 convolutions with reflect padding);
- decoder: concat(blocks, merger conv) (512) -> relu -> deconv 5x5/2 -> 2C; BN; concat the three encoders'
  second layers (512) -> relu -> deconv -> C; BN; concat their first layers (256) -> relu -> deconv -> C;
  BN; relu -> conv 5x5/1 -> 3; tanh.

**16,606,339 parameters, exactly the official count** (``survey_of_tools_and_official_code.md`` B.1:
16,606,339 counted from the official code; 16.61 M in SAFNet's comparison table). Batch norm has a scale
and an offset (``scale=True``), decay 0.9 (PyTorch momentum 0.1), epsilon 1e-5; weights N(0, 0.02)
(truncated for convolutions), biases 0.

``deephdr_unet`` (``DeepHDRUNet``), from the paper's text (no official code): the same encoders, then the
merger keeps encoding with the paper's channel doubling to 512 -- conv 5x5/2 384 -> 256; BN (1/8) and conv
5x5/2 256 -> 512; BN (1/16) -- and the decoder mirrors it with U-Net skip connections to every encoding layer
at the same scale: deconv 512 -> 256 (1/8), concat the 256-channel merger layer, deconv -> 128 (1/4), concat
the encoders' second layers, deconv -> 64 (1/2), concat their first layers, deconv -> 64 (1/1), conv 5x5/1
-> 3, tanh. Activations, normalization, padding and initialization as the ResNet variant. **12,531,587
parameters**, which follows from these layers: 3 x 214,848 (encoders) + 2,458,368 + 3,278,336 (merger) +
3,277,568 + 1,638,784 + 819,392 + 409,792 (deconvolutions with BN) + 4,803 (output). The paper gives the
layer rule, not the depth; four stride-2 levels is the shortest stack that reaches 512 channels by
doubling from 64, and the skips reuse the official ResNet decoder's concatenations (every encoder feature
at its scale), so the two variants share their encoders and their last three decoder layers.

Padding follows ``ops.conv2d``: reflect padding with TensorFlow's "SAME" split (for a 5x5 stride-2
convolution of an even size: 1 before, 2 after; stride 1: 2 and 2), and the deconvolutions are the
transposes of such stride-2 convolutions (``tf.nn.conv2d_transpose`` with a doubled output shape: PyTorch
``padding=1`` and the last row and column cropped), so the sampling grids align as in the official code.

Deviations and platform notes:

- Any of the three frames may be the reference: the other two, in exposure order, take the roles of the
  official first (shorter) and third (longer) inputs. The paper trains with the middle exposure as the
  reference (it notes the framework extends to other references by training).
- ``H_i``: the paper (and the official code) use a fixed gamma 2.2. When a camera response is given,
  ``prepare`` linearizes with it instead, ``H_i = f^-1(I_i) / t_i`` (training passes each synthetic scene's
  true or Debevec-recovered response; inference the user's), so the network also fits 8-bit phone-like
  responses; without a response it is ``I_i ** 2.2 / t_i``, as the paper.
- Output: ``(tanh + 1) / 2``, the official inverse transform (``utils.inverse_transform``), which is the
  radiance in units of the shortest exposure (``t`` normalized to the shortest = 1, as the official
  ``get_input`` subtracts the minimum exposure bias), so it is non-negative and clipped at 1, the
  shortest exposure's saturation.
- The paper's optional homography pre-alignment of the background is not part of the network: hdrkit's
  pipeline (``hdrkit merge``, ``hdr_from_brackets`` and training) aligns every bracket globally with
  ``hdrkit.align``'s homography first, so the network receives background-aligned frames, as in the paper.
- Batch norm: training uses batch statistics (``model.train()``), inference the running statistics
  (``eval()``, which ``run_model`` and ``create_model`` set), as the official sampler. hdrkit's CPU batches
  are small (8 patches; the paper trains with 16 crops of 256x256), so the batch statistics are noisier.
- Weights: 16.6 M parameters are 66 MB in float32 and 33 MB in bf16 / fp16, over the 20 MiB limit of one
  packaged file; ``hdrkit.models.weights.save_weights`` writes such a state dict as ``NAME.safetensors``
  plus ``NAME.shard2.safetensors`` (each under 20 MiB, the shard's sha256 recorded in the first file), so
  ``hdrkit export --dtype bf16`` (or ``scripts/export_weights.py``) gives two files that ``load_weights``
  reads and checks. One int8 file (16.6 MB) was the alternative, but too coarse: on this network with
  heavy-tailed random weights, the output agreed with float32 to 42.3 dB PSNR-mu with int8 weights (per
  output channel; 47.6 dB per 5x5 kernel), against 58.8 dB with bf16 weights and 54.9 dB for bf16
  inference; a network near 40 dB would lose about 2 dB to int8.
- Any H, W: ``refine`` replicate-pads to a multiple of ``size_divisor`` (8 for the ResNet variant, 16 for
  the U-Net) and at least ``2 * size_divisor`` (reflect padding needs a few pixels at the coarsest level),
  and crops back; the official code needs sizes divisible by the same.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hdrkit.camera.response import GammaResponse
from hdrkit.models.base import MergeNet

__all__ = ["DeepHDRResNet", "DeepHDRUNet", "GAMMA", "FEATURES", "RES_BLOCKS"]

GAMMA = 2.2
"""Gamma of the LDR -> HDR mapping ``H = I ** gamma / t`` (eq. 9; ``GAMMA`` in the official ``model.py``)."""

FEATURES = 64
"""Channels of the first layer (``gf_dim`` in the official code); they double per encoding layer."""

RES_BLOCKS = 9
"""Residual blocks of the ResNet variant's merger (``num_res_blocks`` in the official code)."""

KERNEL = 5
"""Kernel size of every encoding, decoding and output layer (the paper: "all layers use 5x5 kernels")."""

LRELU_SLOPE = 0.2
"""Negative slope of the encoder's leaky ReLU (``ops.lrelu``, ``leak=0.2``)."""

BN_EPS = 1e-5
BN_MOMENTUM = 0.1
"""Batch norm as ``ops.batch_norm``: epsilon 1e-5, moving-average decay 0.9 (PyTorch momentum 1 - 0.9)."""

INIT_STD = 0.02
"""Standard deviation of the official weight initializers (``stddev=0.02``; biases start at 0)."""


def _same_pads(n: int, k: int, s: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding of one axis of size ``n`` (``ops.conv2d``): (before, after)."""
    total = max(k - s, 0) if n % s == 0 else max(k - n % s, 0)
    return total // 2, total - total // 2


class _Conv(nn.Module):
    """``ops.conv2d``: reflect padding split as TensorFlow's "SAME", then a valid k x k convolution."""

    def __init__(self, cin: int, cout: int, k: int = KERNEL, stride: int = 2):
        super().__init__()
        self.k, self.stride = k, stride
        self.conv = nn.Conv2d(cin, cout, k, stride=stride)
        nn.init.trunc_normal_(self.conv.weight, std=INIT_STD, a=-2 * INIT_STD, b=2 * INIT_STD)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x):
        top, bottom = _same_pads(x.shape[-2], self.k, self.stride)
        left, right = _same_pads(x.shape[-1], self.k, self.stride)
        return self.conv(F.pad(x, (left, right, top, bottom), mode="reflect"))


class _Deconv(nn.Module):
    """``ops.conv2d_transpose`` to twice the size: the transpose of a 5x5 stride-2 "SAME" convolution."""

    def __init__(self, cin: int, cout: int, k: int = KERNEL):
        super().__init__()
        # a "SAME" 5x5 stride-2 conv of size 2n pads 1 before (2 after): its transpose drops 1 output row
        # and column before (padding=1) and keeps 2n (``forward`` crops the one extra after)
        self.conv = nn.ConvTranspose2d(cin, cout, k, stride=2, padding=1)
        nn.init.normal_(self.conv.weight, std=INIT_STD)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x):
        h, w = x.shape[-2:]
        return self.conv(x)[..., : 2 * h, : 2 * w]


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPS, momentum=BN_MOMENTUM)


def _lrelu(x):
    return F.leaky_relu(x, LRELU_SLOPE)


class _Encoder(nn.Module):
    """One exposure's encoder: conv 5x5/2 6 -> C (no BN), lrelu, conv 5x5/2 C -> 2C, BN."""

    def __init__(self, c: int):
        super().__init__()
        self.conv1 = _Conv(6, c)
        self.conv2 = _Conv(c, 2 * c)
        self.bn2 = _bn(2 * c)

    def forward(self, x):
        e1 = self.conv1(x)
        return e1, self.bn2(self.conv2(_lrelu(e1)))


class _ResBlock(nn.Module):
    """The official ``residule_block``: x + BN(conv3x3(relu(BN(conv3x3(x))))), reflect padding 1."""

    def __init__(self, c: int):
        super().__init__()
        self.conv1 = _Conv(c, c, k=3, stride=1)
        self.bn1 = _bn(c)
        self.conv2 = _Conv(c, c, k=3, stride=1)
        self.bn2 = _bn(c)

    def forward(self, x):
        return x + self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))


class _DeepHDR(MergeNet):
    """Encoders, the shared last three decoder layers and the input/output conventions of both variants.

    A subclass defines ``_middle(e2)``: the concatenated second-layer encoder features (B, 6C, H/4, W/4)
    -> the decoder's first input (B, 8C, H/8, W/8).
    """

    frames = 3
    size_divisor = 8
    context = 0

    def __init__(self, features: int = FEATURES):
        super().__init__()
        c = features
        self.encoders = nn.ModuleList([_Encoder(c) for _ in range(3)])
        self.deconv1 = _Deconv(8 * c, 2 * c)
        self.bn_d1 = _bn(2 * c)
        self.deconv2 = _Deconv(2 * c + 3 * 2 * c, c)
        self.bn_d2 = _bn(c)
        self.deconv3 = _Deconv(c + 3 * c, c)
        self.bn_d3 = _bn(c)
        self.out = _Conv(c, 3, stride=1)

    def prepare(self, ldr, exposure_times, reference, response=None):
        """``{'lin': (B, 3, 3, H, W)}``: ``H_i = f^-1(I_i) / t_i`` with the response, else ``I_i ** 2.2 / t_i``."""
        response = response or GammaResponse(GAMMA)
        lin = response.inverse(ldr.float().clamp(0, 1)) / exposure_times[:, :, None, None, None]
        return {"lin": lin}

    def _middle(self, e2: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def refine(self, ldr, exposure_times, reference, *, lin):
        """(B, 3, 3, H, W) codes and ``lin`` -> (B, 3, H, W) radiance in [0, 1] (units of the shortest exposure)."""
        b, _, _, h, w = ldr.shape
        d = self.size_divisor
        ph = max(-(-h // d) * d, 2 * d) - h
        pw = max(-(-w // d) * d, 2 * d) - w
        order = exposure_times.argsort(dim=1)
        # the two non-reference frames, shortest first: the official first and third inputs
        others = torch.stack([order[i][order[i] != reference[i]] for i in range(b)])
        bi = torch.arange(b, device=ldr.device)
        roles = (others[:, 0], reference, others[:, 1])
        x = torch.cat([ldr.clamp(0, 1), lin], 2) * 2 - 1  # [I_i, H_i] in [-1, 1], LDR first (official)
        x = [x[bi, k] for k in roles]
        if ph or pw:
            x = [F.pad(xi, (0, pw, 0, ph), mode="replicate") for xi in x]
        e1, e2 = zip(*(enc(xi) for enc, xi in zip(self.encoders, x)))
        y = self.bn_d1(self.deconv1(F.relu(self._middle(torch.cat(e2, 1)))))
        y = self.bn_d2(self.deconv2(F.relu(torch.cat([y, *e2], 1))))
        y = self.bn_d3(self.deconv3(F.relu(torch.cat([y, *e1], 1))))
        y = self.out(F.relu(y))
        return (torch.tanh(y.float()[..., :h, :w]) + 1) / 2


class DeepHDRResNet(_DeepHDR):
    """DeepHDR, ResNet variant (Wu et al., ECCV 2018), as the official code: 16,606,339 parameters."""

    size_divisor = 8
    context = 176  # receptive radius 174 px (tests/test_models_deephdr.py measures it), rounded up
    bytes_per_pixel = 1700  # measured fp32 inference peak / pixel at 512x512 (1620 ResNet, 1590 U-Net)

    def __init__(self, features: int = FEATURES, res_blocks: int = RES_BLOCKS):
        super().__init__(features)
        c = features
        self.merge_conv = _Conv(6 * c, 4 * c)
        self.merge_bn = _bn(4 * c)
        self.blocks = nn.ModuleList([_ResBlock(4 * c) for _ in range(res_blocks)])

    def _middle(self, e2):
        e3 = self.merge_bn(self.merge_conv(_lrelu(e2)))
        y = e3
        for block in self.blocks:
            y = block(F.relu(y))
        return torch.cat([y, e3], 1)


class DeepHDRUNet(_DeepHDR):
    """DeepHDR, U-Net variant (Wu et al., ECCV 2018), from the paper: 12,531,587 parameters."""

    size_divisor = 16
    context = 64  # receptive radius 62 px (tests/test_models_deephdr.py measures it), rounded up
    bytes_per_pixel = 1700  # measured fp32 inference peak / pixel at 512x512 (1620 ResNet, 1590 U-Net)

    def __init__(self, features: int = FEATURES):
        super().__init__(features)
        c = features
        self.merge_conv3 = _Conv(6 * c, 4 * c)
        self.merge_bn3 = _bn(4 * c)
        self.merge_conv4 = _Conv(4 * c, 8 * c)
        self.merge_bn4 = _bn(8 * c)
        self.deconv0 = _Deconv(8 * c, 4 * c)
        self.bn_d0 = _bn(4 * c)

    def _middle(self, e2):
        e3 = self.merge_bn3(self.merge_conv3(_lrelu(e2)))
        e4 = self.merge_bn4(self.merge_conv4(_lrelu(e3)))
        y = self.bn_d0(self.deconv0(F.relu(e4)))
        return torch.cat([y, e3], 1)
