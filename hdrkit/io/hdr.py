"""Read and write radiance maps: Radiance RGBE (.hdr/.pic), OpenEXR (.exr), PFM (.pfm), float TIFF.

Radiance RGBE (Ward 1991, "Real pixels", Graphics Gems II): a text header ending in a blank line
(any lines, e.g. ``VIEW=``, may precede ``#?RADIANCE``), a resolution line, then scanlines that are
flat or "new-style" run-length encoded (``2 2 W>>8 W&255`` then each of the four byte planes coded
as runs ``128+n, value`` or literals ``n, bytes``). Decoding follows the OpenCV/stb convention
``v = m * 2**(e - 136)`` (no half-step offset); the writer rounds, so a round trip is within
0.4 % of each pixel's largest channel. All eight resolution-line orientations are read
(``-Y H +X W`` is the standard one). Old-style (``1 1 1 n``) RLE is not supported. ``EXPOSURE=``
and ``COLORCORR=`` header lines are ignored (pixel values are returned as stored, as OpenCV does).

OpenEXR (Kainz et al., "Technical introduction to OpenEXR", ILM 2004) is read with the official
``OpenEXR`` 3.x bindings: half/float, scanline, tiled, mip-mapped (level 0), multi-part (part 0),
RGB(A) (alpha dropped, not un-premultiplied), a single ``Y`` channel (grey), and luminance/chroma
``Y, RY, BY`` with 2x2-subsampled chroma, converted to RGB as OpenEXR's ``ImfRgbaYca`` does:
chroma reconstructed with its 27-tap half-band filter, ``R = (RY + 1) Y``, ``B = (BY + 1) Y``,
``G = (Y - wr R - wb B) / wg`` with luminance weights from the file's ``chromaticities`` (Rec.709
``0.2126, 0.7152, 0.0722`` by default). The data window is returned; chromaticities are not
converted (e.g. ACES files stay in ACES primaries).

PFM (Portable Float Map): ``PF``/``Pf`` header, scale < 0 means little-endian, rows bottom to top.

Float TIFF (16-, 32- or 64-bit samples) is decoded by ``hdrkit.io.tiff``: uncompressed, LZW,
Deflate/ZIP or PackBits, with or without the floating-point predictor, strips or tiles, either
byte order; grey is repeated to RGB and alpha dropped. LogLuv (SGILOG) and PixarLog are refused.

Negative values are kept on read (EXR allows them). NaN/Inf raise ``HdrkitError`` unless
``allow_nonfinite=True``. Writes are atomic and refuse non-finite values.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from hdrkit.errors import HdrkitError
from hdrkit.io.atomic import atomic_path

__all__ = [
    "HDR_EXTENSIONS",
    "read_hdr",
    "write_hdr",
    "read_radiance",
    "write_radiance",
    "read_exr",
    "write_exr",
    "read_pfm",
    "write_pfm",
]

HDR_EXTENSIONS = (".hdr", ".pic", ".rgbe", ".exr", ".pfm", ".tif", ".tiff")
REC709_LUMINANCE = (0.2126, 0.7152, 0.0722)
"""Rec.709 / sRGB luminance weights (ITU-R BT.709), OpenEXR's default ``computeYw``."""

# OpenEXR ImfRgbaYca reconstructChroma: weights for odd (missing) positions at offsets 1, 3, ..., 13.
_YCA_RECONSTRUCT = (0.627123, -0.186077, 0.087929, -0.043159, 0.019597, -0.007540, 0.002128)
HALF_MAX = 65504.0
_EXR_MAGIC = b"\x76\x2f\x31\x01"
_RGBE_EXPONENT_BIAS = 136  # 128 + 8 mantissa bits
_RLE_MIN_RUN = 4


# ---------------------------------------------------------------------------------------- Radiance


def _parse_radiance_header(data: bytes, path) -> tuple[int, list[tuple[str, str]], int, int]:
    """Return (offset of pixel data, axes [(sign, axis), (sign, axis)], n_major, n_minor)."""
    end = data.find(b"\n\n")
    if end < 0:
        raise HdrkitError(f"{path}: not a Radiance .hdr file (no blank line ending the header)")
    header = data[:end].decode("latin-1").split("\n")
    if not any(line.startswith("#?") for line in header) and not any(
        line.startswith("FORMAT=") for line in header
    ):
        raise HdrkitError(f"{path}: not a Radiance .hdr file (no '#?RADIANCE' or FORMAT= line)")
    for line in header:
        if line.startswith("FORMAT=") and line.strip() != "FORMAT=32-bit_rle_rgbe":
            raise HdrkitError(
                f"{path}: unsupported Radiance {line.strip()}; only 32-bit_rle_rgbe is read "
                "(convert XYZE files to RGBE first)"
            )
    nl = data.find(b"\n", end + 2)
    if nl < 0:
        raise HdrkitError(f"{path}: truncated Radiance file (no resolution line)")
    res = data[end + 2 : nl].decode("latin-1").strip()
    m = re.fullmatch(r"([-+])([XY])\s+(\d+)\s+([-+])([XY])\s+(\d+)", res)
    if m is None or m.group(2) == m.group(5):
        raise HdrkitError(f"{path}: unsupported Radiance resolution line {res!r}; expected e.g. '-Y H +X W'")
    axes = [(m.group(1), m.group(2)), (m.group(4), m.group(5))]
    return nl + 1, axes, int(m.group(3)), int(m.group(6))


def _decode_rgbe_planes(data: bytes, pos: int, n_lines: int, width: int, path) -> np.ndarray:
    """Decode scanlines into planar bytes (n_lines, 4, width)."""
    out = bytearray(n_lines * 4 * width)
    size = len(data)
    rle_ok = 8 <= width <= 0x7FFF
    marker = bytes((2, 2, width >> 8, width & 0xFF))
    for y in range(n_lines):
        row = y * 4 * width
        if rle_ok and data[pos : pos + 4] == marker:
            pos += 4
            for c in range(4):
                x = 0
                base = row + c * width
                while x < width:
                    if pos >= size:
                        raise HdrkitError(f"{path}: truncated Radiance file (scanline {y} of {n_lines})")
                    n = data[pos]
                    pos += 1
                    if n > 128:
                        n -= 128
                        if x + n > width or pos >= size:
                            raise HdrkitError(f"{path}: corrupt run-length data in scanline {y}")
                        out[base + x : base + x + n] = bytes((data[pos],)) * n
                        pos += 1
                    else:
                        if n == 0 or x + n > width or pos + n > size:
                            raise HdrkitError(f"{path}: corrupt or truncated run-length data in scanline {y}")
                        out[base + x : base + x + n] = data[pos : pos + n]
                        pos += n
                    x += n
        else:
            if pos + 4 * width > size:
                raise HdrkitError(f"{path}: truncated Radiance file (scanline {y} of {n_lines})")
            flat = np.frombuffer(data, np.uint8, 4 * width, pos).reshape(width, 4).T
            out[row : row + 4 * width] = flat.tobytes()
            pos += 4 * width
    return np.frombuffer(bytes(out), np.uint8).reshape(n_lines, 4, width)


def read_radiance(path: str | Path) -> np.ndarray:
    """Read a Radiance RGBE file into a float32 array (H, W, 3), RGB, linear, as stored."""
    path = Path(path)
    data = _read_bytes(path)
    pos, axes, n_major, n_minor = _parse_radiance_header(data, path)
    planes = _decode_rgbe_planes(data, pos, n_major, n_minor, path)
    mant = planes[:, :3, :].astype(np.float32)
    exp = planes[:, 3, :].astype(np.int32)
    scale = np.where(exp > 0, np.ldexp(np.float32(1.0), exp - _RGBE_EXPONENT_BIAS), 0.0).astype(np.float32)
    img = np.moveaxis(mant * scale[:, None, :], 1, 2)  # (major, minor, 3)
    (s1, a1), (s2, a2) = axes
    if a1 == "X":  # columns stored as scanlines: transpose to (Y, X)
        img = img.transpose(1, 0, 2)
        (sy, sx) = (s2, s1)
    else:
        (sy, sx) = (s1, s2)
    if sy == "+":  # +Y: bottom row first
        img = img[::-1]
    if sx == "-":  # -X: right to left
        img = img[:, ::-1]
    return np.ascontiguousarray(img, dtype=np.float32)


def _encode_rle_plane(a: np.ndarray) -> bytes:
    """New-style run-length code one byte plane of a scanline."""
    width = a.shape[0]
    change = np.flatnonzero(a[1:] != a[:-1]) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [width]))
    out = bytearray()

    def literal(lo: int, hi: int) -> None:
        while lo < hi:
            n = min(128, hi - lo)
            out.append(n)
            out.extend(a[lo : lo + n].tobytes())
            lo += n

    x = 0
    for i in np.flatnonzero(ends - starts >= _RLE_MIN_RUN):
        s, e = int(starts[i]), int(ends[i])
        literal(x, s)
        value = int(a[s])
        while s < e:
            n = min(127, e - s)
            out += bytes((128 + n, value))
            s += n
        x = e
    literal(x, width)
    return bytes(out)


def _float_to_rgbe(img: np.ndarray) -> np.ndarray:
    """(H, W, 3) float -> (H, W, 4) uint8 RGBE, rounding mantissas."""
    img = np.maximum(img.astype(np.float64), 0.0)
    vmax = img.max(axis=2)
    frac, exp = np.frexp(vmax)  # vmax = frac * 2**exp, frac in [0.5, 1)
    valid = vmax > 2.0**-127
    scale = np.where(valid, np.ldexp(256.0, -exp), 0.0)
    mant = np.clip(np.floor(img * scale[..., None] + 0.5), 0, 255)
    rgbe = np.empty(img.shape[:2] + (4,), np.uint8)
    rgbe[..., :3] = np.where(valid[..., None], mant, 0)
    rgbe[..., 3] = np.where(valid, exp + 128, 0)
    return rgbe


def write_radiance(path: str | Path, img: np.ndarray) -> None:
    """Write (H, W, 3) float RGB as run-length encoded Radiance RGBE ('-Y H +X W'), atomically.

    Negative values are stored as 0 (RGBE cannot hold them). Values above ~1.7e38 are refused.
    """
    path = Path(path)
    img = np.asarray(img)
    if img.max(initial=0.0) >= 2.0**127:
        raise HdrkitError(f"{path}: values above 1.7e38 cannot be stored in Radiance RGBE")
    h, w = img.shape[:2]
    rgbe = _float_to_rgbe(img)
    header = f"#?RADIANCE\n# written by hdrkit\nFORMAT=32-bit_rle_rgbe\n\n-Y {h} +X {w}\n".encode("ascii")
    chunks = [header]
    if 8 <= w <= 0x7FFF:
        marker = bytes((2, 2, w >> 8, w & 0xFF))
        for y in range(h):
            chunks.append(marker)
            chunks.extend(_encode_rle_plane(rgbe[y, :, c]) for c in range(4))
    else:
        chunks.append(rgbe.tobytes())
    with atomic_path(path) as tmp:
        tmp.write_bytes(b"".join(chunks))


# ----------------------------------------------------------------------------------------- OpenEXR


def _luminance_weights(chromaticities) -> np.ndarray:
    """RGB -> Y weights from (rx, ry, gx, gy, bx, by, wx, wy), as OpenEXR's ``computeYw``."""
    if chromaticities is None:
        return np.asarray(REC709_LUMINANCE)
    c = np.asarray(chromaticities, dtype=np.float64).reshape(4, 2)
    xyz = np.stack([c[:, 0], c[:, 1], 1.0 - c[:, 0] - c[:, 1]])  # (3, 4): primaries r, g, b, white
    s = np.linalg.solve(xyz[:, :3], xyz[:, 3] / c[3, 1])  # scale so R=G=B=1 is the white with Y=1
    yw = xyz[1, :3] * s
    return yw / yw.sum()


def _reconstruct_chroma_axis(c: np.ndarray, axis: int, size: int, offset: int, factor: int) -> np.ndarray:
    """Upsample subsampled chroma along ``axis`` to ``size`` samples; first sample at ``offset``."""
    c = np.moveaxis(c, axis, 0)
    if factor == 1:
        return np.moveaxis(c, 0, axis)
    if factor != 2:
        full = np.repeat(c, factor, axis=0)
        full = np.concatenate([full[:1].repeat(offset, axis=0), full], axis=0)[:size]
        return np.moveaxis(full, 0, axis)
    pad = len(_YCA_RECONSTRUCT)
    padded = np.concatenate([c[:1].repeat(pad, 0), c, c[-1:].repeat(pad, 0)], axis=0)
    up = np.zeros((2 * padded.shape[0],) + padded.shape[1:], np.float64)
    up[0::2] = padded
    odd = np.zeros_like(up)
    for k, wgt in enumerate(_YCA_RECONSTRUCT):
        d = 2 * k + 1  # odd position i takes samples at i - d and i + d
        odd[d : -d or None] += wgt * (up[: -2 * d or None] + up[2 * d :])
    up[1::2] = odd[1::2]
    start = 2 * pad - offset
    return np.moveaxis(up[start : start + size], 0, axis)


def _yca_to_rgb(y, ry, by, yw) -> np.ndarray:
    r = (ry + 1.0) * y
    b = (by + 1.0) * y
    g = (y - r * yw[0] - b * yw[2]) / yw[1]
    return np.stack([r, g, b], axis=-1)


def read_exr(path: str | Path) -> np.ndarray:
    """Read an OpenEXR file into a float32 array (H, W, 3) RGB with the official bindings."""
    import OpenEXR

    path = Path(path)
    try:
        f = OpenEXR.File(str(path), separate_channels=True)
    except Exception as exc:  # the bindings raise RuntimeError/IOError with library messages
        raise HdrkitError(f"{path}: cannot read OpenEXR file ({exc})") from exc
    part = f.parts[0]
    chans = part.channels
    header = part.header
    names = set(chans)
    (x0, y0), (x1, y1) = (np.asarray(v) for v in header["dataWindow"])
    height, width = int(y1 - y0 + 1), int(x1 - x0 + 1)

    def px(name):
        return np.asarray(chans[name].pixels, dtype=np.float64)

    if {"R", "G", "B"} <= names:
        img = np.stack([px("R"), px("G"), px("B")], axis=-1)
    elif {"Y", "RY", "BY"} <= names:
        y = px("Y")
        chroma = []
        for name in ("RY", "BY"):
            ch = chans[name]
            c = px(name)
            c = _reconstruct_chroma_axis(c, 0, height, int(-y0) % ch.ySampling, ch.ySampling)
            c = _reconstruct_chroma_axis(c, 1, width, int(-x0) % ch.xSampling, ch.xSampling)
            chroma.append(c)
        img = _yca_to_rgb(y, chroma[0], chroma[1], _luminance_weights(header.get("chromaticities")))
    elif "Y" in names:
        img = np.repeat(px("Y")[..., None], 3, axis=-1)
    else:
        layers = sorted(n[:-1] for n in names if n.endswith(".R") and {n[:-1] + "G", n[:-1] + "B"} <= names)
        if not layers:
            raise HdrkitError(
                f"{path}: no R,G,B or Y channels (found {', '.join(sorted(names))}); cannot make an RGB image"
            )
        p = layers[0]
        img = np.stack([px(p + "R"), px(p + "G"), px(p + "B")], axis=-1)
    if img.shape[:2] != (height, width):
        raise HdrkitError(f"{path}: unexpected channel size {img.shape[:2]} for data window {height}x{width}")
    return np.ascontiguousarray(img, dtype=np.float32)


def write_exr(path: str | Path, img: np.ndarray, half: bool = False) -> None:
    """Write (H, W, 3) float RGB as a ZIP-compressed scanline OpenEXR (float32, or half), atomically."""
    import OpenEXR

    path = Path(path)
    if half and np.abs(img).max(initial=0.0) > HALF_MAX:
        raise HdrkitError(f"{path}: values exceed the half-float range ({HALF_MAX:g}); write with half=False")
    img = np.ascontiguousarray(img, dtype=np.float16 if half else np.float32)
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    with atomic_path(path) as tmp:
        OpenEXR.File(header, {"RGB": img}).write(str(tmp))


# --------------------------------------------------------------------------------------------- PFM


def read_pfm(path: str | Path) -> np.ndarray:
    """Read a Portable Float Map into float32 (H, W, 3); grey ('Pf') is repeated to 3 channels."""
    path = Path(path)
    data = _read_bytes(path)
    tokens, pos = [], 0
    while len(tokens) < 4:
        m = re.compile(rb"\s*(\S+)").match(data, pos)
        if m is None:
            raise HdrkitError(f"{path}: truncated PFM header")
        tokens.append(m.group(1))
        pos = m.end()
    pos += 1  # the single whitespace after the scale
    kind, w, h, scale = tokens
    if kind not in (b"PF", b"Pf"):
        raise HdrkitError(f"{path}: not a PFM file (starts with {kind[:8]!r})")
    try:
        w, h, scale = int(w), int(h), float(scale)
    except ValueError as exc:
        raise HdrkitError(f"{path}: malformed PFM header") from exc
    c = 3 if kind == b"PF" else 1
    dtype = np.dtype("<f4" if scale < 0 else ">f4")
    n = w * h * c
    if len(data) - pos < 4 * n:
        raise HdrkitError(f"{path}: truncated PFM data ({len(data) - pos} of {4 * n} bytes)")
    img = np.frombuffer(data, dtype, n, pos).reshape(h, w, c)[::-1].astype(np.float32)
    return np.ascontiguousarray(np.repeat(img, 3, axis=2) if c == 1 else img)


def write_pfm(path: str | Path, img: np.ndarray) -> None:
    """Write (H, W, 3) float32 RGB as little-endian PFM (rows bottom to top), atomically."""
    img = np.asarray(img, dtype="<f4")
    h, w = img.shape[:2]
    with atomic_path(path) as tmp:
        tmp.write_bytes(f"PF\n{w} {h}\n-1.0\n".encode("ascii") + np.ascontiguousarray(img[::-1]).tobytes())


# -------------------------------------------------------------------------------------------- TIFF


def _read_float_tiff(path: Path) -> np.ndarray:
    """Read a float TIFF (any compression ``hdrkit.io.tiff`` decodes) into float32 (H, W, 3) RGB."""
    from hdrkit.io.tiff import read_tiff_samples

    arr = read_tiff_samples(path)
    if not np.issubdtype(arr.dtype, np.floating):
        raise HdrkitError(f"{path}: integer TIFF ({arr.dtype}) is an LDR image; read it with read_ldr")
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise HdrkitError(f"{path}: unsupported TIFF layout {arr.shape}; expected one (H, W, C) image")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return np.ascontiguousarray(arr[..., :3], dtype=np.float32)


def _write_float_tiff(path: Path, img: np.ndarray) -> None:
    import tifffile

    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, np.ascontiguousarray(img, dtype=np.float32), photometric="rgb", compression="zlib")


# ------------------------------------------------------------------------------------------ public


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise HdrkitError(f"{path}: file not found") from exc
    except IsADirectoryError as exc:
        raise HdrkitError(f"{path}: is a directory, not an image file") from exc


def _sniff_hdr(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except FileNotFoundError as exc:
        raise HdrkitError(f"{path}: file not found") from exc
    except IsADirectoryError as exc:
        raise HdrkitError(f"{path}: is a directory, not an image file") from exc
    if head == _EXR_MAGIC:
        return "exr"
    if head[:2] in (b"PF", b"Pf"):
        return "pfm"
    if head[:2] in (b"II", b"MM"):
        return "tiff"
    if head[:2] == b"#?":
        return "radiance"
    suffix = path.suffix.lower()
    if suffix in (".hdr", ".pic", ".rgbe"):
        return "radiance"
    raise HdrkitError(
        f"{path}: not a recognized HDR file (.hdr/.pic Radiance, .exr, .pfm or float .tif); "
        "LDR images are read with read_ldr"
    )


def read_hdr(path: str | Path, allow_nonfinite: bool = False) -> torch.Tensor:
    """Read a radiance map.

    The format is detected from the file's magic bytes (Radiance files may start with any header
    line, so ``.hdr``/``.pic`` names are also accepted).

    Args:
        path: ``.hdr``/``.pic`` (RGBE), ``.exr``, ``.pfm`` or float ``.tif``.
        allow_nonfinite: keep NaN/Inf values instead of raising.

    Returns:
        (3, H, W) float32 linear RGB radiance, as stored (negative values are kept).

    Raises:
        HdrkitError: missing, unreadable or unsupported file, or NaN/Inf content.
    """
    path = Path(path)
    kind = _sniff_hdr(path)
    reader = {"exr": read_exr, "pfm": read_pfm, "tiff": _read_float_tiff, "radiance": read_radiance}[kind]
    img = reader(path)
    if not allow_nonfinite and not np.isfinite(img).all():
        bad = int((~np.isfinite(img)).sum())
        raise HdrkitError(
            f"{path}: contains NaN/Inf values ({bad} samples); fix the file or pass allow_nonfinite=True"
        )
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


def write_hdr(path: str | Path, hdr: torch.Tensor, half: bool = False) -> Path:
    """Write a radiance map, format chosen by extension, atomically.

    Args:
        path: ``.exr`` (ZIP, float32 or half), ``.hdr``/``.pic`` (RLE RGBE; negatives stored as 0),
            ``.pfm`` (float32) or ``.tif``/``.tiff`` (float32, zlib).
        hdr: (3, H, W) (or (1, 3, H, W)) linear RGB radiance, float.
        half: store half floats (``.exr`` only).

    Returns:
        The written path.

    Raises:
        HdrkitError: unknown extension, wrong shape, NaN/Inf values.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in HDR_EXTENSIONS or suffix == ".rgbe":
        raise HdrkitError(f"{path}: unknown HDR extension {suffix!r}; use .exr, .hdr, .pfm or .tif")
    t = torch.as_tensor(hdr).detach()
    if t.ndim == 4 and t.shape[0] == 1:
        t = t[0]
    if t.ndim != 3 or t.shape[0] != 3:
        raise HdrkitError(f"{path}: hdr must have shape (3, H, W), got {tuple(t.shape)}")
    img = t.to("cpu", torch.float32).permute(1, 2, 0).contiguous().numpy()
    if not np.isfinite(img).all():
        raise HdrkitError(f"{path}: refusing to write NaN/Inf values; clean the image first")
    if half and suffix != ".exr":
        raise HdrkitError(f"{path}: half=True is only supported for .exr output")
    if suffix == ".exr":
        write_exr(path, img, half=half)
    elif suffix in (".hdr", ".pic"):
        write_radiance(path, img)
    elif suffix == ".pfm":
        write_pfm(path, img)
    else:
        _write_float_tiff(path, img)
    return path
