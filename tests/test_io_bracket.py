from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image, TiffImagePlugin
from PIL.ExifTags import IFD, Base

from hdrkit.camera.exposure import expose
from hdrkit.camera.response import SRGBResponse
from hdrkit.errors import HdrkitError
from hdrkit.io import read_bracket, read_exposure_file, read_ldr, write_ldr

TIMES = (1 / 100, 1 / 25, 4 / 25)  # seconds: 1, 4, 16 relative


def _frames(n=3, h=20, w=30, bits=8):
    g = torch.Generator().manual_seed(1)
    hdr = torch.rand(1, 3, h, w, generator=g) * torch.exp2(torch.randn(1, 1, h, w, generator=g) * 2) * 0.5
    t = torch.tensor([[1.0, 4.0, 16.0, 64.0][:n]])
    return expose(hdr, t, SRGBResponse(), bits=bits)[0]


def _write_bracket(d: Path, order=(2, 0, 1), ext=".png", bits=8):
    """Write frames in a shuffled order: file i holds frame order[i]."""
    frames = _frames(bits=bits)
    paths = []
    for i, k in enumerate(order):
        p = d / f"f{i}{ext}"
        write_ldr(p, frames[k], bits=bits)
        paths.append(p)
    return frames, paths


def _jpeg_with_time(path, seconds):
    exif = Image.Exif()
    exif.get_ifd(IFD.Exif)[Base.ExposureTime] = TiffImagePlugin.IFDRational(*seconds)
    Image.fromarray(np.full((8, 8, 3), 100, np.uint8)).save(path, exif=exif, quality=95)


def test_sorted_by_exposure_with_times(tmp_path):
    frames, paths = _write_bracket(tmp_path)
    times = [TIMES[k] for k in (2, 0, 1)]
    b = read_bracket(paths, times=times)
    assert b.order == [1, 2, 0] and b.paths == [paths[1], paths[2], paths[0]]
    assert b.exposure_times.dtype == torch.float64
    torch.testing.assert_close(b.exposure_times, torch.tensor([1.0, 4.0, 16.0], dtype=torch.float64))
    torch.testing.assert_close(b.seconds, torch.tensor(TIMES, dtype=torch.float64))
    assert b.ldr.shape == (3, 3, 20, 30) and b.ldr.dtype == torch.float32
    torch.testing.assert_close(b.ldr, frames, atol=1e-6, rtol=0)  # 8-bit PNG is lossless
    assert b.bits == [8, 8, 8] and not b.linear and b.source == "times"
    ldr, t = b.batched()
    assert ldr.shape == (1, 3, 3, 20, 30) and t.shape == (1, 3)


def test_ev_and_exif_sources(tmp_path):
    _, paths = _write_bracket(tmp_path)
    b = read_bracket(paths, ev=[4, 0, 2])
    torch.testing.assert_close(b.exposure_times, torch.tensor([1.0, 4.0, 16.0], dtype=torch.float64))
    assert b.seconds is None and b.source == "ev" and b.order == [1, 2, 0]
    jpgs = []
    for i, t in enumerate([(1, 30), (1, 250), (1, 8)]):
        _jpeg_with_time(tmp_path / f"e{i}.jpg", t)
        jpgs.append(tmp_path / f"e{i}.jpg")
    b = read_bracket(jpgs)
    assert b.source == "exif" and b.order == [1, 0, 2]
    torch.testing.assert_close(b.seconds, torch.tensor([1 / 250, 1 / 30, 1 / 8], dtype=torch.float64))
    torch.testing.assert_close(b.exposure_times, torch.tensor([1.0, 250 / 30, 250 / 8], dtype=torch.float64))
    assert [e.time for e in b.exif] == pytest.approx([1 / 250, 1 / 30, 1 / 8])
    b = read_bracket(jpgs, times=[1, 2, 3])  # explicit times win over EXIF
    assert b.order == [0, 1, 2] and b.source == "times"


def test_mixed_bit_depths_allowed(tmp_path):
    frames = _frames()
    write_ldr(tmp_path / "a.png", frames[0], bits=8)
    write_ldr(tmp_path / "b.tif", frames[1], bits=16)
    b = read_bracket([tmp_path / "b.tif", tmp_path / "a.png"], times=[0.4, 0.1])
    assert b.bits == [8, 16] and b.ldr.dtype == torch.float32
    torch.testing.assert_close(b.ldr[1], frames[1], atol=1e-6, rtol=0)


def _err(match, *args, **kwargs):
    with pytest.raises(HdrkitError, match=match) as info:
        read_bracket(*args, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_validation_errors_name_the_file(tmp_path):
    _, paths = _write_bracket(tmp_path)
    _err(r"at least 2 frames, got 1 \(.*f0\.png\)", paths[:1], times=[1])
    _err(r"--times has 2 values but 3 files", paths, times=[1, 2])
    _err(r"--ev has 4 values but 3 files", paths, ev=[0, 1, 2, 3])
    _err(r"not both", paths, times=[1, 2, 3], ev=[0, 1, 2])
    _err(r"f1\.png: exposure time must be positive", paths, times=[1, 0, 2])
    _err(r"f1\.png: exposure time must be positive", paths, times=[1, -1, 2])
    _err(r"f0\.png.*f2\.png have the same exposure", paths, times=[2, 1, 2])
    _err(r"f0\.png.*f1\.png have the same exposure", paths, ev=[1, 1, 3])
    _err(r"f2\.png: .*not a finite", paths, ev=[0, 1, float("nan")])
    msg = _err(r"f0\.png: no exposure time", paths)  # PNGs without EXIF
    assert "--times" in msg and "--ev" in msg
    _err(r"missing\.png: file not found", [paths[0], tmp_path / "missing.png"], times=[1, 2])
    write_ldr(tmp_path / "big.png", torch.rand(3, 21, 30))
    msg = _err(r"big\.png is 30x21 but .*f0\.png is 30x20", [paths[0], tmp_path / "big.png"], times=[1, 2])
    assert "same size" in msg


def test_broken_files_in_bracket(tmp_path):
    _, paths = _write_bracket(tmp_path, ext=".jpg")
    data = paths[1].read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) - 40])
    _err(r"cut\.jpg: .*truncated", [paths[0], tmp_path / "cut.jpg"], times=[1, 2])
    (tmp_path / "notes.jpg").write_text("exposure notes, not a picture\n")
    _err(r"notes\.jpg", [paths[0], tmp_path / "notes.jpg"], times=[1, 2])
    png = tmp_path / "x.png"
    write_ldr(png, torch.rand(3, 20, 30))
    (tmp_path / "cut.png").write_bytes(png.read_bytes()[:-30])
    _err(r"cut\.png: .*truncated", [paths[0], tmp_path / "cut.png"], times=[1, 2])


def test_raw_mixed_with_non_raw(tmp_path):
    _, paths = _write_bracket(tmp_path)
    tifffile.imwrite(tmp_path / "r.dng", np.full((20, 30), 1000, np.uint16))
    _err(r"r\.dng is camera RAW but .*f0\.png is not", [paths[0], tmp_path / "r.dng"], times=[1, 2])


# ----------------------------------------------------------------------------------- exposure files


def test_read_exposure_file_layouts(tmp_path):
    (tmp_path / "kal.txt").write_text("0\n3\n6\n")
    assert read_exposure_file(tmp_path / "kal.txt", kind="ev") == [0.0, 3.0, 6.0]
    (tmp_path / "crlf.txt").write_bytes(b"-2\r\n0\r\n2")  # CRLF, no final newline
    assert read_exposure_file(tmp_path / "crlf.txt", kind="ev") == [-2.0, 0.0, 2.0]
    (tmp_path / "row.txt").write_text("# times\n0.125 1, 8\n")
    assert read_exposure_file(tmp_path / "row.txt", kind="seconds") == [0.125, 1.0, 8.0]
    (tmp_path / "list.txt").write_text("# Number of Images\n3\n# name seconds\na.ppm 32\nb.ppm 1/2\nc.ppm 1/1024\n")
    assert read_exposure_file(tmp_path / "list.txt", kind="seconds") == [32.0, 0.5, 1 / 1024]
    bad = {"neg.txt": "1\n-1\n", "empty.txt": "# nothing\n", "words.txt": "one two three\n"}
    for name, text in bad.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(HdrkitError, match=name.replace(".", r"\.")):
            read_exposure_file(tmp_path / name, kind="seconds")
    with pytest.raises(HdrkitError, match="kind"):
        read_exposure_file(tmp_path / "kal.txt", kind="stops")
    with pytest.raises(HdrkitError, match="nope.txt"):
        read_exposure_file(tmp_path / "nope.txt", kind="ev")


# --------------------------------------------------------------------------------------- real data


@pytest.mark.data
def test_shared_stacks(data_dir):
    s = data_dir / "stacks"
    frob = read_bracket(sorted((s / "frobisher").glob("*.jpg")))
    torch.testing.assert_close(frob.exposure_times, torch.tensor([1.0, 8.0, 64.0], dtype=torch.float64))
    torch.testing.assert_close(frob.seconds, torch.tensor([0.125, 1.0, 8.0], dtype=torch.float64))
    mem_files = sorted((s / "memorial").glob("*.png"))
    times = read_exposure_file(s / "memorial" / "memorial.hdr_image_list.txt", kind="seconds")
    mem = read_bracket(mem_files, times=times)
    assert mem.ldr.shape == (16, 3, 768, 512) and mem.order == list(range(15, -1, -1))
    assert mem.exposure_times[-1] == 32768.0
    kal = s / "kalantari17_002"
    bias = read_exposure_file(kal / "exposure_bias_from_repo_README.txt", kind="ev")
    k = read_bracket(sorted(kal.glob("*.jpg")), ev=bias)
    torch.testing.assert_close(k.exposure_times, torch.tensor([1.0, 8.0, 64.0], dtype=torch.float64))
    # brighter frames are brighter
    means = k.ldr.mean(dim=(1, 2, 3))
    assert (means[1:] > means[:-1]).all()
    syn = read_bracket([s / "synhdr_118" / "input_1.png", s / "synhdr_118" / "input_2.png"], ev=[0, -3])
    assert syn.order == [1, 0] and syn.ldr.shape == (2, 3, 1166, 1590)
    assert read_ldr(s / "synhdr_118" / "input_1.png").bits == 8
