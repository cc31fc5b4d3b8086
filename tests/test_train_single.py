"""Training a single-image network on synthesized single-exposure LDR/HDR pairs (``hdrkit.train``)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from hdrkit.errors import HdrkitError
from hdrkit.methods import METHODS, MethodCard, _learned, get_method
from hdrkit.models import MODELS, MergeNet
from hdrkit.train import build_scenes, fit, load_config


class ToySingleNet(MergeNet):
    """Test-only single-image network: linearize with gamma 2.2, then a learned per-pixel log gain."""

    frames = 1
    context = 1

    def __init__(self):
        super().__init__()
        self.gain = nn.Conv2d(3, 1, 3, padding=1)

    def refine(self, ldr, exposure_times, reference, **priors):
        x = ldr[:, 0]
        return x.clamp(0, 1) ** 2.2 * torch.exp(self.gain(x))


@pytest.fixture
def toy(monkeypatch):
    get_method("single_linearize")  # registers the learned cards first
    monkeypatch.setitem(MODELS, "toy_single", ToySingleNet)
    monkeypatch.setitem(METHODS, "toy_single", MethodCard("toy_single", "single", "radiance", (1, 1), "test", "toy",
                                                          _learned("toy_single"), learned=True))
    return "toy_single"


def _config(tmp_path: Path, model: str, model_options: dict | None = None, **data) -> Path:
    raw = {"model": model, "model_options": model_options or {}, "out_dir": str(tmp_path / "run"), "steps": 2, "batch_size": 2, "lr": 1e-3,
           "warmup_steps": 1, "log_every": 1, "val_every": 0, "checkpoint_minutes": 0.0, "loss": "log_l1",
           "data": {"source": "procedural", "cache_dir": str(tmp_path / "cache"), "crop": 64, "patch": 32,
                    "clip": [0.02, 0.1], "groups": [{"scenes": 2, "response": "gamma", "bits": 8}], **data}}
    p = tmp_path / "single.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


def test_pairs_are_single_exposures_with_highlights_above_one(tmp_path, toy):
    cfg = load_config(_config(tmp_path, toy))
    scenes = build_scenes(cfg, ToySingleNet())
    assert len(scenes) == 2
    for s in scenes:
        assert s.ldr.shape == (1, 3, 64, 64) and s.exposure_times.tolist() == [1.0] and s.reference == 0
        clipped = s.ldr[0].amax(0) >= 1
        assert 0.005 < float(clipped.float().mean()) < 0.2, "the exposure clips about data.clip of the pixels"
        assert float(s.hdr.amax(0)[clipped].min()) >= 0.99, "clipped codes are radiance at or above saturation"
        assert float(s.hdr.max()) > 1.05, "the target keeps the radiance above the clip level"
        lin = s.ldr[0] ** 2.2
        ok = (s.ldr[0].amax(0) < 0.9) & (s.ldr[0].amin(0) > 0.1)
        rel = ((lin - s.hdr).abs() / s.hdr.clamp_min(1e-6))[:, ok]
        assert float(rel.median()) < 0.02, "target in the units of the exposure: the inverse response gives it back"


def test_single_image_network_trains_two_steps(tmp_path, toy):
    cfg = load_config(_config(tmp_path, toy))
    last = fit(cfg, progress=False)
    assert last["step"] == 2 and torch.isfinite(torch.tensor(last["loss"]))
    with open(Path(cfg.out_dir) / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows] == ["1", "2"]
    assert "val_log2_rmse_clipped" in rows[0]


def test_single_image_config_errors(tmp_path, toy):
    cfg = load_config(_config(tmp_path, toy), loss="mu_l1")
    with pytest.raises(HdrkitError, match="single-image network.*log_l1"):
        fit(cfg, progress=False)
    cfg = load_config(_config(tmp_path, toy, groups=[{"scenes": 1, "bits": 16}]))
    with pytest.raises(HdrkitError, match=r"groups\[0\].*bits: 8"):
        fit(cfg, progress=False)


def test_validation_on_validation_split_pairs(tmp_path, toy, data_dir):
    p = _config(tmp_path, toy, source="training", hdr_root=str(data_dir / "hdr"), val_scenes=2, val_crop=96,
                groups=[{"scenes": 2, "response": "dorf", "bits": 8, "noise": True, "jpeg_quality": 90}])
    cfg = load_config(p, val_every=2)
    last = fit(cfg, progress=False)
    val = last["val"]
    assert set(val) == {"log2_rmse_clipped", "log2_rmse_exposed"}
    assert 0 < val["log2_rmse_exposed"] < val["log2_rmse_clipped"] < 10


def test_singlehdr_trains_on_pairs_with_their_true_inverse_response(tmp_path):
    """SingleHDR's stages need each pair's true inverse response: train.py rebuilds it from the pairs' meta.json
    (gamma 2.2 here: z ** 2.2), keeps it whole in patches and permutes it with the colours."""
    from hdrkit.data.patches import PatchDataset
    from hdrkit.models.singlehdr2020 import SingleHDR

    p = _config(tmp_path, "singlehdr", model_options={"stage": "linearization"})
    cfg = load_config(p)
    scenes = build_scenes(cfg, SingleHDR(stage="linearization"))
    z = torch.linspace(0, 1, 1024, dtype=torch.float64)
    for s in scenes:
        g = torch.as_tensor(s.priors["inverse_response"])
        assert g.shape == (3, 1024) and torch.allclose(g.double(), (z ** 2.2).expand(3, -1), atol=1e-6)
    scenes[0].priors["inverse_response"] = torch.stack([z * 0 + 0.1, z * 0 + 0.2, z * 0 + 0.3]).float().numpy()
    items = [PatchDataset(scenes, 32, augment=True, seed=s)[0] for s in range(12)]
    firsts = {tuple(round(float(v), 3) for v in it["priors"]["inverse_response"][:, 0]) for it in items}
    assert firsts <= {perm for perm in __import__("itertools").permutations((0.1, 0.2, 0.3))} and len(firsts) > 1
    last = fit(cfg, progress=False)
    assert last["step"] == 2 and torch.isfinite(torch.tensor(last["loss"]))


def test_responses_rebuild_from_their_descriptions(data_dir):
    import numpy as np

    from hdrkit.data.synthetic import response_from_info, sample_response

    crf = data_dir / "crf"
    z = torch.linspace(0, 1, 9, dtype=torch.float64).view(1, 1, -1, 1).expand(1, 3, -1, 1)
    for family in ("gamma", "srgb", "dorf", "emor"):
        resp, info = sample_response(family, np.random.default_rng(3), crf / "dorf_public_151.npz", crf / "emor.txt")
        again = response_from_info(info, crf / "dorf_public_151.npz", crf / "emor.txt")
        assert torch.allclose(resp.inverse(z).double(), again.inverse(z).double(), atol=1e-7), family
    with pytest.raises(HdrkitError, match="needs its source file"):
        response_from_info({"family": "dorf", "index": 3})
