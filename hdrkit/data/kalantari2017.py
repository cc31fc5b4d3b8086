"""Reader and writer for the Kalantari & Ramamoorthi 2017 dynamic-scene dataset layout.

Layout: ``<root>/Training|Test/[<group>/]<scene>/`` holding the LDR frames (16-bit gamma-2.2
``.tif``; ``.png`` and ``.jpg`` accepted) in increasing exposure order, ``exposure.txt`` (or
``exposures.txt``) with one exposure bias in stops per frame, the shortest at 0, so that
``t = 2 ** bias``, and the ground truth ``HDRImg.hdr`` aligned to the middle (reference) frame. With
the gamma 2.2 convention, ``ldr ** 2.2 / t`` is radiance in units of the shortest exposure.

Reference:
    N. K. Kalantari and R. Ramamoorthi, "Deep High Dynamic Range Imaging of Dynamic Scenes",
    ACM TOG 36(4) (SIGGRAPH 2017).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from hdrkit.errors import HdrkitError

__all__ = [
    "scene_response",
    "Scene",
    "KalantariDataset",
    "read_kalantari_scene",
    "write_kalantari_scene",
    "find_scene_dirs",
    "EXPOSURE_FILES",
    "GT_NAMES",
]

EXPOSURE_FILES = ("exposure.txt", "exposures.txt")
"""Exposure-bias file names, in order of preference."""

GT_NAMES = ("HDRImg.hdr", "HDRImg.exr", "hdr_gt.hdr", "hdr_gt.exr")
"""Ground-truth file names recognized in a scene folder."""

LDR_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg")
"""Frame file suffixes (case-insensitive)."""

KALANTARI_GAMMA = 2.2
"""The dataset's LDR encoding: codes are ``irradiance ** (1 / 2.2)``."""


@dataclass
class Scene:
    """One bracket with optional ground truth.

    Attributes:
        name: scene name (path relative to the dataset split, with ``/``).
        ldr: (N, 3, H, W) float32 display-referred codes in [0, 1], RGB, increasing exposure.
        exposure_times: (N,) float32 linear exposure factors, the shortest is 1.
        hdr: (3, H, W) float32 linear radiance in units of the shortest exposure, aligned to the
            reference frame, or None.
        paths: the frame files, in the order of ``ldr``.
        reference: index of the reference frame (the middle one for Kalantari data).
        hdr_path: the ground-truth file, or None.
        meta: the scene's ``meta.json`` (synthetic data written by hdrkit), or None.
    """

    name: str
    ldr: torch.Tensor
    exposure_times: torch.Tensor
    hdr: torch.Tensor | None
    paths: list[Path]
    reference: int = 0
    hdr_path: Path | None = None
    meta: dict | None = field(default=None, repr=False)


def _exposure_file(folder: Path) -> Path | None:
    for name in EXPOSURE_FILES:
        p = folder / name
        if p.is_file():
            return p
    return None


def _frame_files(folder: Path) -> list[Path]:
    gt = {n.lower() for n in GT_NAMES}
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in LDR_SUFFIXES
                  and p.name.lower() not in gt and not p.name.startswith("."))


def _gt_file(folder: Path) -> Path | None:
    by_lower = {p.name.lower(): p for p in folder.iterdir() if p.is_file()}
    for name in GT_NAMES:
        if name.lower() in by_lower:
            return by_lower[name.lower()]
    return None


def _reference(meta: dict | None, n: int) -> int:
    ref = meta.get("reference") if isinstance(meta, dict) else None
    return int(ref) if isinstance(ref, int) and 0 <= ref < n else n // 2


def find_scene_dirs(root: str | Path) -> list[Path]:
    """All folders under ``root`` (inclusive) that hold an exposure file, sorted by path."""
    r = Path(root)
    if not r.is_dir():
        raise HdrkitError(f"{r}: dataset folder not found")
    found = {p.parent for name in EXPOSURE_FILES for p in r.rglob(name)}
    return sorted(found, key=lambda p: p.relative_to(r).as_posix())


def read_kalantari_scene(folder: str | Path, name: str | None = None, load_hdr: bool = True) -> Scene:
    """Read one scene folder (frames, exposure biases, optional ``HDRImg.hdr`` and ``meta.json``)."""
    from hdrkit.io import read_bracket, read_exposure_file, read_hdr

    d = Path(folder)
    if not d.is_dir():
        raise HdrkitError(f"{d}: scene folder not found")
    exp = _exposure_file(d)
    if exp is None:
        raise HdrkitError(f"{d}: no exposure.txt (one exposure bias in stops per frame, shortest 0)")
    bias = read_exposure_file(exp, kind="ev")
    files = _frame_files(d)
    if len(files) != len(bias):
        raise HdrkitError(f"{d}: {len(files)} LDR frames but {len(bias)} exposure values in {exp.name}")
    br = read_bracket(files, ev=bias)
    ldr = br.ldr.float()
    files = list(br.paths)
    gt_path = _gt_file(d)
    hdr = None
    if gt_path is not None and load_hdr:
        hdr = torch.as_tensor(read_hdr(gt_path), dtype=torch.float32)
        if tuple(hdr.shape) != tuple(ldr.shape[1:]):
            raise HdrkitError(f"{gt_path}: ground truth is {tuple(hdr.shape)} but frames are {tuple(ldr.shape[1:])}")
    meta = None
    if (d / "meta.json").is_file():
        try:
            meta = json.loads((d / "meta.json").read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise HdrkitError(f"{d / 'meta.json'}: unreadable ({e})") from None
    return Scene(name or d.name, ldr, br.exposure_times.float(), hdr, files, reference=_reference(meta, len(files)),
                 hdr_path=gt_path, meta=meta)


class SceneFolders(torch.utils.data.Dataset):
    """Scenes stored one per folder (``self.dirs``), read on demand by ``_read(i)``, optionally cached."""

    dirs: list[Path]
    _cache: dict[int, Scene] | None

    def _read(self, i: int) -> Scene:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.dirs)

    def __getitem__(self, i: int) -> Scene:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        i %= len(self)
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        s = self._read(i)
        if self._cache is not None:
            self._cache[i] = s
        return s

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]


class KalantariDataset(SceneFolders):
    """The scenes of a Kalantari-layout dataset, read on access (optionally cached).

    Args:
        root: dataset folder (holding ``Training``/``Test``), or a split folder itself.
        split: ``'Training'``, ``'Test'`` (matched case-insensitively; ``'train'`` works), or None
            for every scene under ``root``.
        load_hdr: read the ground truth when present.
        cache: keep decoded scenes in memory.

    ``dataset[i]`` is a ``Scene``; ``dataset.names`` lists the scene names.
    """

    def __init__(self, root: str | Path, split: str | None = "Test", load_hdr: bool = True, cache: bool = False):
        r = Path(root)
        if not r.is_dir():
            raise HdrkitError(f"{r}: dataset folder not found")
        if split is not None:
            want = {"train": "training", "training": "training", "test": "test"}.get(split.lower(), split.lower())
            subs = [p for p in r.iterdir() if p.is_dir() and p.name.lower() in (want, split.lower())]
            if not subs:
                raise HdrkitError(f"{r}: no '{split}' folder; use split=None to read every scene under it")
            r = subs[0]
        self.root = r
        self.dirs = find_scene_dirs(r)
        if not self.dirs:
            raise HdrkitError(f"{r}: no scene folders (a scene folder holds exposure.txt and the LDR frames)")
        self.names = [d.relative_to(r).as_posix() if d != r else d.name for d in self.dirs]
        self.load_hdr = load_hdr
        self._cache: dict[int, Scene] | None = {} if cache else None

    def _read(self, i: int) -> Scene:
        return read_kalantari_scene(self.dirs[i], self.names[i], self.load_hdr)


def _format_bias(b: float) -> str:
    s = f"{b:.6f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def write_kalantari_scene(
    folder: str | Path,
    ldr: torch.Tensor,
    exposure_times,
    hdr: torch.Tensor | None = None,
    *,
    bits: int = 16,
    fmt: str = "tif",
    meta: dict | None = None,
) -> list[Path]:
    """Write one scene in the Kalantari layout: ``input_1.<fmt>``..., ``exposure.txt``, ``HDRImg.hdr``,
    ``meta.json``. Every file is written atomically, deterministically (no timestamps).

    Args:
        folder: scene folder (created).
        ldr: (N, 3, H, W) codes in [0, 1], in increasing exposure order.
        exposure_times: (N,) linear times; written as biases ``log2(t / t.min())``.
        hdr: (3, H, W) ground truth radiance in units of the shortest exposure, or None.
        bits: 8 or 16 (JPEG is always 8).
        fmt: ``'tif'``, ``'png'`` or ``'jpg'``.
        meta: JSON-serializable dictionary written with sorted keys.

    Returns:
        The written paths.
    """
    from hdrkit.io import atomic_path, write_hdr, write_ldr

    if fmt not in ("tif", "png", "jpg"):
        raise HdrkitError(f"fmt must be 'tif', 'png' or 'jpg', got {fmt!r}")
    if ldr.ndim != 4 or ldr.shape[1] != 3:
        raise HdrkitError(f"ldr must have shape (N, 3, H, W), got {tuple(ldr.shape)}")
    t = np.asarray(torch.as_tensor(exposure_times, dtype=torch.float64)).ravel()
    if t.size != ldr.shape[0] or (t <= 0).any():
        raise HdrkitError(f"exposure_times must hold {ldr.shape[0]} positive values")
    if np.any(np.diff(t) < 0):
        raise HdrkitError("write frames in increasing exposure order (the Kalantari convention)")
    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    written = []
    for i, frame in enumerate(ldr):
        p = d / f"input_{i + 1}.{fmt}"
        if fmt == "jpg":
            write_ldr(p, frame, bits=8)
        else:
            write_ldr(p, frame, bits=bits)
        written.append(p)
    p = d / "exposure.txt"
    with atomic_path(p) as tmp:
        Path(tmp).write_text("".join(_format_bias(b) + "\n" for b in np.log2(t / t.min())))
    written.append(p)
    if hdr is not None:
        written.append(Path(write_hdr(d / "HDRImg.hdr", hdr) or d / "HDRImg.hdr"))
    if meta is not None:
        p = d / "meta.json"
        with atomic_path(p) as tmp:
            Path(tmp).write_text(json.dumps(meta, sort_keys=True, indent=2) + "\n")
        written.append(p)
    return written


def scene_response(scene):
    """The camera response a synthetic scene was made with: its ``response.csv``, else the family in ``meta.json``.

    Raises HdrkitError when the scene records neither (real captures: use a named response or calibrate).
    """
    from hdrkit.camera.response import GammaResponse, load_response_table, response_from_name

    folder = Path(scene.paths[0]).parent if getattr(scene, "paths", None) else None
    if folder is not None and (folder / "response.csv").is_file():
        return load_response_table(folder / "response.csv")
    info = (getattr(scene, "meta", None) or {}).get("response") or {}
    family = info.get("family") if isinstance(info, dict) else None
    if family == "gamma":
        return GammaResponse(float(info.get("gamma", 2.2)))
    if family in ("srgb", "linear"):
        return response_from_name(family)
    raise HdrkitError(f"scene {scene.name}: no stored camera response (response.csv or meta.json); "
                      "use response='gamma' or 'calibrate'")
