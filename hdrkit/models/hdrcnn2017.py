"""HDRCNN: HDR from a single exposure by hallucinating the clipped highlights in the log domain.

Eilertsen, Kronander, Denes, Mantiuk & Unger, "HDR image reconstruction from a single exposure using deep
CNNs", ACM TOG 36(6) (SIGGRAPH Asia) 2017, arXiv:1710.07480 (summarized with its equations in
``../shared/papers/qiu_survey_kalantari_wu_ahdrnet_hdrcnn_singlehdr.txt``, section 6). Official code:
``gabrieleilertsen/hdrcnn`` (TensorFlow 1 + TensorLayer, BSD-3; ``network.py``, ``training_code/hdrcnn_train.py``),
whose layer list this file follows:

- encoder: VGG-16 conv1_1 .. conv5_3 (3x3 convs with ReLU, 64-128-256-512-512 channels, 2-2-3-3-3 per stage,
  2x2 max pooling after each stage), then the extra "h6" conv 3x3 512 -> 512 + batch norm + ReLU at 1/32;
- decoder: five 4x4 stride-2 transposed convs 512 -> 512 -> 512 -> 256 -> 128 -> 64, each + batch norm + ReLU,
  initialized to bilinear upsampling (channel i -> i); before each of the last four, and once more at full
  resolution, the encoder stage's last conv output (before its pooling) joins through the skip connection
  of eq. 18: the domain transformation ``log(f^-1(h) + eps)`` (``f^-1(h) = h ** 2``, ``eps = 1 / 255``),
  concatenated with the decoder features and fused by a 1x1 conv initialized to perform an addition;
- output: 1x1 conv 64 -> 3, batch norm, ReLU, and a last skip connection from the input image itself
  (``log(x ** 2 + eps)``, fused 6 -> 3): the log radiance ``y`` (official ``decoder/h7``).

Final image (eq. 16-17): ``H = (1 - a) f^-1(D) + a (exp(y) - eps)`` with
``a = max(0, max_c D - tau) / (1 - tau)``, ``tau = 0.95`` (the official ``get_final``, whose ``- 1/255`` makes
``exp(y) - eps`` the inverse of the ``log(H + eps)`` the network is trained on); below ``tau`` the output is
the linearized input exactly, so on well-exposed pixels the method is plain linearization.

Losses (``training_loss``; the config's ``loss`` key is not used): ``loss='ir'`` (default, as the official
``sep_loss``), the illuminance + reflectance loss of eq. 20-22: log luminance ``L = log(sum_c w_c exp(y_c))``
with ``w = (0.213, 0.715, 0.072)``, illuminance ``log I = G_sigma * L`` (Gaussian, sigma 2, 13 taps, as the
official 13-tap filter), reflectance ``log R = y - log I``, errors weighted by ``a`` and mixed by
``lambda = 0.5`` (official ``lambda_ir``); ``loss='log'``: the masked log loss of eq. 19. Targets are
``log(H + eps)`` with ``H`` the ground truth in the input frame's units (``hdr * t``), so that ``f^-1(1) = 1``
is where the LDR clips.

**29,443,358 parameters**, counted from the layer list (convs and transposed convs with biases, batch norm
with scale and offset): VGG-16 convs 14,714,688; h6 2,359,808 + BN 1,024; transposed convs 4,194,816 +
4,194,816 + 2,097,408 + 524,416 + 131,136 with BN 1,024 + 1,024 + 512 + 256 + 128; skip fusions 524,800 +
524,800 + 131,328 + 32,896 + 8,256 + 21; output conv 195 + BN 6. The official repository states no count;
its ``network.py`` defines exactly these layers (TensorLayer convs and deconvs have biases), so the count is
the official one.

Deviations:
- No pre-training: the official encoder starts from VGG-16 weights trained on Places (then the whole
  network on Places-derived LDR images, then on HDR images). Those weights cannot be downloaded here, so the
  encoder is trained from scratch (Kaiming-normal convs, zero biases); the decoder keeps the official
  bilinear / addition initialization. Expect a weaker network than the published one.
- Input: RGB codes in [0, 1] minus the VGG mean (``VGG_MEAN_RGB``), not ``255 x`` in BGR. With ReLU convs
  and no normalization in the encoder this is the official function with every encoder bias divided by
  255, so the skip transformation is ``log(h ** 2 + eps)`` instead of ``log((h / 255) ** 2 + eps)``.
- ``f^-1`` in eq. 16 is the camera response given to ``prepare`` (the user's, a calibrated one, or the one
  that made a training pair), else gamma 2.2 (the ``single_linearize`` baseline's default); the official
  code assumes ``D ** 2``. The skip transformations keep the official fixed square: they are part of the
  learned function, not the blend.
- Masks: the paper's ``a`` of eq. 17, from the input, inside the squares of eq. 19 and 22; the official
  training code masks with the ground truth's saturation (``max_c H > 0.95``) and does not square it. The
  input's mask is where ``y`` is used.
- Gaussian of eq. 21: sigma 2 px (the paper); the official 13-tap kernel spans +-2 sigma (sigma ~2.6 px).
- ``exp(y) - eps`` is clamped at 0 (and ``y`` at ``Y_MAX``) so the output is non-negative and finite.
- Multi-frame input: a single-image method sees the reference frame (``hdrkit.methods``); the output is
  divided by that frame's exposure time (radiance in units of the shortest exposure).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hdrkit.camera.response import GammaResponse
from hdrkit.models.base import MergeNet
from hdrkit.tonemap.reinhard2002 import _gaussian_blur

__all__ = ["HDRCNN", "EPS", "GAMMA", "TAU", "VGG16_STAGES", "highlight_mask", "hdrcnn_loss"]

VGG16_STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
"""Output channels of the VGG-16 3x3 convs, stage by stage (conv1_1 .. conv5_3)."""

DECODER = (512, 512, 256, 128, 64)
"""Output channels of the five 4x4 stride-2 transposed convs (official ``decoder/h1 .. h5``)."""

VGG_MEAN_RGB = (123.68 / 255, 116.779 / 255, 103.939 / 255)
"""The official encoder's mean (``VGG_MEAN``, BGR in 0..255), in RGB codes in [0, 1]."""

EPS = 1.0 / 255
"""Offset of every log in the network and the losses (official ``eps``)."""

TAU = 0.95
"""Blend threshold of eq. 17 (official ``thr = 0.05`` below 1)."""

GAMMA = 2.2
"""``f^-1(D) = D ** GAMMA`` when no camera response is given (the ``single_linearize`` default)."""

LUMINANCE = (0.213, 0.715, 0.072)
"""Luminance weights of eq. 21."""

SIGMA = 2.0
"""Standard deviation in pixels of the illuminance Gaussian of eq. 21."""

IR_LAMBDA = 0.5
"""Weight of the illuminance term of eq. 22 (official ``lambda_ir``)."""

Y_MAX = 30.0
"""Log radiances are clamped here (e^30 ~ 1e13) before ``exp``."""


def _domain(h: torch.Tensor) -> torch.Tensor:
    """Eq. 18's LDR -> log HDR transformation of encoder features: ``log(h ** 2 + eps)``, in float32."""
    return torch.log(h.float().square() + EPS)


def highlight_mask(ldr: torch.Tensor, tau: float = TAU) -> torch.Tensor:
    """Eq. 17: ``a = max(0, max_c D - tau) / (1 - tau)``; ``ldr`` (B, 3, H, W) codes -> (B, 1, H, W) in [0, 1]."""
    return ((ldr.amax(1, keepdim=True) - tau) / (1 - tau)).clamp(0, 1)


def hdrcnn_loss(y: torch.Tensor, hdr: torch.Tensor, alpha: torch.Tensor, kind: str = "ir",
                ir_lambda: float = IR_LAMBDA, sigma: float = SIGMA) -> torch.Tensor:
    """Eq. 19 (``kind='log'``) or eq. 20-22 (``'ir'``) between the log prediction ``y`` and linear ``hdr``.

    y, hdr: (B, 3, H, W), ``hdr`` in the units of ``exp(y) - eps`` (the input frame's, clipping at 1);
    alpha: (B, 1, H, W) mask of eq. 17. Means over pixels (and channels), as ``1 / N`` and ``1 / 3N``.
    """
    y = y.float()
    target = torch.log(hdr.float().clamp_min(0) + EPS)
    if kind == "log":
        return (alpha * (y - target)).square().mean()
    w = torch.tensor(LUMINANCE, device=y.device).view(1, 3, 1, 1)
    lum_y = torch.logsumexp(y + w.log(), 1, keepdim=True)  # log sum_c w_c exp(y_c); sum w = 1
    lum_t = torch.log((hdr.float().clamp_min(0) * w).sum(1, keepdim=True) + EPS)  # = log sum_c w_c (H_c + eps)
    ill_y, ill_t = _gaussian_blur(lum_y, sigma), _gaussian_blur(lum_t, sigma)
    ill = (alpha * (ill_y - ill_t)).square().mean()
    refl = (alpha * ((y - ill_y) - (target - ill_t))).square().mean()
    return ir_lambda * ill + (1 - ir_lambda) * refl


class _Skip(nn.Module):
    """Eq. 18: concat(decoder features, log(h ** 2 + eps) of the encoder's), 1x1 conv initialized to their sum."""

    def __init__(self, channels: int, skip_channels: int):
        super().__init__()
        self.fuse = nn.Conv2d(channels + skip_channels, channels, 1)
        with torch.no_grad():
            self.fuse.weight.zero_()
            self.fuse.bias.zero_()
            eye = torch.arange(channels)
            self.fuse.weight[eye, eye] = 1
            self.fuse.weight[eye, channels + eye] = 1

    def forward(self, x, skip):
        return self.fuse(torch.cat([x, _domain(skip).to(x.dtype)], 1))


class _Up(nn.Module):
    """4x4 stride-2 transposed conv initialized to bilinear upsampling (channel i -> i), batch norm, ReLU."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.deconv = nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(cout)
        k = torch.tensor([0.25, 0.75, 0.75, 0.25])
        with torch.no_grad():
            self.deconv.weight.zero_()
            self.deconv.bias.zero_()
            eye = torch.arange(cout)
            self.deconv.weight[eye, eye] = torch.outer(k, k)

    def forward(self, x):
        return F.relu(self.bn(self.deconv(x)))


class HDRCNN(MergeNet):
    """HDRCNN (Eilertsen et al., SIGGRAPH Asia 2017): VGG-16 autoencoder predicting log radiance in the highlights."""

    frames = 1
    size_divisor = 32
    context = 184  # receptive radius 184 px (tests/test_models_hdrcnn2017.py measures it)
    bytes_per_pixel = 1900  # measured fp32 inference peak / pixel: 1840 at 512x512, 1710 at 768x768
    inert_parameters = ("h6.bias", "out.bias")  # biases of the convolutions right before batch norm (the official layer list has them)

    def __init__(self, loss: str = "ir", ir_lambda: float = IR_LAMBDA, tau: float = TAU):
        """loss: ``'ir'`` (eq. 20-22) or ``'log'`` (eq. 19) for ``training_loss``; ir_lambda: eq. 22's
        lambda; tau: eq. 17's threshold. None of them change the state dict."""
        super().__init__()
        if loss not in ("ir", "log"):
            raise ValueError(f"loss must be 'ir' or 'log', got {loss!r}")
        self.loss, self.ir_lambda, self.tau = loss, float(ir_lambda), float(tau)
        self.encoder = nn.ModuleList()
        cin = 3
        for stage in VGG16_STAGES:
            convs = nn.ModuleList()
            for cout in stage:
                convs.append(nn.Conv2d(cin, cout, 3, padding=1))
                cin = cout
            self.encoder.append(convs)
        self.h6 = nn.Conv2d(512, 512, 3, padding=1)
        self.h6_bn = nn.BatchNorm2d(512)
        for m in [*self.encoder.modules(), self.h6]:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        self.up = nn.ModuleList()
        cin = 512
        for cout in DECODER:
            self.up.append(_Up(cin, cout))
            cin = cout
        # skips from conv5_3, conv4_3, conv3_3, conv2_2, conv1_2 into the decoder, then the input image
        self.skips = nn.ModuleList([_Skip(c, c) for c in (512, 512, 256, 128, 64)])
        self.out = nn.Conv2d(64, 3, 1)
        nn.init.xavier_normal_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.out_bn = nn.BatchNorm2d(3)
        self.skip_input = _Skip(3, 3)
        self.register_buffer("mean", torch.tensor(VGG_MEAN_RGB).view(1, 3, 1, 1), persistent=False)

    def log_radiance(self, ldr: torch.Tensor) -> torch.Tensor:
        """The network: (B, 3, H, W) codes in [0, 1], H and W multiples of 32 -> log radiance ``y`` (B, 3, H, W)."""
        x = ldr.clamp(0, 1)
        h = x - self.mean.to(x.dtype)
        before_pool = []
        for stage in self.encoder:
            for conv in stage:
                h = F.relu(conv(h))
            before_pool.append(h)
            h = F.max_pool2d(h, 2)
        y = F.relu(self.h6_bn(self.h6(h)))
        y = self.up[0](y)
        for up, skip, feat in zip(self.up[1:], self.skips[:4], before_pool[:0:-1]):
            y = up(skip(y, feat))
        y = self.skips[4](y, before_pool[0])
        y = F.relu(self.out_bn(self.out(y)))
        return self.skip_input(y, x)

    def prepare(self, ldr, exposure_times, reference, response=None):
        """``{'lin': (B, 3, H, W)}``: the reference frame linearized, ``f^-1(D) / t`` (gamma 2.2 without a response)."""
        bi = torch.arange(ldr.shape[0], device=ldr.device)
        x = ldr[bi, reference].float().clamp(0, 1)
        return {"lin": (response or GammaResponse(GAMMA)).inverse(x) / exposure_times[bi, reference].view(-1, 1, 1, 1)}

    def _frame(self, ldr, exposure_times, reference):
        bi = torch.arange(ldr.shape[0], device=ldr.device)
        x = ldr[bi, reference]
        h, w = x.shape[-2:]
        d = self.size_divisor
        x = F.pad(x, (0, -w % d, 0, -h % d), mode="replicate") if (h % d or w % d) else x
        return x, exposure_times[bi, reference].view(-1, 1, 1, 1), (h, w)

    def refine(self, ldr, exposure_times, reference, *, lin):
        """Eq. 16: ``(1 - a) lin + a (exp(y) - eps) / t``; (B, N, 3, H, W) codes -> (B, 3, H, W) radiance."""
        x, t, (h, w) = self._frame(ldr, exposure_times, reference)
        y = self.log_radiance(x).float()[..., :h, :w]
        x = x[..., :h, :w].float().clamp(0, 1)
        a = highlight_mask(x, self.tau)
        hallucinated = (y.clamp(max=Y_MAX).exp() - EPS).clamp_min(0) / t
        return (1 - a) * lin.float() + a * hallucinated

    def training_loss(self, ldr, exposure_times, reference, hdr, *, priors, loss_fn):
        """Eq. 19 or 20-22 (``self.loss``) on ``y`` against ``hdr * t`` (``loss_fn`` is not used)."""
        x, t, (h, w) = self._frame(ldr, exposure_times, reference)
        y = self.log_radiance(x)[..., :h, :w]
        a = highlight_mask(x[..., :h, :w].float().clamp(0, 1), self.tau)
        return hdrcnn_loss(y, hdr.float() * t, a, self.loss, self.ir_lambda)
