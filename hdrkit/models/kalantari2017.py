"""Kalantari & Ramamoorthi 2017: optical-flow alignment, then a four-layer CNN merge (Direct, WE, WIE).

Kalantari & Ramamoorthi, "Deep High Dynamic Range Imaging of Dynamic Scenes", ACM TOG 36(4) (SIGGRAPH
2017). Official code: the MATLAB/MatConvNet zip of the project page (read as
``nsgaudio/HDR_Dynamic_Scenes: Functions/*``), which ships the WE variant.

Alignment (``prepare``, no gradient): each non-reference frame and the reference are brought to the longer
exposure of the pair and clipped there (``AdjustExposure.m``), the flow from the reference to the frame is
computed, and the frame is warped onto the reference (``ComputeOpticalFlow.m``). Pixels whose flow leaves
the image take the reference's exposure-adjusted value (``PrepareInputFeatures.m``).

Merge (``refine``): inputs ``[I_1, I_2, I_3, H_1, H_2, H_3]`` (18 channels, aligned LDRs first, then
``H_i = f^-1(I_i) / t_i``), four convolutions without padding: 7x7 18 -> 100, ReLU, 5x5 100 -> 100, ReLU,
3x3 100 -> 50, ReLU, 1x1 50 -> C, sigmoid (``CreateNet.m``), with

- ``direct`` (C = 3): the sigmoid output is the radiance (383,603 parameters);
- ``we`` (C = 9): per-channel weights ``a_i`` of the aligned radiances, ``H = sum a_i H_i / (sum a_i +
  1e-6)`` (eq. 5, ``WeightedAverage.m``, ``weps = 1e-6``; 383,909 parameters, the released network);
- ``wie`` (C = 18): weights and three refined images ``I~_i``, merged by eq. 5 (384,368 parameters). Two
  stages as in the paper: ``stage='images'`` trains the refined images towards the aligned ones (squared
  error, plus the merge loss so the weights train too: our reading of a detail the paper leaves open),
  then ``stage='joint'`` trains end to end from that checkpoint.

The counts equal those computed from the official layer list (survey of the official code, B.1).
The loss is the squared error after the mu-law (mu = 5000), ``mu_l2``.

Deviations:
- Flow: OpenCV DIS (medium preset, the flow of ``deghost_refine``) on 8-bit gamma-2.2 grey images instead of Liu's (2009) flow, which has
  no maintained implementation; bilinear instead of bicubic warping. Flow vectors shorter than
  ``FLOW_DEADZONE`` pixels are set to zero: on static content they are estimation noise, and resampling
  by them blurs the frame (measured on three static noise-free 16-bit validation brackets: a Debevec
  merge of the warped frames lost 10-62 dB PSNR-mu without the dead zone, 0 dB with it).
- Linearization: ``H_i`` uses the bracket's camera response when one is given (true or ``--response
  calibrate``), the paper's gamma 2.2 otherwise; the refined images of ``wie`` are gamma-2.2 encodings
  of linear exposures, ``H~_i = I~_i ** 2.2 / t_i`` (for gamma-2.2 data, the paper's exactly).
- The official convolutions are 'valid' (the output is 12 px smaller); the input is padded by 6 px
  (replicate) so the output has the input's size.
- ``we`` and ``wie`` (``mask_saturated=True``, the default) multiply each frame's weight by 0 where its
  aligned code is saturated (channel max >= ``SATURATION_CODE``, the classical merges' threshold), falling
  back to the shortest frame where every frame is; the paper lets the network learn this. A clipped code
  carries no radiance, and a network trained for minutes leaves about 1 % of weight on it: on static
  16-bit validation scenes (4 scenes) that cost 22 dB PSNR-mu against Debevec (45.4 vs 67.8 dB), 99 % of
  the error sitting where the reference frame clips. ``mask_saturated=False`` is the paper's network.
- The reference may be any frame: the other two, in exposure order, take the roles of the paper's low
  and high exposures (the paper's reference is the middle one).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hdrkit.camera.response import GammaResponse
from hdrkit.merge.weights import SATURATION_CODE
from hdrkit.models.base import MergeNet
from hdrkit.models.deghost_refine import dis_flows_to_reference, remap_codes

__all__ = ["Kalantari2017Direct", "Kalantari2017WE", "Kalantari2017WIE", "align_kalantari2017"]

GAMMA = 2.2
"""The paper's LDR -> HDR gamma (``H = I ** 2.2 / t``)."""

WEIGHT_EPS = 1e-6
"""``param.weps`` of the official ``WeightedAverage.m``."""

BORDER = 6
"""Pixels the valid convolutions remove on each side (``param.border`` of the official code)."""

FLOW_DEADZONE = 0.5
"""Flow vectors shorter than this (pixels) are treated as no motion."""


def align_kalantari2017(ldr: torch.Tensor, radiance: torch.Tensor, exposure_times: torch.Tensor, reference: int,
                        response) -> torch.Tensor:
    """Warp every frame of one bracket onto the reference, as Kalantari & Ramamoorthi 2017 prepare inputs.

    Args:
        ldr: (N, 3, H, W) codes in [0, 1].
        radiance: (N, 3, H, W) linearized frames ``f^-1(I_i) / t_i``.
        exposure_times: (N,) linear.
        reference: index of the reference frame.
        response: the response that re-encodes the reference where a frame's flow leaves the image.

    Returns:
        (N, 3, H, W) aligned codes (the reference unchanged).
    """
    h, w = ldr.shape[-2:]
    out = ldr.detach().float().cpu().numpy().copy()
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    for i, flow in dis_flows_to_reference(radiance, exposure_times, reference, FLOW_DEADZONE).items():
        warped = remap_codes(out[i], flow)
        mx, my = gx + flow[..., 0], gy + flow[..., 1]
        outside = (mx < 0) | (mx > w - 1) | (my < 0) | (my > h - 1)
        if outside.any():
            ref_as_i = (radiance[reference].detach().float().cpu() * float(exposure_times[i])).clamp(0, 1)
            warped = np.where(outside[None], response.forward(ref_as_i).numpy(), warped)
        out[i] = warped
    return torch.from_numpy(out).to(ldr.device, ldr.dtype)


def _roles(exposure_times: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """(B, 3) frame indices in the paper's roles: shorter other frame, reference, longer other frame."""
    order = exposure_times.argsort(dim=1)
    others = torch.stack([order[i][order[i] != reference[i]] for i in range(order.shape[0])])
    return torch.stack([others[:, 0], reference, others[:, 1]], 1)


class _Kalantari2017(MergeNet):
    """The shared part of the three architectures; subclasses set ``outputs``."""

    frames = 3
    context = BORDER
    bytes_per_pixel = 2000  # fp32 refine peak per pixel (100 + 100 + 50 channels, padded input)
    outputs: ClassVar[int] = 9
    priors_key: ClassVar[str] = "Kalantari2017"  # the three variants share their cached training priors

    def __init__(self, mask_saturated: bool = True):
        super().__init__()
        self.mask_saturated = mask_saturated
        self.net = nn.Sequential(
            nn.Conv2d(18, 100, 7), nn.ReLU(),
            nn.Conv2d(100, 100, 5), nn.ReLU(),
            nn.Conv2d(100, 50, 3), nn.ReLU(),
            nn.Conv2d(50, self.outputs, 1),
        )

    def prepare(self, ldr, exposure_times, reference, response=None):
        response = response or GammaResponse(GAMMA)
        t = exposure_times[:, :, None, None, None]
        lin = response.inverse(ldr.float()) / t
        aligned = torch.stack([align_kalantari2017(ldr[i], lin[i], exposure_times[i], int(reference[i]), response)
                               for i in range(ldr.shape[0])])
        return {"aligned": aligned, "radiance": response.inverse(aligned.float()) / t}

    def _head(self, exposure_times, reference, aligned, radiance):
        """Runs the CNN; returns (sigmoid output (B, C, H, W), roles (B, 3), radiances in roles (B, 3, 3, H, W),
        validity (B, 3, 1, H, W): 1 where the frame's aligned code is unsaturated or ``mask_saturated`` is off)."""
        b = aligned.shape[0]
        roles = _roles(exposure_times, reference)
        bi = torch.arange(b, device=aligned.device)[:, None]
        i_roles, h_roles = aligned[bi, roles], radiance[bi, roles]
        x = torch.cat([i_roles.flatten(1, 2), h_roles.flatten(1, 2)], 1)
        x = F.pad(x, (BORDER,) * 4, mode="replicate")
        valid = torch.ones_like(i_roles[:, :, :1], dtype=torch.float32)
        if self.mask_saturated:
            ok = i_roles.amax(2, keepdim=True) < SATURATION_CODE
            ok[:, 0] |= ~ok.any(1)  # saturated everywhere: the shortest frame
            valid = ok.float()
        return torch.sigmoid(self.net(x).float()), roles, h_roles.float(), valid

    @staticmethod
    def _weighted(weights: torch.Tensor, images: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Eq. 5: (B, 9, H, W) weights, (B, 3, 3, H, W) radiances, (B, 3, 1, H, W) validity -> (B, 3, H, W)."""
        a = weights.reshape(images.shape) * valid
        return (a * images).sum(1) / (a.sum(1) + WEIGHT_EPS)


class Kalantari2017Direct(_Kalantari2017):
    """Kalantari & Ramamoorthi 2017, direct architecture: the CNN outputs the radiance."""

    outputs = 3

    def refine(self, ldr, exposure_times, reference, *, aligned, radiance):
        return self._head(exposure_times, reference, aligned, radiance)[0]  # Direct: no weights to mask


class Kalantari2017WE(_Kalantari2017):
    """Kalantari & Ramamoorthi 2017, weight estimator: a learned weighted average of the aligned radiances."""

    outputs = 9

    def refine(self, ldr, exposure_times, reference, *, aligned, radiance):
        weights, _, h, valid = self._head(exposure_times, reference, aligned, radiance)
        return self._weighted(weights, h, valid)


class Kalantari2017WIE(_Kalantari2017):
    """Kalantari & Ramamoorthi 2017, weight and image estimator: weights and refined aligned images.

    ``stage``: ``'joint'`` (inference, end-to-end training) or ``'images'`` (the first training stage).
    """

    outputs = 18

    def __init__(self, stage: str = "joint", mask_saturated: bool = True):
        super().__init__(mask_saturated)
        if stage not in ("images", "joint"):
            raise ValueError(f"stage must be 'images' or 'joint', got {stage!r}")
        self.stage = stage

    def _refined(self, exposure_times, reference, aligned, radiance):
        out, roles, h, valid = self._head(exposure_times, reference, aligned, radiance)
        b = out.shape[0]
        t = exposure_times.gather(1, roles)[:, :, None, None, None]
        codes = out[:, 9:].reshape(b, 3, 3, *out.shape[-2:])
        target = (h * t).clamp(0, 1).pow(1 / GAMMA)  # the aligned frames, gamma-2.2 encoded
        return self._weighted(out[:, :9], codes.pow(GAMMA) / t, valid), codes, target

    def refine(self, ldr, exposure_times, reference, *, aligned, radiance):
        return self._refined(exposure_times, reference, aligned, radiance)[0]

    def training_loss(self, ldr, exposure_times, reference, hdr, *, priors, loss_fn):
        if self.stage == "joint":
            return super().training_loss(ldr, exposure_times, reference, hdr, priors=priors, loss_fn=loss_fn)
        hdr_hat, codes, target = self._refined(exposure_times, reference, priors["aligned"], priors["radiance"])
        return (codes - target).square().mean() + loss_fn(hdr_hat, hdr)
