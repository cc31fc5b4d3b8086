"""Read and write display-referred (LDR) images: JPEG, 8/16-bit PNG and TIFF, camera RAW.

The decoder is chosen from the file's magic bytes, not its name (a RAW extension selects rawpy):
JPEG through Pillow, PNG through OpenCV (``IMREAD_UNCHANGED``; Pillow reduces 16-bit RGB PNGs to
8 bits), TIFF through tifffile and imagecodecs (``hdrkit.io.tiff``: uncompressed, LZW, Deflate/ZIP,
PackBits or JPEG; with or without a predictor; strips or tiles; either byte order), anything else
through OpenCV. Truncated files are errors: Pillow's ``load()`` must succeed and the JPEG
end-of-image marker must follow the last scan; a PNG must end with its ``IEND`` chunk; a TIFF's
strips or tiles must lie inside the file. Grey becomes 3 channels, alpha is dropped, and for JPEG
the EXIF orientation is applied (``orient=True``; PNG and TIFF orientation tags are ignored).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hdrkit.errors import HdrkitError
from hdrkit.io.atomic import atomic_path
from hdrkit.io.raw import is_raw_path, read_raw
from hdrkit.io.tiff import read_tiff_samples

__all__ = ["LdrImage", "LDR_EXTENSIONS", "read_ldr", "decode_ldr", "to_planes", "write_ldr"]

LDR_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff")
_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


@dataclass
class LdrImage:
    """One decoded LDR frame.

    Attributes:
        image: (3, H, W) float32 RGB codes in [0, 1] (``code / (2**bits - 1)``).
        bits: bit depth of the stored codes (8 or 16; 16 for RAW).
        linear: True when the codes are proportional to exposure (camera RAW), False for
            display-referred images that still carry the camera response.
        path: the file read.
    """

    image: torch.Tensor
    bits: int
    linear: bool
    path: Path


def _to_rgb(arr: np.ndarray, path: Path, channels_are_bgr: bool) -> np.ndarray:
    """(H, W[, C]) -> (H, W, 3) RGB, dropping alpha and expanding grey."""
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise HdrkitError(f"{path}: unsupported image layout {arr.shape}")
    c = arr.shape[2]
    if c in (1, 2):  # grey, grey + alpha
        return np.repeat(arr[..., :1], 3, axis=2)
    if c not in (3, 4):
        raise HdrkitError(f"{path}: unsupported number of channels ({c})")
    rgb = arr[..., :3]
    return rgb[..., ::-1] if channels_are_bgr else rgb


def _check_jpeg_complete(data: bytes, path: Path) -> None:
    # Entropy-coded data cannot contain 0xFFD9 or 0xFFDA, so a complete file has an EOI marker after
    # the start of its last scan (an EXIF thumbnail's EOI comes before the main image's scan).
    if data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda"):
        raise HdrkitError(f"{path}: truncated JPEG (no end-of-image marker after the last scan); re-export the file")


def _read_jpeg(data: bytes, path: Path, orient: bool) -> tuple[np.ndarray, int]:
    """8-bit RGB samples of a JPEG: OpenCV's decoder (libjpeg-turbo, ~2x faster than Pillow's here, the same
    samples, EXIF orientation applied unless ``orient`` is False), Pillow's for what OpenCV cannot decode
    (and for its error message)."""
    import io

    import cv2

    _check_jpeg_complete(data, path)
    if hasattr(cv2, "IMREAD_COLOR_RGB"):  # OpenCV >= 4.10
        flags = cv2.IMREAD_COLOR_RGB | (0 if orient else cv2.IMREAD_IGNORE_ORIENTATION)
        arr = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
        if arr is not None and arr.ndim == 3 and arr.shape[2] == 3:
            return arr, 8

    from PIL import Image, ImageOps

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            if orient:
                im = ImageOps.exif_transpose(im)
            if im.mode not in ("L", "RGB"):
                im = im.convert("RGB")
            arr = np.asarray(im)
    except OSError as exc:  # includes PIL.UnidentifiedImageError and "image file is truncated"
        raise HdrkitError(f"{path}: cannot decode JPEG ({exc}); the file may be truncated or corrupt") from exc
    return _to_rgb(arr, path, channels_are_bgr=False), 8


def _read_png(data: bytes, path: Path) -> tuple[np.ndarray, int]:
    import cv2

    if b"IEND" not in data[-64:]:
        raise HdrkitError(f"{path}: truncated PNG (no IEND chunk at the end); re-export the file")
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise HdrkitError(f"{path}: cannot decode PNG; the file may be corrupt")
    return _check_int(_to_rgb(arr, path, channels_are_bgr=arr.ndim == 3), path)


def _read_tiff(path: Path) -> tuple[np.ndarray, int]:
    arr = read_tiff_samples(path)
    if np.issubdtype(arr.dtype, np.floating):
        raise HdrkitError(f"{path}: floating-point TIFF is a radiance map; read it with read_hdr")
    return _check_int(_to_rgb(arr, path, channels_are_bgr=False), path)


def _read_other(data: bytes, path: Path) -> tuple[np.ndarray, int]:
    import cv2

    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    if arr is None:
        raise HdrkitError(f"{path}: not a readable image file (expected JPEG, PNG, TIFF or camera RAW)")
    return _check_int(_to_rgb(arr, path, channels_are_bgr=arr.ndim == 3), path)


def _check_int(arr: np.ndarray, path: Path) -> tuple[np.ndarray, int]:
    if arr.dtype == np.uint8:
        return arr, 8
    if arr.dtype == np.uint16:
        return arr, 16
    raise HdrkitError(f"{path}: unsupported sample type {arr.dtype}; expected 8- or 16-bit integers")


def read_ldr(path: str | Path, orient: bool = True) -> LdrImage:
    """Read an LDR image (JPEG, 8/16-bit PNG or TIFF, or camera RAW developed linearly).

    Args:
        path: image file.
        orient: apply the JPEG EXIF orientation (RAW orientation is always applied by LibRaw).

    Returns:
        ``LdrImage`` with ``image`` (3, H, W) float32 RGB in [0, 1].

    Raises:
        HdrkitError: missing, truncated, non-image or unsupported file.
    """
    arr, bits, linear = decode_ldr(path, orient)
    return LdrImage(torch.from_numpy(to_planes(arr, bits, linear)), bits, linear, Path(path))


def decode_ldr(path: str | Path, orient: bool = True) -> tuple[np.ndarray, int, bool]:
    """The decoding half of ``read_ldr``: ``(samples, bits, linear)`` with samples (H, W, 3) RGB, uint8 / uint16
    codes (float32 in [0, 1] for camera RAW, ``linear`` True); ``to_planes`` makes the (3, H, W) float32 image."""
    path = Path(path)
    if not path.exists():
        raise HdrkitError(f"{path}: file not found")
    if not path.is_file():
        raise HdrkitError(f"{path}: is not a file")
    if is_raw_path(path):
        return read_raw(path), 16, True
    data = path.read_bytes()
    if data.startswith(_JPEG_MAGIC):
        arr, bits = _read_jpeg(data, path, orient)
    elif data.startswith(_PNG_MAGIC):
        arr, bits = _read_png(data, path)
    elif data[:4] in _TIFF_MAGICS:
        arr, bits = _read_tiff(path)
    else:
        arr, bits = _read_other(data, path)
    return arr, bits, False


def to_planes(arr: np.ndarray, bits: int, linear: bool, out: np.ndarray | None = None) -> np.ndarray:
    """``decode_ldr``'s samples as (3, H, W) float32 codes in [0, 1] (written into ``out`` when given)."""
    out = np.empty((3, *arr.shape[:2]), np.float32) if out is None else out
    if linear:
        np.copyto(out, arr.transpose(2, 0, 1))
        return out
    return _codes_to_float(arr, bits, out)


def _codes_to_float(arr: np.ndarray, bits: int, out: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 / uint16 codes -> ``out`` (3, H, W) float32 ``code * float32(1 / (2^bits - 1))``, one OpenCV
    pass per plane (the same values as numpy's float32 product: both are the correctly rounded product)."""
    import cv2

    scale = float(np.float32(1.0 / (2**bits - 1)))
    for c, plane in enumerate(cv2.split(np.ascontiguousarray(arr))):
        cv2.multiply(plane, 1.0, dst=out[c], scale=scale, dtype=cv2.CV_32F)
    return out


def write_ldr(path: str | Path, image: torch.Tensor, bits: int = 8, quality: int = 95) -> Path:
    """Write an LDR image atomically: PNG, TIFF (8 or 16 bits) or JPEG (8 bits).

    Args:
        path: output file; the extension selects the format.
        image: (3, H, W) (or (1, 3, H, W)) RGB codes in [0, 1]; clipped, then rounded.
        bits: 8 or 16 (16 only for PNG/TIFF).
        quality: JPEG quality.

    Returns:
        The written path.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in LDR_EXTENSIONS:
        raise HdrkitError(f"{path}: unknown LDR extension {suffix!r}; use .png, .jpg or .tif")
    if bits not in (8, 16):
        raise HdrkitError(f"{path}: bits must be 8 or 16, got {bits}")
    if bits == 16 and suffix in (".jpg", ".jpeg"):
        raise HdrkitError(f"{path}: JPEG is 8-bit only; write 16-bit images as .png or .tif")
    t = torch.as_tensor(image).detach()
    if t.ndim == 4 and t.shape[0] == 1:
        t = t[0]
    if t.ndim != 3 or t.shape[0] != 3:
        raise HdrkitError(f"{path}: image must have shape (3, H, W), got {tuple(t.shape)}")
    arr = t.to("cpu", torch.float64).permute(1, 2, 0).numpy()
    if not np.isfinite(arr).all():
        raise HdrkitError(f"{path}: refusing to write NaN/Inf values")
    peak = 2**bits - 1
    codes = np.round(np.clip(arr, 0.0, 1.0) * peak).astype(np.uint8 if bits == 8 else np.uint16)
    with atomic_path(path) as tmp:
        if suffix == ".png":
            import cv2

            if not cv2.imwrite(str(tmp), np.ascontiguousarray(codes[..., ::-1])):
                raise HdrkitError(f"{path}: OpenCV could not write the PNG")
        elif suffix in (".tif", ".tiff"):
            import tifffile

            tifffile.imwrite(tmp, codes, photometric="rgb", compression="zlib")
        else:
            from PIL import Image

            Image.fromarray(codes).save(tmp, format="JPEG", quality=quality)
    return path
