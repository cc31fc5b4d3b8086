"""Scenes for evaluation: a Kalantari-layout dataset, or a folder of single-image LDR/HDR pairs dressed as scenes.

``load_eval_dataset(data_dir, split) -> (dataset, layout)``: ``dataset[i]`` has ``name``, ``ldr (N, 3, H, W)``,
``exposure_times (N,)``, ``hdr (3, H, W)`` or None, ``paths``, ``reference`` and ``meta``; ``layout`` is
``'brackets'`` or ``'pairs'``. ``scene_bits`` reads a scene's code depth; ``resolve_response`` turns a
response spec (a name, ``'calibrate'`` or ``'calibrate:METHOD'``, ``'scene'``: ``hdrkit.data.kalantari2017.scene_response``) into the
``Response`` of one scene.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from hdrkit.data.kalantari2017 import scene_response
from hdrkit.errors import HdrkitError

__all__ = ["RESPONSE_SPECS", "PairScene", "PairsAsScenes", "check_response_spec", "default_split", "load_eval_dataset",
           "resolve_response", "scene_bits", "scene_response"]

RESPONSE_SPECS = ("calibrate", "scene")
"""Response specs resolved per scene; any other string is a ``response_from_name`` spec."""


def default_split(data_dir: str | Path, split: str | None) -> str | None:
    """None -> ``'Test'`` when ``data_dir`` has a Test folder (the evaluation split), else None (every scene)."""
    if split is not None:
        return split
    tests = [p.name for p in Path(data_dir).iterdir() if p.is_dir() and p.name.lower() == "test"]
    return tests[0] if tests else None


@dataclass
class PairScene:
    """A single-image LDR/HDR pair dressed as a one-frame scene (t = 1: the pair's HDR is in the frame's units)."""

    name: str
    ldr: torch.Tensor
    exposure_times: torch.Tensor
    hdr: torch.Tensor
    paths: list
    reference: int = 0
    meta: dict | None = None


class PairsAsScenes:
    """``PairsDataset`` items as one-frame :class:`PairScene` objects."""

    def __init__(self, pairs):
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> PairScene:
        p = self.pairs[i]
        return PairScene(p.name, p.ldr[None], torch.ones(1), p.hdr, [p.ldr_path])


def load_eval_dataset(data_dir: str | Path, split: str | None):
    """A Kalantari-layout dataset, or else a folder of single-image pairs (``<split>/pairs/``); returns (ds, layout).

    ``layout`` is ``'brackets'`` or ``'pairs'``. Raises the Kalantari reader's HdrkitError when neither is found.
    """
    from hdrkit.data.folders import PairsDataset
    from hdrkit.data.kalantari2017 import KalantariDataset

    data_dir = Path(data_dir)
    try:
        return KalantariDataset(data_dir, split=split), "brackets"
    except HdrkitError as err:
        root = data_dir
        if split is not None:
            subs = [p for p in data_dir.iterdir() if p.is_dir() and p.name.lower() == split.lower()]
            root = subs[0] if subs else data_dir / split
        for cand in (root / "pairs", root):
            if cand.is_dir():
                try:
                    return PairsAsScenes(PairsDataset(cand)), "pairs"
                except HdrkitError:
                    continue
        raise err


def scene_bits(scene) -> int | None:
    """Code depth of a scene's frames: ``meta['bits']``, else read from the first TIFF/PNG/JPEG; None if unknown."""
    meta = getattr(scene, "meta", None) or {}
    if isinstance(meta.get("bits"), int):
        return int(meta["bits"])
    for p in [Path(p) for p in (getattr(scene, "paths", None) or [])]:
        suffix = p.suffix.lower()
        if suffix in (".tif", ".tiff"):
            try:
                import tifffile

                with tifffile.TiffFile(p) as tf:
                    return int(tf.pages[0].dtype.itemsize * 8)
            except Exception:  # noqa: BLE001 - bit depth is a hint, never fatal
                return None
        if suffix in (".jpg", ".jpeg"):
            return 8
        if suffix == ".png":
            try:
                from PIL import Image

                with Image.open(p) as im:
                    return 16 if im.mode.startswith("I") else 8
            except OSError:
                return None
    return None


def check_response_spec(spec) -> None:
    """Fail early (HdrkitError) on a response spec that no scene could resolve."""
    from hdrkit.camera.calibrate import calibration_method
    from hdrkit.camera.response import Response, response_from_name

    if not isinstance(spec, Response) and spec not in RESPONSE_SPECS and calibration_method(spec) is None:
        response_from_name(spec)


def resolve_response(spec, scene, ldr: torch.Tensor, exposure_times: torch.Tensor, bits: int | None):
    """The ``Response`` of one scene: ``spec`` itself, a named response, ``'scene'`` (the response a synthetic
    scene stores, :func:`scene_response`) or ``'calibrate'`` / ``'calibrate:METHOD'`` (``hdrkit.camera.calibrate``
    on the bracket ``ldr`` (B, N, 3, H, W), ``exposure_times`` (B, N), ``bits`` (default 8))."""
    from hdrkit.camera.calibrate import calibration_method, recover_response
    from hdrkit.camera.response import Response, response_from_name

    if isinstance(spec, Response):
        return spec
    method = calibration_method(spec)
    if method is not None:
        return recover_response(ldr, exposure_times, method=method, bits=bits or 8)
    if spec == "scene":
        return scene_response(scene)
    return response_from_name(spec)
