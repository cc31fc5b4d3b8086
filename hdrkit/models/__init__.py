"""Learned merge networks, one file per paper, all with ``forward(ldr, exposure_times, reference, response=None)``.

``MODELS`` maps a name to its class; ``create_model`` builds one, with its packaged weights by default.
The networks are registered in the one method registry (``hdrkit.methods``) through ``LEARNED_CARDS``.
"""

from __future__ import annotations

from pathlib import Path

from hdrkit.errors import HdrkitError
from hdrkit.methods import MethodCard, _learned
from hdrkit.models.ahdrnet import AHDRNet
from hdrkit.models.base import MergeNet, check_bracket
from hdrkit.models.deghost_refine import DeghostRefineNet
from hdrkit.models.deephdr import DeepHDRResNet, DeepHDRUNet
from hdrkit.models.kalantari2017 import Kalantari2017Direct, Kalantari2017WE, Kalantari2017WIE
from hdrkit.models.kpn_hdr import KPNHDR
from hdrkit.models.stackhdr2020 import StackHDR
from hdrkit.models.dfgnet import DFGNet
from hdrkit.models.hdrcnn2017 import HDRCNN
from hdrkit.models.singlehdr2020 import SingleHDR
from hdrkit.models.weights import WEIGHTS, load_weights, weights_path

__all__ = ["MODELS", "LEARNED_CARDS", "AHDRNet", "DeghostRefineNet", "HDRCNN", "Kalantari2017Direct", "Kalantari2017WE", "Kalantari2017WIE", "MergeNet", "check_bracket", "create_model"]

MODELS: dict[str, type[MergeNet]] = {
    "ahdrnet": AHDRNet,
    "deghost_refine": DeghostRefineNet,
    "deephdr_resnet": DeepHDRResNet,
    "deephdr_unet": DeepHDRUNet,
    "kpn_hdr": KPNHDR,
    "stackhdr": StackHDR,
    "dfgnet": DFGNet,
    "hdrcnn": HDRCNN,
    "kalantari2017_direct": Kalantari2017Direct,
    "kalantari2017_we": Kalantari2017WE,
    "kalantari2017_wie": Kalantari2017WIE,
    "singlehdr": SingleHDR,
}

_KALANTARI = "Kalantari & Ramamoorthi, Deep high dynamic range imaging of dynamic scenes, ACM TOG (SIGGRAPH) 2017"

LEARNED_CARDS = (
    MethodCard("ahdrnet", "merge", "radiance", (3, 3),
               "Yan, Gong, Shi, van den Hengel, Shen, Reid & Zhang, Attention-guided network for ghost-free high dynamic range imaging, CVPR 2019",
               "attention on non-reference features, dilated residual dense merging (1,515,139 parameters)",
               _learned("ahdrnet"), learned=True, weights="ahdrnet.safetensors"),
    MethodCard("deghost_refine", "merge", "radiance", (2, None), "hdrkit (ours): learned refinement of Granados 2013-style deghosting with DIS flow",
               "per-pixel blend of the deghost merge, the frames and flow-warped frames, plus a bounded residual",
               _learned("deghost_refine"), learned=True, weights="deghost_refine.safetensors"),
    *(MethodCard(f"deephdr_{v}", "merge", "radiance", (3, 3),
                 "Wu, Xu, Tai & Tang, Deep high dynamic range imaging with large foreground motions, ECCV 2018",
                 summary, _learned(f"deephdr_{v}"), learned=True, weights=f"deephdr_{v}.safetensors")
      for v, summary in (("resnet", "per-exposure encoders, residual-block merger, decoder with skips; no flow (16,606,339 parameters)"),
                         ("unet", "per-exposure encoders, U-Net merger and decoder with skips; no flow (12,531,587 parameters)"))),
    MethodCard("kpn_hdr", "merge", "radiance", (3, 3),
               "Chung, Kim, Jo, Lee & Cho, Kernel prediction network for detail-preserving high dynamic range imaging",
               "per-pixel 5x5 kernels align {I_i, H_i}, a 4-layer CNN weights the filtered images (32,882,366 parameters)",
               _learned("kpn_hdr"), learned=True, weights="kpn_hdr.safetensors"),
    MethodCard("stackhdr", "single", "radiance", (1, 1),
               "Kim, Lee & Kang, Differentiable HDR image synthesis using multi-exposure images, NeurIPS 2020 Workshop on Differentiable Vision, Graphics, and Physics in ML",
               "recurrent U-Nets (global tone, local edges, refinement; ConvGRU) make EV -3..+3 frames, merged by a differentiable Debevec layer (8,286,638 parameters)",
               _learned("stackhdr"), learned=True, weights="stackhdr.safetensors"),
    MethodCard("dfgnet", "merge", "radiance", (3, 3),
               "Lee, Jang & Cho, Disentangled feature-guided multi-exposure high dynamic range imaging, ICASSP 2022",
               "disentangled exposure / spatial features guide attention-based merging in a U-Net (37,289,606 parameters)",
               _learned("dfgnet"), learned=True, weights="dfgnet.safetensors"),
    MethodCard("hdrcnn", "single", "radiance", (1, 1),
               "Eilertsen, Kronander, Denes, Mantiuk & Unger, HDR image reconstruction from a single exposure using deep CNNs, ACM TOG (SIGGRAPH Asia) 2017",
               "VGG-16 autoencoder predicts log radiance where the photo clipped, blended with the linearized input (29,443,358 parameters)",
               _learned("hdrcnn"), learned=True, weights="hdrcnn.safetensors"),
    *(MethodCard(f"kalantari2017_{v}", "merge", "radiance", (3, 3), _KALANTARI, summary,
                 _learned(f"kalantari2017_{v}"), learned=True, weights=f"kalantari2017_{v}.safetensors")
      for v, summary in (("direct", "DIS-flow alignment, then a 4-layer CNN that outputs the radiance (383,603 parameters)"),
                         ("we", "DIS-flow alignment, then a 4-layer CNN that weights the aligned radiances (383,909 parameters)"),
                         ("wie", "DIS-flow alignment, then a 4-layer CNN that weights and refines the aligned images (384,368 parameters)"))),
    MethodCard("singlehdr", "single", "radiance", (1, 1),
               "Liu, Lai, Chen, Kao, Yang, Chuang & Huang, Single-image HDR reconstruction by learning to reverse the camera pipeline, CVPR 2020",
               "dequantization U-Net, learned inverse response (PCA basis), hallucination of clipped highlights, refinement U-Net (52,099,983 parameters)",
               _learned("singlehdr"), learned=True, weights="singlehdr.safetensors"),
)


def create_model(name: str, pretrained: bool = True, weights: str | Path | None = None) -> MergeNet:
    """Build network ``name`` in eval mode, with the packaged weights (``pretrained``) or a weights file.

    Raises HdrkitError for an unknown name, or when packaged weights are asked for and not shipped.
    """
    if name not in MODELS:
        raise HdrkitError(f"unknown network {name!r}: choose from {', '.join(MODELS)}")
    model = MODELS[name]()
    if weights is not None:
        load_weights(model, weights)
    elif pretrained:
        file = f"{name}.safetensors"
        if file not in WEIGHTS or not weights_path(file).is_file():
            raise HdrkitError(f"no trained weights are shipped for {name!r}; train them with "
                              f"`hdrkit train configs/{name}.yaml` and pass --weights FILE")
        load_weights(model, weights_path(file), sha256=WEIGHTS[file])
    return model.eval()
