"""The command line end to end, on small synthetic brackets: results, errors, no partial output."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from hdrkit.camera.exposure import expose
from hdrkit.camera.response import GammaResponse
from hdrkit.cli import main
from hdrkit.data import normalize_scene, procedural_scene
from hdrkit.io import read_hdr, write_hdr, write_ldr
from hdrkit.metrics import psnr_mu

TIMES = (1.0, 4.0, 16.0)


@pytest.fixture(scope="module")
def scene():
    return normalize_scene(procedural_scene(96, 128, seed=3))


def _bracket(d, scene, bits=8, ext=".png"):
    ldr = expose(scene[None], torch.tensor([TIMES]), GammaResponse(2.2), bits=bits)[0]
    paths = []
    for k, frame in enumerate(ldr):
        paths.append(d / f"frame{k}{ext}")
        write_ldr(paths[-1], frame, bits=bits)
    return [str(p) for p in paths]


def _run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("flag", ["--times", "--ev"])
def test_merge_recovers_the_scene(tmp_path, scene, capsys, flag):
    paths = _bracket(tmp_path, scene, bits=16)
    values = [str(t) for t in TIMES] if flag == "--times" else ["0", "2", "4"]
    out = tmp_path / "out.exr"
    code, _, err = _run(["merge", *paths, "-o", str(out), flag, *values, "--preview", str(tmp_path / "p.png")], capsys)
    assert code == 0, err
    hdr = read_hdr(out)
    assert hdr.shape == scene.shape
    assert psnr_mu(hdr, scene) > 45
    assert (tmp_path / "p.png").exists()


def test_merge_any_order_and_reference(tmp_path, scene, capsys):
    paths = _bracket(tmp_path, scene, bits=16)
    shuffled = [paths[2], paths[0], paths[1]]
    out = tmp_path / "out.hdr"
    code, stdout, err = _run(["merge", *shuffled, "-o", str(out), "--times", "16", "1", "4", "--reference", "0",
                              "--method", "debevec", "--align", "none"], capsys)
    assert code == 0, err
    assert psnr_mu(read_hdr(out), scene) > 40  # RGBE storage limits precision


def test_mertens_writes_an_ldr_image(tmp_path, scene, capsys):
    paths = _bracket(tmp_path, scene)
    code, _, err = _run(["merge", *paths, "-o", str(tmp_path / "f.exr"), "--times", "1", "4", "16", "--method", "mertens"], capsys)
    assert code == 2 and "must end in" in err
    code, _, err = _run(["merge", *paths, "-o", str(tmp_path / "f.png"), "--times", "1", "4", "16", "--method", "mertens"], capsys)
    assert code == 0, err and (tmp_path / "f.png").exists()


def _assert_one_line_error(code, err, *needles):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err


def test_bad_input_errors(tmp_path, scene, capsys):
    paths = _bracket(tmp_path, scene)
    out = tmp_path / "o.exr"
    # a single frame
    _assert_one_line_error(*_run(["merge", paths[0], "-o", str(out), "--times", "1"], capsys)[::2], "frame")
    # missing exposure information (PNG without EXIF)
    _assert_one_line_error(*_run(["merge", *paths, "-o", str(out)], capsys)[::2], "--times")
    # wrong count of times
    _assert_one_line_error(*_run(["merge", *paths, "-o", str(out), "--times", "1", "2"], capsys)[::2])
    # duplicate exposure values
    _assert_one_line_error(*_run(["merge", *paths, "-o", str(out), "--times", "1", "4", "4"], capsys)[::2])
    # frames of different sizes
    small = tmp_path / "small.png"
    write_ldr(small, torch.rand(3, 40, 50))
    _assert_one_line_error(*_run(["merge", paths[0], paths[1], str(small), "-o", str(out), "--times", "1", "4", "16"], capsys)[::2], "small.png")
    # a truncated file and a non-image file
    trunc = tmp_path / "trunc.png"
    trunc.write_bytes((tmp_path / "frame1.png").read_bytes()[:200])
    _assert_one_line_error(*_run(["merge", paths[0], str(trunc), paths[2], "-o", str(out), "--times", "1", "4", "16"], capsys)[::2], "trunc.png")
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    _assert_one_line_error(*_run(["merge", paths[0], str(text), paths[2], "-o", str(out), "--times", "1", "4", "16"], capsys)[::2], "notes.jpg")
    # output equal to an input
    _assert_one_line_error(*_run(["merge", *paths, "-o", paths[0], "--times", "1", "4", "16"], capsys)[::2], "input")
    # no output was ever left behind, and the inputs are untouched
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_mixed_bit_depths_merge(tmp_path, scene, capsys):
    p8 = _bracket(tmp_path, scene, bits=8)
    d16 = tmp_path / "b16"
    d16.mkdir()
    p16 = _bracket(d16, scene, bits=16)
    out = tmp_path / "mix.exr"
    code, _, err = _run(["merge", p16[0], p8[1], p16[2], "-o", str(out), "--times", "1", "4", "16"], capsys)
    assert code == 0, err
    assert psnr_mu(read_hdr(out), scene) > 40


def test_nan_in_hdr_file_is_reported(tmp_path, capsys):
    bad = np.ones((3, 16, 16), np.float32)
    bad[0, 3, 3] = np.nan
    path = tmp_path / "bad.pfm"
    from hdrkit.io.hdr import write_pfm

    write_pfm(path, bad.transpose(1, 2, 0))
    _assert_one_line_error(*_run(["info", str(path)], capsys)[::2], "bad.pfm", "NaN")
    _assert_one_line_error(*_run(["tonemap", str(path), "-o", str(tmp_path / "t.png")], capsys)[::2], "bad.pfm")
    assert not (tmp_path / "t.png").exists()


def test_info_tonemap_methods(tmp_path, scene, capsys):
    path = tmp_path / "scene.exr"
    write_hdr(path, scene)
    code, out, _ = _run(["info", str(path)], capsys)
    assert code == 0 and "dynamic range" in out and "128 x 96" in out
    for op in ("reinhard", "drago", "mu_law", "exposure_gamma", "reinhard_local"):
        code, _, err = _run(["tonemap", str(path), "-o", str(tmp_path / f"{op}.png"), "--op", op], capsys)
        assert code == 0, err
    code, _, err = _run(["tonemap", str(path), "-o", str(tmp_path / "x.png"), "--op", "nope"], capsys)
    _assert_one_line_error(code, err, "nope")
    code, out, _ = _run(["methods"], capsys)
    assert code == 0 and "deghost" in out and "mertens" in out


def test_calibrate_writes_response_and_plot(tmp_path, scene, capsys):
    paths = _bracket(tmp_path, scene)
    out = tmp_path / "crf.csv"
    code, _, err = _run(["calibrate", *paths, "-o", str(out), "--times", "1", "4", "16", "--plot", str(tmp_path / "crf.png")], capsys)
    assert code == 0, err
    table = np.loadtxt(out, delimiter=",")
    assert table.shape[1] == 4 and abs(table[-1, 1:] - 1).max() < 1e-9
    assert (tmp_path / "crf.png").stat().st_size > 1000
    code, _, err = _run(["merge", *paths, "-o", str(tmp_path / "c.exr"), "--times", "1", "4", "16", "--response", str(out)], capsys)
    assert code == 0, err


def test_entry_point_help():
    r = subprocess.run([sys.executable, "-m", "hdrkit.cli", "merge", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--times" in r.stdout and "--align" in r.stdout


def test_demo(tmp_path, capsys):
    from hdrkit.demo import run_demo

    scores = run_demo(tmp_path)
    assert (tmp_path / "demo.exr").exists() and (tmp_path / "demo.png").exists()
    best = scores["hdrkit (homography + deghost)"]
    assert best > scores["reference frame alone"] + 1.0
    assert best > scores["plain Debevec merge, no alignment"]


def test_learned_methods_from_the_cli(tmp_path, scene, capsys):
    paths = _bracket(tmp_path, scene, bits=16)
    out = tmp_path / "dr.exr"
    code, stdout, err = _run(["merge", *paths, "-o", str(out), "--times", *map(str, TIMES), "--method", "deghost_refine",
                              "--align", "none", "--dtype", "bf16", "--max-memory", "0.05"], capsys)
    assert code == 0, err
    assert "deghost_refine" in stdout and psnr_mu(read_hdr(out), scene) > 40  # static: the classical merge
    code, _, err = _run(["merge", *paths[:2], "-o", str(tmp_path / "a.exr"), "--times", "1", "4", "--method", "ahdrnet"], capsys)
    assert code == 2 and "takes exactly 3 frames, got 2" in err and err.count("\n") == 1
    code, _, err = _run(["merge", *paths, "-o", str(tmp_path / "d.exr"), "--times", *map(str, TIMES), "--dtype", "bf16"], capsys)
    assert code == 2 and "apply to learned methods" in err
    code, _, err = _run(["merge", *paths, "-o", str(tmp_path / "w.exr"), "--times", *map(str, TIMES), "--method", "ahdrnet",
                         "--weights", str(tmp_path / "missing.safetensors")], capsys)
    assert code == 2 and "missing.safetensors: weights file not found" in err
    assert not (tmp_path / "w.exr").exists()
    code, stdout, _ = _run(["methods"], capsys)
    assert code == 0 and "deghost_refine" in stdout and "ahdrnet" in stdout and "frames 3" in stdout
