"""KPN-HDR: a kernel prediction network aligns the six inputs, a small CNN merges them by weighted averaging.

Chung, Kim, Jo, Lee & Cho, "Kernel Prediction Network for Detail-Preserving High Dynamic Range
Imaging" (Seoul National University; text in ``../shared/papers/chung_kpn_hdr.txt``). No official code
is known, so where the paper is silent this file follows the network it builds on, the kernel prediction
network (KPN) of Mildenhall, Barron, Chen, Sharlet, Ng & Carroll, "Burst Denoising with Kernel Prediction
Networks", CVPR 2018, as its official code defines it (``google/burst-denoising: kpn_arch.py``,
``convolve_net2`` with its defaults ``ch0 = 64, N = 4, D = 3``: five levels, 64 to 512 channels, the layout
that reimplementations such as ``z-bingo/kernel-prediction-networks-PyTorch`` also use; the released
``kpn_train.py`` calls it with ``N = 2``, three levels, which ``widths=(64, 128, 256)`` gives here).

Inputs (paper eq. 1-2): the three frames sorted by exposure, ``{I1, H1, I2, H2, I3, H3}``, six RGB images
``X_1..X_6`` concatenated to 18 channels, with ``I_i`` the codes in [0, 1] and ``H_i`` the frame mapped to
the HDR domain and divided by its exposure time (``t`` with the shortest = 1, so ``H_i`` is in [0, 1]).

Kernel prediction network (paper Sec. III-A; 3x3 convolutions, stride 1, each followed by ReLU, Sec. III-C;
widths, levels, pooling and upsampling from Mildenhall's code):

- full resolution: 3 convs 18 -> 64 -> 64 -> 64;
- 2x2 average pooling, 1/2: 3 convs -> 128; 1/4: 3 convs -> 256; 1/8: 3 convs -> 512; 1/16: 3 convs -> 512;
- decoder: bilinear 2x upsampling and concatenation with the encoder features of that level; 1/8: 3 convs
  1024 -> 512; 1/4: 3 convs 768 -> 256; 1/2: 2 convs 384 -> 450 -> 450 and the last conv 450 -> 450;
- the last map, ``3 K^2 N = 450`` channels (K = 5, N = 6), upsampled bilinearly to full resolution (as in
  Mildenhall's code: the paper's "same size as the input images"), is one K x K x 3 kernel per pixel per
  input image (channel ``(n * K^2 + tap) * 3 + c``, tap row-major over the 5 x 5 window).

Eq. 3, ``Y_n(p) = <K_n(p), N_p(X_n)>``, is applied per colour channel (a K x K kernel for each of R, G, B, so
``Y_n`` is an RGB image like ``X_n``; the paper's 3K^2 per image only fits that reading), with zero padding
as Mildenhall's ``convolve``. It loops over the 25 taps, accumulating products of the kernel map with shifted
slices of the padded image, and upsamples one image's 75 kernel channels at a time: no unfolded K^2-times copy
and no full-resolution 450-channel map exist at once.

Merging network (Sec. III-A, III-C): its input is the concatenation of the six filtered images ``Y_1..Y_6``
(18 channels; not the unfiltered inputs), four convs with kernels 7, 5, 3, 1 and ReLU, ReLU, ReLU, sigmoid.
The paper gives no widths, only "similar to the model in [17]": Kalantari & Ramamoorthi 2017's widths 100,
100, 50 are used. Its output is "reshaped into N weight maps with the same shape as the input images":
3N = 18 channels, one RGB weight map ``alpha_n`` per filtered image (as Kalantari's weight estimator
gives 9 = 3 x 3 for three images). Eq. 4: ``H = sum_n alpha_n Y_n / sum_n alpha_n``, in float32.

Loss (eq. 5-6): squared L2 after the mu-law (mu = 5000), ``mu_l2`` in ``hdrkit.losses``.

Parameters: 32,882,366 = KPN 32,497,998 + merging network 384,368, counted from the layer list above
(convs with biases). KPN by level: full 84,288; 1/2 369,024; 1/4 1,475,328; 1/8 5,899,776; 1/16 7,079,424;
decoder 1/8 9,438,720 and 1/4 2,949,888; the three 450-channel convs at 1/2 5,201,550. Merging network:
88,300 + 250,100 + 45,050 + 918. No official count exists to compare with.

Deviations and readings:
- ``H_i`` is the frame linearized with the camera response given to ``prepare`` (the response that made
  the training scenes, or the user's / a calibrated one at inference), divided by ``t_i``; without a
  response it is the paper's ``I_i ** 2.2 / t_i`` (gamma 2.2, as Kalantari 2017's data). The paper's fixed
  gamma is wrong for non-gamma cameras; the response-linearized frame is what eq. 1 approximates.
- The reference may be any of the three frames: it takes the middle slot (``I2, H2``, the paper's
  reference) and the other two, in exposure order, the first and last slots. The paper uses the middle one.
- The last KPN conv has a ReLU (the paper: every KPN conv is followed by ReLU; Mildenhall's last layer is
  linear; the first author's later official code, ``haesoochung/hdri-saturation-compensation: model.py``
  ``Align``, also predicts its per-pixel kernels with a ReLU conv): kernels are non-negative, so every ``Y_n``
  and the output are non-negative without a clip.
- Weights are initialized Glorot-uniform with zero biases (TensorFlow's ``conv2d`` default, as in
  Mildenhall's code); the paper does not say.
- Bilinear upsampling uses half-pixel centres (PyTorch ``align_corners=False``); TensorFlow 1's
  ``resize_images`` (Mildenhall's) does not.
- ``refine`` pads height and width to a multiple of 16 (replicate) for the four poolings and crops back.
- The eq. 4 denominator has ``WEIGHT_EPS`` added so that sigmoids underflowing to 0 cannot divide 0 by 0.
- The output is not clipped (the paper: "H is always in [0, 1]"): a weighted average of filtered frames.

Tiling and memory: the exact receptive radius of ``refine`` is ``RECEPTIVE_RADIUS`` = 171 pixels, the worst
case over the 16 positions on the pooling grid (the support of one output pixel's gradient: 171 rows up from
rows 14 mod 16, measured with the full network and tested on a narrow one of the same topology in
``tests/test_models_kpn_hdr.py``); ``context`` is that, so tiles overlap by 192 pixels and tiled output equals
untiled to float rounding (measured 4e-9 absolute at 512x48 with 128-pixel tiles; with a context of 48 it
would differ by 2.5e-6, 4e-5 relative, untrained). The context is large: a 6000x4000 bracket runs in tiles
of 800-pixel cores in fp32 (1,296 in bf16), computing 2.0x (1.6x) the pixels of the image. ``bytes_per_pixel``: fp32 inference peak of
``refine`` measured at 512x512, 2,672 B/px (bf16 1,489 B/px, more than half of it, hence 3,000).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hdrkit.camera.response import GammaResponse
from hdrkit.models.base import MergeNet

__all__ = ["KPNHDR", "GAMMA", "KERNEL_SIZE", "apply_kernels"]

GAMMA = 2.2
"""Gamma of the paper's ``H_i = I_i ** gamma / t_i`` when no response is given (Kalantari 2017's data)."""

KERNEL_SIZE = 5
"""K, the side of the per-pixel kernels (paper Sec. III-A: "we set N as 6 and K as 5")."""

INPUT_IMAGES = 6
"""N, the number of input images ``{I1, H1, I2, H2, I3, H3}`` (paper eq. 2)."""

WIDTHS = (64, 128, 256, 512, 512)
"""KPN encoder widths by level (full, 1/2, 1/4, 1/8, 1/16): Mildenhall's ``ch0 = 64``, doubled up to 512."""

CONVS_PER_LEVEL = 3
"""3x3 convs per U-Net level (Mildenhall's ``D = 3``)."""

MERGE_WIDTHS = (100, 100, 50)
"""Hidden widths of the merging network: Kalantari & Ramamoorthi 2017's merge CNN (paper: "similar to [17]")."""

MERGE_KERNELS = (7, 5, 3, 1)
"""Kernel sizes of the merging network (paper Sec. III-C: "decreasing kernel sizes from 7 to 1")."""

WEIGHT_EPS = 1e-8
"""Added to the eq. 4 denominator (sum of sigmoid weights, >= 0)."""

RECEPTIVE_RADIUS = 171
"""Exact receptive radius of ``refine`` in pixels, the worst case over the 16 positions modulo the pooling grid."""


def _convs(cin: int, widths: list[int]) -> nn.Sequential:
    layers = []
    for w in widths:
        layers += [nn.Conv2d(cin, w, 3, padding=1), nn.ReLU(inplace=True)]
        cin = w
    return nn.Sequential(*layers)


def _up(x: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def apply_kernels(images: torch.Tensor, kernels: torch.Tensor, k: int = KERNEL_SIZE) -> torch.Tensor:
    """Per-pixel, per-channel K x K filtering (paper eq. 3) without an unfolded copy of the image.

    Args:
        images: (B, C, H, W) the image ``X_n``.
        kernels: (B, K*K*C, H, W), channel ``tap * C + c`` weighting ``X[c, y + dy, x + dx]`` with
            ``tap = (dy + K//2) * K + (dx + K//2)``; zero padding outside the image.

    Returns:
        (B, C, H, W) ``Y[c](p) = sum_tap kernels[tap * C + c](p) * X[c](p + offset(tap))``.
    """
    b, c, h, w = images.shape
    r = k // 2
    padded = F.pad(images, (r, r, r, r))
    kern = kernels.reshape(b, k * k, c, h, w)
    out = kern[:, 0] * padded[:, :, :h, :w]
    for tap in range(1, k * k):
        dy, dx = divmod(tap, k)
        out = out.addcmul_(kern[:, tap], padded[:, :, dy : dy + h, dx : dx + w])
    return out


class KPNHDR(MergeNet):
    """KPN-HDR (Chung, Kim, Jo, Lee & Cho): per-pixel kernels on {I_i, H_i}, learned weighted average."""

    frames = 3
    size_divisor = 16
    context = RECEPTIVE_RADIUS
    bytes_per_pixel = 3000  # measured peak of refine at 512x512: fp32 2,672 B/px, bf16 1,489 B/px (x2 = 2,978)

    def __init__(self, widths: tuple[int, ...] = WIDTHS, convs_per_level: int = CONVS_PER_LEVEL,
                 kernel_size: int = KERNEL_SIZE, merge_widths: tuple[int, int, int] = MERGE_WIDTHS):
        super().__init__()
        d = convs_per_level
        n = INPUT_IMAGES
        self.kernel_size = k = kernel_size
        self.out_channels = 3 * k * k * n
        cin = 3 * n
        self.encoder = nn.ModuleList()
        for w in widths:
            self.encoder.append(_convs(cin, [w] * d))
            cin = w
        self.decoder = nn.ModuleList()
        for lvl in range(len(widths) - 2, 1, -1):  # 1/8 and 1/4 for five levels
            self.decoder.append(_convs(cin + widths[lvl], [widths[lvl]] * d))
            cin = widths[lvl]
        # at 1/2: two convs and the last one, all ReLU (see the module docstring), 3 K^2 N channels
        self.kernels = _convs(cin + widths[1], [self.out_channels] * 3)
        m1, m2, m3 = merge_widths
        k1, k2, k3, k4 = MERGE_KERNELS
        self.merge = nn.Sequential(
            nn.Conv2d(3 * n, m1, k1, padding=k1 // 2), nn.ReLU(inplace=True),
            nn.Conv2d(m1, m2, k2, padding=k2 // 2), nn.ReLU(inplace=True),
            nn.Conv2d(m2, m3, k3, padding=k3 // 2), nn.ReLU(inplace=True),
            nn.Conv2d(m3, 3 * n, k4, padding=k4 // 2), nn.Sigmoid(),
        )
        for mod in self.modules():
            if isinstance(mod, nn.Conv2d):
                nn.init.xavier_uniform_(mod.weight)
                nn.init.zeros_(mod.bias)

    def prepare(self, ldr, exposure_times, reference, response=None):
        """``{'lin': (B, N, 3, H, W)}``: ``f^-1(I_i) / t_i`` with the given response, else ``I_i ** 2.2 / t_i``."""
        response = response or GammaResponse(GAMMA)
        lin = response.inverse(ldr.float().clamp(0, 1)) / exposure_times[:, :, None, None, None]
        return {"lin": lin.clamp_min(0)}

    def pack(self, ldr: torch.Tensor, exposure_times: torch.Tensor, reference: torch.Tensor,
             lin: torch.Tensor) -> torch.Tensor:
        """(B, 3, 3, H, W) codes and radiance -> (B, 18, H, W) ``[I1, H1, I2, H2, I3, H3]``, reference in slot 2."""
        b = ldr.shape[0]
        bi = torch.arange(b, device=ldr.device)
        order = exposure_times.argsort(dim=1)
        others = torch.stack([order[i][order[i] != reference[i]] for i in range(b)])
        slots = (others[:, 0], reference, others[:, 1])
        x = ldr.clamp(0, 1)
        x = x if x.is_floating_point() else x.float()
        return torch.cat([img for s in slots for img in (x[bi, s], lin[bi, s].to(x.dtype))], 1)

    def predict_kernels(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 18, H, W), H and W multiples of 16 -> (B, 3 K^2 N, H/2, W/2) non-negative kernels at 1/2."""
        skips = []
        for lvl, block in enumerate(self.encoder):
            if lvl > 0:
                x = F.avg_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        for lvl, block in zip(range(len(skips) - 2, 1, -1), self.decoder):
            x = block(torch.cat([_up(x, skips[lvl].shape[-2:]), skips[lvl]], 1))
        return self.kernels(torch.cat([_up(x, skips[1].shape[-2:]), skips[1]], 1))

    def refine(self, ldr, exposure_times, reference, *, lin):
        h, w = ldr.shape[-2:]
        x = self.pack(ldr, exposure_times, reference, lin)
        d = self.size_divisor
        ph, pw = -h % d, -w % d
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        kern = self.predict_kernels(x)
        k2 = self.kernel_size**2
        ys = []
        for n in range(INPUT_IMAGES):  # one image's 75 kernel channels at full resolution at a time
            kn = _up(kern[:, n * 3 * k2 : (n + 1) * 3 * k2].to(x.dtype), x.shape[-2:])
            ys.append(apply_kernels(x[:, 3 * n : 3 * n + 3], kn, self.kernel_size))
        y = torch.cat(ys, 1)
        alpha = self.merge(y).to(x.dtype)
        num = (alpha * y).reshape(y.shape[0], INPUT_IMAGES, 3, *y.shape[-2:]).sum(1)
        den = alpha.reshape(y.shape[0], INPUT_IMAGES, 3, *y.shape[-2:]).sum(1)
        return (num / (den + WEIGHT_EPS))[..., :h, :w]
