"""AHDRNet: attention-guided merging of three exposures.

Yan, Gong, Shi, van den Hengel, Shen, Reid & Zhang, "Attention-guided Network for Ghost-free High
Dynamic Range Imaging", CVPR 2019. Official code: ``qingsenyangit/AHDRNet`` (``model.py``), whose layer
list this file follows:

- a 3x3 conv 6 -> 64 shared by the three exposures, on ``[I_i, H_i]`` with ``H_i = I_i ** 2.2 / t_i``
  (LDR first, both in [0, 1]), LeakyReLU (slope 0.01, PyTorch's default as in the official code);
- an attention module per non-reference exposure: ``concat(F_i, F_ref)`` -> 3x3 conv 128 -> LeakyReLU
  -> 3x3 conv 64 -> sigmoid, multiplied into ``F_i``;
- a 3x3 conv 192 -> 64 on the concatenation, three dilated residual dense blocks (6 layers of 3x3
  convs, dilation 2, growth 32, ReLU; 1x1 fusion 256 -> 64; local residual), global feature fusion
  (1x1 192 -> 64, 3x3 64 -> 64), plus the reference's shallow features (global residual), a 3x3 conv
  64 -> 64, a 3x3 conv 64 -> 3 and a sigmoid: radiance in [0, 1] in units of the shortest exposure.

1,515,139 parameters, as the official code: that count includes ``att_conv1`` and ``att_conv3``, two
3x3 64 -> 64 convolutions the official model defines but never calls; they are kept (and listed in
``unused_parameters``) so the state dict matches the official one layer for layer.

Deviations:
- The reference may be any of the three frames: the other two, in exposure order, take the roles of
  the official "low" and "high" inputs. The paper and code use the middle frame only.
- Inputs follow the project's convention (RGB, codes in [0, 1], ``t`` with the shortest = 1), which is
  the official one; the response is assumed to be gamma 2.2 whatever ``response`` says, as trained.
- Output is clipped by the sigmoid at 1 = saturation of the shortest exposure, as in the official code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hdrkit.models.base import MergeNet

__all__ = ["AHDRNet", "GAMMA"]

GAMMA = 2.2
"""Gamma of the LDR -> HDR mapping ``H = I ** gamma / t`` (Kalantari & Ramamoorthi 2017's convention)."""


class _DilatedDense(nn.Module):
    def __init__(self, channels: int, growth: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, growth, 3, padding=2, dilation=2)

    def forward(self, x):
        return torch.cat([x, F.relu(self.conv(x))], 1)


class _DRDB(nn.Module):
    """Dilated residual dense block: dense dilated 3x3 layers, 1x1 fusion, local residual."""

    def __init__(self, channels: int = 64, layers: int = 6, growth: int = 32):
        super().__init__()
        self.dense = nn.Sequential(*[_DilatedDense(channels + i * growth, growth) for i in range(layers)])
        self.fuse = nn.Conv2d(channels + layers * growth, channels, 1)

    def forward(self, x):
        return x + self.fuse(self.dense(x))


class AHDRNet(MergeNet):
    """AHDRNet (Yan et al., CVPR 2019): attention on non-reference features, dilated residual dense merging."""

    frames = 3
    size_divisor = 1
    context = 48  # receptive radius: 2 + 2 (attention) + 1 + 36 (18 dilated convs) + 3, rounded up
    bytes_per_pixel = 4200  # measured fp32 inference peak / pixel at 1500x1000
    unused_parameters = ("att_conv1.weight", "att_conv1.bias", "att_conv3.weight", "att_conv3.bias")

    def __init__(self, features: int = 64, growth: int = 32, blocks: int = 3, layers: int = 6):
        super().__init__()
        nf = features
        self.conv1 = nn.Conv2d(6, nf, 3, padding=1)
        self.att11 = nn.Conv2d(2 * nf, 2 * nf, 3, padding=1)
        self.att12 = nn.Conv2d(2 * nf, nf, 3, padding=1)
        self.att31 = nn.Conv2d(2 * nf, 2 * nf, 3, padding=1)
        self.att32 = nn.Conv2d(2 * nf, nf, 3, padding=1)
        self.att_conv1 = nn.Conv2d(nf, nf, 3, padding=1)  # defined, never used (official code)
        self.att_conv3 = nn.Conv2d(nf, nf, 3, padding=1)  # defined, never used (official code)
        self.conv2 = nn.Conv2d(3 * nf, nf, 3, padding=1)
        self.drdbs = nn.ModuleList([_DRDB(nf, layers, growth) for _ in range(blocks)])
        self.gff_1x1 = nn.Conv2d(blocks * nf, nf, 1)
        self.gff_3x3 = nn.Conv2d(nf, nf, 3, padding=1)
        self.conv_up = nn.Conv2d(nf, nf, 3, padding=1)
        self.conv3 = nn.Conv2d(nf, 3, 3, padding=1)
        for m in self.modules():  # Kaiming init, as the official training script
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
                nn.init.zeros_(m.bias)

    @staticmethod
    def pack(ldr: torch.Tensor, exposure_times: torch.Tensor) -> torch.Tensor:
        """(B, N, 3, H, W) codes -> (B, N, 6, H, W) ``[I_i, I_i ** 2.2 / t_i]``."""
        x = ldr.clamp(0, 1)
        return torch.cat([x, x.pow(GAMMA) / exposure_times[:, :, None, None, None]], 2)

    def refine(self, ldr, exposure_times, reference, **priors):
        b = ldr.shape[0]
        order = exposure_times.argsort(dim=1)
        bi = torch.arange(b, device=ldr.device)
        # the two non-reference frames, shortest first: the official "low" (x1) and "high" (x3)
        others = torch.stack([order[i][order[i] != reference[i]] for i in range(b)])
        x = self.pack(ldr, exposure_times)
        act = lambda y: F.leaky_relu(y, 0.01)  # noqa: E731
        f1, f2, f3 = (act(self.conv1(x[bi, k])) for k in (others[:, 0], reference, others[:, 1]))
        f1 = f1 * torch.sigmoid(self.att12(act(self.att11(torch.cat([f1, f2], 1)))))
        f3 = f3 * torch.sigmoid(self.att32(act(self.att31(torch.cat([f3, f2], 1)))))
        y = self.conv2(torch.cat([f1, f2, f3], 1))
        outs = []
        for block in self.drdbs:
            y = block(y)
            outs.append(y)
        y = self.gff_3x3(self.gff_1x1(torch.cat(outs, 1))) + f2
        y = self.conv3(self.conv_up(y))
        return torch.sigmoid(y.float())
