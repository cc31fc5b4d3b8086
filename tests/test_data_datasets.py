import json

import numpy as np
import pytest
import torch

from hdrkit.data.folders import BracketFolderDataset, PairsDataset, find_pairs, read_bracket_folder
from hdrkit.data.kalantari2017 import KalantariDataset, find_scene_dirs, read_kalantari_scene, write_kalantari_scene
from hdrkit.data.noise_profiles import load_noise_profiles, sample_noise_profile
from hdrkit.data.synthetic import sample_response, synthesize_dataset
from hdrkit.errors import HdrkitError

NOISE_JSON = {
    "version": 0,
    "noiseprofiles": [
        {"maker": "Test", "models": [{"model": "Cam", "profiles": [
            {"name": "Cam iso 100", "iso": 100, "a": [2e-5, 1e-5, 2e-5], "b": [1e-7, 1e-7, 1e-7]},
            {"name": "Cam iso 400", "iso": 400, "a": [8e-5, 4e-5, 8e-5], "b": [4e-7, 4e-7, 4e-7]},
            {"name": "broken", "iso": 800, "a": [1e-5], "b": [1e-7]},
        ]}]},
    ],
}


@pytest.fixture()
def noise_json(tmp_path):
    p = tmp_path / "noise.json"
    p.write_text(json.dumps(NOISE_JSON))
    return p


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_noise_profiles(noise_json):
    profiles = load_noise_profiles(noise_json)
    assert len(profiles) == 2
    p = sample_noise_profile(profiles, np.random.default_rng(0), max_iso=200)
    assert p.iso == 100 and p.noise.a == (2e-5, 1e-5, 2e-5)
    with pytest.raises(HdrkitError):
        load_noise_profiles(noise_json.parent / "missing.json")


def test_synthesize_dataset_byte_identical(tmp_path, noise_json):
    kw = dict(n_scenes=2, seed=7, crop_size=96, global_motion=2.0, moving_objects=1, object_motion_px=(8, 16),
              noise_profiles_path=noise_json, bits=16)
    synthesize_dataset(None, tmp_path / "a", **kw)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        synthesize_dataset(None, tmp_path / "b", **kw)
    finally:
        torch.set_num_threads(threads)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert sorted(a) == sorted(b) and len(a) == 2 * 6
    assert all(a[k] == b[k] for k in a)
    synthesize_dataset(None, tmp_path / "c", **{**kw, "seed": 8})
    assert _files(tmp_path / "c") != a


def test_reader_round_trip(tmp_path, noise_json):
    dirs = synthesize_dataset(None, tmp_path, n_scenes=1, seed=1, crop_size=(80, 112), ev_step=3, moving_objects=1,
                              noise_profiles_path=noise_json, split="Training")
    d = dirs[0]
    assert (d / "exposure.txt").read_text() == "0\n3\n6\n"
    ds = KalantariDataset(tmp_path, split="train")
    assert len(ds) == 1 and ds.names == [d.name]
    s = ds[0]
    assert s.ldr.shape == (3, 3, 80, 112) and s.hdr.shape == (3, 80, 112)
    assert torch.equal(s.exposure_times, torch.tensor([1.0, 8.0, 64.0]))
    assert s.reference == 1 and s.meta["ev_step"] == 3.0
    assert s.meta["noise"]["maker"] == "Test"
    assert 0 < s.meta["moved_fraction"][0] < 1 and s.meta["moved_fraction"][1] == 0
    # Kalantari's convention: ldr ** 2.2 / t estimates the GT where the middle frame is well exposed
    lin = s.ldr[1] ** 2.2 / 8.0
    ok = (s.ldr[1] > 0.2) & (s.ldr[1] < 0.9)
    rel = ((lin - s.hdr).abs() / s.hdr)[ok]
    assert float(rel.median()) < 0.02
    assert float(s.ldr.min()) >= 0 and float(s.ldr.max()) <= 1


def test_write_and_read_png_scene(tmp_path):
    g = torch.Generator().manual_seed(0)
    ldr = torch.rand(3, 3, 20, 24, generator=g)
    hdr = torch.rand(3, 20, 24, generator=g) * 10
    write_kalantari_scene(tmp_path / "Test" / "s1", ldr, [1, 4, 16], hdr, bits=8, fmt="png")
    s = read_kalantari_scene(tmp_path / "Test" / "s1")
    assert torch.allclose(s.ldr, (ldr * 255).round() / 255, atol=1e-6)
    # RGBE: 8-bit mantissas sharing the exponent of the brightest channel
    assert ((s.hdr - hdr).abs() <= hdr.amax(0) / 128).all()
    assert s.reference == 1 and s.meta is None
    with pytest.raises(HdrkitError):
        write_kalantari_scene(tmp_path / "bad", ldr, [4, 1, 16])


def test_reader_accepts_exposures_txt_and_nested_groups(tmp_path):
    g = torch.Generator().manual_seed(1)
    d = tmp_path / "Test" / "PAPER" / "Scene"
    write_kalantari_scene(d, torch.rand(3, 3, 8, 8, generator=g), [1, 4, 16], bits=16)
    (d / "exposure.txt").rename(d / "exposures.txt")
    assert find_scene_dirs(tmp_path) == [d]
    ds = KalantariDataset(tmp_path, split="Test")
    assert ds.names == ["PAPER/Scene"] and ds[0].hdr is None
    (d / "input_3.tif").unlink()
    with pytest.raises(HdrkitError, match="2 LDR frames but 3"):
        ds[0]
    with pytest.raises(HdrkitError):
        KalantariDataset(tmp_path, split="Training")


def test_bracket_folder_with_times(tmp_path):
    g = torch.Generator().manual_seed(2)
    d = tmp_path / "b1"
    write_kalantari_scene(d, torch.rand(3, 3, 8, 10, generator=g), [1, 2, 4], torch.rand(3, 8, 10, generator=g), fmt="png", bits=8)
    (d / "exposure.txt").unlink()
    (d / "times.txt").write_text("input_3.png 1/10\ninput_1.png 1/40\ninput_2.png 1/20\n")
    s = read_bracket_folder(d)
    assert [p.name for p in s.paths] == ["input_1.png", "input_2.png", "input_3.png"]
    assert torch.allclose(s.exposure_times, torch.tensor([1.0, 2.0, 4.0]))
    assert s.hdr is not None and s.reference == 1
    (d / "times.txt").write_text("0.5\n1\n")
    with pytest.raises(HdrkitError, match="3 frames but 2 values"):
        read_bracket_folder(d)
    (d / "times.txt").write_text("0.25\n0.5\n1\n")
    assert len(BracketFolderDataset(tmp_path)) == 1


def test_single_image_pairs(tmp_path):
    out = synthesize_dataset(None, tmp_path, n_scenes=2, seed=0, crop_size=64, single_image=True)
    assert len(out) == 2 and all(p.suffix == ".png" for p in out)
    pairs = find_pairs(tmp_path / "Test" / "pairs")
    assert [a.stem for a, _ in pairs] == [p.stem for p in out]
    ds = PairsDataset(tmp_path / "Test" / "pairs")
    pr = ds[0]
    assert pr.ldr.shape == pr.hdr.shape == (3, 64, 64)
    clipped = float((pr.ldr.amax(0) >= 1).float().mean())
    assert 0.01 < clipped < 0.25
    meta = json.loads((tmp_path / "Test" / "pairs" / "meta.json").read_text())
    assert sorted(meta) == ds.names


def test_sample_response_families(data_dir):
    rng = np.random.default_rng(0)
    for fam, kw in [("dorf", {"dorf_path": data_dir / "crf" / "dorf_public_151.npz"}),
                    ("emor", {"emor_path": data_dir / "crf" / "emor.txt"})]:
        for _ in range(3):
            r, info = sample_response(fam, rng, **kw)
            assert info["family"] == fam
            z = torch.linspace(0, 1, 257, dtype=torch.float64).view(1, 257, 1).expand(3, 257, 1)
            inv = r.inverse(z)
            assert (inv.diff(dim=1) >= 0).all() and abs(float(inv[:, -1].min()) - 1) < 1e-9
    with pytest.raises(HdrkitError):
        sample_response("emor", rng)
    with pytest.raises(HdrkitError):
        sample_response("banana", rng)


def test_synthesize_from_polyhaven(tmp_path, data_dir):
    src = sorted((data_dir / "hdr" / "polyhaven").glob("*.hdr"))[:1]
    out = synthesize_dataset(src, tmp_path, n_scenes=1, crop_size=128, seed=2, response_family="emor",
                             emor_path=data_dir / "crf" / "emor.txt",
                             noise_profiles_path=data_dir / "noise" / "darktable.json", bits=8, jpeg_quality=90)
    s = read_kalantari_scene(out[0])
    assert s.meta["crop"]["panorama"] and (out[0] / "response.csv").is_file()
    h_src = 512 * s.meta["crop"]["scale"]
    assert 0.2 * h_src - 1 <= s.meta["crop"]["y"] <= 0.8 * h_src - 128 + 1
    clipped = float((s.ldr[0].amax(0) >= 1).float().mean())
    assert clipped < 0.05


def test_read_real_kalantari_scene(tmp_path, data_dir):
    src = data_dir / "stacks" / "kalantari17_002"
    d = tmp_path / "Test" / "002"
    d.mkdir(parents=True)
    for i in (1, 2, 3):
        (d / f"input_{i}_aligned.jpg").symlink_to(src / f"input_{i}_aligned.jpg")
    (d / "exposure.txt").write_text((src / "exposure_bias_from_repo_README.txt").read_text())
    s = KalantariDataset(tmp_path)[0]
    assert s.ldr.shape == (3, 3, 1000, 1500) and s.hdr is None and s.reference == 1
    assert torch.equal(s.exposure_times, torch.tensor([1.0, 8.0, 64.0]))
    # gamma 2.2 linearization agrees between the short and middle frames where both are well exposed
    a, b = s.ldr[0] ** 2.2, s.ldr[1] ** 2.2 / 8
    ok = (s.ldr[0] > 0.15) & (s.ldr[1] < 0.85)
    assert ok.float().mean() > 0.01
    assert 0.5 < float((b[ok] / a[ok]).median()) < 2.0


def test_bracket_folder_exif(tmp_path, data_dir):
    src = data_dir / "stacks" / "frobisher"
    d = tmp_path / "frobisher"
    d.mkdir()
    for p in sorted(src.glob("*.jpg")):
        (d / p.name).symlink_to(p)
    s = BracketFolderDataset(tmp_path)[0]
    assert s.ldr.shape[:2] == (3, 3)
    assert torch.allclose(s.exposure_times, torch.tensor([1.0, 8.0, 64.0]))
