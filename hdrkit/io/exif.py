"""Exposure settings from EXIF, and the relative exposure of a bracket.

Exposure is proportional to ``t * S / N**2`` for shutter time ``t``, ISO speed ``S`` and f-number
``N`` (ISO 12232 / the APEX system, Jacobson 1976: ``Ev = Av + Tv`` with ``Av = 2 log2 N``,
``Tv = -log2 t``). When only the shutter time varies, exposure times are used as they are.
Tags are read with exifread (JPEG, TIFF, most RAW formats), falling back to Pillow; missing
``ExposureTime``/``FNumber`` fall back to the APEX ``ShutterSpeedValue``/``ApertureValue``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from hdrkit.errors import HdrkitError

__all__ = ["ExposureInfo", "read_exposure", "relative_exposures"]

_ISO_TAGS = ("EXIF ISOSpeedRatings", "EXIF PhotographicSensitivity", "EXIF RecommendedExposureIndex")
_PIL_EXIF_IFD = 0x8769
_PIL_TAGS = {"time": 33434, "fnumber": 33437, "iso": 34855, "tv": 37377, "av": 37378}


@dataclass(frozen=True)
class ExposureInfo:
    """Exposure settings of one frame; fields are None when the file does not record them.

    Attributes:
        time: shutter time in seconds.
        fnumber: aperture f-number N.
        iso: ISO speed.
    """

    time: float | None = None
    fnumber: float | None = None
    iso: float | None = None


def _positive(value) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return v if math.isfinite(v) and v > 0 else None


def _from_exifread(path: Path) -> dict:
    import exifread

    # exifread logs "File format not recognized" and the like at WARNING; a missing tag is our error to report
    logging.getLogger("exifread").setLevel(logging.CRITICAL)

    with open(path, "rb") as fh:
        tags = exifread.process_file(fh, details=False)

    def first(name):
        tag = tags.get(name)
        if tag is None or not getattr(tag, "values", None):
            return None
        values = tag.values
        return values[0] if isinstance(values, (list, tuple)) else values

    out = {"time": _positive(first("EXIF ExposureTime")), "fnumber": _positive(first("EXIF FNumber"))}
    out["iso"] = next((v for v in (_positive(first(t)) for t in _ISO_TAGS) if v is not None), None)
    if out["time"] is None:
        tv = first("EXIF ShutterSpeedValue")
        out["time"] = _positive(2.0 ** -float(tv)) if tv is not None and _finite(tv) else None
    if out["fnumber"] is None:
        av = first("EXIF ApertureValue")
        out["fnumber"] = _positive(2.0 ** (float(av) / 2)) if av is not None and _finite(av) else None
    return out


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError, ZeroDivisionError):
        return False


def _from_pillow(path: Path) -> dict:
    from PIL import Image

    with Image.open(path) as im:
        ifd = im.getexif().get_ifd(_PIL_EXIF_IFD)
    iso = ifd.get(_PIL_TAGS["iso"])
    if isinstance(iso, (tuple, list)):
        iso = iso[0] if iso else None
    out = {"time": _positive(ifd.get(_PIL_TAGS["time"])), "fnumber": _positive(ifd.get(_PIL_TAGS["fnumber"]))}
    out["iso"] = _positive(iso)
    if out["time"] is None and _finite(ifd.get(_PIL_TAGS["tv"])):
        out["time"] = _positive(2.0 ** -float(ifd[_PIL_TAGS["tv"]]))
    if out["fnumber"] is None and _finite(ifd.get(_PIL_TAGS["av"])):
        out["fnumber"] = _positive(2.0 ** (float(ifd[_PIL_TAGS["av"]]) / 2))
    return out


def read_exposure(path: str | Path) -> ExposureInfo:
    """Read shutter time (s), f-number and ISO from a file's EXIF; missing values are None.

    Raises:
        HdrkitError: the file does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise HdrkitError(f"{path}: file not found")
    fields = {"time": None, "fnumber": None, "iso": None}
    for reader in (_from_exifread, _from_pillow):
        try:
            found = reader(path)
        except Exception:  # unreadable metadata is "no metadata"; the image reader reports bad files
            continue
        for key, value in found.items():
            if fields[key] is None:
                fields[key] = value
        if fields["time"] is not None and fields["fnumber"] is not None and fields["iso"] is not None:
            break
    return ExposureInfo(**fields)


def relative_exposures(infos: Sequence[ExposureInfo], names: Sequence[str] | None = None) -> list[float]:
    """Relative exposure per frame, ``t * S / N**2`` scaled to frame 0's aperture and ISO.

    Aperture (ISO) is folded in only when every frame records it and the values differ; otherwise
    the shutter times in seconds are returned unchanged (so, with a fixed aperture and ISO, the
    result is the exposure time in seconds).

    Args:
        infos: one ``ExposureInfo`` per frame.
        names: file names for error messages.

    Raises:
        HdrkitError: a frame has no exposure time.
    """
    names = list(names) if names is not None else [f"frame {i}" for i in range(len(infos))]
    for info, name in zip(infos, names):
        if info.time is None:
            raise HdrkitError(
                f"{name}: no exposure time in EXIF; pass the exposures with --times (seconds) or --ev (stops)"
            )
    values = [float(info.time) for info in infos]
    fnumbers = [info.fnumber for info in infos]
    if infos and None not in fnumbers and len(set(fnumbers)) > 1:
        values = [v * (fnumbers[0] / n) ** 2 for v, n in zip(values, fnumbers)]
    isos = [info.iso for info in infos]
    if infos and None not in isos and len(set(isos)) > 1:
        values = [v * s / isos[0] for v, s in zip(values, isos)]
    return values
