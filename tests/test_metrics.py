"""Tests for hdrkit.metrics: hand-computed values, scikit-image, and a literal protocol re-implementation."""

import importlib.util
import math
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.ndimage
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from hdrkit.errors import HdrkitError
from hdrkit.metrics import (
    METRICS,
    aggregate,
    best_scale,
    compute_metrics,
    hdr_flip,
    log_rmse_scale_invariant,
    mu_law_np,
    psnr_l,
    psnr_mu,
    psnr_mu_tanh,
    psnr_scale_invariant,
    psnr_torch,
    pu21_decode,
    pu21_encode,
    pu21_psnr,
    pu21_ssim,
    ssim_l,
    ssim_mu,
    ssim_torch,
)
from hdrkit.metrics.pu21 import PU21_PARAMS
from hdrkit.metrics.ssim import gaussian_window
from hdrkit.tonemap.mu_law import mu_law

_spec = importlib.util.spec_from_file_location(
    "protocol_reference", Path(__file__).parent / "reference" / "protocol_reference.py")
protocol = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(protocol)

REAL_SCENES = ("polyhaven/lebombo_1k.hdr", "polyhaven/studio_small_03_1k.hdr", "colour_hdri/HDRMark_small.hdr")


def _skimage_ssim(pred_hwc, target_hwc):
    return structural_similarity(pred_hwc.astype(np.float64), target_hwc.astype(np.float64), data_range=1.0,
                                 channel_axis=2, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)


def _random_pair(seed=0, shape=(70, 90, 3)):
    rng = np.random.default_rng(seed)
    low = cv2.resize(rng.random((7, 9, 3)), shape[1::-1], interpolation=cv2.INTER_CUBIC)
    target = np.clip(low ** 3 + 0.05 * rng.random(shape), 0, 1)
    pred = np.clip(target * 1.05 + rng.normal(0, 0.02, shape), 0, 1)
    return pred, target


def _degrade(target, seed):
    rng = np.random.default_rng(seed)
    blur = cv2.GaussianBlur(target, (0, 0), 1.2)
    return np.clip(blur * (1 + rng.normal(0, 0.05, target.shape)) * 0.97, 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def real_pairs(data_dir):
    """(pred, target) HWC float32 in [0, 1] from real radiance maps: 99.5th percentile -> 1, a 384 x 512 crop."""
    pairs = []
    for i, rel in enumerate(REAL_SCENES):
        chw = protocol.read_linear_chw(data_dir / "hdr" / rel)
        hwc = chw.transpose(1, 2, 0)[64:448, :512]
        target = np.clip(hwc / np.percentile(hwc, 99.5), 0, 1).astype(np.float32)
        pairs.append((_degrade(target, i), target))
    return pairs


# mu-law and PSNR

def test_mu_law_known_values_and_torch_twin():
    x = np.array([0.0, (math.sqrt(5001) - 1) / 5000, 1.0])
    np.testing.assert_allclose(mu_law_np(x), [0.0, 0.5, 1.0], atol=1e-12)
    xs = np.linspace(0, 1, 101)
    np.testing.assert_allclose(mu_law_np(xs), mu_law(torch.from_numpy(xs)).numpy(), rtol=1e-12)
    assert mu_law_np(xs.astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize("precise", [False, True])
def test_psnr_constant_offset_is_20db(precise):
    target = np.random.default_rng(1).random((20, 30, 3)) * 0.8
    assert psnr_l(target + 0.1, target, precise=precise) == pytest.approx(20.0, abs=1e-5 if not precise else 1e-10)
    assert psnr_l(target, target, precise=precise) == math.inf


def test_psnr_clip_is_optional():
    target = np.full((4, 4, 3), 0.5)
    pred = np.full((4, 4, 3), 1.5)  # clipped to 1 -> error 0.5 -> 6.02 dB; unclipped error 1 -> 0 dB
    assert psnr_l(pred, target) == pytest.approx(20 * math.log10(2), abs=1e-5)
    assert psnr_l(pred, target, clip=False) == pytest.approx(0.0, abs=1e-5)


def test_psnr_matches_skimage_random():
    pred, target = _random_pair()
    ref_l = peak_signal_noise_ratio(target, pred, data_range=1.0)
    ref_mu = peak_signal_noise_ratio(mu_law_np(target), mu_law_np(pred), data_range=1.0)
    assert psnr_l(pred, target) == pytest.approx(ref_l, abs=1e-4)
    assert psnr_mu(pred, target) == pytest.approx(ref_mu, abs=1e-4)
    assert psnr_mu(pred, target, precise=True) == pytest.approx(ref_mu, abs=1e-10)


def test_psnr_mu_tanh_matches_hand_formula():
    pred, target = _random_pair(2)
    norm = np.percentile(target, 99)
    mse = np.mean((mu_law_np(np.tanh(pred / norm)) - mu_law_np(np.tanh(target / norm))) ** 2)
    assert psnr_mu_tanh(pred, target) == pytest.approx(-10 * math.log10(mse), abs=1e-9)


def test_psnr_torch_matches_numpy_and_has_gradient():
    pred, target = _random_pair(3)
    p = torch.from_numpy(pred).permute(2, 0, 1).requires_grad_()
    t = torch.from_numpy(target).permute(2, 0, 1)
    val = psnr_torch(p, t)
    assert val.item() == pytest.approx(psnr_l(pred, target, precise=True), abs=1e-9)
    val.backward()
    assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


# SSIM

@pytest.mark.parametrize("precise", [False, True])
def test_ssim_identical_is_one(precise):
    _, target = _random_pair(4)
    assert ssim_l(target, target, precise=precise) == pytest.approx(1.0, abs=1e-6)
    assert ssim_mu(target, target, precise=precise) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("precise", [False, True])
def test_ssim_of_constant_images_is_luminance_term(precise):
    a, b = 127.5, 63.75  # 0.5 and 0.25 after x255; variances are zero so SSIM = (2ab + C1)/(a^2 + b^2 + C1)
    c1 = (0.01 * 255) ** 2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    got = ssim_l(np.full((16, 17, 3), 0.25), np.full((16, 17, 3), 0.5), precise=precise)
    assert got == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("seed", [0, 5])
def test_ssim_matches_skimage_random(seed):
    pred, target = _random_pair(seed)
    ref = _skimage_ssim(pred, target)
    assert abs(ssim_l(pred, target) - ref) < 1e-6
    assert abs(ssim_l(pred, target, precise=True) - ref) < 1e-10
    ref_mu = _skimage_ssim(mu_law_np(pred), mu_law_np(target))
    assert abs(ssim_mu(pred, target) - ref_mu) < 1e-6


def test_ssim_matches_skimage_on_real_images(real_pairs):
    for pred, target in real_pairs:
        assert abs(ssim_l(pred, target) - _skimage_ssim(pred, target)) < 1e-4
        assert abs(ssim_mu(pred, target) - _skimage_ssim(mu_law_np(pred), mu_law_np(target))) < 1e-4
        assert abs(psnr_l(pred, target) - peak_signal_noise_ratio(target, pred, data_range=1.0)) < 1e-4


def test_ssim_too_small_image_raises():
    with pytest.raises(HdrkitError, match="at least 11x11"):
        ssim_l(np.zeros((10, 40, 3)), np.zeros((10, 40, 3)))


def test_ssim_torch_matches_numpy_and_batches():
    pred, target = _random_pair(6)
    p = torch.from_numpy(pred).permute(2, 0, 1)
    t = torch.from_numpy(target).permute(2, 0, 1)
    ref = ssim_l(pred, target, precise=True)
    assert ssim_torch(p, t).item() == pytest.approx(ref, abs=1e-10)
    per = ssim_torch(torch.stack([p, t]), torch.stack([t, t]), reduction="per_image")
    np.testing.assert_allclose(per.numpy(), [ref, 1.0], atol=1e-10)
    assert ssim_torch(p, t, reduction="none").shape == (3, p.shape[1] - 10, p.shape[2] - 10)


def test_ssim_torch_gradcheck():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 2, 13, 14, dtype=torch.float64, generator=g, requires_grad=True)
    y = torch.rand(1, 2, 13, 14, dtype=torch.float64, generator=g)
    assert torch.autograd.gradcheck(lambda a: ssim_torch(a, y), (x,))


# agreement with the literal protocol script

def _assert_matches_protocol(pred_hwc, target_hwc, precise, tol_db, tol_ssim):
    ref = protocol.scene_metrics(pred_hwc.transpose(2, 0, 1).astype(np.float32),
                                 target_hwc.transpose(2, 0, 1).astype(np.float32))
    ours = compute_metrics(pred_hwc, target_hwc, precise=precise)
    for k in ("psnr_mu", "psnr_l"):
        assert abs(ours[k] - ref[k]) < tol_db, (k, ours[k], ref[k])
    for k in ("ssim_mu", "ssim_l"):
        assert abs(ours[k] - ref[k]) < tol_ssim, (k, ours[k], ref[k])


@pytest.mark.parametrize("precise", [False, True])
def test_matches_protocol_reference_random(precise):
    pred, target = _random_pair(7)
    _assert_matches_protocol(pred.astype(np.float32), target.astype(np.float32), precise, 1e-4, 1e-6)


def test_matches_protocol_reference_real(real_pairs):
    for pred, target in real_pairs:
        _assert_matches_protocol(pred, target, False, 1e-4, 1e-6)
        _assert_matches_protocol(pred, target, True, 1e-4, 1e-9)


def test_protocol_reference_directory_cli(tmp_path, real_pairs, capsys):
    gt_root, pred_root = tmp_path / "Test", tmp_path / "pred"
    ours = []
    for i, (pred, target) in enumerate(real_pairs[:2]):
        (gt_root / f"{i:03d}").mkdir(parents=True)
        pred_root.mkdir(exist_ok=True)
        cv2.imwrite(str(gt_root / f"{i:03d}" / "HDRImg.hdr"), np.ascontiguousarray(target[..., ::-1]))
        cv2.imwrite(str(pred_root / f"{i:03d}.hdr"), np.ascontiguousarray(pred[..., ::-1]))
        ours.append(compute_metrics(torch.from_numpy(protocol.read_linear_chw(pred_root / f"{i:03d}.hdr")),
                                    torch.from_numpy(protocol.read_linear_chw(gt_root / f"{i:03d}" / "HDRImg.hdr"))))
    assert protocol.main([str(gt_root), str(pred_root)]) == 0
    assert "Average" in capsys.readouterr().out
    _, avg = protocol.evaluate_dirs(gt_root, pred_root)
    mine = aggregate(ours)
    for k in avg:
        assert abs(mine[k] - avg[k]) < (1e-4 if k.startswith("psnr") else 1e-6), k


# input conventions

def test_torch_channel_first_numpy_channel_last_and_batches_agree():
    pred, target = _random_pair(8)
    p_t = torch.from_numpy(pred).permute(2, 0, 1)
    t_t = torch.from_numpy(target).permute(2, 0, 1)
    single = compute_metrics(pred, target)
    from_torch = compute_metrics(p_t, t_t)
    batch = compute_metrics(torch.stack([p_t, t_t]), torch.stack([t_t, t_t]))
    for k in single:
        assert from_torch[k] == pytest.approx(single[k], abs=1e-9)
        assert isinstance(batch[k], np.ndarray) and batch[k].shape == (2,)
        assert batch[k][0] == pytest.approx(single[k], abs=1e-9)


@pytest.mark.parametrize(
    "pred, target, match",
    [
        (np.zeros((3, 20, 20)), np.zeros((3, 20, 20)), "channel-last"),
        (torch.zeros(20, 20, 3), torch.zeros(20, 20, 3), "channel-first"),
        (np.zeros((20, 20, 3)), np.zeros((20, 21, 3)), "same shape"),
        (np.zeros((20, 20, 3), np.uint8), np.zeros((20, 20, 3), np.uint8), "float"),
        (np.full((20, 20, 3), np.nan), np.zeros((20, 20, 3)), "NaN"),
        ([[0.0]], [[0.0]], "torch.Tensor or numpy"),
    ],
)
def test_bad_inputs_raise(pred, target, match):
    with pytest.raises(HdrkitError, match=match):
        psnr_l(pred, target)


def test_compute_metrics_unknown_name_and_aggregate():
    pred, target = _random_pair(9)
    with pytest.raises(HdrkitError, match="unknown metric"):
        compute_metrics(pred, target, names=("psnr_x",))
    assert aggregate([{"a": 10.0, "b": 0.5}, {"a": 20.0, "b": 1.0}]) == {"a": 15.0, "b": 0.75}
    with pytest.raises(HdrkitError, match="keys"):
        aggregate([{"a": 1.0}, {"b": 1.0}])
    with pytest.raises(HdrkitError):
        aggregate([])


# PU21

def test_pu21_encode_known_values_and_inverse():
    # PU(100 cd/m^2) = 256.4 and PU(10^4) = 595.39: the project's machine notes, checked there against
    # pycvvdp's PU.encode (to 4 significant digits); below 0.005 and above 10^4 the input is clamped.
    v = pu21_encode(np.array([0.001, 0.005, 100.0, 10000.0, 1e6]))
    assert v[2] == pytest.approx(256.4, abs=0.05) and v[3] == pytest.approx(595.39, abs=0.005)
    assert v[0] == v[1] and v[3] == v[4] and abs(v[1]) < 1e-6
    y = np.geomspace(0.005, 10000, 200)
    np.testing.assert_allclose(pu21_decode(pu21_encode(y)), y, rtol=1e-9)
    for name in PU21_PARAMS:
        np.testing.assert_allclose(pu21_decode(pu21_encode(y, name), name), y, rtol=1e-6)
    np.testing.assert_allclose(pu21_encode(torch.from_numpy(y)).numpy(), pu21_encode(y), rtol=1e-10, atol=1e-12)
    with pytest.raises(HdrkitError, match="parameter set"):
        pu21_encode(y, "nope")


def test_pu21_psnr_hand_computed_for_grey_images():
    # Grey pixels (R = G = B) have luminance equal to the channel value (the weights sum to 1).
    pred, target = np.full((16, 16, 3), 50.0), np.full((16, 16, 3), 100.0)
    d = float(pu21_encode(np.array(100.0)) - pu21_encode(np.array(50.0)))
    assert pu21_psnr(pred, target, display_peak=None) == pytest.approx(20 * math.log10(256 / abs(d)), abs=1e-9)
    # relative inputs: target max -> 100 cd/m^2 reproduces the absolute numbers; 'one' maps 1.0 -> peak
    assert pu21_psnr(pred / 400, target / 400, display_peak=100.0) == pytest.approx(
        pu21_psnr(pred, target, display_peak=None), abs=1e-9)
    assert pu21_psnr(pred / 100, target / 100, display_peak=100.0, relative_to="one") == pytest.approx(
        pu21_psnr(pred, target, display_peak=None), abs=1e-9)
    with pytest.raises(HdrkitError, match="relative_to"):
        pu21_psnr(pred, target, relative_to="median")


def test_pu21_ssim_is_matlab_style_replicate_full_map():
    rng = np.random.default_rng(10)
    target = np.exp(rng.normal(0, 1.5, (24, 30, 3)))
    pred = target * np.exp(rng.normal(0, 0.2, target.shape))
    assert pu21_ssim(target, target) == pytest.approx(1.0, abs=1e-12)
    # independent check: scipy 2-D correlation with edge replication ('nearest'), mean of the whole map
    scale = 1000.0 / target.max()
    w = np.array([0.212656, 0.715158, 0.072186])
    vp, vt = pu21_encode((pred * scale) @ w), pu21_encode((target * scale) @ w)
    win = np.outer(gaussian_window(), gaussian_window())
    f = lambda z: scipy.ndimage.correlate(z, win, mode="nearest")  # noqa: E731
    mx, my = f(vp), f(vt)
    sx, sy, sxy = f(vp * vp) - mx ** 2, f(vt * vt) - my ** 2, f(vp * vt) - mx * my
    c1, c2 = (0.01 * 256) ** 2, (0.03 * 256) ** 2
    ref = np.mean((2 * mx * my + c1) * (2 * sxy + c2) / ((mx ** 2 + my ** 2 + c1) * (sx + sy + c2)))
    assert pu21_ssim(pred, target) == pytest.approx(ref, abs=1e-10)
    assert pu21_ssim(pred, target) < 0.999


# scale-invariant

def test_scale_invariant_metrics_ignore_global_scale():
    rng = np.random.default_rng(11)
    target = np.exp(rng.normal(0, 1.0, (20, 24, 3)))
    noisy = target * np.exp(rng.normal(0, 0.1, target.shape))
    assert best_scale(target * 4.0, target, "log") == pytest.approx(0.25, rel=1e-12)
    assert best_scale(target * 4.0, target, "linear") == pytest.approx(0.25, rel=1e-12)
    assert log_rmse_scale_invariant(target * 7.0, target) == pytest.approx(0.0, abs=1e-12)
    assert psnr_scale_invariant(target * 7.0, target) > 250  # exact up to float rounding
    for kw in ({}, {"space": "linear"}, {"domain": "linear"}):
        assert psnr_scale_invariant(noisy * 123.0, target, **kw) == pytest.approx(
            psnr_scale_invariant(noisy, target, **kw), abs=1e-9)
    assert log_rmse_scale_invariant(noisy * 0.01, target) == pytest.approx(log_rmse_scale_invariant(noisy, target))


def test_scale_invariant_degenerate_inputs():
    target = np.ones((12, 12, 3))
    assert math.isnan(psnr_scale_invariant(np.zeros_like(target), target))
    assert math.isnan(log_rmse_scale_invariant(np.zeros_like(target), target))
    with pytest.raises(HdrkitError, match="positive"):
        psnr_scale_invariant(target, np.zeros_like(target))
    with pytest.raises(HdrkitError, match="space"):
        best_scale(target, target, "median")


def test_log_rmse_hand_computed():
    target = np.exp(np.random.default_rng(12).normal(0, 1.0, (8, 8, 3)))
    signs = np.where(np.indices(target.shape).sum(0) % 2 == 0, 1.0, -1.0)  # mean zero over 8x8x3
    assert log_rmse_scale_invariant(target * np.exp(0.3 * signs) * 5, target) == pytest.approx(0.3, abs=1e-12)


# HDR-FLIP

def test_hdr_flip_missing_package_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "flip_evaluator", None)
    with pytest.raises(HdrkitError, match=r"pip install hdrkit\[flip\]"):
        hdr_flip(np.ones((16, 16, 3)), np.ones((16, 16, 3)))


def test_hdr_flip_orders_degradations():
    pytest.importorskip("flip_evaluator")
    rng = np.random.default_rng(13)
    target = np.exp(rng.normal(0, 1.0, (48, 64, 3))).astype(np.float32)
    assert hdr_flip(target, target) == 0.0
    small = hdr_flip(target * np.exp(rng.normal(0, 0.05, target.shape)), target)
    large = hdr_flip(target * np.exp(rng.normal(0, 0.5, target.shape)), target)
    assert 0 < small < large <= 1
    with pytest.raises(HdrkitError, match="tonemapper"):
        hdr_flip(target, target, tonemapper="filmic")


def test_metrics_registry_is_callable_by_name():
    pytest.importorskip("flip_evaluator")
    pred, target = _random_pair(14, (32, 40, 3))
    out = compute_metrics(pred, target, names=tuple(METRICS))
    assert list(out) == list(METRICS)
    assert all(np.isfinite(v) for v in out.values())
