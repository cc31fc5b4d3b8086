"""Read an exposure bracket: frames, exposure values, validation, and sorting by exposure.

Exposure values come from, in order of precedence: ``times`` (seconds), ``ev`` (exposure bias in
stops, ``t = 2**ev``), or EXIF (``t * ISO / N**2`` when aperture/ISO vary, see
``hdrkit.io.exif``). Frames are sorted by exposure, shortest first, and ``exposure_times`` is
normalized so that the shortest frame has ``t = 1`` (the convention of ``hdrkit.camera.exposure``).
Indices into a ``Bracket`` (e.g. a reference frame) refer to the sorted order; ``order[i]`` is the
position in the caller's ``paths`` of sorted frame ``i``.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from hdrkit.errors import HdrkitError
from hdrkit.io.exif import ExposureInfo, read_exposure, relative_exposures
from hdrkit.io.ldr import decode_ldr, to_planes
from hdrkit.io.raw import is_raw_path
from hdrkit.parallel import parallel_map

__all__ = ["Bracket", "read_bracket", "read_exposure_file"]


@dataclass
class Bracket:
    """A decoded exposure bracket, sorted by exposure (shortest first).

    Attributes:
        ldr: (N, 3, H, W) float32 RGB codes in [0, 1].
        exposure_times: (N,) float64 linear exposures, normalized so the shortest is 1.
        seconds: (N,) float64 exposure times in seconds (equivalent seconds at frame ``order[0]``'s
            aperture/ISO when those vary) when known from ``times`` or EXIF; None for ``ev``.
        bits: stored bit depth per frame (8 or 16).
        linear: True when every frame is camera RAW (codes proportional to exposure).
        paths: file of each sorted frame.
        order: ``order[i]`` is the index in the input ``paths`` of sorted frame ``i``.
        source: where the exposures came from: ``"times"``, ``"ev"`` or ``"exif"``.
        exif: EXIF exposure settings per sorted frame (when read from EXIF).
    """

    ldr: torch.Tensor
    exposure_times: torch.Tensor
    seconds: torch.Tensor | None
    bits: list[int]
    linear: bool
    paths: list[Path]
    order: list[int]
    source: str
    exif: list[ExposureInfo] | None = field(default=None)

    def batched(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (ldr (1, N, 3, H, W), exposure_times (1, N)) for the batched hdrkit API."""
        return self.ldr.unsqueeze(0), self.exposure_times.unsqueeze(0)


def _exposure_values(paths: list[Path], times, ev) -> tuple[list[float], str, list[ExposureInfo] | None]:
    n = len(paths)
    if times is not None and ev is not None:
        raise HdrkitError("give exposures with --times or --ev, not both")
    given, flag = (times, "--times") if times is not None else (ev, "--ev")
    if given is not None:
        given = [float(v) for v in given]
        if len(given) != n:
            raise HdrkitError(f"{flag} has {len(given)} values but {n} files were given; give one value per file")
        for p, v in zip(paths, given):
            if not math.isfinite(v):
                raise HdrkitError(f"{p}: {flag} value {v} is not a finite number")
            if times is not None and v <= 0:
                raise HdrkitError(f"{p}: exposure time must be positive, got {v} s")
        if times is not None:
            return given, "times", None
        return [2.0**v for v in given], "ev", None
    infos = [read_exposure(p) for p in paths]
    return relative_exposures(infos, [str(p) for p in paths]), "exif", infos


def read_bracket(
    paths: Sequence[str | Path],
    times: Sequence[float] | None = None,
    ev: Sequence[float] | None = None,
    progress: bool = False,
) -> Bracket:
    """Read and validate an exposure bracket.

    Args:
        paths: N >= 2 image files (JPEG/PNG/TIFF, 8- or 16-bit, may be mixed; or all camera RAW).
        times: exposure time per file, in seconds (any order).
        ev: exposure bias per file, in stops (``t = 2**ev``); used when ``times`` is None.
            Without either, the times come from EXIF.

    Returns:
        ``Bracket`` sorted by exposure, shortest first (see ``Bracket.order``).

    Raises:
        HdrkitError: fewer than 2 frames, a missing/truncated/non-image file, frames of different
            sizes, RAW mixed with non-RAW, a wrong number of ``times``/``ev``, missing exposure
            information, or non-positive/duplicate exposures.
    """
    paths = [Path(p) for p in paths]
    if len(paths) < 2:
        names = ", ".join(map(str, paths)) or "none"
        raise HdrkitError(f"a bracket needs at least 2 frames, got {len(paths)} ({names})")
    for p in paths:
        if not p.is_file():
            raise HdrkitError(f"{p}: file not found")
    raw = [is_raw_path(p) for p in paths]
    if any(raw) and not all(raw):
        r, o = paths[raw.index(True)], paths[raw.index(False)]
        raise HdrkitError(f"{r} is camera RAW but {o} is not; a bracket must be all RAW or all non-RAW")
    values, source, infos = _exposure_values(paths, times, ev)

    if progress:
        from tqdm import tqdm

        # disable=None: a bar only on an interactive terminal, never in logs or pipes
        frames = [decode_ldr(p) for p in tqdm(paths, desc="reading", unit="frame", leave=False, disable=None, file=sys.stderr)]
    else:  # decoders release the GIL: frames are decoded concurrently
        frames = parallel_map(decode_ldr, paths)
    shape0 = frames[0][0].shape[:2]
    for p, (arr, _, _) in zip(paths[1:], frames[1:]):
        if arr.shape[:2] != shape0:
            h, w = shape0
            hh, ww = arr.shape[:2]
            raise HdrkitError(f"{p} is {ww}x{hh} but {paths[0]} is {w}x{h}; all frames must have the same size")

    order = sorted(range(len(paths)), key=lambda i: values[i])
    for a, b in zip(order, order[1:]):
        if values[b] <= values[a] * (1.0 + 1e-9):
            raise HdrkitError(
                f"{paths[a]} and {paths[b]} have the same exposure ({values[a]:g}); "
                "each frame needs a distinct exposure (check --times/--ev or the EXIF data)"
            )
    sorted_values = torch.tensor([values[i] for i in order], dtype=torch.float64)
    ldr = np.empty((len(paths), 3, *shape0), np.float32)  # each frame converted straight into its slot
    parallel_map(lambda k: to_planes(*frames[order[k]], out=ldr[k]), list(range(len(order))))
    return Bracket(
        ldr=torch.from_numpy(ldr),
        exposure_times=sorted_values / sorted_values[0],
        seconds=sorted_values.clone() if source != "ev" else None,
        bits=[frames[i][1] for i in order],
        linear=all(raw),
        paths=[paths[i] for i in order],
        order=order,
        source=source,
        exif=[infos[i] for i in order] if infos is not None else None,
    )


def _number(token: str) -> float | None:
    try:
        return float(Fraction(token)) if "/" in token else float(token)
    except (ValueError, ZeroDivisionError):
        return None


def read_exposure_file(path: str | Path, kind: str) -> list[float]:
    """Read exposure values from a text file, in file order.

    Accepted layouts: one value per line or whitespace/comma separated (e.g. Kalantari et al. 2017
    ``exposure.txt``: EV bias with the shortest at 0), or ``name value`` lines (e.g. Debevec's
    ``memorial.hdr_image_list.txt``; lines without a name, like a count, are then skipped).
    ``#`` starts a comment; fractions such as ``1/1024`` are accepted.

    Args:
        path: text file.
        kind: ``"seconds"`` (exposure times, must be positive) or ``"ev"`` (bias in stops).

    Returns:
        The values as written: pass them to ``read_bracket`` as ``times=`` (seconds) or ``ev=``.

    Raises:
        HdrkitError: missing file, unknown ``kind``, no values, or invalid values.
    """
    path = Path(path)
    if kind not in ("seconds", "ev"):
        raise HdrkitError(f"{path}: kind must be 'seconds' or 'ev', got {kind!r}")
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except (FileNotFoundError, IsADirectoryError) as exc:
        raise HdrkitError(f"{path}: exposure file not found") from exc
    lines = [re.split(r"[\s,;]+", line.split("#", 1)[0].strip()) for line in text.splitlines()]
    lines = [[t for t in tokens if t] for tokens in lines]
    lines = [tokens for tokens in lines if tokens]
    paired = any(_number(t) is None for tokens in lines for t in tokens)
    values: list[float] = []
    for lineno, tokens in enumerate(lines, 1):
        if paired:
            if len(tokens) == 2 and _number(tokens[0]) is None and _number(tokens[1]) is not None:
                values.append(_number(tokens[1]))
            elif len(tokens) >= 2 or _number(tokens[0]) is None:
                line = " ".join(tokens)
                raise HdrkitError(f"{path}: cannot parse line {line!r}; expected 'name value' or one number")
        else:
            values.extend(_number(t) for t in tokens)
    if not values:
        raise HdrkitError(f"{path}: no exposure values found")
    for v in values:
        if not math.isfinite(v) or (kind == "seconds" and v <= 0):
            what = "exposure times must be finite and positive" if kind == "seconds" else "EV values must be finite"
            raise HdrkitError(f"{path}: invalid value {v}; {what}")
    return values
