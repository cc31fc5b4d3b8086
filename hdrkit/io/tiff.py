"""Decode the first image of a TIFF file for the LDR and radiance readers.

tifffile parses the file and imagecodecs decodes it: uncompressed, LZW, Deflate/ZIP (codes 8 and
32946), PackBits, JPEG-in-TIFF (new style; old style where tifffile reads it), and the other codecs
imagecodecs has (Zstandard, LZMA, WebP, JPEG 2000, ...); horizontal and floating-point predictors;
strips and tiles; contiguous or planar samples; little- and big-endian; classic and BigTIFF.

Before any pixel is decoded the file is checked, so that a decoder failure is never blamed on a
valid file: the compression and predictor must be decodable (otherwise one line names them), the
photometric interpretation must be grey, RGB, or YCbCr inside JPEG (tifffile returns those as RGB),
and the first directory and all image data must lie inside the file (otherwise it is truncated).
"""

from __future__ import annotations

import logging
import struct
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from hdrkit.errors import HdrkitError

__all__ = ["read_tiff_samples"]

_JPEG_CODES = frozenset({6, 7, 33007, 34892})  # compressions whose YCbCr tifffile converts to RGB
_PHOTOMETRIC_NAMES = {3: "palette (indexed colour)", 4: "transparency mask", 5: "CMYK", 8: "CIE L*a*b*"}
# bytes per value of each TIFF field type (BYTE, ASCII, SHORT, LONG, RATIONAL, ..., LONG8, SLONG8, IFD8)
_TAG_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4,
                   16: 8, 17: 8, 18: 8}  # fmt: skip
# tags needed to locate and decode the pixels: BitsPerSample, StripOffsets, StripByteCounts, ColorMap,
# TileOffsets, TileByteCounts, ExtraSamples, SampleFormat, JPEGTables, YCbCrSubSampling, ReferenceBlackWhite
_LAYOUT_TAGS = frozenset({258, 273, 279, 320, 324, 325, 338, 339, 347, 530, 532})
_REMEDY = {
    "compression": "re-save it uncompressed or with LZW, Deflate/ZIP, PackBits or JPEG compression",
    "predictor": "re-save it without a predictor or with the horizontal or floating-point one",
}


def _header(path: Path, head: bytes) -> tuple[str, bool, int]:
    """(struct byte order, is BigTIFF, offset of the first directory) from the first 16 bytes."""
    order = "<" if head[:2] == b"II" else ">"
    version = struct.unpack(order + "H", head[2:4])[0] if len(head) >= 4 else 0
    if version == 42 and len(head) >= 8:
        return order, False, struct.unpack(order + "I", head[4:8])[0]
    if version == 43 and len(head) >= 16:
        return order, True, struct.unpack(order + "Q", head[8:16])[0]
    raise HdrkitError(f"{path}: truncated or malformed TIFF header; re-export the file")


def _directory_end(fh, order: str, big: bool, offset: int) -> int:
    """Byte just past the first directory and the values of its layout tags stored outside it."""
    count_fmt, entry_size, value_fmt = ("Q", 20, "Q") if big else ("H", 12, "I")
    count_size = struct.calcsize(count_fmt)
    fh.seek(offset)
    raw = fh.read(count_size)
    if len(raw) < count_size:
        return offset + count_size
    n = struct.unpack(order + count_fmt, raw)[0]
    inline = 8 if big else 4
    end = offset + count_size + n * entry_size + inline  # entries, then the next-directory offset
    if end > fh.seek(0, 2):
        return end
    fh.seek(offset + count_size)
    entries = fh.read(n * entry_size)
    for k in range(n):
        entry = entries[k * entry_size : (k + 1) * entry_size]
        code, dtype, count = struct.unpack(order + "HH" + value_fmt, entry[: 4 + inline])
        nbytes = _TAG_TYPE_SIZES.get(dtype, 0) * count
        if code in _LAYOUT_TAGS and nbytes > inline:
            end = max(end, struct.unpack(order + value_fmt, entry[4 + inline :])[0] + nbytes)
    return end


def _check_first_directory(path: Path, size: int) -> None:
    """Refuse a file that ends inside its first directory (IFD) or the layout tag values it points to.

    Metadata stored out of line (XMP, ICC profile, ...) is not required: a file cut there still
    holds its whole image, and tifffile skips the unreadable tag.
    """
    with open(path, "rb") as fh:
        order, big, offset = _header(path, fh.read(16))
        end = _directory_end(fh, order, big, offset)
    if end > size:
        raise HdrkitError(
            f"{path}: truncated TIFF (the file has {size} bytes, its image directory at byte {offset} needs "
            f"{end}); re-export the file"
        )


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def _codec_name(enum, code: int) -> str:
    try:
        return enum(code).name
    except ValueError:
        return "unknown"


def _unsupported(path: Path, what: str, name: str, code: int, exc: Exception) -> HdrkitError:
    if "imagecodecs" in str(exc):
        return HdrkitError(f"{path}: TIFF {what} {name} ({code}) needs imagecodecs; pip install imagecodecs")
    return HdrkitError(f"{path}: unsupported TIFF {what} {name} ({code}); {_REMEDY[what]}")


def _check_decodable(path: Path, page) -> None:
    """Refuse a compression, predictor or photometric interpretation that cannot become grey/RGB."""
    from tifffile import COMPRESSION, PREDICTOR, TIFF

    compression, predictor = int(page.compression), int(page.predictor)
    for what, code, enum, codecs in (
        ("compression", compression, COMPRESSION, TIFF.DECOMPRESSORS),
        ("predictor", predictor, PREDICTOR, TIFF.UNPREDICTORS),
    ):
        if code == 1:
            continue
        try:
            codecs[code]
        except Exception as exc:  # KeyError for unknown codes, ValueError for known but unavailable ones
            raise _unsupported(path, what, _codec_name(enum, code), code, exc) from exc
    photometric = int(page.photometric)
    if photometric in (0, 1, 2) or (photometric == 6 and compression in _JPEG_CODES):
        return
    from tifffile import PHOTOMETRIC

    name = _PHOTOMETRIC_NAMES.get(photometric, _codec_name(PHOTOMETRIC, photometric))
    raise HdrkitError(
        f"{path}: {name} TIFF (photometric {photometric}) is not supported; re-save it as RGB or grey"
    )


def _check_complete(path: Path, series, size: int) -> None:
    """Refuse a file whose strips or tiles extend past its end."""
    end = 0
    for page in series.pages:
        if page is None:
            continue
        for offset, count in zip(page.dataoffsets, page.databytecounts):
            if count:
                end = max(end, int(offset) + int(count))
    if end > size:
        raise HdrkitError(
            f"{path}: truncated TIFF (image data ends at byte {end}, the file has {size}); re-export the file"
        )


@contextmanager
def _tifffile_logging_silenced():
    """tifffile logs what it finds wrong; hdrkit reports it as one HdrkitError line instead."""
    logger = logging.getLogger("tifffile")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _white_is_zero_to_black_is_zero(arr: np.ndarray, bits: int) -> np.ndarray:
    """Invert the grey sample of an integer WhiteIsZero image (other samples, e.g. alpha, kept)."""
    if not np.issubdtype(arr.dtype, np.integer):
        return arr
    out = arr.copy()
    grey = out if out.ndim == 2 else out[..., 0]
    grey[...] = ((1 << bits) - 1) - grey
    return out


def _decode_first_series(path: Path, size: int):
    """Check, then decode, the first series: (array as tifffile returns it, its axes, its key page)."""
    import tifffile

    try:
        tif = tifffile.TiffFile(path)
    except Exception as exc:  # tifffile raises TiffFileError, ValueError, struct.error...
        raise HdrkitError(
            f"{path}: cannot parse TIFF ({_one_line(exc)}); the file may be truncated or corrupt"
        ) from exc
    with tif:
        if not tif.series:
            raise HdrkitError(f"{path}: TIFF holds no image; the file may be truncated or corrupt")
        series = tif.series[0]
        page = series.keyframe
        _check_decodable(path, page)
        _check_complete(path, series, size)
        try:
            arr = series.asarray()
        except Exception as exc:  # a codec error on data that lies inside the file
            name = _codec_name(tifffile.COMPRESSION, int(page.compression))
            raise HdrkitError(
                f"{path}: cannot decode TIFF {name} data ({_one_line(exc)}); re-export the file"
            ) from exc
        return arr, series.axes, page


def read_tiff_samples(path: Path) -> np.ndarray:
    """Decode the first image series of a TIFF file.

    Args:
        path: an existing TIFF (classic or BigTIFF) file.

    Returns:
        The samples as stored (uint8, uint16, float16, float32, ...), samples last: (H, W) or
        (H, W, C) with C = 1/2 (grey, grey + alpha; WhiteIsZero grey already inverted) or 3/4 (RGB,
        RGBA; JPEG YCbCr already converted to RGB); multi-page series keep their leading axes.

    Raises:
        HdrkitError: truncated file, unsupported compression, predictor or photometric
            interpretation, or data the decoder rejects; one line naming the file.
    """
    size = path.stat().st_size
    _check_first_directory(path, size)
    with _tifffile_logging_silenced():
        arr, axes, page = _decode_first_series(path, size)
    if "S" in axes and axes.index("S") != len(axes) - 1:
        arr = np.moveaxis(arr, axes.index("S"), -1)
    if int(page.photometric) == 0 and 262 in page.tags:  # tifffile also says 0 when the tag is missing
        arr = _white_is_zero_to_black_is_zero(arr, int(page.bitspersample))
    return arr
