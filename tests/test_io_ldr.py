import sys

import cv2
import numpy as np
import pytest
import tifffile
import torch
from PIL import Image, TiffImagePlugin
from PIL.ExifTags import IFD, Base

from hdrkit.errors import HdrkitError
from hdrkit.io import ExposureInfo, read_exposure, read_ldr, relative_exposures, write_ldr


def _codes(h=24, w=32, bits=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2**bits, size=(h, w, 3), dtype=np.uint16 if bits == 16 else np.uint8)


def _smooth(h=48, w=64):
    yy, xx = np.mgrid[0:h, 0:w]
    return torch.from_numpy(np.stack([xx / w, yy / h, 0.5 + 0.3 * np.sin(xx / 9.0)], 0)).float()


# ------------------------------------------------------------------------------------- PNG / TIFF


@pytest.mark.parametrize("ext", [".png", ".tif"])
@pytest.mark.parametrize("bits", [8, 16])
def test_lossless_round_trip(tmp_path, ext, bits):
    codes = _codes(bits=bits)
    image = torch.from_numpy(codes.transpose(2, 0, 1).astype(np.float32) / (2**bits - 1))
    write_ldr(tmp_path / f"a{ext}", image, bits=bits)
    back = read_ldr(tmp_path / f"a{ext}")
    assert back.bits == bits and not back.linear and back.path == tmp_path / f"a{ext}"
    assert back.image.dtype == torch.float32 and back.image.shape == (3, 24, 32)
    stored = np.round(back.image.numpy() * (2**bits - 1)).astype(np.int64)
    np.testing.assert_array_equal(stored, codes.transpose(2, 0, 1))


def test_16bit_png_channel_order_against_independent_writers(tmp_path):
    rgb = np.zeros((4, 5, 3), np.uint16)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 1000, 30000, 65535  # R, G, B
    cv2.imwrite(str(tmp_path / "cv.png"), rgb[..., ::-1])  # OpenCV writes BGR
    tifffile.imwrite(tmp_path / "tf.tif", rgb, photometric="rgb")
    for name in ("cv.png", "tf.tif"):
        im = read_ldr(tmp_path / name)
        assert im.bits == 16
        np.testing.assert_allclose(im.image[:, 0, 0].numpy() * 65535, [1000, 30000, 65535], atol=1e-2)
    # planar (separate) TIFF storage
    tifffile.imwrite(tmp_path / "planar.tif", rgb.transpose(2, 0, 1), photometric="rgb", planarconfig="separate")
    planar = read_ldr(tmp_path / "planar.tif").image[:, 0, 0].numpy()
    np.testing.assert_allclose(planar * 65535, [1000, 30000, 65535], atol=1e-2)


def test_grey_and_rgba_become_rgb(tmp_path):
    grey = _codes()[..., 0]
    Image.fromarray(grey, "L").save(tmp_path / "g.png")
    im = read_ldr(tmp_path / "g.png")
    assert im.image.shape == (3, 24, 32)
    assert torch.equal(im.image[0], im.image[1]) and torch.equal(im.image[1], im.image[2])
    np.testing.assert_array_equal(np.round(im.image[0].numpy() * 255), grey)
    rgba = np.concatenate([_codes(), np.zeros((24, 32, 1), np.uint8)], axis=2)  # fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    im = read_ldr(tmp_path / "a.png")
    np.testing.assert_array_equal(np.round(im.image.numpy() * 255).transpose(1, 2, 0), rgba[..., :3])
    grey16 = (_codes(bits=16)[..., 0]).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "g16.png"), grey16)
    im = read_ldr(tmp_path / "g16.png")
    assert im.bits == 16 and torch.equal(im.image[0], im.image[2])


def test_jpeg_round_trip_and_orientation(tmp_path):
    img = _smooth()
    write_ldr(tmp_path / "a.jpg", img)
    back = read_ldr(tmp_path / "a.jpg")
    assert back.bits == 8 and (back.image - img).abs().mean() < 0.01
    arr = np.round(img.numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
    exif = Image.Exif()
    exif[Base.Orientation] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(arr).save(tmp_path / "o.jpg", exif=exif, quality=95)
    assert read_ldr(tmp_path / "o.jpg").image.shape == (3, 64, 48)
    assert read_ldr(tmp_path / "o.jpg", orient=False).image.shape == (3, 48, 64)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_jpeg_orientation_matches_pillow(tmp_path, orientation):
    from PIL import ImageOps

    arr = np.round(_smooth().numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
    arr[:5, :9] = (250, 10, 10)  # an asymmetric corner shows every flip and turn
    exif = Image.Exif()
    exif[Base.Orientation] = orientation
    Image.fromarray(arr).save(tmp_path / "o.jpg", exif=exif, quality=95)
    with Image.open(tmp_path / "o.jpg") as im:
        want = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
        raw = np.asarray(im.convert("RGB"))
    got = np.round(read_ldr(tmp_path / "o.jpg").image.numpy() * 255).transpose(1, 2, 0)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.round(read_ldr(tmp_path / "o.jpg", orient=False).image.numpy() * 255).transpose(1, 2, 0), raw)


def test_write_ldr_errors(tmp_path):
    img = torch.rand(3, 4, 4)
    with pytest.raises(HdrkitError, match="JPEG is 8-bit"):
        write_ldr(tmp_path / "a.jpg", img, bits=16)
    with pytest.raises(HdrkitError, match="shape"):
        write_ldr(tmp_path / "a.png", torch.rand(4, 4))
    with pytest.raises(HdrkitError, match="extension"):
        write_ldr(tmp_path / "a.exr", img)
    bad = img.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(HdrkitError, match="NaN"):
        write_ldr(tmp_path / "a.png", bad)
    assert list(tmp_path.iterdir()) == []
    write_ldr(tmp_path / "c.png", img * 3 - 1)  # out-of-range values are clipped
    back = read_ldr(tmp_path / "c.png").image
    assert back.min() == 0 and back.max() == 1


# -------------------------------------------------------------------------------- broken inputs


def test_truncated_and_non_image_files(tmp_path):
    write_ldr(tmp_path / "ok.jpg", _smooth())
    write_ldr(tmp_path / "ok.png", _smooth())
    jpg = (tmp_path / "ok.jpg").read_bytes()
    png = (tmp_path / "ok.png").read_bytes()
    cases = {
        "half.jpg": jpg[: len(jpg) // 2],
        "noeoi.jpg": jpg[:-2],  # only the end-of-image marker missing
        "half.png": png[: len(png) // 2],
        "noiend.png": png[:-12],
        "text.jpg": b"this is not an image\n",
        "text.png": b"\x89PNG\r\n\x1a\n garbage",
        "empty.png": b"",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(HdrkitError, match=name.replace(".", r"\.")):
            read_ldr(tmp_path / name)
    with pytest.raises(HdrkitError, match="missing.jpg: file not found"):
        read_ldr(tmp_path / "missing.jpg")
    tifffile.imwrite(tmp_path / "f.tif", np.ones((4, 4, 3), np.float32), photometric="rgb")
    with pytest.raises(HdrkitError, match="read_hdr"):
        read_ldr(tmp_path / "f.tif")


# ----------------------------------------------------------------------------------------- RAW

DNG_BLACK, DNG_WHITE = 512, 4095


def write_dng(path, cfa):
    """Minimal CFA DNG (RGGB, black 512, white 4095, identity colour matrix) written by tifffile."""
    extratags = [
        (33421, "H", 2, (2, 2), False),  # CFARepeatPatternDim
        (33422, "B", 4, (0, 1, 1, 2), False),  # CFAPattern: R G / G B
        (50706, "B", 4, (1, 4, 0, 0), False),  # DNGVersion
        (50708, "s", 0, "hdrkit synthetic", False),  # UniqueCameraModel
        (50714, "H", 1, DNG_BLACK, False),  # BlackLevel
        (50717, "H", 1, DNG_WHITE, False),  # WhiteLevel
        (50721, "2i", 9, (1, 1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 1), False),  # ColorMatrix1
        (50728, "2I", 3, (1, 1, 1, 1, 1, 1), False),  # AsShotNeutral
    ]
    tifffile.imwrite(path, cfa.astype(np.uint16), photometric=32803, extratags=extratags, subfiletype=0)


def test_raw_is_linear(tmp_path):
    pytest.importorskip("rawpy")
    h, w = 48, 64
    yy, xx = np.mgrid[0:h, 0:w]
    signal = np.round((0.2 + 0.6 * xx / w) * (0.5 + 0.5 * yy / h) * 1500)
    write_dng(tmp_path / "a.dng", DNG_BLACK + signal)
    write_dng(tmp_path / "b.dng", DNG_BLACK + 2 * signal)
    a, b = read_ldr(tmp_path / "a.dng"), read_ldr(tmp_path / "b.dng")
    assert a.linear and a.bits == 16 and a.image.shape == (3, h, w) and a.image.dtype == torch.float32
    ratio = b.image[:, 4:-4, 4:-4] / a.image[:, 4:-4, 4:-4]
    assert abs(ratio.median().item() - 2.0) < 0.005
    assert (ratio - 2.0).abs().max() < 0.05
    # black level removed and white level scaled: a flat grey frame maps to (v - black) / (white - black)
    write_dng(tmp_path / "flat.dng", np.full((h, w), DNG_BLACK + 0.25 * (DNG_WHITE - DNG_BLACK)))
    flat = read_ldr(tmp_path / "flat.dng").image
    np.testing.assert_allclose(flat.numpy(), 0.25, atol=2e-3)


def test_raw_errors(tmp_path, monkeypatch):
    pytest.importorskip("rawpy")
    (tmp_path / "bad.dng").write_bytes(b"II*\x00garbage")
    with pytest.raises(HdrkitError, match="bad.dng"):
        read_ldr(tmp_path / "bad.dng")
    write_dng(tmp_path / "ok.nef", np.full((8, 8), 1000))
    monkeypatch.setitem(sys.modules, "rawpy", None)  # import rawpy -> ImportError
    with pytest.raises(HdrkitError, match=r"pip install hdrkit\[raw\]"):
        read_ldr(tmp_path / "ok.nef")


# ----------------------------------------------------------------------------------------- EXIF


def _jpeg_with_exif(path, time=None, fnumber=None, iso=None):
    exif = Image.Exif()
    ifd = exif.get_ifd(IFD.Exif)
    if time is not None:
        ifd[Base.ExposureTime] = TiffImagePlugin.IFDRational(*time)
    if fnumber is not None:
        ifd[Base.FNumber] = TiffImagePlugin.IFDRational(*fnumber)
    if iso is not None:
        ifd[Base.ISOSpeedRatings] = iso
    Image.fromarray(np.full((8, 8, 3), 128, np.uint8)).save(path, format="JPEG", exif=exif)


def test_exif_exposure_round_trip(tmp_path, monkeypatch):
    _jpeg_with_exif(tmp_path / "e.jpg", time=(1, 250), fnumber=(28, 10), iso=400)
    info = read_exposure(tmp_path / "e.jpg")
    assert info.time == pytest.approx(1 / 250) and info.fnumber == pytest.approx(2.8) and info.iso == 400
    import exifread

    with monkeypatch.context() as m:  # the Pillow fallback reads the same values
        m.setattr(exifread, "process_file", lambda *a, **k: 1 / 0)
        assert read_exposure(tmp_path / "e.jpg") == info
    write_ldr(tmp_path / "none.jpg", torch.rand(3, 8, 8))
    assert read_exposure(tmp_path / "none.jpg") == ExposureInfo(None, None, None)
    with pytest.raises(HdrkitError, match="nope.jpg"):
        read_exposure(tmp_path / "nope.jpg")


def test_relative_exposures_folds_aperture_and_iso():
    same = [ExposureInfo(0.01, 8.0, 100), ExposureInfo(0.04, 8.0, 100)]
    assert relative_exposures(same) == pytest.approx([0.01, 0.04])
    # one stop less light from the aperture (f/8 -> f/11.31), one stop more from ISO: equal exposure
    varied = [ExposureInfo(0.01, 8.0, 100), ExposureInfo(0.01, 8.0 * 2**0.5, 200), ExposureInfo(0.01, 4.0, 100)]
    assert relative_exposures(varied) == pytest.approx([0.01, 0.01, 0.04])
    partial = [ExposureInfo(0.01, 8.0, None), ExposureInfo(0.02, None, 400)]  # not all known: times only
    assert relative_exposures(partial) == pytest.approx([0.01, 0.02])
    with pytest.raises(HdrkitError, match=r"b\.jpg: no exposure time.*--times.*--ev"):
        relative_exposures([ExposureInfo(0.01), ExposureInfo(None)], names=["a.jpg", "b.jpg"])


@pytest.mark.data
def test_exif_of_shared_stacks(data_dir):
    times = [read_exposure(data_dir / "stacks" / "frobisher" / f"IMG_{n}.jpg") for n in (2600, 2601, 2602)]
    assert [t.time for t in times] == pytest.approx([0.125, 1.0, 8.0])
    assert {t.fnumber for t in times} == {8.0} and {t.iso for t in times} == {100}
    synhdr = read_ldr(data_dir / "stacks" / "synhdr_118" / "input_1.png")  # RGBA PNG
    assert synhdr.image.shape == (3, 1166, 1590)
