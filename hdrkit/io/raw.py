"""Camera RAW decoding to linear RGB with rawpy (LibRaw); rawpy is the optional extra ``hdrkit[raw]``.

Development settings keep the data proportional to scene radiance: camera white balance, no
auto-brightening, gamma 1 (linear), 16-bit output in linear sRGB primaries, black level subtracted
and white level scaled to 1 by LibRaw. The sensor orientation flag is honoured (LibRaw's default).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hdrkit.errors import HdrkitError

__all__ = ["RAW_EXTENSIONS", "is_raw_path", "read_raw"]

RAW_EXTENSIONS = frozenset(
    {
        ".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".raf", ".orf",
        ".rw2", ".pef", ".srw", ".raw", ".rwl", ".3fr", ".fff", ".iiq", ".erf", ".kdc", ".dcr",
        ".mrw", ".mos", ".x3f",
    }
)  # fmt: skip


def is_raw_path(path: str | Path) -> bool:
    """True when the file extension is a camera RAW format read through rawpy."""
    return Path(path).suffix.lower() in RAW_EXTENSIONS


def _import_rawpy(path: Path):
    try:
        import rawpy
    except ImportError as exc:
        raise HdrkitError(
            f"{path}: reading camera RAW files needs rawpy; install it with: pip install hdrkit[raw]"
        ) from exc
    return rawpy


def read_raw(path: str | Path) -> np.ndarray:
    """Develop a camera RAW file linearly.

    Returns:
        (H, W, 3) float32 linear RGB in [0, 1] (16-bit quantized), proportional to exposure.

    Raises:
        HdrkitError: rawpy missing, file missing or not decodable.
    """
    path = Path(path)
    if not path.is_file():
        raise HdrkitError(f"{path}: file not found")
    rawpy = _import_rawpy(path)
    try:
        with rawpy.imread(str(path)) as raw:
            rgb = raw.postprocess(
                use_camera_wb=True,
                no_auto_bright=True,
                gamma=(1.0, 1.0),
                output_bps=16,
                output_color=rawpy.ColorSpace.sRGB,
            )
    except Exception as exc:  # rawpy.LibRawError and its subclasses, OSError
        raise HdrkitError(f"{path}: cannot decode camera RAW file ({type(exc).__name__}: {exc})") from exc
    return rgb.astype(np.float32) / np.float32(65535.0)
