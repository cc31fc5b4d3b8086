"""Camera response recovery: expose known radiance with a known response, recover it, compare.

Error measure: RMS over 1024 codes of ``f^-1`` (both normalized so ``f^-1(1) = 1``), worst channel.
"""

import json

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hdrkit.camera import (
    CALIBRATION_METHODS,
    GammaResponse,
    NoiseModel,
    TabulatedResponse,
    expose,
    load_dorf,
    plot_response,
    recover_response,
    recover_response_debevec1997,
    recover_response_emor2004,
    recover_response_robertson2003,
    select_samples_grossberg2003,
)
from hdrkit.camera import emor2004
from hdrkit.camera.crf_families import synthetic_response_curves
from hdrkit.camera.emor import EMoR
from hdrkit.errors import HdrkitError

# darktable's median noise profile at ISO 400 over all cameras (noise/darktable.json).
ISO400 = NoiseModel(a=(2.5e-5,) * 3, b=(5.7e-8,) * 3)
# Curves spanning the DoRF shapes: smooth film/video curves (0, 20), a strong knee near white
# (50, 96), an S-shaped toe (90).
DORF_CURVES = (0, 20, 50, 90, 96)
# Curves whose bumps have the period of the bracket's exposure ratio in log irradiance: no
# bracket of powers of one ratio can reveal them (Grossberg & Nayar 2003), only the prior.
DORF_AMBIGUOUS = (127, 140, 148)
SCENES = ("adams_place_bridge_1k.hdr", "st_peters_square_night_1k.hdr", "chinese_garden_1k.hdr")
# EMoR-prior recovery of the ambiguous curves at +-2 EV (test_dorf_ambiguous_curves_emor), measured
# 127: 0.008, 140: 0.009, 148: 0.010 (Debevec 1997: 0.038, 0.026, 0.025). With the forward emor.txt
# fit before, 140 stayed at 0.040.
EMOR_AMBIGUOUS_BOUND = {127: 0.02, 140: 0.02, 148: 0.02}


def rms(response, truth):
    a, b = response.table(1024), truth.table(1024)
    return float(((a - b) ** 2).mean(dim=1).sqrt().max())


def synthetic_scene(h=128, w=192, stops=10.0, seed=0):
    """(3, h, w) radiance: a smooth random log field over ``stops`` stops, tinted per channel."""
    g = torch.Generator().manual_seed(seed)
    field = F.interpolate(torch.randn(1, 1, h // 8, w // 8, generator=g, dtype=torch.float64), size=(h, w), mode="bicubic")[0, 0]
    ramp = torch.linspace(-1, 1, w, dtype=torch.float64).expand(h, w)
    log2 = field / field.std() * stops / 6 + ramp * stops / 3
    tint = torch.tensor([1.0, 0.8, 0.6], dtype=torch.float64).view(3, 1, 1)
    return torch.exp2(log2)[None].expand(3, h, w) * tint


def load_scene(path, width=256):
    img = cv2.imread(str(path), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_COLOR)[:, :, ::-1]
    h = img.shape[0]
    img = img[h // 4 : 3 * h // 4].astype(np.float32)  # near the equator: photo-like
    img = cv2.resize(img, (width, round(img.shape[0] * width / img.shape[1])), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).double()


def bracket(hdr, response, n=3, ev=2.0, noise=ISO400, bits=8, seed=0, mid_median=0.3):
    """Expose ``hdr`` so the middle frame's median is ``mid_median`` linear: (N, 3, H, W), (N,)."""
    t = 2.0 ** (ev * np.arange(n))
    hdr = hdr * (mid_median / (float(hdr.mean(0).median()) * t[n // 2]))
    g = torch.Generator().manual_seed(seed)
    return expose(hdr[None], torch.tensor(t)[None], response, noise, bits, g)[0], t


def opencv_debevec(ldr, t):
    frames = [np.ascontiguousarray((f.permute(1, 2, 0).numpy()[:, :, ::-1] * 255).round().astype(np.uint8)) for f in ldr]
    inv = cv2.createCalibrateDebevec().process(frames, np.asarray(t, np.float32))[:, 0, ::-1].T.astype(np.float64)
    return TabulatedResponse(inv / inv[:, -1:])


@pytest.fixture(scope="module")
def dorf_path(data_dir):
    return data_dir / "crf" / "dorf_public_151.npz"


@pytest.fixture(scope="module")
def scenes(data_dir):
    return {name: load_scene(data_dir / "hdr" / "polyhaven" / name) for name in SCENES}


@pytest.fixture(scope="module")
def iso_noise(data_dir):
    """A real darktable profile at ISO 800 (the noisiest end of the ISO 100..800 range used)."""
    profiles = json.loads((data_dir / "noise" / "darktable.json").read_text())["noiseprofiles"]
    for maker in profiles:
        for model in maker["models"]:
            for p in model["profiles"]:
                if model["model"] == "EOS 5D Mark II" and p["iso"] == 800:
                    # darktable fits can have b < 0 (here G and B); NoiseModel needs b >= 0
                    return NoiseModel(a=tuple(p["a"]), b=tuple(max(v, 0.0) for v in p["b"]))
    pytest.skip("darktable profile EOS 5D Mark II ISO 800 not found")


@pytest.mark.parametrize("method", [recover_response_debevec1997, recover_response_robertson2003])
def test_gamma22_recovery_synthetic(method):
    truth = GammaResponse(2.2)
    ldr, t = bracket(synthetic_scene(), truth)
    r = method(ldr, t)
    assert rms(r, truth) < 0.01


@pytest.mark.parametrize("method", [recover_response_debevec1997, recover_response_robertson2003])
def test_output_contract(method):
    truth = GammaResponse(1.8)
    ldr, t = bracket(synthetic_scene(seed=1), truth)
    r = method(ldr, t)
    table = r.inverse_table
    assert isinstance(r, TabulatedResponse) and table.shape == (3, 256)
    assert torch.all(table[:, 1:] >= table[:, :-1])
    assert torch.allclose(table[:, -1], torch.ones(3, dtype=table.dtype))
    assert torch.all(table[:, 0] == 0)
    # batched (1, N, 3, H, W) and numpy input give the same curve
    r5 = method(ldr[None].numpy(), t[None])
    assert torch.allclose(r5.inverse_table, table)


@pytest.mark.parametrize("method", [recover_response_debevec1997, recover_response_robertson2003])
def test_16bit_recovery_synthetic(method):
    truth = GammaResponse(2.2)
    ldr, t = bracket(synthetic_scene(seed=2), truth, bits=16)
    r = method(ldr, t, bits=16)
    assert r.inverse_table.shape == (3, 1024)
    assert rms(r, truth) < 0.02


def test_levels_option_16bit():
    ldr, t = bracket(synthetic_scene(seed=3), GammaResponse(2.2), bits=16)
    r = recover_response_debevec1997(ldr, t, bits=16, levels=2048)
    assert r.inverse_table.shape == (3, 2048)
    assert rms(r, GammaResponse(2.2)) < 0.02


def test_channels_recovered_independently():
    """Per-channel scale ambiguity: each channel is normalized on its own, so a tinted
    radiance map and different curves per channel are both recovered."""
    table = torch.stack([torch.linspace(0, 1, 256) ** g for g in (1.6, 2.2, 2.8)])
    truth = TabulatedResponse(table)
    ldr, t = bracket(synthetic_scene(seed=4), truth)
    r = recover_response_debevec1997(ldr, t)
    err = ((r.table(1024) - truth.table(1024)) ** 2).mean(dim=1).sqrt()
    assert torch.all(err < 0.02), err


@pytest.mark.data
@pytest.mark.parametrize("k", DORF_CURVES)
def test_dorf_debevec_real_scenes(dorf_path, scenes, k):
    truth = load_dorf(dorf_path, k)
    for i, hdr in enumerate(scenes.values()):
        ldr, t = bracket(hdr, truth, seed=10 * k + i)
        assert rms(recover_response_debevec1997(ldr, t), truth) < 0.02, (k, SCENES[i])


@pytest.mark.data
@pytest.mark.parametrize("k", DORF_CURVES)
def test_dorf_robertson_real_scenes(dorf_path, scenes, k):
    truth = load_dorf(dorf_path, k)
    hdr = scenes[SCENES[0]]
    ldr, t = bracket(hdr, truth, seed=k)
    assert rms(recover_response_robertson2003(ldr, t), truth) < 0.02


@pytest.mark.data
@pytest.mark.parametrize("k", DORF_AMBIGUOUS)
def test_dorf_ambiguous_curves_bounded(dorf_path, scenes, k):
    """Not within 0.02 (measured 0.024..0.038): their detail is invisible to a regular bracket."""
    truth = load_dorf(dorf_path, k)
    ldr, t = bracket(scenes[SCENES[1]], truth, seed=k)
    assert rms(recover_response_debevec1997(ldr, t), truth) < 0.045


@pytest.mark.data
def test_dorf_five_frames_real_noise(dorf_path, scenes, iso_noise):
    for k in (20, 96):
        truth = load_dorf(dorf_path, k)
        ldr, t = bracket(scenes[SCENES[2]], truth, n=5, ev=2.0, noise=iso_noise, seed=k)
        assert rms(recover_response_debevec1997(ldr, t), truth) < 0.02, k


@pytest.mark.data
@pytest.mark.parametrize("n", [3, 5])
def test_dorf_3ev_brackets_beat_opencv(dorf_path, scenes, iso_noise, n):
    """At 3 EV steps the ambiguity period (ln 8) is longer and some curves miss 0.02
    (measured: DoRF 0/20 0.005..0.009, 50 0.026, 96 0.044, 90 0.057; OpenCV 0.02..0.15)."""
    ours, theirs = [], []
    for k in DORF_CURVES:
        truth = load_dorf(dorf_path, k)
        ldr, t = bracket(scenes[SCENES[0]], truth, n=n, ev=3.0, noise=iso_noise, seed=k)
        ours.append(rms(recover_response_debevec1997(ldr, t), truth))
        theirs.append(rms(opencv_debevec(ldr, t), truth))
    assert max(ours) < 0.07 and np.mean(ours) < 0.6 * np.mean(theirs), (ours, theirs)


@pytest.mark.data
def test_dorf_16bit(dorf_path, scenes):
    for k in (20, 50):
        truth = load_dorf(dorf_path, k)
        ldr, t = bracket(scenes[SCENES[0]], truth, bits=16, seed=k)
        assert rms(recover_response_debevec1997(ldr, t, bits=16), truth) < 0.02
        assert rms(recover_response_robertson2003(ldr, t, bits=16), truth) < 0.02


@pytest.mark.data
def test_better_than_opencv_debevec(dorf_path, scenes):
    ours, theirs = [], []
    for k in DORF_CURVES:
        truth = load_dorf(dorf_path, k)
        ldr, t = bracket(scenes[SCENES[0]], truth, seed=k)
        ours.append(rms(recover_response_debevec1997(ldr, t), truth))
        theirs.append(rms(opencv_debevec(ldr, t), truth))
    assert np.mean(ours) < 0.5 * np.mean(theirs), (ours, theirs)


def test_samples_cover_every_occupied_level():
    ldr, _ = bracket(synthetic_scene(seed=5), GammaResponse(2.2))
    bins = torch.round(ldr[:, 1] * 255).long().reshape(ldr.shape[0], -1).numpy()
    codes, level = select_samples_grossberg2003(bins, 256, per_level=1)
    for j in range(bins.shape[0]):
        assert set(np.unique(bins[j])) <= set(np.unique(level[:, j]))
    # rank order is shared by all frames: codes are non-decreasing down the rows
    assert np.all(np.diff(codes, axis=0) >= -1e-12)
    assert np.all(np.abs(codes - level) <= 0.5 + 1e-9)


def test_samples_cap():
    ldr, _ = bracket(synthetic_scene(seed=5), GammaResponse(2.2))
    bins = torch.round(ldr[:, 0] * 255).long().reshape(ldr.shape[0], -1).numpy()
    codes, _ = select_samples_grossberg2003(bins, 256, samples=100)
    assert codes.shape == (100, ldr.shape[0])


@pytest.mark.parametrize("method", [recover_response_debevec1997, recover_response_robertson2003, recover_response_emor2004])
def test_input_errors(method):
    ldr, t = bracket(synthetic_scene(h=32, w=32), GammaResponse(2.2))
    with pytest.raises(HdrkitError, match="at least 2"):
        method(ldr[:1], t[:1])
    with pytest.raises(HdrkitError, match="exposure_times"):
        method(ldr, t[:2])
    with pytest.raises(HdrkitError, match="exposure_times"):
        method(ldr, -t)
    with pytest.raises(HdrkitError, match="all equal"):
        method(ldr, np.ones(3))
    with pytest.raises(HdrkitError, match="B = 1"):
        method(torch.stack([ldr, ldr]), t)
    with pytest.raises(HdrkitError, match="shape"):
        method(ldr[:, :2], t)
    with pytest.raises(HdrkitError, match="bits"):
        method(ldr, t, bits=32)
    with pytest.raises(HdrkitError, match="levels"):
        method(ldr, t, levels=1024)  # more levels than 8-bit codes
    with pytest.raises(HdrkitError, match="NaN"):
        method(ldr * float("nan"), t)
    with pytest.raises(HdrkitError, match="floating point"):
        method((ldr * 255).to(torch.uint8), t)


def test_debevec_argument_errors():
    ldr, t = bracket(synthetic_scene(h=32, w=32), GammaResponse(2.2))
    with pytest.raises(HdrkitError, match="weighting"):
        recover_response_debevec1997(ldr, t, weighting="gauss")
    with pytest.raises(HdrkitError, match="smoothness"):
        recover_response_debevec1997(ldr, t, smoothness=-1)
    with pytest.raises(HdrkitError, match="samples"):
        recover_response_debevec1997(ldr, t, samples=3)


def test_no_overlap_is_an_error():
    """Two frames so far apart that no pixel is well exposed in both."""
    ldr = torch.zeros(2, 3, 8, 8)
    ldr[0] = 0.5
    ldr[1] = 1.0
    with pytest.raises(HdrkitError, match="two frames"):
        recover_response_debevec1997(ldr, [1.0, 1e6])


def test_plot_response_writes_png(tmp_path):
    ldr, t = bracket(synthetic_scene(h=64, w=64), GammaResponse(2.2))
    r = recover_response_debevec1997(ldr, t)
    out = plot_response(r, tmp_path / "crf.png", truth=GammaResponse(2.2))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["crf.png"]
    with pytest.raises(HdrkitError, match="PNG"):
        plot_response(r, tmp_path / "crf.jpg")


def test_plot_without_matplotlib(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(HdrkitError, match=r"pip install hdrkit\[plot\]"):
        plot_response(GammaResponse(2.2), tmp_path / "crf.png")
    assert list(tmp_path.iterdir()) == []


# EMoR prior (Grossberg & Nayar 2004), hdrkit/camera/emor2004.py. The core tests use the basis and
# prior hdrkit ships, so they run and mean the same with or without ../shared/data.


@pytest.fixture(scope="module")
def shipped_prior():
    return emor2004.default_prior(basis="shipped")


def naka_rushton(n=1.4, s=0.3):
    """An S-shaped film-like response from one of the shipped families, as a TabulatedResponse."""
    x = np.linspace(0, 1, 1024)
    return TabulatedResponse.from_forward(x, x**n * (1 + s**n) / (x**n + s**n))


@pytest.mark.parametrize("ev", [2.0, 3.0])
def test_emor_recovery_synthetic(shipped_prior, ev):
    for truth in (GammaResponse(2.2), naka_rushton()):
        ldr, t = bracket(synthetic_scene(seed=6), truth, ev=ev)
        assert rms(recover_response_emor2004(ldr, t, prior=shipped_prior), truth) < 0.02, truth


def test_emor_output_contract(shipped_prior):
    ldr, t = bracket(synthetic_scene(seed=1), GammaResponse(1.8))
    r = recover_response_emor2004(ldr, t, prior=shipped_prior)
    table = r.inverse_table
    assert isinstance(r, TabulatedResponse) and table.shape == (3, 256)
    assert torch.all(table[:, 1:] >= table[:, :-1])
    assert torch.allclose(table[:, -1], torch.ones(3, dtype=table.dtype))
    assert torch.all(table[:, 0] == 0)
    r5 = recover_response_emor2004(ldr[None].numpy(), t[None], prior=shipped_prior)
    assert torch.allclose(r5.inverse_table, table)


def test_emor_16bit(shipped_prior):
    ldr, t = bracket(synthetic_scene(seed=2), GammaResponse(2.2), bits=16)
    r = recover_response_emor2004(ldr, t, bits=16, prior=shipped_prior)
    assert r.inverse_table.shape == (3, 1024)
    assert rms(r, GammaResponse(2.2)) < 0.02


def test_emor_fallback_basis_without_shared_data(monkeypatch, tmp_path):
    """No data folder (or one without crf/invemor.txt): the shipped basis and prior, no file read."""
    for root in (tmp_path / "missing", tmp_path):
        monkeypatch.setenv("HDRKIT_DATA", str(root))
        prior = emor2004.default_prior()
        assert prior.source.startswith("shipped basis") and "shipped curves" in prior.source
        assert prior.k == emor2004.SHIPPED_COMPONENTS
        with pytest.raises(HdrkitError, match="invemor.txt.*not found"):
            emor2004.default_prior(basis="emor")
        with pytest.raises(HdrkitError, match="DoRF curves not found"):
            emor2004.default_prior(curves="dorf")
    monkeypatch.setattr(np, "load", lambda *a, **k: pytest.fail("the shipped route read a file"))
    ldr, t = bracket(synthetic_scene(seed=7), naka_rushton(0.9, 0.1))
    assert rms(recover_response_emor2004(ldr, t), naka_rushton(0.9, 0.1)) < 0.02


def test_shipped_curves_and_basis():
    curves = synthetic_response_curves(300, seed=1)
    assert curves.shape == (300, 1024) and np.all(np.diff(curves, axis=1) >= 0)
    assert np.all(curves[:, 0] == 0) and np.allclose(curves[:, -1], 1)
    assert np.array_equal(curves, synthetic_response_curves(300, seed=1))
    basis = emor2004.shipped_basis(11)
    assert basis.h.shape == (11, 1024) and not basis.inverse
    gram = basis.h @ basis.h.T
    assert torch.allclose(gram, torch.eye(11, dtype=gram.dtype), atol=1e-6)
    # the shipped curves are fitted well by their own basis (and are the prior's sample)
    fit = basis.curves(basis.fit(torch.from_numpy(curves)))
    assert float((fit - torch.from_numpy(curves)).pow(2).mean(dim=1).sqrt().median()) < 0.002


@pytest.mark.parametrize("ev", [2.0, 3.0])
def test_emor_inverse_basis(ev):
    """The inverse-model fit (the default with invemor.txt) on an inverse basis built without shared data."""
    curves = synthetic_response_curves(600, seed=3)
    inverse = emor2004.inverse_curves(curves)
    assert inverse.shape == (600, 1024) and np.all(np.diff(inverse, axis=1) >= 0)
    assert np.all(inverse[:, 0] == 0) and np.allclose(inverse[:, -1], 1)
    x = np.linspace(0, 1, 1024)
    assert np.allclose(emor2004.inverse_curves(x[None] ** (1 / 2.2)), x**2.2, atol=2e-3)
    basis = EMoR.from_curves(inverse, 9, inverse=True)
    prior = emor2004.EmorPrior.from_curves(basis, curves, "generated inverses")
    assert prior.k == 9 and prior.basis.inverse and prior.covariance.shape == (9, 9)
    for truth in (GammaResponse(2.2), naka_rushton()):
        ldr, t = bracket(synthetic_scene(seed=6), truth, ev=ev)
        assert rms(recover_response_emor2004(ldr, t, prior=prior), truth) < 0.02, truth


def test_emor_prior_errors():
    basis = emor2004.shipped_basis(5)
    with pytest.raises(HdrkitError, match="prior curves"):
        emor2004.EmorPrior.from_curves(basis, np.zeros((1, 1024)), "one curve")
    with pytest.raises(HdrkitError, match="basis must be"):
        emor2004.default_prior(basis="pca")
    ldr, t = bracket(synthetic_scene(h=32, w=32), GammaResponse(2.2))
    with pytest.raises(HdrkitError, match="samples"):
        recover_response_emor2004(ldr, t, samples=3)


def test_recover_response_by_name():
    ldr, t = bracket(synthetic_scene(h=64, w=96, seed=8), GammaResponse(2.2))
    for method in CALIBRATION_METHODS:
        assert rms(recover_response(ldr, t, method=method), GammaResponse(2.2)) < 0.02, method
    with pytest.raises(HdrkitError, match="unknown calibration method"):
        recover_response(ldr, t, method="opencv")


def test_cli_calibrate_methods_match_library(tmp_path, capsys):
    from hdrkit.cli import _parser, main
    from hdrkit.io import write_ldr

    for method in CALIBRATION_METHODS:
        assert _parser().parse_args(["calibrate", "a.png", "b.png", "-o", "r.csv", "--method", method]).method == method
    with pytest.raises(SystemExit):
        _parser().parse_args(["calibrate", "a.png", "b.png", "-o", "r.csv", "--method", "opencv"])
    capsys.readouterr()
    ldr, _ = bracket(synthetic_scene(h=64, w=96, seed=9), GammaResponse(2.2))
    paths = []
    for k, frame in enumerate(ldr):
        paths.append(str(tmp_path / f"f{k}.png"))
        write_ldr(paths[-1], frame.float(), bits=8)
    out = tmp_path / "crf.csv"
    assert main(["calibrate", *paths, "-o", str(out), "--ev", "0", "2", "4", "--method", "emor"]) == 0
    assert "(emor)" in capsys.readouterr().out
    table = np.loadtxt(out, delimiter=",")
    assert abs(table[-1, 1:] - 1).max() < 1e-9 and np.all(np.diff(table[:, 1:], axis=0) >= 0)


@pytest.mark.data
def test_emor_default_uses_shared_basis(data_dir, monkeypatch):
    monkeypatch.setenv("HDRKIT_DATA", str(data_dir))
    prior = emor2004.default_prior()
    assert prior.source.startswith("invemor.txt") and prior.k == emor2004.EMOR_COMPONENTS and prior.basis.inverse


@pytest.mark.data
@pytest.mark.parametrize("k", DORF_AMBIGUOUS)
def test_dorf_ambiguous_curves_emor(dorf_path, scenes, k):
    """The curves Debevec 1997 cannot get within 0.02 at +-2 EV (test_dorf_ambiguous_curves_bounded)."""
    truth = load_dorf(dorf_path, k)
    ldr, t = bracket(scenes[SCENES[1]], truth, seed=k)
    assert rms(recover_response_emor2004(ldr, t), truth) < EMOR_AMBIGUOUS_BOUND[k]


@pytest.mark.data
def test_dorf_emor_held_out_prior(dorf_path, scenes):
    """A prior fitted to DoRF curves other than the one tested (5-fold split, as the benchmark)."""
    with np.load(dorf_path) as z:
        irradiance, bright = z["I"].astype(np.float64), z["B"].astype(np.float64)
    basis = EMoR.from_inverse_file(dorf_path.parent / "invemor.txt", emor2004.EMOR_COMPONENTS)
    for k in DORF_CURVES:
        keep = np.arange(bright.shape[0]) % 5 != k % 5
        prior = emor2004.EmorPrior.from_curves(basis, bright[keep], "held out", irradiance=irradiance[keep])
        truth = load_dorf(dorf_path, k)
        ldr, t = bracket(scenes[SCENES[0]], truth, seed=k)
        assert rms(recover_response_emor2004(ldr, t, prior=prior), truth) < 0.02, k


@pytest.mark.data
@pytest.mark.parametrize("ev", [2.0, 3.0])
def test_dorf_emor_beats_debevec(dorf_path, scenes, iso_noise, ev):
    """Real darktable noise (not the profile the weights assume), 3-frame brackets. Measured mean RMS
    EMoR / Debevec: 0.007 / 0.014 at +-2 EV, 0.014 / 0.040 at +-3 EV (none over 0.03; with the forward
    emor.txt fit before, 0.011 and 0.037, with 96, 140 and 148 over 0.05)."""
    ours, theirs = [], []
    for k in DORF_CURVES + DORF_AMBIGUOUS:
        truth = load_dorf(dorf_path, k)
        ldr, t = bracket(scenes[SCENES[0]], truth, ev=ev, noise=iso_noise, seed=k)
        ours.append(rms(recover_response_emor2004(ldr, t), truth))
        theirs.append(rms(recover_response_debevec1997(ldr, t), truth))
    assert np.mean(ours) < np.mean(theirs) and np.median(ours) < 0.02, (ours, theirs)


def test_calibrate_response_specs():
    """``'calibrate'`` is the default method, ``'calibrate:NAME'`` picks one (hdrkit eval, hdrkit merge --response)."""
    from hdrkit.camera.calibrate import DEFAULT_CALIBRATION, calibration_method
    from hdrkit.data.eval_scenes import check_response_spec, resolve_response

    assert calibration_method("calibrate") == DEFAULT_CALIBRATION in CALIBRATION_METHODS
    assert calibration_method("gamma") is None
    check_response_spec("calibrate:emor")
    with pytest.raises(HdrkitError, match="unknown calibration method"):
        check_response_spec("calibrate:opencv")
    ldr, t = bracket(synthetic_scene(h=64, w=96, seed=10), GammaResponse(2.2))
    r = resolve_response("calibrate:emor", None, ldr[None], torch.tensor(t)[None], 8)
    assert r.name == "emor2004" and rms(r, GammaResponse(2.2)) < 0.02
