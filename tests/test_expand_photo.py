"""``hdrkit expand`` / ``hdr_from_photo``: one photo of any size and format in, a radiance map out."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import test_train_single as toy_net

from hdrkit.cli import main
from hdrkit.errors import HdrkitError
from hdrkit.expand import expand_landis2002
from hdrkit.expand import photo as photo_mod
from hdrkit.expand.photo import hdr_from_photo
from hdrkit.io import read_hdr

toy = toy_net.toy  # the fixture registering a toy single-image network


def _codes(h=40, w=56, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((h, w, 3)) ** 0.5


def _png(path, codes, bits=8, alpha=False, grey=False):
    top = 2**bits - 1
    arr = np.round(codes * top).astype(np.uint8 if bits == 8 else np.uint16)[..., ::-1]  # OpenCV writes BGR
    if grey:
        arr = arr[..., 0]
    elif alpha:
        arr = np.concatenate([arr, np.full(arr.shape[:2] + (1,), top, arr.dtype)], axis=2)
    assert cv2.imwrite(str(path), np.ascontiguousarray(arr))
    return path


def _expected(codes):
    x = torch.from_numpy(np.ascontiguousarray(codes.transpose(2, 0, 1))).float()[None]
    return expand_landis2002(x)[0]


def test_rgb_png_is_expanded_with_the_default_method(tmp_path):
    codes = np.round(_codes() * 255) / 255
    r = hdr_from_photo(_png(tmp_path / "a.png", codes), method="landis2002")
    assert r.hdr.shape == (3, 40, 56) and r.notes == []
    torch.testing.assert_close(r.hdr, _expected(codes), rtol=1e-5, atol=1e-6)


def test_16_bit_input_keeps_its_precision(tmp_path):
    codes = np.round(_codes(seed=1) * 65535) / 65535
    r = hdr_from_photo(_png(tmp_path / "a16.png", codes, bits=16), method="landis2002")
    assert any("16-bit" in n for n in r.notes)
    torch.testing.assert_close(r.hdr, _expected(codes), rtol=1e-5, atol=1e-6)


def test_grey_and_alpha_are_converted(tmp_path):
    codes = np.round(_codes(seed=2) * 255) / 255
    grey = hdr_from_photo(_png(tmp_path / "g.png", codes, grey=True), method="landis2002")
    assert grey.hdr.shape == (3, 40, 56) and torch.equal(grey.hdr[0], grey.hdr[2])
    assert any("grey" in n for n in grey.notes)
    rgba = hdr_from_photo(_png(tmp_path / "rgba.png", codes, alpha=True), method="landis2002")
    rgb = hdr_from_photo(_png(tmp_path / "rgb.png", codes), method="landis2002")
    assert any("alpha" in n for n in rgba.notes) and torch.equal(rgba.hdr, rgb.hdr)


def test_missing_tiny_huge_and_wrong_method_fail_in_one_line(tmp_path, monkeypatch):
    with pytest.raises(HdrkitError, match="file not found"):
        hdr_from_photo(tmp_path / "missing.jpg")
    with pytest.raises(HdrkitError, match=r"8x12 pixels is too small.*16x16"):
        hdr_from_photo(_png(tmp_path / "tiny.png", _codes(12, 8)))
    hdr_from_photo(_png(tmp_path / "small.png", _codes(16, 16)))
    big = _png(tmp_path / "big.png", _codes(64, 96))
    monkeypatch.setattr(photo_mod, "MAX_PIXELS", 5000)
    decoded = []
    monkeypatch.setattr("hdrkit.io.read_ldr", lambda *a, **k: decoded.append(a))
    with pytest.raises(HdrkitError, match=r"96x64 pixels .* downscale it"):
        hdr_from_photo(big)
    assert decoded == [], "refused from the header, before decoding"
    with pytest.raises(HdrkitError, match="merges exposure brackets"):
        hdr_from_photo(big, method="debevec")


def test_learned_method_tiles_a_large_photo(tmp_path, toy):
    from hdrkit.models.weights import save_weights

    torch.manual_seed(0)
    weights = tmp_path / "toy.safetensors"
    save_weights(toy_net.ToySingleNet(), weights)
    p = _png(tmp_path / "wide.png", _codes(150, 230, seed=4))
    whole = hdr_from_photo(p, method=toy, weights=weights, tile=0).hdr
    tiled = hdr_from_photo(p, method=toy, weights=weights, tile=48).hdr
    torch.testing.assert_close(tiled, whole, rtol=1e-5, atol=1e-6)


def test_cli_writes_radiance_and_preview_atomically(tmp_path, capsys):
    src = _png(tmp_path / "photo.png", np.round(_codes(seed=5) * 255) / 255)
    out, prev = tmp_path / "out.exr", tmp_path / "out_preview.png"
    assert main(["expand", str(src), "-o", str(out), "--preview", str(prev), "--method", "akyuz2007"]) == 0
    assert "akyuz2007" in capsys.readouterr().out
    hdr = read_hdr(out)
    assert hdr.shape == (3, 40, 56) and float(hdr.max()) > 1 and prev.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.exr", "out_preview.png", "photo.png"], "no temporaries left"
    for argv, msg in (
        (["expand", str(tmp_path / "nope.png"), "-o", str(out)], "nope.png: file not found"),
        (["expand", str(src), "-o", str(tmp_path / "x.png")], "must end in .exr"),
        (["expand", str(src), "-o", str(src)], "also an input"),
        (["expand", str(src), "-o", str(out), "--method", "landis2002", "--dtype", "bf16"], "apply to learned methods"),
        (["expand", str(src), "-o", str(out), "--method", "nosuch"], "unknown method 'nosuch'"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("hdrkit expand: error:") and msg in err and "\n" not in err
