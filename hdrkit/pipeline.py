"""Brackets in, radiance out: the README's story as one function you can read top to bottom.

read the frames -> choose or recover the camera response -> align to the reference frame ->
merge (deghosting by default) -> linear radiance in units of the shortest exposure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from hdrkit.align import AlignResult, align
from hdrkit.camera.response import LinearResponse, Response, response_from_name
from hdrkit.errors import HdrkitError
from hdrkit.io import Bracket, read_bracket
from hdrkit.methods import apply, get_method

__all__ = ["MergeResult", "hdr_from_brackets", "resolve_response"]

MASK_OPTION = {"deghost": "valid"}
"""Methods that take the aligner's occlusion masks (``FlowAlignResult.masks``), and the option that does."""


@dataclass
class MergeResult:
    """What ``hdr_from_brackets`` returns.

    image: (3, H, W) in the reference frame's geometry: linear radiance in units of the shortest
    exposure when ``output == 'radiance'``; display-referred codes in [0, 1] for exposure fusion
    (``output == 'display'``, e.g. Mertens 2007).
    """

    image: torch.Tensor
    output: str
    bracket: Bracket
    response: Response
    alignment: AlignResult
    reference: int
    method: str

    @property
    def hdr(self) -> torch.Tensor:
        """The radiance map; an error for exposure-fusion methods, which give none."""
        if self.output != "radiance":
            raise HdrkitError(f"merge method {self.method!r} gives a display-referred image, not radiance")
        return self.image


def resolve_response(spec: str | Response, bracket: Bracket) -> Response:
    """``'gamma'``, ``'srgb'``, ``'linear'``, ``'calibrate'`` (recovered from this bracket with
    ``hdrkit.camera.calibrate.DEFAULT_CALIBRATION``), ``'calibrate:emor|debevec|robertson'`` or a table file.

    RAW brackets are linear whatever the spec says, except an explicit non-linear table.
    """
    from hdrkit.camera.calibrate import calibration_method, recover_response

    if isinstance(spec, Response):
        return spec
    method = calibration_method(spec)
    if bracket.linear:
        return LinearResponse()
    if method is not None:
        return recover_response(bracket.ldr, bracket.exposure_times, method=method, bits=max(bracket.bits))
    return response_from_name(spec)


def hdr_from_brackets(
    paths: Sequence[str | Path],
    *,
    times: Sequence[float] | None = None,
    ev: Sequence[float] | None = None,
    method: str = "deghost",
    response: str | Response = "gamma",
    align_method: str = "homography",
    reference: int | None = None,
    progress: bool = False,
    **method_options,
) -> MergeResult:
    """Merge a bracket of LDR files into a radiance map.

    Args:
        paths: two or more image files (JPEG, PNG, TIFF, or camera RAW with the ``raw`` extra).
        times: exposure times in seconds, one per file; else ``ev``; else read from EXIF.
        ev: exposure values in stops (t = 2 ** ev), one per file.
        method: a registered method (``hdrkit.methods``; ``hdrkit methods`` lists them).
        response: ``'gamma'`` (2.2), ``'srgb'``, ``'linear'``, ``'calibrate'`` (or ``'calibrate:METHOD'``), a response file, or a Response.
        align_method: ``'none'``, ``'mtb'`` (translation), ``'homography'`` or ``'flow'`` (homography plus
            dense residual flow; its occlusion masks go to methods in ``MASK_OPTION``).
        reference: index of the reference frame in exposure order (shortest first); default the middle one.
        progress: show a progress bar while reading (on an interactive terminal only).
        **method_options: passed to the method's builder, e.g. ``device``, ``dtype``, ``max_memory``,
            ``weights`` for learned networks.
    """
    card = get_method(method)
    bracket = read_bracket(paths, times=times, ev=ev, progress=progress)
    n = bracket.ldr.shape[0]
    ref = n // 2 if reference is None else reference
    if not 0 <= ref < n:
        raise HdrkitError(f"reference frame {reference} out of range: the bracket has {n} frames (0..{n - 1})")
    card.check_frames(n)
    runner = card.build(**method_options)
    crf = resolve_response(response, bracket)
    ldr = bracket.ldr[None]
    times_b = bracket.exposure_times[None].to(torch.float32)
    aligned = align(ldr, times_b, method=align_method, reference=ref, response=crf)
    masks = getattr(aligned, "masks", None)
    if masks is not None and method in MASK_OPTION:
        runner = card.build(**method_options, **{MASK_OPTION[method]: masks})
    image = apply(card, runner, aligned.ldr, times_b, torch.tensor([ref]), response=crf, bits=max(bracket.bits))
    return MergeResult(image=image[0], output=card.output, bracket=bracket, response=crf, alignment=aligned,
                       reference=ref, method=method)
