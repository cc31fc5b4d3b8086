"""Generic folder layouts: brackets with a times file, and LDR/HDR pairs for single-image work.

Bracket folder: one folder per scene holding the LDR frames (JPEG/PNG/TIFF) and one of
``times.txt`` (exposure times in seconds), ``exposure.txt`` / ``exposures.txt`` (bias in stops,
``t = 2**ev``); either as one value per frame in file-name order, or ``name value`` lines. An
optional ground truth (one ``.hdr``/``.exr``/``.pfm`` file, preferably ``HDRImg.hdr``) is aligned
to the reference frame (the middle one). Without a times file the exposure comes from EXIF.

Pairs folder: ``<name>.png`` (or .jpg/.tif) next to ``<name>.hdr`` (or .exr/.pfm).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from hdrkit.data.kalantari2017 import GT_NAMES, LDR_SUFFIXES, Scene, SceneFolders
from hdrkit.errors import HdrkitError

__all__ = [
    "TIMES_FILES",
    "read_bracket_folder",
    "BracketFolderDataset",
    "Pair",
    "find_pairs",
    "PairsDataset",
]

TIMES_FILES = (("times.txt", "seconds"), ("exposure.txt", "ev"), ("exposures.txt", "ev"))
"""Exposure files recognized in a bracket folder, in order of preference, with their units."""

HDR_SUFFIXES = (".hdr", ".exr", ".pfm")


def _times_file(folder: Path) -> tuple[Path, str] | None:
    for name, kind in TIMES_FILES:
        if (folder / name).is_file():
            return folder / name, kind
    return None


def _named_values(path: Path) -> dict[str, float] | None:
    """``name value`` lines as a mapping (None when the file has bare numbers)."""
    out = {}
    for line in path.read_text(encoding="utf-8-sig", errors="replace").splitlines():
        tokens = line.split("#", 1)[0].split()
        if len(tokens) == 2:
            try:
                float(tokens[0].split("/")[0])
            except ValueError:
                out[tokens[0]] = tokens[1]
    return out or None


def read_bracket_folder(folder: str | Path, load_hdr: bool = True) -> Scene:
    """Read a bracket folder (see the module docstring) into a ``Scene``, sorted by exposure.

    ``name value`` lines may name frames by file name or stem; frames not listed are ignored.
    """
    from hdrkit.io import read_bracket, read_exposure_file, read_hdr

    d = Path(folder)
    if not d.is_dir():
        raise HdrkitError(f"{d}: bracket folder not found")
    gt_lower = {n.lower() for n in GT_NAMES}
    files = sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in LDR_SUFFIXES
                   and not p.name.startswith(".") and p.name.lower() not in gt_lower)
    tf = _times_file(d)
    kw = {}
    if tf is not None:
        path, kind = tf
        values = read_exposure_file(path, kind=kind)
        named = _named_values(path)
        if named is not None:
            chosen = []
            for name in named:
                hits = [p for p in files if p.name == name or p.stem == Path(name).stem]
                if not hits:
                    raise HdrkitError(f"{path}: lists {name!r} but no such frame is in {d}")
                chosen.append(hits[0])
            files = chosen
        elif len(values) != len(files):
            raise HdrkitError(f"{d}: {len(files)} frames but {len(values)} values in {path.name}; give one per frame")
        kw = {"times": values} if kind == "seconds" else {"ev": values}
    if len(files) < 2:
        raise HdrkitError(f"{d}: a bracket folder needs at least 2 LDR frames (.jpg/.png/.tif)")
    br = read_bracket(files, **kw)
    gt = None
    cands = [p for p in d.iterdir() if p.is_file() and p.suffix.lower() in HDR_SUFFIXES]
    preferred = [p for p in cands if p.name.lower() in gt_lower]
    gt_path = (preferred or sorted(cands) or [None])[0]
    if len(cands) > 1 and not preferred:
        raise HdrkitError(f"{d}: several HDR files; name the ground truth HDRImg.hdr")
    if gt_path is not None and load_hdr:
        gt = read_hdr(gt_path).float()
        if tuple(gt.shape) != tuple(br.ldr.shape[1:]):
            raise HdrkitError(f"{gt_path}: ground truth is {tuple(gt.shape)} but frames are {tuple(br.ldr.shape[1:])}")
    n = br.ldr.shape[0]
    return Scene(d.name, br.ldr.float(), br.exposure_times.float(), gt, list(br.paths), reference=n // 2, hdr_path=gt_path)


class BracketFolderDataset(SceneFolders):
    """Every sub-folder of ``root`` that holds at least two LDR frames, as ``Scene`` objects."""

    def __init__(self, root: str | Path, load_hdr: bool = True, cache: bool = False):
        r = Path(root)
        if not r.is_dir():
            raise HdrkitError(f"{r}: dataset folder not found")
        self.dirs = sorted(p for p in r.iterdir() if p.is_dir()
                           and sum(q.suffix.lower() in LDR_SUFFIXES for q in p.iterdir()) >= 2)
        if not self.dirs:
            raise HdrkitError(f"{r}: no bracket folders (sub-folders with at least 2 LDR frames)")
        self.names = [p.name for p in self.dirs]
        self.load_hdr = load_hdr
        self._cache: dict[int, Scene] | None = {} if cache else None

    def _read(self, i: int) -> Scene:
        return read_bracket_folder(self.dirs[i], self.load_hdr)


@dataclass
class Pair:
    """A single-exposure LDR image and its HDR ground truth.

    Attributes:
        name: shared file stem.
        ldr: (3, H, W) float32 display-referred codes in [0, 1].
        hdr: (3, H, W) float32 linear radiance (scale as stored).
        ldr_path, hdr_path: the two files.
    """

    name: str
    ldr: torch.Tensor
    hdr: torch.Tensor
    ldr_path: Path
    hdr_path: Path


def find_pairs(folder: str | Path) -> list[tuple[Path, Path]]:
    """``(ldr, hdr)`` paths sharing a stem in ``folder``, sorted by name."""
    d = Path(folder)
    if not d.is_dir():
        raise HdrkitError(f"{d}: pairs folder not found")
    ldrs, hdrs = {}, {}
    for p in sorted(d.iterdir()):
        if not p.is_file() or p.name.startswith("."):
            continue
        if p.suffix.lower() in HDR_SUFFIXES:
            hdrs.setdefault(p.stem, p)
        elif p.suffix.lower() in LDR_SUFFIXES:
            ldrs.setdefault(p.stem, p)
    pairs = [(ldrs[k], hdrs[k]) for k in sorted(ldrs) if k in hdrs]
    if not pairs:
        raise HdrkitError(f"{d}: no LDR/HDR pairs (expected <name>.png next to <name>.hdr or .exr)")
    return pairs


class PairsDataset(torch.utils.data.Dataset):
    """LDR/HDR pairs of a folder (``find_pairs``), read on access; ``dataset[i]`` is a ``Pair``."""

    def __init__(self, folder: str | Path):
        self.pairs = find_pairs(folder)
        self.names = [p[0].stem for p in self.pairs]

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> Pair:
        from hdrkit.io import read_hdr, read_ldr

        lp, hp = self.pairs[i]
        ldr = read_ldr(lp).image.float()
        hdr = read_hdr(hp).float()
        if ldr.shape != hdr.shape:
            raise HdrkitError(f"{lp}: LDR is {tuple(ldr.shape)} but {hp.name} is {tuple(hdr.shape)}")
        return Pair(lp.stem, ldr, hdr, lp, hp)
