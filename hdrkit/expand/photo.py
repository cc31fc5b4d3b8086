"""One photo in, radiance out: ``hdrkit expand`` as one function.

read the photo (any size, 8 or 16 bits, grey or RGB, alpha dropped, RAW encoded to display codes) ->
a registered single-image method (``hdrkit methods``, kind ``single``; learned ones tile through
``hdrkit.models.inference.run_model``) -> linear radiance (3, H, W), scale set by the method.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from hdrkit.camera.response import GammaResponse, Response, response_from_name
from hdrkit.errors import HdrkitError
from hdrkit.methods import apply, get_method, all_methods

__all__ = ["DEFAULT_METHOD", "MIN_SIDE", "MAX_PIXELS", "ExpandResult", "hdr_from_photo", "single_image_methods"]

DEFAULT_METHOD = "landis2002"
"""The method ``hdr_from_photo`` uses unless told otherwise."""

MIN_SIDE = 16
"""Smallest width or height accepted: below it there is no highlight structure to expand."""

MAX_PIXELS = 100_000_000
"""Largest photo accepted (100 MP): the classical operators hold a few float32 copies of the whole image."""


@dataclass
class ExpandResult:
    """What ``hdr_from_photo`` returns: ``hdr`` (3, H, W) linear radiance; ``ldr`` (3, H, W) the codes the method
    saw; ``method``; ``response`` it was given; ``notes``: conversions applied to the input, one line each."""

    hdr: torch.Tensor
    ldr: torch.Tensor
    method: str
    response: Response
    notes: list[str] = field(default_factory=list)


def single_image_methods() -> list[str]:
    """Names of the registered single-image methods."""
    return [n for n, c in all_methods().items() if c.kind == "single"]


def _header(path: Path) -> tuple[tuple[int, int], str] | None:
    """((width, height), Pillow mode) from the file header without decoding, where Pillow can tell."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size, im.mode
    except Exception:  # noqa: BLE001 - only a pre-check; read_ldr reports unreadable files
        return None


def _check_size(path: Path, width: int, height: int) -> None:
    if min(width, height) < MIN_SIDE:
        raise HdrkitError(f"{path}: {width}x{height} pixels is too small to expand; give at least {MIN_SIDE}x{MIN_SIDE}")
    if width * height > MAX_PIXELS:
        raise HdrkitError(f"{path}: {width}x{height} pixels ({width * height / 1e6:.0f} MP) is more than hdrkit expand "
                          f"takes ({MAX_PIXELS / 1e6:.0f} MP); downscale it first")


def hdr_from_photo(path: str | Path, *, method: str = DEFAULT_METHOD, response: str | Response = "gamma",
                   **method_options) -> ExpandResult:
    """Reconstruct a radiance map from one LDR photo.

    Args:
        path: JPEG, PNG or TIFF (8 or 16 bits; grey is expanded to RGB, alpha dropped), or camera RAW
            (developed linearly, then encoded with gamma 2.2 so methods see display codes as they were trained).
        method: a single-image method (``single_image_methods()``; default :data:`DEFAULT_METHOD`).
        response: the camera response methods that linearize use (``'gamma'`` 2.2, ``'srgb'``, ``'linear'``, a
            table file or a ``Response``); a photo's own is unknown, gamma 2.2 is the usual guess.
        **method_options: passed to the method's builder: ``device``, ``dtype``, ``max_memory``, ``weights``,
            ``tile`` for learned methods.

    Returns:
        :class:`ExpandResult`.
    """
    from hdrkit.io import read_ldr

    card = get_method(method)
    if card.kind != "single":
        raise HdrkitError(f"method {method!r} merges exposure brackets; hdrkit expand takes a single-image method: "
                          f"{', '.join(single_image_methods())}")
    p = Path(path)
    header = _header(p) if p.is_file() else None
    if header is not None:
        _check_size(p, *header[0])
    img = read_ldr(p)
    h, w = img.image.shape[-2:]
    _check_size(p, w, h)
    mode = header[1] if header else ""
    notes = []
    if mode in ("1", "L", "LA", "P", "I", "I;16", "I;16B", "I;16L", "F"):
        notes.append("grey photo: repeated into R, G and B" if mode != "P" else "palette photo: converted to RGB")
    if "A" in mode or mode == "PA":
        notes.append("alpha channel dropped")
    ldr = img.image.float()
    if img.linear:
        ldr = GammaResponse(2.2).forward(ldr.clamp(0, 1))
        notes.append("camera RAW: linear values encoded with gamma 2.2")
    elif img.bits == 16:
        notes.append("16-bit codes used at full precision")
    crf = response if isinstance(response, Response) else response_from_name(response)
    runner = card.build(**method_options)
    hdr = apply(card, runner, ldr[None, None], torch.ones(1, 1), 0, response=crf, bits=img.bits)[0]
    if not torch.isfinite(hdr).all():
        raise HdrkitError(f"{p}: method {method!r} produced NaN or Inf values")
    return ExpandResult(hdr.float(), ldr, method, crf, notes)
