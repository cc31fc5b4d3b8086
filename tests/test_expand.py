"""Classical expansion operators (hdrkit.expand), their registry cards, and the single-image region metric."""

from __future__ import annotations

import math

import pytest
import torch

from hdrkit.camera import GammaResponse, expose
from hdrkit.errors import HdrkitError
from hdrkit.expand import expand_akyuz2007, expand_landis2002, linear_luminance
from hdrkit.expand.landis2002 import LANDIS_BOOST, LANDIS_THRESHOLD
from hdrkit.methods import get_method, run_method
from hdrkit.metrics import exposure_regions, log2_rmse_regions
from hdrkit.stats import luminance


def _photo(seed=0, h=24, w=32):
    g = torch.Generator().manual_seed(seed)
    hdr = torch.rand(1, 3, h, w, generator=g) ** 3 * 4
    return expose(hdr, torch.ones(1, 1), GammaResponse(2.2), bits=8)[:, 0], hdr[0]


def test_akyuz_is_a_linear_stretch_of_luminance_to_the_peak():
    ldr, _ = _photo()
    out = expand_akyuz2007(ldr, peak=3000.0)
    lin, lum = linear_luminance(ldr)
    lo, hi = lum.min(), lum.max()
    assert torch.allclose(luminance(out), 3000 * (lum - lo) / (hi - lo), rtol=1e-4, atol=1e-3)
    ratio = out / lin.clamp_min(1e-9)
    keep = lin[0, :2].amin(0) > 1e-3
    assert torch.allclose(ratio[0, 0][keep], ratio[0, 1][keep], rtol=1e-4), "hue kept: one factor per pixel"
    assert torch.allclose(expand_akyuz2007(ldr, gamma=2.0) / 3000, ((lum - lo) / (hi - lo)) ** 2 * lin / lum.clamp_min(1e-12)
                          * (lum > 1e-12), rtol=1e-4, atol=1e-6)


def test_landis_boosts_only_the_top_of_the_range():
    ldr, _ = _photo(1)
    lin, lum = linear_luminance(ldr)
    out = expand_landis2002(ldr)
    peak = lum.max()
    below = (lum < LANDIS_THRESHOLD * peak).expand_as(lin)
    assert torch.equal(out[below], lin[below]), "below R the linearized photo is kept"
    top = (lum == peak).expand_as(lin)
    assert torch.allclose(out[top], LANDIS_BOOST * lin[top], rtol=1e-5)
    big = expand_landis2002(ldr, threshold=0.5, alpha=2.0, boost=3000.0)
    assert torch.allclose(luminance(big).max(), 3000 * peak, rtol=1e-5)
    w = ((lum - 0.5 * peak) / (0.5 * peak)).clamp(0, 1) ** 2
    assert torch.allclose(luminance(big), (1 - w) * lum + w * 3000 * lum, rtol=1e-4)


def test_expansion_methods_are_registered_single_image_methods():
    ldr, _ = _photo(2)
    bracket = torch.stack([ldr[0], ldr[0]])[None]
    for name, fn in (("akyuz2007", expand_akyuz2007), ("landis2002", expand_landis2002)):
        card = get_method(name)
        assert card.kind == "single" and card.output == "radiance" and not card.learned
        out = run_method(name, ldr[:, None], torch.ones(1, 1), 0)
        assert torch.allclose(out, fn(ldr))
        assert run_method(name, bracket, torch.tensor([[1.0, 4.0]]), 1).shape == (1, 3, 24, 32), "sees the reference"
    assert torch.allclose(run_method("landis2002", ldr[:, None], torch.ones(1, 1), 0, response=GammaResponse(1.0)),
                          expand_landis2002(ldr, GammaResponse(1.0)))
    with pytest.raises(HdrkitError, match="unknown option"):
        run_method("landis2002", ldr[:, None], torch.ones(1, 1), 0, boots=2)
    with pytest.raises(HdrkitError, match=r"\(B, 3, H, W\)"):
        expand_akyuz2007(ldr[0])


def test_log2_rmse_regions_known_answers():
    ldr, hdr = _photo(3, 64, 64)
    clipped, exposed = exposure_regions(ldr[0])
    assert clipped.any() and exposed.any() and not (clipped & exposed).any()
    r = log2_rmse_regions(hdr * 7.0, hdr, ldr[0])
    assert r["log2_rmse_clipped"] < 1e-6 and r["log2_rmse_exposed"] < 1e-6, "any global scale is free"
    wrong = hdr.clone()
    wrong[:, torch.from_numpy(clipped)] *= 4.0
    r = log2_rmse_regions(wrong * 0.1, hdr, ldr[0])
    assert r["log2_rmse_clipped"] == pytest.approx(2.0, abs=1e-6), "two stops too bright where it clipped"
    assert r["log2_rmse_exposed"] < 1e-6, "the scale is fitted on the well-exposed pixels only"
    r_all = log2_rmse_regions(wrong, hdr, ldr[0], fit="all")
    assert 0 < r_all["log2_rmse_exposed"] and r_all["log2_rmse_clipped"] < 2.0
    dark = torch.full_like(ldr[0], 0.5)
    assert math.isnan(log2_rmse_regions(hdr, hdr, dark)["log2_rmse_clipped"])
    assert math.isnan(log2_rmse_regions(torch.zeros_like(hdr), hdr, ldr[0])["log2_rmse_exposed"])
    with pytest.raises(HdrkitError, match="fit"):
        log2_rmse_regions(hdr, hdr, ldr[0], fit="clipped")
    with pytest.raises(HdrkitError, match="ldr is"):
        log2_rmse_regions(hdr, hdr, ldr[0, :, :10])


def test_eval_scores_single_image_methods_over_clipped_and_well_exposed_pixels(tmp_path):
    from hdrkit.data import PairsDataset, synthesize_dataset
    from hdrkit.evaluate import evaluate

    synthesize_dataset(None, tmp_path / "pairs", n_scenes=2, seed=1, crop_size=(48, 64), single_image=True)
    res = evaluate(tmp_path / "pairs", ["single_linearize", "landis2002"], tmp_path / "o", progress=False, thumb_width=32)
    assert res["metadata"]["layout"] == "pairs"
    assert {"log2_rmse_clipped", "log2_rmse_exposed"} <= set(res["metadata"]["lower_is_better"])
    pair = PairsDataset(tmp_path / "pairs" / "Test" / "pairs")[0]
    for name in ("single_linearize", "landis2002"):
        info = res["methods"][name]
        assert {"log2_rmse_clipped", "log2_rmse_exposed"} <= set(info["metrics"])
        want = log2_rmse_regions(run_method(name, pair.ldr[None, None], torch.ones(1, 1), 0,
                                            response=GammaResponse(2.2))[0], pair.hdr, pair.ldr)
        got = info["scenes"][pair.name]
        assert got["log2_rmse_clipped"] == pytest.approx(want["log2_rmse_clipped"], rel=1e-6)
        assert got["log2_rmse_exposed"] == pytest.approx(want["log2_rmse_exposed"], rel=1e-6)
    assert "log2_rmse_clipped" in (tmp_path / "o" / "results.md").read_text()
