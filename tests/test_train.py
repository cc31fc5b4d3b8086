"""Training: typed configs, a tiny run, resuming after a kill, and data-parallel torchrun."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from hdrkit.errors import HdrkitError
from hdrkit.train import export_weights, fit, load_config

ROOT = Path(__file__).resolve().parents[1]


def _config(tmp_path: Path, name: str = "run", **top) -> Path:
    raw = yaml.safe_load((ROOT / "configs" / "tiny.yaml").read_text())
    raw["out_dir"] = str(tmp_path / name)
    raw["data"]["cache_dir"] = str(tmp_path / "cache")
    raw.update(top)
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


def _losses(out_dir: Path) -> list[tuple[int, float]]:
    with open(out_dir / "log.csv") as f:
        return [(int(r["step"]), float(r["loss"])) for r in csv.DictReader(f) if r["loss"]]


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    env.pop("WORLD_SIZE", None)
    return env


def test_config_rejects_unknown_keys(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("model: deghost_refine\nout_dir: x\nlearning_rate: 0.1\n")
    with pytest.raises(HdrkitError, match="unknown key.*learning_rate"):
        load_config(p)
    p.write_text("model: deghost_refine\nout_dir: x\ndata: {crop: 64, colour: 1}\n")
    with pytest.raises(HdrkitError, match=r"\.data: unknown key.*colour"):
        load_config(p)
    p.write_text("model: deghost_refine\nout_dir: x\ndata: {groups: [{scenes: 2, speed: 3}]}\n")
    with pytest.raises(HdrkitError, match=r"groups\[0\]: unknown key.*speed"):
        load_config(p)
    p.write_text("out_dir: x\n")
    with pytest.raises(HdrkitError, match="missing required key 'model'"):
        load_config(p)
    cfg = load_config(ROOT / "configs" / "tiny.yaml")
    assert cfg.data.groups[0].object_motion_px == (5.0, 15.0)


@pytest.mark.parametrize("name", sorted(p.stem for p in (ROOT / "configs").glob("*.yaml")))
def test_shipped_configs_load(name):
    cfg = load_config(ROOT / "configs" / f"{name}.yaml")
    assert cfg.steps > 0 and cfg.model


def test_tiny_fit_logs_checkpoints_and_exports(tmp_path):
    cfg = load_config(_config(tmp_path))
    last = fit(cfg, progress=False)
    assert last["step"] == cfg.steps and torch.isfinite(torch.tensor(last["loss"]))
    out = Path(cfg.out_dir)
    assert [s for s, _ in _losses(out)] == [2, 4, 6]
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["step"] == cfg.steps
    digest = export_weights(out / "checkpoint.pt", tmp_path / "w.safetensors")
    from hdrkit.models import create_model

    create_model(cfg.model, pretrained=False, weights=tmp_path / "w.safetensors")
    assert len(digest) == 64


def test_killed_run_resumes_from_its_checkpoint(tmp_path):
    """Kill ``hdrkit train`` mid-run, start it again: it continues from the checkpoint and ends where an
    uninterrupted run ends."""
    steps = 40
    cfg_path = _config(tmp_path, "killed", steps=steps, checkpoint_minutes=0.0, log_every=1)
    cmd = [sys.executable, "-m", "hdrkit.cli", "train", str(cfg_path), "--threads", "1"]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    ckpt = tmp_path / "killed" / "checkpoint.pt"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if ckpt.is_file():
            try:
                if torch.load(ckpt, weights_only=True)["step"] >= 5:
                    break
            except (RuntimeError, EOFError, OSError):
                pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = torch.load(ckpt, weights_only=True)["step"]
    assert 5 <= killed_at < steps, "the run finished before it could be killed; make it longer"
    subprocess.run(cmd, env=_env(), check=True, capture_output=True, cwd=tmp_path, timeout=300)
    resumed = torch.load(ckpt, weights_only=True)
    assert resumed["step"] == steps
    logged = [s for s, _ in _losses(tmp_path / "killed")]
    assert logged[-1] == steps and killed_at + 1 in logged
    # the same run without interruption ends with the same weights; at the killed runs' one thread, since
    # 1- and 2-thread arithmetic differ by about the tolerance after 40 steps
    cfg = load_config(_config(tmp_path, "straight", steps=steps, checkpoint_minutes=0.0, log_every=1, threads=1))
    threads = torch.get_num_threads()
    try:
        fit(cfg, progress=False)
    finally:
        torch.set_num_threads(threads)
    straight = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=True)
    for k, v in straight["model"].items():
        assert torch.allclose(v, resumed["model"][k], atol=1e-4, rtol=1e-3), k


@pytest.mark.skipif(shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists(),
                    reason="torchrun is not installed")
def test_torchrun_two_processes_match_one(tmp_path):
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    one = load_config(_config(tmp_path, "one", log_every=1))
    fit(one, progress=False)
    cfg_two = _config(tmp_path, "two", log_every=1)
    subprocess.run([torchrun, "--nproc_per_node", "2", "--master_port", "29533", "-m", "hdrkit.cli", "train", str(cfg_two),
                    "--threads", "1"], env=_env(), check=True, capture_output=True, cwd=tmp_path, timeout=300)
    a, b = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert [s for s, _ in a] == [s for s, _ in b]
    for (_, la), (_, lb) in zip(a, b):
        assert abs(la - lb) <= 1e-4 + 1e-3 * abs(la), (a, b)


def test_two_stage_recipe_chains_runs(tmp_path):
    """Kalantari 2017 WIE: stage 'images' (its own loss), then 'joint' from it with a frozen first layer."""
    stage1 = load_config(_config(tmp_path, "images", model="kalantari2017_wie", model_options={"stage": "images"}))
    fit(stage1, progress=False)
    s1 = torch.load(Path(stage1.out_dir) / "checkpoint.pt", weights_only=True)["model"]
    stage2 = load_config(_config(tmp_path, "joint", model="kalantari2017_wie", freeze=["net.0."],
                                 init_from=str(Path(stage1.out_dir) / "checkpoint.pt")))
    fit(stage2, progress=False)
    s2 = torch.load(Path(stage2.out_dir) / "checkpoint.pt", weights_only=True)["model"]
    assert torch.equal(s1["net.0.weight"], s2["net.0.weight"])  # frozen, and started from stage 1
    assert not torch.equal(s1["net.2.weight"], s2["net.2.weight"])  # trained on


def test_multi_stage_options_fail_in_one_line(tmp_path):
    with pytest.raises(HdrkitError, match="do not fit 'deghost_refine'"):
        fit(load_config(_config(tmp_path, "a", model_options={"stage": "x"})), progress=False)
    with pytest.raises(HdrkitError, match="freeze: no parameter"):
        fit(load_config(_config(tmp_path, "b", freeze=["nothing."])), progress=False)
    with pytest.raises(HdrkitError, match="init_from: .* does not exist; train the previous stage first"):
        fit(load_config(_config(tmp_path, "c", init_from=str(tmp_path / "none.pt"))), progress=False)
