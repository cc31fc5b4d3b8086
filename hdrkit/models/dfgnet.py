"""DFGNet: disentangled exposure and spatial features guide the merging of three exposures.

Lee, Jang & Cho, "Disentangled Feature-Guided Multi-Exposure High Dynamic Range Imaging", ICASSP 2022
(text in ``../shared/papers/lee_dfgnet.txt``). Official code (test code only, no training script):
``KeuntekLee/DFGNet`` (``DFGNet_model.py``, ``disentanglenet.py``, ``vgg_percep.py``, ``test.py``), whose
layer list this file follows where the paper is silent; every place where they differ is listed below.

Disentangle network (paper Sec. 2.1, Fig. 1; ``disentanglenet.py`` with ``nFeat = 64``, ``outdim = 1024``),
on one RGB frame mapped to [-1, 1] (``x * 2 - 1``, ``test.py``):

- exposure encoder ``E_ex``: reflect-pad 3, 7x7 conv 3 -> 64, ReLU; four downsampling blocks (reflect-pad 1,
  4x4 conv stride 2, ReLU) 64 -> 128 -> 256 -> 256 -> 256; adaptive average pooling; dense 256 -> 1024:
  the exposure vector ``F_ex`` (``C_e = 1024``);
- spatial encoder ``E_sp``: reflect-pad 3, 7x7 conv 3 -> 64; three downsampling blocks (LayerNorm, ReLU,
  reflect-pad 1, 4x4 conv stride 2) 64 -> 128 -> 256 -> 512; two residual blocks (LayerNorm, ReLU,
  reflect-pad 1, 3x3 conv, twice, plus identity); LayerNorm, ReLU, 1x1 conv 512 -> 512: ``F_sp`` of
  ``H/8 x W/8 x 512`` (``C_s = 512``). LayerNorm is the MUNIT one: per image over (C, H, W), unbiased
  std, ``(x - mean) / (std + 1e-5) * gamma + beta`` per channel, ``gamma`` initialized uniform in [0, 1);
- decoder ``D``: two dense 1024 -> 512 layers give AdaIN's mean and scale; AdaIN (per-channel
  normalization of ``F_sp`` over H, W, unbiased std + 1e-5); 1x1 conv 512 -> 512; a residual block; three
  upsampling residual blocks (LayerNorm, ReLU, 3x3 conv, LayerNorm, ReLU, 3x3 transposed conv stride 2
  halving the channels, plus a 3x3 transposed-conv shortcut) 512 -> 256 -> 128 -> 64; LayerNorm, ReLU,
  reflect-pad 1, 3x3 conv 64 -> 3.

DFGNet (Sec. 2.2, Fig. 3; ``DFGNet_model.py`` with ``nChannel = 6``, ``nFeat = 64``), frames ordered
(low, reference, high), inputs ``L_i = [X_i, X~_i] * 2 - 1`` (eq. 7, ``X~_i = X_i ** 2.2 / t_i``):

- one encoder per exposure (weights not shared): 3x3 conv 6 -> 64 (stride 1), 3x3 conv stride 2 -> 128,
  3x3 conv stride 2 -> 256, each followed by PReLU (one slope per channel): stage j has
  ``H / 2^(j-1) x W / 2^(j-1) x 2^(j-1) 64`` features ``F_i``;
- a DFG module per stage: the exposure attention unit (eq. 9) maps each frame's ``F_ex`` by its own dense
  layer 1024 -> C and takes a softmax over the three frames per channel, ``U_ex = sum_i F_i softmax(v)_i``;
  the spatial attention unit (eq. 8) computes ``u = LReLU(conv3x3(sum_k F_k))``, ``s_i = LReLU(conv1x1(
  F_isp_ij))`` (one 1x1 conv shared by the frames) and ``U_sp = sum_i F_i sigmoid(conv3x3_i([u, s_i]))``
  (one 3x3 conv per frame), LeakyReLU slope 0.01; each unit's output plus the reference's ``F_2`` (a
  residual), the two concatenated (2C channels). ``F_isp_ij`` are the spatial encoder's intermediate
  features of the same size: the outputs of its first three blocks (conv, LayerNorm, ReLU) with 64, 128
  and 256 channels at H, H/2, H/4;
- decoder: 4x4 transposed conv stride 2 512 -> 128 + PReLU; concatenation with stage 2's 256 channels,
  4x4 transposed conv stride 2 384 -> 64 + PReLU; concatenation with stage 1's 128 channels, 3x3 conv with
  dilation 2 192 -> 64 + PReLU, 3x3 conv 64 -> 3, tanh.

Output: ``(tanh + 1) / 2`` (``test.py`` compares exactly this with the label), i.e. radiance in [0, 1] in
units of the shortest exposure, where 1 is the saturation level of the shortest frame (Kalantari's label
convention, exposure times ``2^bias`` with the lowest bias 0): non-negative, clipped at 1 as AHDRNet's
sigmoid.

Parameters: 37,289,606 = DFGNet 9,558,467 + exposure encoder 3,026,048 + spatial encoder 12,470,784 +
decoder 12,234,307, counted from the official layer lists. The first three, 25,055,299, are what inference
uses and match the survey's count of the official code (9.56 M + 3.03 M + 12.47 M = 25.06 M); the decoder
only serves the disentangle stage. DFGNet by part: per-exposure encoders 1,118,976 (with PReLUs),
exposure attention units 1,377,600 (three 1024 -> C dense layers at C = 64, 128, 256), spatial attention
units 5,507,264, decoder 1,554,627.

State dict: ``dfg.*`` holds DFGNet under the official names (``conv1_1``, ``eau1.fcs.0``, ``sau1.filter1``,
...), ``disentangle.exposure_encoder.*`` / ``spatial_encoder.*`` / ``decoder.*`` the disentangle network
under ``disentanglenet.py``'s names; the released ``es.pth`` belongs to the other spatial-encoder version
(``Inconv``, ``model``) and would need a key map. 149 MB in float32 (75 MB in bfloat16).

Training (two stages, as the paper):

1. ``stage='disentangle'`` (``training_loss``): the disentangle network alone, on the bracket frames:
   ``L_DIS = L_recon1 + L_recon2 + lambda (L_per1 + L_per2)`` (eq. 1-2, 4-6): each frame reconstructed from
   its own features, and the reference's spatial features decoded with the other two frames' exposure
   vectors against ``Y'_i`` rendered from the ground truth. ``L_per`` compares Gram matrices of VGG-19
   features (``vgg_percep.py``: relu2_2, relu3_4, relu4_4, relu5_2, Gram divided by C H W, L1); VGG-19
   weights cannot be downloaded here, so they are read from ``vgg19_weights`` (torchvision's
   ``vgg19-dcbb9e9d.pth`` layout, ``.pth`` or ``.safetensors``) when given, and otherwise the Gram term is
   left out (the shipped weights' model card says which).
2. ``stage='dfgnet'`` (default): DFGNet with the disentangle network frozen (``freeze: [disentangle.]``,
   ``init_from`` stage 1), L1 on mu-law tone-mapped images (eq. 10-11, ``mu_l1``).

Deviations and readings:

- Tiling needs a finite receptive field, but the exposure vector (a global average pool) and the spatial
  encoder's LayerNorm statistics are whole-image quantities. Under ``torch.inference_mode`` (``run_model``)
  ``prepare`` computes them over the whole image, in row strips with a halo so that a 6000x4000 bracket
  stays within memory (exactly the whole-image values), and passes them to ``refine`` packed into a
  ``context`` prior (a 32x32 block repeated over the image, hence ``size_divisor`` 32); ``refine`` is then
  local. The strips hold about 2.4 GB at a width of 6000 (measured on a 512x6000 bracket), besides the
  bracket and ``lin``; a 6000x4000 bracket needs about 7 GB with the default tile budget. Elsewhere
  (training, validation, direct calls) ``refine`` computes them from the image it is given,
  as the official code runs both encoders on its training crops and on whole test images. ``prepare``
  leaves them out there because training caches ``prepare``'s output before the weights are loaded.
- ``X~_i`` is the frame linearized with the response given to ``prepare`` (the response that made the
  training scene, or the user's / a calibrated one at inference), divided by ``t_i``; without a response
  it is the paper's ``X_i ** 2.2 / t_i``. The stage-1 target ``Y'_i`` keeps the paper's gamma 2.2: the
  training loss has no response to render with.
- ``Y'_i = clip((t_i Y) ** (1 / 2.2), 0, 1)``, the inverse of eq. 7 with saturation, which is what the text
  says it is ("mapped ... via the inverse version of gamma correction"); the printed eq. 3,
  ``t_i Y ** (1 / 2.2)``, is not that inverse and leaves the LDR range by up to a factor ``t_i``.
- The reference may be any of the three frames: the other two, in exposure order, take the roles of the
  low and high frames. The paper uses the middle frame.
- Per-exposure encoders: the paper says three 3x3 stride-2 convolutions, but its stage sizes
  (``H / 2^(j-1)``) and the code have the first one at stride 1; the code is followed.
- Disentangle decoder: the paper says "4 bilinear upsample convolutional blocks"; the code has one residual
  block and three transposed-convolution upsampling blocks (8x up, the inverse of the spatial encoder);
  the code is followed.
- Exposure attention: the paper's "softmax along channel dimension" is, in the code, a softmax over the
  three frames for each channel (as in selective-kernel fusion); the code is followed.
- One stored version of ``DFGNet_model.py`` (``EAU`` / ``SAU`` classes) calls ``eau3`` for the spatial
  branch of stage 3 and ``sau2`` with the exposure vectors at stage 2, which cannot run (dense 1024 -> C
  layers applied to feature maps); the other (``SKFF_EN_FC`` / ``SKFF_SP`` names, classes not included)
  pairs each stage's exposure unit with the exposure vectors and its spatial unit with the spatial
  features, as here and in the paper's figure.
- The spatial features fed to the SAUs: the code reads them with forward hooks on ``Inconv``, ``model[0]``
  and ``model[1]`` of a spatial-encoder version that is not in the repository; the outputs of the stored
  version's first three blocks (after LayerNorm and ReLU) are the same sizes and are used.
- Stage 1 losses are computed on the [-1, 1] images the network works on (mean absolute error per frame,
  summed over frames as eq. 1 and 4 sum over i); VGG inputs are mapped back to [0, 1] and ImageNet-
  normalized (the official loss feeds them unnormalized; its training script is not released). ``lambda``
  is not given in the paper: ``perceptual_weight`` (default 1). Stage 1 crops patches to a multiple of 8
  (the decoder restores H/8 exactly).
- Images smaller than 16 pixels on a side are replicate-padded to 16 before the encoders (four stride-2
  layers with reflection padding need it); ``refine`` replicate-pads to a multiple of 4 and crops back.
- LayerNorm and AdaIN statistics are computed in float32 also under bf16 autocast.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from hdrkit.camera.response import GammaResponse
from hdrkit.errors import HdrkitError
from hdrkit.models.base import MergeNet

__all__ = ["DFGNet", "DisentangleNet", "GAMMA", "STAGES", "cross_exposure_target", "load_vgg19_features", "pack_context",
           "unpack_context"]

GAMMA = 2.2
"""Gamma of eq. 3 and eq. 7 (Kalantari & Ramamoorthi 2017's convention)."""

FEATURES = 64
"""``nFeat`` of DFGNet and of both encoders (``test.py``: ``DFGNet(6, 64)``, ``Exposure_Encoder(nFeat=64)``)."""

EXPOSURE_DIM = 1024
"""``C_e``, the length of the exposure vector (``Exposure_Encoder(outdim=1024)``)."""

NORM_EPS = 1e-5
"""Added to the standard deviation in LayerNorm and AdaIN (``disentanglenet.py``)."""

LEAKY_SLOPE = 0.01
"""Slope of the SAU's LeakyReLU (``nn.LeakyReLU()`` default in ``DFGNet_model.py``)."""

MIN_ENCODER_SIZE = 16
"""Smallest side the encoders take: four stride-2 layers, each reflection-padded by 1."""

NET_DIVISOR = 4
"""DFGNet and the spatial features it reads have two stride-2 levels."""

CONTEXT_BLOCK = 32
"""Side of the block that carries the whole-image context prior (one copy per block, so any tile that
starts on the block grid holds a full copy)."""

STRIP_PIXELS = 1 << 20
"""Core pixels per row strip when ``prepare`` runs the encoders over a whole image."""

STRIP_HALO = 64
"""Rows above and below a strip: more than the exposure encoder's receptive radius (about 50 px), a
multiple of its total stride 16, so a strip's kept rows equal the whole-image computation's."""

STAGES = ("dfgnet", "disentangle")
"""Training stages: the merge network (default) and the disentangle network (``training_loss``)."""

STAGE1_ONLY = ("disentangle.decoder.", "disentangle.spatial_encoder.conv3.", "disentangle.spatial_encoder.resblock",
               "disentangle.spatial_encoder.ln_tail.", "disentangle.spatial_encoder.tailconv.")
"""Parameter-name prefixes only the disentangle stage uses: ``forward`` reads the spatial encoder up to its
third block's output (``ln3``) and never runs the decoder."""

VGG19_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512)
"""VGG-19 ``features`` up to conv5_2 (torchvision's indices: conv5_2 is ``features.30``)."""

GRAM_TAPS = (8, 17, 26, 31)
"""``features`` indices of relu2_2, relu3_4, relu4_4 and relu5_2 (``vgg_percep.py``'s style loss)."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _stats(x: torch.Tensor) -> torch.Tensor:
    """Per-sample LayerNorm statistics over (C, H, W): (B, 2) float32 ``[mean, unbiased std]``."""
    flat = x.float().flatten(1)
    return torch.stack([flat.mean(1), flat.std(1)], 1)


class LayerNorm(nn.Module):
    """MUNIT's LayerNorm (``disentanglenet.py``): per-sample statistics over (C, H, W), per-channel affine.

    ``forward(x, stats)``: ``stats`` (B, 2) ``[mean, std]`` computed elsewhere (e.g. over a whole image
    while ``x`` is a tile of it), or None to compute them from ``x``.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.empty(channels).uniform_())
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, stats: torch.Tensor | None = None) -> torch.Tensor:
        s = _stats(x) if stats is None else stats.float()
        y = (x.float() - s[:, 0, None, None, None]) / (s[:, 1, None, None, None] + NORM_EPS)
        return (y * self.gamma[:, None, None] + self.beta[:, None, None]).to(x.dtype)


def _rpad(x: torch.Tensor, p: int) -> torch.Tensor:
    return F.pad(x, (p, p, p, p), mode="reflect")


class ResBlock(nn.Module):
    """LayerNorm, ReLU, reflect-pad 1, 3x3 conv, twice, plus identity (``disentanglenet.ResBlock``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.ln1 = LayerNorm(channels)
        self.ln2 = LayerNorm(channels)
        self.conv1 = nn.Conv2d(channels, channels, 3)
        self.conv2 = nn.Conv2d(channels, channels, 3)

    def forward(self, x):
        y = self.conv1(_rpad(F.relu(self.ln1(x)), 1))
        return x + self.conv2(_rpad(F.relu(self.ln2(y)), 1))


class ResBlockUp(nn.Module):
    """Upsampling residual block (``disentanglenet.ResBlockT``): channels halved, size doubled."""

    def __init__(self, channels: int):
        super().__init__()
        self.ln1 = LayerNorm(channels)
        self.ln2 = LayerNorm(channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.ConvTranspose2d(channels, channels // 2, 3, stride=2, padding=1, output_padding=1)
        self.conv_identity = nn.ConvTranspose2d(channels, channels // 2, 3, stride=2, padding=1, output_padding=1)

    def forward(self, x):
        y = self.conv1(F.relu(self.ln1(x)))
        return self.conv2(F.relu(self.ln2(y))) + self.conv_identity(x)


class ExposureEncoder(nn.Module):
    """``E_ex``: (B, 3, H, W) in [-1, 1] -> (B, 1024) exposure vector (H, W >= 16)."""

    def __init__(self, features: int = FEATURES, out_dim: int = EXPOSURE_DIM):
        super().__init__()
        nf = features
        self.headconv = nn.Conv2d(3, nf, 7)
        self.conv1 = nn.Conv2d(nf, nf * 2, 4, stride=2)
        self.conv2 = nn.Conv2d(nf * 2, nf * 4, 4, stride=2)
        self.conv3 = nn.Conv2d(nf * 4, nf * 4, 4, stride=2)
        self.conv4 = nn.Conv2d(nf * 4, nf * 4, 4, stride=2)
        self.fc = nn.Linear(nf * 4, out_dim)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """The map before pooling: (B, 256, floor(H/16), floor(W/16))."""
        y = F.relu(self.headconv(_rpad(x, 3)))
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            y = F.relu(conv(_rpad(y, 1)))
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.feature_map(x).float().mean((2, 3)).to(x.dtype))


class SpatialEncoder(nn.Module):
    """``E_sp``: (B, 3, H, W) in [-1, 1] -> (B, 512, H/8, W/8) spatial features."""

    def __init__(self, features: int = FEATURES):
        super().__init__()
        nf = features
        self.headconv = nn.Conv2d(3, nf, 7)
        self.ln1 = LayerNorm(nf)
        self.conv1 = nn.Conv2d(nf, nf * 2, 4, stride=2)
        self.ln2 = LayerNorm(nf * 2)
        self.conv2 = nn.Conv2d(nf * 2, nf * 4, 4, stride=2)
        self.ln3 = LayerNorm(nf * 4)
        self.conv3 = nn.Conv2d(nf * 4, nf * 8, 4, stride=2)
        self.resblock1 = ResBlock(nf * 8)
        self.resblock2 = ResBlock(nf * 8)
        self.ln_tail = LayerNorm(nf * 8)
        self.tailconv = nn.Conv2d(nf * 8, nf * 8, 1)

    def pre_norm(self, x: torch.Tensor, level: int, stats: torch.Tensor | None = None) -> torch.Tensor:
        """The conv output that LayerNorm ``level`` (1, 2, 3) normalizes; ``stats`` (B, level - 1, 2) are
        the statistics of the LayerNorms before it (None: from ``x``)."""
        y = self.headconv(_rpad(x, 3))
        for k, (ln, conv) in enumerate(((self.ln1, self.conv1), (self.ln2, self.conv2))[: level - 1]):
            y = conv(_rpad(F.relu(ln(y, None if stats is None else stats[:, k])), 1))
        return y

    def levels(self, x: torch.Tensor, stats: torch.Tensor | None = None) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The first three blocks' outputs, 64 / 128 / 256 channels at H, H/2, H/4 (the SAUs' ``F_isp``),
        and the ``ln1..ln3`` statistics used (B, 3, 2): ``stats`` from elsewhere (the whole image), or
        None to compute them from ``x``."""
        out, used = [], []
        y = self.headconv(_rpad(x, 3))
        for k, (ln, conv) in enumerate(((self.ln1, self.conv1), (self.ln2, self.conv2), (self.ln3, None))):
            s = _stats(y) if stats is None else stats[:, k]
            used.append(s)
            f = F.relu(ln(y, s))
            out.append(f)
            if conv is not None:
                y = conv(_rpad(f, 1))
        return out, torch.stack(used, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv3(_rpad(self.levels(x)[0][2], 1))
        y = self.resblock2(self.resblock1(y))
        return self.tailconv(F.relu(self.ln_tail(y)))


def adain(x: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """AdaIN (Huang & Belongie 2017) as ``disentanglenet.AdaIN``: per-channel normalization of ``x``
    (B, C, H, W) over H, W (unbiased std + 1e-5), times ``scale`` plus ``mean`` (B, C)."""
    xf = x.float()
    m = xf.mean((2, 3), keepdim=True)
    s = xf.flatten(2).std(2)[..., None, None] + NORM_EPS
    return ((xf - m) / s * scale.float()[..., None, None] + mean.float()[..., None, None]).to(x.dtype)


class Decoder(nn.Module):
    """``D``: spatial features (B, 512, h, w) and exposure vector (B, 1024) -> (B, 3, 8h, 8w) in [-1, 1]."""

    def __init__(self, channels: int = FEATURES * 8, exposure_dim: int = EXPOSURE_DIM):
        super().__init__()
        c = channels
        self.fc_mean = nn.Linear(exposure_dim, c)
        self.fc_var = nn.Linear(exposure_dim, c)
        self.headconv = nn.Conv2d(c, c, 1)
        self.resblock = ResBlock(c)
        self.resblockt1 = ResBlockUp(c)
        self.resblockt2 = ResBlockUp(c // 2)
        self.resblockt3 = ResBlockUp(c // 4)
        self.ln_tail = LayerNorm(c // 8)
        self.conv_tail = nn.Conv2d(c // 8, 3, 3)

    def forward(self, sp: torch.Tensor, ex: torch.Tensor) -> torch.Tensor:
        y = self.headconv(adain(sp, self.fc_mean(ex), self.fc_var(ex)))
        y = self.resblockt3(self.resblockt2(self.resblockt1(self.resblock(y))))
        return self.conv_tail(_rpad(F.relu(self.ln_tail(y)), 1))


class DisentangleNet(nn.Module):
    """The disentangle network of Fig. 1: ``exposure_encoder``, ``spatial_encoder``, ``decoder``."""

    def __init__(self):
        super().__init__()
        self.exposure_encoder = ExposureEncoder()
        self.spatial_encoder = SpatialEncoder()
        self.decoder = Decoder()


class ExposureAttention(nn.Module):
    """EAU (eq. 9, ``DFGNet_model.EAU``): per-frame dense 1024 -> C, softmax over the three frames."""

    def __init__(self, channels: int, frames: int = 3):
        super().__init__()
        self.fcs = nn.ModuleList([nn.Linear(EXPOSURE_DIM, channels) for _ in range(frames)])

    def forward(self, feats: list[torch.Tensor], exposure: torch.Tensor) -> torch.Tensor:
        """``feats``: one (B, C, H, W) per frame; ``exposure`` (B, frames, 1024)."""
        v = torch.stack([fc(exposure[:, i]) for i, fc in enumerate(self.fcs)], 1).float().softmax(1)
        return sum(f * v[:, i, :, None, None].to(f.dtype) for i, f in enumerate(feats))


class SpatialAttention(nn.Module):
    """SAU (eq. 8, ``DFGNet_model.SAU``): sigmoid gates from the summed features and each frame's ``F_isp``."""

    def __init__(self, channels: int, frames: int = 3):
        super().__init__()
        c = channels
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.filter1 = nn.Conv2d(2 * c, c, 3, padding=1)
        self.filter2 = nn.Conv2d(2 * c, c, 3, padding=1)
        self.filter3 = nn.Conv2d(2 * c, c, 3, padding=1)
        self.feat_conv = nn.Conv2d(c, c, 1)

    def forward(self, feats: list[torch.Tensor], spatial: list[torch.Tensor]) -> torch.Tensor:
        act = lambda y: F.leaky_relu(y, LEAKY_SLOPE)  # noqa: E731
        u = act(self.conv1(sum(feats)))
        out = 0
        for f, s, filt in zip(feats, spatial, (self.filter1, self.filter2, self.filter3)):
            out = out + f * torch.sigmoid(filt(torch.cat([u, act(self.feat_conv(s))], 1)))
        return out


class DFGMerge(nn.Module):
    """The merging network of Fig. 3 (``DFGNet_model.DFGNet``, names as there).

    ``forward(x, exposure, spatial)``: ``x`` (B, 3, 6, H, W) = ``[X_i, X~_i] * 2 - 1`` of the (low,
    reference, high) frames, H and W multiples of 4; ``exposure`` (B, 3, 1024); ``spatial``: per stage a
    list of the three frames' ``F_isp`` (B, C_j, H_j, W_j). Returns tanh output (B, 3, H, W) in (-1, 1).
    """

    def __init__(self, in_channels: int = 6, features: int = FEATURES):
        super().__init__()
        nf = features
        for j, (cin, cout, stride) in enumerate(((in_channels, nf, 1), (nf, nf * 2, 2), (nf * 2, nf * 4, 2)), 1):
            for i in (1, 2, 3):
                setattr(self, f"conv{j}_{i}", nn.Conv2d(cin, cout, 3, padding=1, stride=stride))
                setattr(self, f"prelu{j}_{i}", nn.PReLU(cout))
        for j, c in enumerate((nf, nf * 2, nf * 4), 1):
            setattr(self, f"eau{j}", ExposureAttention(c))
            setattr(self, f"sau{j}", SpatialAttention(c))
        self.tconv1 = nn.ConvTranspose2d(nf * 8, nf * 2, 4, 2, 1)
        self.fuse_3_prelu = nn.PReLU(nf * 2)
        self.tconv2 = nn.ConvTranspose2d(nf * 4 + nf * 2, nf, 4, 2, 1)
        self.fuse_2_prelu = nn.PReLU(nf)
        self.conv_tail = nn.Conv2d(nf * 3, nf, 3, padding=2, dilation=2)
        self.tail_prelu = nn.PReLU(nf)
        self.conv_tail2 = nn.Conv2d(nf, 3, 3, padding=1)

    def forward(self, x: torch.Tensor, exposure: torch.Tensor, spatial: list[list[torch.Tensor]]) -> torch.Tensor:
        feats = []  # feats[j][i]: stage j+1, frame i
        level = [x[:, i] for i in range(3)]
        for j in (1, 2, 3):
            level = [getattr(self, f"prelu{j}_{i + 1}")(getattr(self, f"conv{j}_{i + 1}")(level[i])) for i in range(3)]
            feats.append(level)
        fused = []
        for j in (1, 2, 3):
            f = feats[j - 1]
            ex = getattr(self, f"eau{j}")(f, exposure) + f[1]
            sp = getattr(self, f"sau{j}")(f, spatial[j - 1]) + f[1]
            fused.append(torch.cat([ex, sp], 1))
        y = self.fuse_3_prelu(self.tconv1(fused[2]))
        y = self.fuse_2_prelu(self.tconv2(torch.cat([fused[1], y], 1)))
        y = self.tail_prelu(self.conv_tail(torch.cat([y, fused[0]], 1)))
        return torch.tanh(self.conv_tail2(y).float())


def _at_least(x: torch.Tensor, size: int) -> torch.Tensor:
    """Replicate-pad (..., H, W) at the bottom / right to at least ``size`` x ``size``."""
    h, w = x.shape[-2:]
    if h >= size and w >= size:
        return x
    shape = x.shape
    y = F.pad(x.reshape(-1, *shape[-3:]), (0, max(0, size - w), 0, max(0, size - h)), mode="replicate")
    return y.reshape(*shape[:-2], *y.shape[-2:])


def _strips(fn, x: torch.Tensor, stride: int, rows: int):
    """Yield ``fn(x)``'s output row blocks, computed on row strips of ``x`` with ``STRIP_HALO`` rows of halo.

    ``fn`` is a stack of convolutions with total stride ``stride`` whose receptive radius is below the halo;
    ``rows`` and the halo are multiples of ``stride``, so every kept row equals the whole-image one.
    """
    h = x.shape[-2]
    for y0 in range(0, h, rows):
        y1 = min(h, y0 + rows)
        s, e = max(0, y0 - STRIP_HALO), min(h, y1 + STRIP_HALO)
        out = fn(x[..., s:e, :])
        a = (y0 - s) // stride
        z = out.shape[-2] if y1 == h else (y1 - s) // stride
        yield out[..., a:z, :]


CONTEXT_SIZE = 3 * EXPOSURE_DIM + 3 * 3 * 2
"""Numbers in the whole-image context: three exposure vectors and three frames' ``ln1..ln3`` statistics."""


def pack_context(vec: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, K) whole-image numbers -> (B, C, h, w) prior: a ``bh x bw`` block (``min(32, h) x min(32, w)``)
    repeated over the image; block position-major, channel-minor; the first two slots hold ``bh, bw``.
    Any crop that starts on the block grid holds a full copy in its top-left corner (``unpack_context``)."""
    b, k = vec.shape
    bh, bw = min(CONTEXT_BLOCK, h), min(CONTEXT_BLOCK, w)
    c = -(-(k + 2) // (bh * bw))
    flat = torch.zeros(b, c * bh * bw, dtype=torch.float32, device=vec.device)
    flat[:, 0], flat[:, 1] = bh, bw
    flat[:, 2 : 2 + k] = vec.float()
    block = flat.reshape(b, bh, bw, c).permute(0, 3, 1, 2)
    return block.repeat(1, 1, -(-h // bh), -(-w // bw))[..., :h, :w].contiguous()


def unpack_context(ctx: torch.Tensor, k: int = CONTEXT_SIZE) -> torch.Tensor:
    """Inverse of ``pack_context`` on a crop that starts on the block grid and is at least one block large
    (``run_model``'s tiles are: they start on the ``size_divisor`` grid and span at least their margin):
    (B, C, H, W) -> (B, k)."""
    bh, bw = int(ctx[0, 0, 0, 0]), int(ctx[0, 1, 0, 0])
    return ctx[:, :, :bh, :bw].float().permute(0, 2, 3, 1).reshape(ctx.shape[0], -1)[:, 2 : 2 + k]


class DFGNet(MergeNet):
    """DFGNet (Lee, Jang & Cho, ICASSP 2022): disentangle network + DFG merging network (module docstring).

    Args:
        stage: ``'dfgnet'`` (default; ``training_loss`` is the given loss on the merged HDR) or
            ``'disentangle'`` (``training_loss`` is the disentangle network's ``L_DIS``, eq. 6).
        vgg19_weights: path of VGG-19 weights for the Gram (perceptual) term of ``L_DIS``; read on first
            use in the disentangle stage, kept outside the state dict. None: the term is left out.
        perceptual_weight: ``lambda`` of eq. 6.
    """

    frames = 3
    size_divisor = CONTEXT_BLOCK  # the context prior's block grid; a multiple of the network's 4
    context = 32  # receptive radius of refine: 25 px from the layer list (21 measured), plus slack
    # measured fp32 peak / pixel: refine alone 6,033 at 512x512 and 6,569 at 256x256; run_model with
    # 448x448 padded tiles 8,000 (1.59 GB over a 1.5 GB budget sized with 7,000, 768x1024 bracket)
    bytes_per_pixel = 8000

    def __init__(self, stage: str = "dfgnet", vgg19_weights: str | None = None, perceptual_weight: float = 1.0):
        super().__init__()
        if stage not in STAGES:
            raise HdrkitError(f"DFGNet stage must be one of {', '.join(STAGES)}, got {stage!r}")
        if vgg19_weights is not None and not Path(vgg19_weights).is_file():
            raise HdrkitError(f"vgg19_weights: {vgg19_weights} does not exist")
        self.stage = stage
        self.vgg19_weights = vgg19_weights
        self.perceptual_weight = float(perceptual_weight)
        self.disentangle = DisentangleNet()
        self.dfg = DFGMerge()
        object.__setattr__(self, "_vgg", None)  # not a submodule: never in the state dict or the optimizer
        # forward never reaches these (stage 1 only), so the gradient test skips them
        self.unused_parameters = tuple(n for n, _ in self.named_parameters() if n.startswith(STAGE1_ONLY))

    @staticmethod
    def order(exposure_times: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """(B, 3) frame indices in the roles (low, reference, high): the non-reference frames by exposure."""
        order = exposure_times.argsort(dim=1)
        others = torch.stack([order[i][order[i] != reference[i]] for i in range(order.shape[0])])
        return torch.stack([others[:, 0], reference, others[:, 1]], 1)

    def _encoders_grad(self) -> bool:
        return torch.is_grad_enabled() and any(p.requires_grad for p in self.disentangle.parameters())

    def whole_image_context(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Exposure vectors (B, 3, 1024) and ``ln1..ln3`` statistics (B, 3, 3, 2) of the ordered frames
        ``x`` (B, 3, 3, H, W), codes in [0, 1], in one pass (with gradients where enabled)."""
        b = x.shape[0]
        xs = _at_least(x.flatten(0, 1) * 2 - 1, MIN_ENCODER_SIZE)
        ex = self.disentangle.exposure_encoder(xs)
        return ex.reshape(b, 3, -1), self.disentangle.spatial_encoder.levels(xs)[1].reshape(b, 3, 3, 2)

    def whole_image_context_strips(self, ldr: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``whole_image_context`` of frames ``ldr[b, idx[b]]`` (``ldr`` (B, N, 3, H, W)), computed frame by
        frame in row strips (no gradient, float64 sums): memory bounded by ``STRIP_PIXELS`` whatever H, W."""
        enc_e, enc_s = self.disentangle.exposure_encoder, self.disentangle.spatial_encoder
        exs, all_stats = [], []
        for b in range(ldr.shape[0]):
            for i in range(3):
                xm = _at_least(ldr[b, int(idx[b, i])][None].float().clamp(0, 1) * 2 - 1, MIN_ENCODER_SIZE)
                rows = max(MIN_ENCODER_SIZE, STRIP_PIXELS // xm.shape[-1] // MIN_ENCODER_SIZE * MIN_ENCODER_SIZE)
                acc = sum(f.double().sum((2, 3)) for f in _strips(enc_e.feature_map, xm, MIN_ENCODER_SIZE, rows))
                cells = (xm.shape[-2] // MIN_ENCODER_SIZE) * (xm.shape[-1] // MIN_ENCODER_SIZE)
                exs.append(enc_e.fc((acc / cells).float()))
                stats = []
                for level in (1, 2, 3):
                    prev = torch.stack(stats, 1) if stats else None
                    fn = lambda t, lv=level, pv=prev: enc_s.pre_norm(t, lv, pv)  # noqa: E731
                    s1 = s2 = n = 0
                    for f in _strips(fn, xm, 2 ** (level - 1), rows):
                        fd = f.double()
                        s1, s2, n = s1 + fd.sum(), s2 + fd.square().sum(), n + fd.numel()
                    std = ((s2 - s1 * s1 / n).clamp_min(0) / max(n - 1, 1)).sqrt()
                    stats.append(torch.stack([s1 / n, std]).float()[None])
                all_stats.append(torch.stack(stats, 1))
        b = ldr.shape[0]
        return torch.cat(exs).reshape(b, 3, -1), torch.cat(all_stats).reshape(b, 3, 3, 2)

    def prepare(self, ldr, exposure_times, reference, response=None):
        """``lin`` (B, N, 3, H, W): each frame linearized with ``response`` (gamma 2.2 if None) over ``t_i``;
        under ``torch.inference_mode`` also ``context``, the packed whole-image exposure vectors and
        LayerNorm statistics (weight-dependent, so never computed where training would cache them)."""
        response = response or GammaResponse(GAMMA)
        lin = response.inverse(ldr.float()) / exposure_times[:, :, None, None, None]
        priors = {"lin": lin}
        if torch.is_inference_mode_enabled():
            ex, stats = self.whole_image_context_strips(ldr, self.order(exposure_times, reference))
            priors["context"] = pack_context(torch.cat([ex.flatten(1), stats.flatten(1)], 1), *ldr.shape[-2:])
        return priors

    def refine(self, ldr, exposure_times, reference, *, lin, context=None):
        b, _, _, h, w = ldr.shape
        idx = self.order(exposure_times, reference)
        bi = torch.arange(b, device=ldr.device)[:, None]
        x = ldr[bi, idx].clamp(0, 1)
        xl = lin[bi, idx]
        ph, pw = -h % NET_DIVISOR, -w % NET_DIVISOR
        with torch.set_grad_enabled(self._encoders_grad()):
            if context is not None:
                vec = unpack_context(context)
                ex = vec[:, : 3 * EXPOSURE_DIM].reshape(b, 3, EXPOSURE_DIM)
                stats = vec[:, 3 * EXPOSURE_DIM :].reshape(b, 3, 3, 2)
            elif ph or pw or min(h, w) < MIN_ENCODER_SIZE:
                ex, stats = self.whole_image_context(x.float())
            else:  # the image as given: the spatial encoder computes its statistics inline
                ex = self.disentangle.exposure_encoder(x.flatten(0, 1) * 2 - 1).reshape(b, 3, -1)
                stats = None
            if ph or pw:
                x = F.pad(x.flatten(1, 2), (0, pw, 0, ph), mode="replicate").reshape(b, 3, 3, h + ph, w + pw)
                xl = F.pad(xl.flatten(1, 2), (0, pw, 0, ph), mode="replicate").reshape(b, 3, 3, h + ph, w + pw)
            levels, _ = self.disentangle.spatial_encoder.levels(
                x.flatten(0, 1) * 2 - 1, None if stats is None else stats.flatten(0, 1))
        spatial = [list(f.reshape(b, 3, *f.shape[1:]).unbind(1)) for f in levels]
        inp = torch.cat([x, xl.to(x.dtype)], 2) * 2 - 1
        y = self.dfg(inp, ex.to(inp.dtype), spatial)
        return ((y + 1) / 2)[..., :h, :w]

    def training_loss(self, ldr, exposure_times, reference, hdr, *, priors, loss_fn):
        """Stage ``dfgnet``: ``loss_fn`` on the merged HDR (priors as cropped, context from the patch).
        Stage ``disentangle``: ``L_DIS`` (eq. 6) of the disentangle network on the frames and ``hdr``."""
        if self.stage == "dfgnet":
            return super().training_loss(ldr, exposure_times, reference, hdr, priors=priors, loss_fn=loss_fn)
        return self.disentangle_loss(ldr, exposure_times, reference, hdr)

    def disentangle_loss(self, ldr: torch.Tensor, exposure_times: torch.Tensor, reference: torch.Tensor,
                         hdr: torch.Tensor) -> torch.Tensor:
        """``L_recon1 + L_recon2 + lambda (L_per1 + L_per2)`` (eq. 1-2, 4-6) on (B, 3, 3, H, W) frames and
        their ground truth ``hdr`` (B, 3, H, W) in units of the shortest exposure; H, W cropped to
        multiples of 8 (at least 16)."""
        b, n, _, h, w = ldr.shape
        if n != 3:
            raise HdrkitError(f"DFGNet takes exactly 3 frames, got {n}")
        h8, w8 = h // 8 * 8, w // 8 * 8
        if min(h8, w8) < MIN_ENCODER_SIZE:
            raise HdrkitError(f"disentangle training needs patches of at least {MIN_ENCODER_SIZE} px, got {h}x{w}")
        idx = self.order(exposure_times, reference)
        bi = torch.arange(b, device=ldr.device)[:, None]
        x = ldr[bi, idx][..., :h8, :w8].clamp(0, 1) * 2 - 1
        t = exposure_times[bi, idx]
        y = hdr[..., :h8, :w8].float().clamp_min(0)
        net = self.disentangle
        xs = x.flatten(0, 1)
        sp = net.spatial_encoder(xs).reshape(b, 3, -1, h8 // 8, w8 // 8)
        ex = net.exposure_encoder(xs).reshape(b, 3, -1)
        rec1 = net.decoder(sp.flatten(0, 1), ex.flatten(0, 1)).float()
        cross = net.decoder(sp[:, 1].repeat(2, 1, 1, 1), torch.cat([ex[:, 0], ex[:, 2]])).float()
        target = cross_exposure_target(y.repeat(2, 1, 1, 1), torch.cat([t[:, 0], t[:, 2]]))
        # eq. 1 and 4 sum over frames: mean absolute error per frame, summed
        loss = 3 * (rec1 - xs.float()).abs().mean() + 2 * (cross - target).abs().mean()
        if self.vgg19_weights is not None and self.perceptual_weight:
            vgg = self._vgg19(ldr.device)
            per = 3 * _gram_l1(vgg, rec1, xs.float()) + 2 * _gram_l1(vgg, cross, target)
            loss = loss + self.perceptual_weight * per
        return loss

    def _vgg19(self, device) -> nn.Module:
        if self._vgg is None:
            object.__setattr__(self, "_vgg", load_vgg19_features(self.vgg19_weights))
        return self._vgg.to(device)


def cross_exposure_target(hdr: torch.Tensor, exposure_time: torch.Tensor) -> torch.Tensor:
    """``Y'_i`` of eq. 3 read as the inverse of eq. 7: ``clip((t_i Y) ** (1 / 2.2), 0, 1)``, mapped to
    [-1, 1]. ``hdr`` (B, 3, H, W) in units of the shortest exposure, ``exposure_time`` (B,)."""
    y = exposure_time.float()[:, None, None, None] * hdr.float().clamp_min(0)
    return y.clamp(0, 1).pow(1 / GAMMA) * 2 - 1


def load_vgg19_features(path: str | Path) -> nn.Sequential:
    """VGG-19 ``features`` up to relu5_2 from torchvision-layout weights (``features.N.weight``), frozen."""
    layers, cin = [], 3
    for v in VGG19_LAYERS:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU()]
            cin = v
    net = nn.Sequential(*layers)
    p = Path(path)
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(p))
        else:
            state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same one-line message
        raise HdrkitError(f"{p}: not readable VGG-19 weights ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    state = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    missing = [k for k in net.state_dict() if k not in state]
    if missing:
        raise HdrkitError(f"{p}: not VGG-19 weights in torchvision's layout (missing features.{missing[0]})")
    net.load_state_dict({k: state[k] for k in net.state_dict()})
    for q in net.parameters():
        q.requires_grad_(False)
    return net.eval()


def _gram(f: torch.Tensor) -> torch.Tensor:
    b, c, h, w = f.shape
    f = f.float().reshape(b, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)


def _gram_l1(vgg: nn.Sequential, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Sum over relu2_2, relu3_4, relu4_4, relu5_2 of the L1 distance of Gram matrices (``vgg_percep.py``);
    inputs in [-1, 1], mapped to [0, 1] and ImageNet-normalized."""
    mean = torch.tensor(IMAGENET_MEAN, device=pred.device)[:, None, None]
    std = torch.tensor(IMAGENET_STD, device=pred.device)[:, None, None]
    a, b = ((pred + 1) / 2 - mean) / std, ((target + 1) / 2 - mean) / std
    loss = 0
    for i, layer in enumerate(vgg):
        a, b = layer(a), layer(b)
        if i in GRAM_TAPS:
            loss = loss + (_gram(a) - _gram(b)).abs().mean()
    return loss

