"""TIFF as cameras, editors and libraries write it: every common variant, made here by OpenCV, Pillow
and tifffile, read back by read_ldr / read_hdr and compared with the array that was written."""

import struct

import cv2
import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from hdrkit.cli import main
from hdrkit.data import normalize_scene, procedural_scene, synthesize_bracket
from hdrkit.errors import HdrkitError
from hdrkit.io import read_hdr, read_ldr
from hdrkit.metrics import psnr_mu

NONE, LZW, ADOBE_DEFLATE, DEFLATE, PACKBITS, JPEG = 1, 5, 8, 32946, 32773, 7
HORIZONTAL, FLOATINGPOINT = 2, 3
H, W = 40, 52  # not a multiple of the 16x16 tiles used below, so edge tiles are partial


def _codes(bits=16, channels=3, seed=0):
    """(H, W, C) random integer codes (the hardest case for the predictors and codecs)."""
    rng = np.random.default_rng(seed)
    shape = (H, W) if channels == 1 else (H, W, channels)
    return rng.integers(0, 2**bits, size=shape, dtype=np.uint16 if bits == 16 else np.uint8)


def _smooth8(channels=3):
    """(H, W, C) smooth uint8 image, so that JPEG errors stay small."""
    yy, xx = np.mgrid[0:H, 0:W]
    rgb = np.stack([40 + 3 * xx, 60 + 4 * yy, 128 + 60 * np.sin(xx / 7.0)], axis=-1)
    rgb = np.clip(rgb, 0, 255).astype(np.uint8)
    return rgb[..., 1] if channels == 1 else rgb


def _radiance(seed=0):
    """(H, W, 3) float32 radiance over several decades, with exact zeros."""
    rng = np.random.default_rng(seed)
    img = (10.0 ** rng.uniform(-3, 4, size=(H, W, 3))).astype(np.float32)
    img[:3, :3] = 0
    return img


def _layout(path):
    """(compression, predictor, tiled, byteorder) as stored, to prove each case is the variant it claims."""
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        return int(page.compression), int(page.predictor), page.is_tiled, tif.byteorder


def _read_codes(path):
    """read_ldr -> ((H, W, 3) integer codes, bits)."""
    im = read_ldr(path)
    assert im.image.dtype == torch.float32 and im.image.shape == (3, H, W)
    codes = np.round(im.image.numpy().transpose(1, 2, 0) * (2**im.bits - 1)).astype(np.int64)
    return codes, im.bits


def _check_jpeg(path, source):
    """JPEG-in-TIFF: close to the source, and equal (to IDCT rounding) to libtiff's decode through Pillow."""
    codes, bits = _read_codes(path)
    assert bits == 8
    with Image.open(path) as im:
        libtiff = np.asarray(im.convert("RGB")).astype(np.int64)
    assert np.abs(codes - libtiff).max() <= 2
    assert np.abs(codes - _as_rgb(source)).mean() < 3.0


def _as_rgb(arr):
    """Expected (H, W, 3) RGB of grey (replicated) or RGB(A) (alpha dropped) source samples."""
    return np.repeat(arr[..., None], 3, axis=2) if arr.ndim == 2 else arr[..., :3]


def _patch_short_tag(path, code, value):
    """Overwrite a SHORT tag stored in the first directory (e.g. 259 Compression) in place."""
    with tifffile.TiffFile(path) as tif:
        tag = tif.pages[0].tags[code]
        offset, order = tag.valueoffset, tif.byteorder
    data = bytearray(path.read_bytes())
    data[offset : offset + 2] = struct.pack(order + "H", value)
    path.write_bytes(bytes(data))


# -------------------------------------------------------------------------------------------- OpenCV


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize(
    "compression",
    [None, NONE, LZW, ADOBE_DEFLATE, DEFLATE, PACKBITS],
    ids=["default", "none", "lzw", "adobe_deflate", "deflate", "packbits"],
)
def test_opencv_lossless(tmp_path, bits, compression):
    rgb = _codes(bits)
    path = tmp_path / "cv.tif"
    params = [] if compression is None else [cv2.IMWRITE_TIFF_COMPRESSION, compression]
    assert cv2.imwrite(str(path), rgb[..., ::-1], params)
    stored = _layout(path)[0]
    assert stored == (LZW if compression is None else compression)  # OpenCV's default is LZW
    codes, got_bits = _read_codes(path)
    assert got_bits == bits
    np.testing.assert_array_equal(codes, rgb)


@pytest.mark.parametrize("compression", [LZW, ADOBE_DEFLATE], ids=["lzw", "adobe_deflate"])
def test_opencv_horizontal_predictor_16bit_and_grey(tmp_path, compression):
    rgb, grey = _codes(16), _codes(16, channels=1, seed=1)
    params = [cv2.IMWRITE_TIFF_COMPRESSION, compression, cv2.IMWRITE_TIFF_PREDICTOR, HORIZONTAL]
    for name, arr, expected in (("rgb.tif", rgb[..., ::-1], rgb), ("grey.tif", grey, _as_rgb(grey))):
        assert cv2.imwrite(str(tmp_path / name), arr, params)
        assert _layout(tmp_path / name)[:2] == (compression, HORIZONTAL)
        codes, bits = _read_codes(tmp_path / name)
        assert bits == 16
        np.testing.assert_array_equal(codes, expected)


def test_opencv_jpeg_in_tiff(tmp_path):
    rgb = _smooth8()
    path = tmp_path / "cvjpeg.tif"
    assert cv2.imwrite(str(path), rgb[..., ::-1], [cv2.IMWRITE_TIFF_COMPRESSION, JPEG])
    assert _layout(path)[0] == JPEG
    _check_jpeg(path, rgb)


# -------------------------------------------------------------------------------------------- Pillow

PIL_LOSSLESS = {None: NONE, "raw": NONE, "tiff_lzw": LZW, "tiff_deflate": ADOBE_DEFLATE,
                "tiff_adobe_deflate": ADOBE_DEFLATE, "packbits": PACKBITS}  # fmt: skip


@pytest.mark.parametrize("compression", list(PIL_LOSSLESS), ids=[str(c) for c in PIL_LOSSLESS])
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "I;16"])
def test_pillow_lossless(tmp_path, compression, mode):
    arr = {"RGB": _codes(8), "RGBA": _codes(8, channels=4), "L": _codes(8, channels=1),
           "I;16": _codes(16, channels=1)}[mode]  # fmt: skip
    path = tmp_path / "pil.tif"
    image = Image.fromarray(arr, mode) if mode != "I;16" else Image.fromarray(arr)
    assert image.mode == mode
    image.save(path, **({} if compression is None else {"compression": compression}))
    assert _layout(path)[0] == PIL_LOSSLESS[compression]
    codes, bits = _read_codes(path)
    assert bits == (16 if mode == "I;16" else 8)
    np.testing.assert_array_equal(codes, _as_rgb(arr))


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_pillow_jpeg_in_tiff(tmp_path, mode):
    arr = _smooth8(channels=3 if mode == "RGB" else 1)
    path = tmp_path / "piljpeg.tif"
    Image.fromarray(arr, mode).save(path, compression="jpeg", quality=95)
    assert _layout(path)[0] == JPEG
    _check_jpeg(path, arr)


# ------------------------------------------------------------------------------------------ tifffile

TIFFFILE_CASES = [
    (None, False), ("lzw", False), ("lzw", True), ("zlib", False), ("zlib", True),
    ("deflate", False), ("deflate", True), ("packbits", False),
]  # fmt: skip
TIFFFILE_CODES = {None: NONE, "lzw": LZW, "zlib": ADOBE_DEFLATE, "deflate": DEFLATE, "packbits": PACKBITS}


def _tifffile_write(path, arr, compression, predictor, tile, byteorder, **kw):
    tifffile.imwrite(path, arr, compression=compression, predictor=predictor, tile=tile, byteorder=byteorder, **kw)
    code, pred, tiled, order = _layout(path)
    assert (code, tiled, order) == (TIFFFILE_CODES[compression], tile is not None, byteorder)
    return pred


@pytest.mark.parametrize("byteorder", ["<", ">"], ids=["little", "big"])
@pytest.mark.parametrize("tile", [None, (16, 16)], ids=["strips", "tiles"])
@pytest.mark.parametrize("compression,predictor", TIFFFILE_CASES, ids=[f"{c}-{p}" for c, p in TIFFFILE_CASES])
@pytest.mark.parametrize("bits", [8, 16])
def test_tifffile_integer_variants(tmp_path, bits, compression, predictor, tile, byteorder):
    rgb = _codes(bits)
    path = tmp_path / "tf.tif"
    pred = _tifffile_write(path, rgb, compression, predictor, tile, byteorder, photometric="rgb")
    assert pred == (HORIZONTAL if predictor else 1)
    codes, got_bits = _read_codes(path)
    assert got_bits == bits
    np.testing.assert_array_equal(codes, rgb)


@pytest.mark.parametrize("byteorder", ["<", ">"], ids=["little", "big"])
def test_tifffile_rgba_grey_planar_bigtiff(tmp_path, byteorder):
    rgba, grey, rgb = _codes(16, channels=4), _codes(16, channels=1, seed=1), _codes(16, seed=2)
    cases = {
        "rgba.tif": (rgba, dict(photometric="rgb", extrasamples=["unassalpha"], compression="lzw", predictor=True)),
        "grey.tif": (grey, dict(photometric="minisblack", compression="zlib", predictor=True, tile=(16, 16))),
        "planar.tif": (rgb.transpose(2, 0, 1), dict(photometric="rgb", planarconfig="separate", compression="lzw")),
        "big.tif": (rgb, dict(photometric="rgb", compression="zlib", bigtiff=True)),
    }
    expected = {"rgba.tif": rgba[..., :3], "grey.tif": _as_rgb(grey), "planar.tif": rgb, "big.tif": rgb}
    for name, (arr, kw) in cases.items():
        tifffile.imwrite(tmp_path / name, arr, byteorder=byteorder, **kw)
        codes, bits = _read_codes(tmp_path / name)
        assert bits == 16
        np.testing.assert_array_equal(codes, expected[name], err_msg=name)


def test_tifffile_white_is_zero_grey_is_inverted(tmp_path):
    grey = _codes(16, channels=1)
    tifffile.imwrite(tmp_path / "w.tif", grey, photometric="miniswhite", compression="lzw")
    codes, _ = _read_codes(tmp_path / "w.tif")
    np.testing.assert_array_equal(codes, _as_rgb(65535 - grey.astype(np.int64)))


@pytest.mark.parametrize("tile", [None, (16, 16)], ids=["strips", "tiles"])
def test_tifffile_jpeg_ycbcr(tmp_path, tile):
    rgb = _smooth8()
    path = tmp_path / "tfjpeg.tif"
    tifffile.imwrite(path, rgb, photometric="rgb", compression="jpeg", compressionargs={"level": 95}, tile=tile)
    with tifffile.TiffFile(path) as tif:
        assert int(tif.pages[0].compression) == JPEG and int(tif.pages[0].photometric) == 6  # YCbCr
    _check_jpeg(path, rgb)


# ------------------------------------------------------------------------------------ float radiance


@pytest.mark.parametrize("byteorder", ["<", ">"], ids=["little", "big"])
@pytest.mark.parametrize("tile", [None, (16, 16)], ids=["strips", "tiles"])
@pytest.mark.parametrize("compression,predictor", TIFFFILE_CASES, ids=[f"{c}-{p}" for c, p in TIFFFILE_CASES])
def test_float_tiff_variants(tmp_path, compression, predictor, tile, byteorder):
    img = _radiance()
    path = tmp_path / "f.tif"
    pred = _tifffile_write(path, img, compression, predictor, tile, byteorder, photometric="rgb")
    assert pred == (FLOATINGPOINT if predictor else 1)
    hdr = read_hdr(path)
    assert hdr.dtype == torch.float32 and hdr.shape == (3, H, W)
    np.testing.assert_array_equal(hdr.numpy().transpose(1, 2, 0), img)


def test_float_tiff_half_grey_and_opencv(tmp_path):
    img = _radiance()
    half = img.astype(np.float16)
    tifffile.imwrite(tmp_path / "half.tif", half, photometric="rgb", compression="zlib", predictor=True)
    assert _layout(tmp_path / "half.tif")[:2] == (ADOBE_DEFLATE, FLOATINGPOINT)
    np.testing.assert_array_equal(read_hdr(tmp_path / "half.tif").numpy().transpose(1, 2, 0),
                                  half.astype(np.float32))
    tifffile.imwrite(tmp_path / "grey.tif", img[..., 1], photometric="minisblack", compression="lzw", predictor=True)
    np.testing.assert_array_equal(read_hdr(tmp_path / "grey.tif").numpy().transpose(1, 2, 0), _as_rgb(img[..., 1]))
    # OpenCV (libtiff) adds the floating-point predictor to compressed float32 TIFF
    for compression in (LZW, ADOBE_DEFLATE):
        assert cv2.imwrite(str(tmp_path / "cv.tif"), img[..., ::-1], [cv2.IMWRITE_TIFF_COMPRESSION, compression])
        assert _layout(tmp_path / "cv.tif")[:2] == (compression, FLOATINGPOINT)
        np.testing.assert_array_equal(read_hdr(tmp_path / "cv.tif").numpy().transpose(1, 2, 0), img)


# ----------------------------------------------------------------------------- refused, one clear line


def _one_line_error(read, path, *needles):
    with pytest.raises(HdrkitError) as info:
        read(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}:"), message
    for needle in needles:
        assert needle in message, message
    return message


@pytest.mark.parametrize("reader", ["ldr", "hdr"])
def test_unknown_compression_is_named_not_called_corrupt(tmp_path, reader):
    path = tmp_path / "odd.tif"
    arr = _codes(16) if reader == "ldr" else _radiance()
    tifffile.imwrite(path, arr, photometric="rgb", compression="lzw")
    _patch_short_tag(path, 259, 12345)
    message = _one_line_error(read_ldr if reader == "ldr" else read_hdr, path, "unsupported TIFF compression",
                              "(12345)", "re-save")
    assert "corrupt" not in message and "truncated" not in message


def test_logluv_from_opencv_and_unknown_predictor_are_named(tmp_path):
    # SGILOG (LogLuv) is a real compression OpenCV writes for float images and imagecodecs cannot decode
    path = tmp_path / "logluv.tif"
    assert cv2.imwrite(str(path), _radiance()[..., ::-1], [cv2.IMWRITE_TIFF_COMPRESSION, 34676])
    message = _one_line_error(read_hdr, path, "unsupported TIFF compression SGILOG (34676)")
    assert "corrupt" not in message and "truncated" not in message
    path = tmp_path / "pred.tif"
    tifffile.imwrite(path, _codes(16), photometric="rgb", compression="lzw", predictor=True)
    _patch_short_tag(path, 317, 9)
    message = _one_line_error(read_ldr, path, "unsupported TIFF predictor", "(9)")
    assert "corrupt" not in message and "truncated" not in message


def test_cmyk_is_refused_by_name(tmp_path):
    path = tmp_path / "cmyk.tif"
    Image.fromarray(_codes(8, channels=4), "CMYK").save(path, compression="tiff_lzw")
    _one_line_error(read_ldr, path, "CMYK TIFF", "re-save it as RGB")


def test_truncated_tiffs_are_reported_as_truncated(tmp_path):
    rgb = _codes(16)
    tifffile.imwrite(tmp_path / "tf.tif", rgb, photometric="rgb", compression="lzw", predictor=True)  # directory first
    assert cv2.imwrite(str(tmp_path / "cv.tif"), rgb[..., ::-1])  # libtiff: directory last
    Image.fromarray(_codes(8)).save(tmp_path / "pil.tif", compression="packbits")
    tifffile.imwrite(tmp_path / "f.tif", _radiance(), photometric="rgb", compression="zlib", predictor=True)
    for name, read in (("tf.tif", read_ldr), ("cv.tif", read_ldr), ("pil.tif", read_ldr), ("f.tif", read_hdr)):
        data = (tmp_path / name).read_bytes()
        for keep in (len(data) // 2, len(data) - 7):
            cut = tmp_path / f"cut_{keep}_{name}"
            cut.write_bytes(data[:keep])
            _one_line_error(read, cut, "truncated TIFF", "re-export")
    (tmp_path / "head.tif").write_bytes(b"II*\x00")
    _one_line_error(read_ldr, tmp_path / "head.tif", "truncated")


# ------------------------------------------------------------------------------------------------ CLI


def test_lzw_16bit_bracket_merges_from_the_cli(tmp_path, capsys):
    scene = normalize_scene(procedural_scene(96, 128, seed=5))
    bracket = synthesize_bracket(scene, exposure_times=(1.0, 4.0, 16.0), bits=16, seed=5)
    paths = []
    for k, frame in enumerate(bracket.ldr):
        codes = np.round(frame.numpy().transpose(1, 2, 0) * 65535).astype(np.uint16)
        paths.append(tmp_path / f"IMG_{k}.tif")
        assert cv2.imwrite(str(paths[-1]), codes[..., ::-1])  # OpenCV's default: LZW, horizontal predictor
        assert _layout(paths[-1])[:2] == (LZW, HORIZONTAL)
    out = tmp_path / "scene.exr"
    code = main(["merge", *map(str, paths), "-o", str(out), "--times", "1", "4", "16",
                 "--preview", str(tmp_path / "scene.png")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    hdr = read_hdr(out)
    assert hdr.shape == scene.shape and torch.isfinite(hdr).all()
    assert psnr_mu(hdr, bracket.hdr_gt) > 40
    assert (tmp_path / "scene.png").stat().st_size > 0
