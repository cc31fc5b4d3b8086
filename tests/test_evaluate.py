import json
import re
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from hdrkit.camera.exposure import expose
from hdrkit.camera.response import GammaResponse
from hdrkit.errors import HdrkitError
from hdrkit.evaluate import DEFAULT_METRICS, SCALE_INVARIANT_METRICS, SINGLE_IMAGE_METRICS, evaluate
from hdrkit.io import BracketBatch
from hdrkit.io.hdr import write_radiance
from hdrkit.methods import METHODS, MethodCard, all_methods, get_method, run_method
from hdrkit.report import colorize, default_file_mode, format_value, markdown_table, render_html, render_markdown

EV = (0.0, 2.0, 4.0)


def _smooth_radiance(seed: int, h: int, w: int) -> torch.Tensor:
    """A smooth colourful radiance map in units of the shortest exposure: peak ~1.5 (a few pixels clip at t=1)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, 6, 8, generator=g)
    x = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False).clamp(0.02, 1)
    return (x**3 * 1.5)[0]


def make_kalantari(root: Path, n_scenes: int = 2, h: int = 40, w: int = 56) -> Path:
    """Kalantari 2017 layout: Test/<scene>/{*.tif 16-bit gamma 2.2, exposure.txt (stops), HDRImg.hdr}."""
    for s in range(n_scenes):
        d = root / "Test" / f"scene_{s:03d}"
        d.mkdir(parents=True)
        hdr = _smooth_radiance(s, h, w)
        times = torch.tensor([[2.0**e for e in EV]])
        ldr = expose(hdr[None], times, GammaResponse(2.2), bits=16)[0]
        for k in range(len(EV)):
            codes = (ldr[k].permute(1, 2, 0).numpy() * 65535 + 0.5).astype(np.uint16)
            tifffile.imwrite(d / f"frame_{k}.tif", codes, photometric="rgb")
        (d / "exposure.txt").write_text("".join(f"{e:g}\n" for e in EV))
        write_radiance(d / "HDRImg.hdr", hdr.permute(1, 2, 0).numpy())
    return root


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_kalantari(tmp_path_factory.mktemp("kalantari"))


def _a_merge_method() -> str:
    hdr_methods = [n for n, c in all_methods().items() if c.kind == "merge" and c.output == "radiance" and not c.learned]
    if not hdr_methods:
        pytest.skip("no classical radiance merge method registered yet")
    return "debevec" if "debevec" in hdr_methods else hdr_methods[0]


@pytest.fixture(scope="module")
def report(dataset, tmp_path_factory):
    methods = [_a_merge_method(), "single_linearize"]
    out = tmp_path_factory.mktemp("report") / "out"
    res = evaluate(dataset, methods, out, split="Test", progress=False, thumb_width=32)
    return methods, out, res


def test_results_json_structure(report):
    methods, out, res = report
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk == res
    assert res["scenes"] == ["scene_000", "scene_001"]
    assert list(res["methods"]) == methods
    assert set(res["metadata"]) >= {"hdrkit_version", "date", "machine", "split", "response", "align"}
    assert "Kalantari" in res["protocol"]
    for name, info in res["methods"].items():
        assert info["metrics"][: len(DEFAULT_METRICS)] == list(DEFAULT_METRICS)
        assert set(info["scenes"]) == set(res["scenes"])
        for rec in info["scenes"].values():
            assert set(rec) == set(info["metrics"]) | {"seconds"}
            assert rec["seconds"] >= 0
        for k in info["metrics"] + ["seconds"]:
            vals = [r[k] for r in info["scenes"].values()]
            assert info["aggregate"][k] == pytest.approx(sum(vals) / len(vals))
    single = res["methods"]["single_linearize"]
    assert single["kind"] == "single" and single["output"] == "radiance"
    merge_info = res["methods"][methods[0]]
    assert merge_info["kind"] == "merge" and merge_info["output"] == "radiance" and merge_info["learned"] is False
    for name, info in res["methods"].items():  # the registry's card, as recorded
        card = get_method(name)
        assert info["paper"] == card.paper and info["summary"] == card.summary
        assert info["frames"] == list(card.frames) and info["learned"] == card.learned
    from hdrkit.metrics import METRICS

    assert [m for m in SCALE_INVARIANT_METRICS if m in METRICS] + list(SINGLE_IMAGE_METRICS) == single["metrics"][len(DEFAULT_METRICS):]


def test_metric_values_equal_direct_calls(report, dataset):
    from hdrkit.data import KalantariDataset
    from hdrkit.metrics import compute_metrics

    methods, _, res = report
    ds = KalantariDataset(dataset, split="Test")
    scene = ds[1]
    ldr = torch.as_tensor(scene.ldr, dtype=torch.float32)
    t = torch.as_tensor(scene.exposure_times, dtype=torch.float32)
    t = t / t.min()
    gt = torch.as_tensor(scene.hdr, dtype=torch.float32)
    merged = run_method(methods[0], ldr[None], t[None], 1, response=GammaResponse(2.2), bits=16)[0]
    expected = compute_metrics(merged, gt, list(DEFAULT_METRICS))
    got = res["methods"][methods[0]]["scenes"][scene.name]
    for k in DEFAULT_METRICS:
        assert got[k] == pytest.approx(float(expected[k]), rel=1e-6, abs=1e-9), k
    single = (ldr[1] ** 2.2) / t[1]
    expected = compute_metrics(single, gt, list(DEFAULT_METRICS))
    got = res["methods"]["single_linearize"]["scenes"][scene.name]
    for k in DEFAULT_METRICS:
        assert got[k] == pytest.approx(float(expected[k]), rel=1e-6, abs=1e-9), k
    # a static 16-bit bracket merges almost exactly; one middle frame loses its clipped highlights and noise floor
    assert res["methods"][methods[0]]["aggregate"]["psnr_mu"] > res["methods"]["single_linearize"]["aggregate"]["psnr_mu"]


def test_markdown_lists_every_method_and_scene(report):
    methods, out, res = report
    md = (out / "results.md").read_text()
    agg = md.split("## Per scene")[0]
    for m in methods:
        assert re.search(rf"^\| {re.escape(m)} \|", agg, re.M), m
    per_scene = md.split("## Per scene")[1]
    for s in res["scenes"]:
        for m in methods:
            assert f"| {s} | {m} |" in per_scene


def test_html_contact_sheet_images_exist(report):
    methods, out, res = report
    page = (out / "index.html").read_text()
    srcs = re.findall(r'<img src="([^"]+)"', page)
    # per scene: 3 inputs + ground truth + (output + error map) per method
    assert len(srcs) == len(res["scenes"]) * (len(EV) + 1 + 2 * len(methods))
    for src in srcs:
        assert not src.startswith(("/", "file:")), "links must be relative"
        png = out / src
        assert png.is_file(), src
        with Image.open(png) as im:
            assert im.format == "PNG" and im.width <= 32
    for m in methods:
        assert f"<b>{m}</b>" in page
    assert not list(out.glob("**/.*.tmp*")), "temporary files left behind"
    for f in [out / "index.html", out / "results.json", out / srcs[0]]:
        assert f.stat().st_mode & 0o777 == default_file_mode(), f"{f.name}: not the permissions of a new file"


def test_single_linearize_is_inverse_gamma_over_exposure():
    frame = torch.tensor([0.0, 0.5, 1.0]).view(3, 1, 1)
    ldr = torch.stack([frame * 0.25, frame])[None]  # (1, 2, 3, 1, 1): the reference is the longer frame
    out = run_method("single_linearize", ldr, torch.tensor([[1.0, 4.0]]), torch.tensor([1]))
    assert torch.allclose(out.flatten(), torch.tensor([0.0, 0.5**2.2 / 4, 0.25]))


def test_unknown_method_lists_known_names(dataset, tmp_path):
    with pytest.raises(HdrkitError, match="single_linearize") as e:
        evaluate(dataset, ["no_such_method"], tmp_path / "o", progress=False)
    assert "no_such_method" in str(e.value)
    assert not (tmp_path / "o").exists(), "nothing written before the method check"
    assert get_method("single_linearize").kind == "single"
    with pytest.raises(HdrkitError, match="unknown method"):  # names resolve only through the registry
        evaluate(dataset, ["single:single_linearize"], tmp_path / "o", progress=False)
    with pytest.raises(HdrkitError, match="twice"):
        evaluate(dataset, ["single_linearize", "single_linearize"], tmp_path / "o", progress=False)
    with pytest.raises(HdrkitError, match="not evaluated"):
        evaluate(dataset, ["single_linearize"], tmp_path / "o", progress=False, method_options={"debevec": {}})
    assert not (tmp_path / "o").exists()


def test_unknown_metric_and_missing_folder(dataset, tmp_path):
    with pytest.raises(HdrkitError, match="psnr_mu"):
        evaluate(dataset, ["single_linearize"], tmp_path / "o", metrics=["psnr_banana"], progress=False)
    with pytest.raises(HdrkitError, match="not found"):
        evaluate(tmp_path / "missing", ["single_linearize"], tmp_path / "o", progress=False)


def test_display_output_methods_are_marked_na(dataset, tmp_path):
    display_methods = [n for n, c in all_methods().items() if c.output == "display"]
    if not display_methods:
        pytest.skip("no display-referred method registered")
    name = display_methods[0]
    res = evaluate(dataset, [_a_merge_method(), name], tmp_path / "o", split="Test", max_scenes=1, progress=False,
                   thumb_width=32)
    info = res["methods"][name]
    assert info["metrics"] == [] and "n/a" in info["note"] and info["output"] == "display"
    assert info["kind"] == get_method(name).kind
    assert set(info["scenes"]["scene_000"]) == {"seconds"}
    assert res["images"]["scene_000"]["outputs"][name]["error"] is None
    assert (tmp_path / "o" / res["images"]["scene_000"]["outputs"][name]["src"]).is_file()
    row = next(line for line in (tmp_path / "o" / "results.md").read_text().splitlines() if line.startswith(f"| {name} |"))
    assert row.count("n/a") == len(DEFAULT_METRICS)


def test_max_scenes_and_default_split(dataset, tmp_path):
    res = evaluate(dataset, ["single_linearize"], tmp_path / "o", max_scenes=1, progress=False, thumb_width=32)
    assert res["scenes"] == ["scene_000"]
    assert res["metadata"]["split"] == "Test"  # None picks the Test folder
    info = res["scene_info"]["scene_000"]
    assert info["exposure_times"] == [1.0, 4.0, 16.0] and info["reference"] == 1 and info["bits"] == 16


def test_scene_response_from_synthetic_metadata(tmp_path):
    from hdrkit.camera.response import SRGBResponse
    from hdrkit.data import KalantariDataset, synthesize_dataset
    from hdrkit.metrics import compute_metrics

    synthesize_dataset(None, tmp_path / "d", n_scenes=1, seed=3, crop_size=(48, 64), response_family="srgb", bits=8,
                       fmt="png")
    method = _a_merge_method()
    res = evaluate(tmp_path / "d", [method], tmp_path / "o", response="scene", progress=False, thumb_width=32)
    scene = KalantariDataset(tmp_path / "d", split="Test")[0]
    t = scene.exposure_times / scene.exposure_times.min()
    direct = run_method(method, scene.ldr[None], t[None], scene.reference, response=SRGBResponse(), bits=8)[0]
    expected = compute_metrics(direct, scene.hdr, ["psnr_mu"])["psnr_mu"]
    assert res["methods"][method]["scenes"][scene.name]["psnr_mu"] == pytest.approx(float(expected), rel=1e-6)
    with pytest.raises(HdrkitError, match="response"):
        evaluate(tmp_path / "d", [method], tmp_path / "o2", response="banana", progress=False)


def test_scene_response_missing_is_an_error(dataset, tmp_path):
    with pytest.raises(HdrkitError, match="no stored camera response"):
        evaluate(dataset, [_a_merge_method()], tmp_path / "o", response="scene", progress=False)


def _toy_results() -> dict:
    return {
        "metadata": {"dataset": "toy <set>", "split": None, "response": "gamma", "align": "none",
                     "hdrkit_version": "0", "date": "today", "machine": "m"},
        "protocol": "p & q",
        "scenes": ["s<1>"],
        "methods": {
            "a|b": {"kind": "merge", "output": "hdr", "summary": "<script>alert(1)</script>", "note": "",
                    "metrics": ["psnr_mu", "log_rmse_scale_invariant"],
                    "aggregate": {"psnr_mu": 30.0, "log_rmse_scale_invariant": 0.5, "seconds": 1.0},
                    "scenes": {"s<1>": {"psnr_mu": 30.0, "log_rmse_scale_invariant": 0.5, "seconds": 1.0}}},
            "c": {"kind": "merge", "output": "hdr", "summary": "", "note": "",
                  "metrics": ["psnr_mu", "log_rmse_scale_invariant"],
                  "aggregate": {"psnr_mu": 40.0, "log_rmse_scale_invariant": 0.7, "seconds": None},
                  "scenes": {"s<1>": {"psnr_mu": 40.0, "log_rmse_scale_invariant": 0.7, "seconds": None}}},
        },
        "images": {"s<1>": {"inputs": [{"src": "img/x\".png", "caption": "t = 1"}], "gt": None,
                            "outputs": {"c": {"src": "img/c.png", "error": None}}}},
    }


def test_html_is_escaped_and_marks_best():
    page = render_html(_toy_results())
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert "toy &lt;set&gt;" in page and 'src="img/x&quot;.png"' in page
    assert '<td class="best">40.00</td>' in page  # higher PSNR is better
    assert '<td class="best">0.50</td>' in page  # lower error is better
    assert "http" not in page.replace("http-equiv", ""), "self-contained: no external resources"


def test_markdown_escapes_pipes_and_bolds_best():
    md = render_markdown(_toy_results())
    assert "| a\\|b | merge | 30.00 | **0.50** | 1.000 |" in md
    assert "| c | merge | **40.00** | 0.70 | n/a |" in md
    assert markdown_table(["x", "y"], [["1", "2"]]) == "| x | y |\n|:---|---:|\n| 1 | 2 |\n"
    assert [format_value(v) for v in (None, float("nan"), float("inf"), 1.234)] == ["n/a", "n/a", "inf", "1.23"]


def test_colorize_fixed_scale():
    rgb = colorize(np.array([[0.0, 0.05, 0.1, 5.0]]), vmax=0.1)
    assert rgb.shape == (1, 4, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0].tolist() == [0, 0, 4] and rgb[0, 2].tolist() == [252, 255, 164]
    assert rgb[0, 3].tolist() == rgb[0, 2].tolist()  # clipped at full scale
    lum = rgb[0].astype(float) @ [0.2126, 0.7152, 0.0722]
    assert lum[0] < lum[1] < lum[2]


def test_splits_are_disjoint_and_exist(data_dir):
    from hdrkit.data.splits import TRAINING_HDR, VALIDATION_HDR, split_paths

    assert not set(TRAINING_HDR) & set(VALIDATION_HDR)
    stems = lambda names: {Path(n).stem for n in names}  # noqa: E731
    assert not stems(TRAINING_HDR) & stems(VALIDATION_HDR)
    found = {p.relative_to(data_dir / "hdr").as_posix() for p in (data_dir / "hdr").rglob("*") if p.suffix in (".hdr", ".exr")}
    assert found == set(TRAINING_HDR) | set(VALIDATION_HDR), "every shared radiance map is in exactly one split"
    assert len(split_paths(data_dir / "hdr", "validation")) == len(VALIDATION_HDR)
    with pytest.raises(HdrkitError):
        split_paths(data_dir / "hdr", "test")


def test_single_image_pairs_and_missing_ground_truth(tmp_path):
    from hdrkit.data import synthesize_dataset

    synthesize_dataset(None, tmp_path / "pairs", n_scenes=2, seed=1, crop_size=(48, 64), single_image=True)
    res = evaluate(tmp_path / "pairs", ["single_linearize"], tmp_path / "o", progress=False, thumb_width=32)
    assert res["metadata"]["layout"] == "pairs" and len(res["scenes"]) == 2
    assert all(v is not None for v in res["methods"]["single_linearize"]["aggregate"].values())
    with pytest.raises(HdrkitError, match="brackets"):
        evaluate(tmp_path / "pairs", [_a_merge_method()], tmp_path / "o2", progress=False)


def test_scene_without_ground_truth_is_na(dataset, tmp_path):
    import shutil

    shutil.copytree(dataset / "Test" / "scene_000", tmp_path / "d" / "Test" / "nogt")
    (tmp_path / "d" / "Test" / "nogt" / "HDRImg.hdr").unlink()
    res = evaluate(tmp_path / "d", ["single_linearize"], tmp_path / "o", progress=False, thumb_width=32)
    rec = res["methods"]["single_linearize"]["scenes"]["nogt"]
    assert rec["psnr_mu"] is None and rec["seconds"] is not None
    assert res["images"]["nogt"]["gt"] is None and res["images"]["nogt"]["outputs"]["single_linearize"]["error"] is None
    assert "n/a" in (tmp_path / "o" / "results.md").read_text()


def test_saved_outputs_rescored_by_the_independent_protocol_script(tmp_path):
    """``save_outputs`` files, rescored by tests/reference/protocol_reference.py (no hdrkit code), give our numbers.

    The reference script does not clip PSNR inputs, so ground truth and outputs are kept within [0, 1] here.
    """
    import importlib.util
    import sys

    pytest.importorskip("skimage")
    spec = importlib.util.spec_from_file_location(
        "protocol_reference", Path(__file__).parent / "reference" / "protocol_reference.py")
    ref = importlib.util.module_from_spec(spec)
    sys.modules["protocol_reference"] = ref
    spec.loader.exec_module(ref)
    for s in range(2):
        d = tmp_path / "d" / "Test" / f"s{s}"
        d.mkdir(parents=True)
        hdr = _smooth_radiance(10 + s, 40, 56) * 0.6  # peak ~0.9
        ldr = expose(hdr[None], torch.tensor([[1.0, 4.0, 16.0]]), GammaResponse(2.2), bits=16)[0]
        for k in range(3):
            tifffile.imwrite(d / f"f{k}.tif", (ldr[k].permute(1, 2, 0).numpy() * 65535 + 0.5).astype(np.uint16))
        (d / "exposure.txt").write_text("0\n2\n4\n")
        write_radiance(d / "HDRImg.hdr", hdr.permute(1, 2, 0).numpy())
    method = _a_merge_method()
    res = evaluate(tmp_path / "d", [method, "single_linearize"], tmp_path / "o", progress=False, thumb_width=32,
                   save_outputs=True)
    for name in (method, "single_linearize"):
        assert res["images"]["s0"]["outputs"][name]["file"] == f"outputs/{name}/s0.exr"
        rows, avg = ref.evaluate_dirs(tmp_path / "d" / "Test", tmp_path / "o" / "outputs" / name, "{scene}.exr")
        for k, v in avg.items():
            assert res["methods"][name]["aggregate"][k] == pytest.approx(v, rel=1e-5, abs=1e-5), (name, k)


def _mean_of_frames(ldr, t, ref):
    return (ldr**2.2 / t[..., None, None, None]).mean(dim=1)


def test_registered_methods_run_through_the_registry(dataset, tmp_path, monkeypatch):
    """Temporary cards in ``hdrkit.methods.METHODS``: evaluate finds them by name, builds each once, runs them."""
    builds, seen = [], []

    def build_mean(**options):
        builds.append(("mean_net", options))

        def runner(ldr, t, ref, response=None, bits=None):
            seen.append((tuple(ldr.shape), tuple(t.shape), ref.dtype, tuple(ref.shape), bits))
            return _mean_of_frames(ldr, t, ref) * options.get("scale", 1.0)

        return runner

    def build_single(**options):
        builds.append(("single_net", options))
        return lambda ldr, t, ref, response=None, bits=None: _mean_of_frames(ldr, t, ref)

    monkeypatch.setitem(METHODS, "mean_net", MethodCard(
        "mean_net", "merge", "radiance", (2, None), "test", "toy bracket model: mean of the linearized frames", build_mean))
    monkeypatch.setitem(METHODS, "single_net", MethodCard(
        "single_net", "single", "radiance", (1, 1), "test", "toy single-image model", build_single, learned=True))
    res = evaluate(dataset, ["mean_net", "single_net", "single_linearize"], tmp_path / "o", max_scenes=2,
                   progress=False, thumb_width=32, method_options={"mean_net": {"scale": 1.0}})
    assert builds == [("mean_net", {"scale": 1.0}), ("single_net", {})], "each runner built once per evaluation"
    assert seen == [((1, 3, 3, 40, 56), (1, 3), torch.int64, (1,), 16)] * 2, "canonical batched inputs"
    info = res["methods"]["mean_net"]
    assert info["kind"] == "merge" and info["output"] == "radiance" and info["options"] == {"scale": 1.0}
    assert info["summary"] == "toy bracket model: mean of the linearized frames" and info["frames"] == [2, None]
    single, base = res["methods"]["single_net"], res["methods"]["single_linearize"]
    assert single["kind"] == "single" and single["learned"] is True
    assert single["metrics"] == base["metrics"]
    # one frame averaged is the single-image baseline itself
    for scene in res["scenes"]:
        assert single["scenes"][scene]["psnr_mu"] == pytest.approx(base["scenes"][scene]["psnr_mu"], rel=1e-6)


def test_learned_method_with_weights_file(dataset, tmp_path):
    """A learned card built with ``weights=`` (no packaged weights are shipped yet) and build options."""
    from hdrkit.models import MODELS
    from hdrkit.models.weights import save_weights

    card = get_method("ahdrnet")
    if not card.weights_available:
        with pytest.raises(HdrkitError):
            evaluate(dataset, ["ahdrnet"], tmp_path / "none", progress=False)
        assert not (tmp_path / "none").exists(), "nothing written before the runner is built"
    torch.manual_seed(0)
    weights = tmp_path / "ahdrnet.safetensors"
    save_weights(MODELS["ahdrnet"](), weights)
    res = evaluate(dataset, ["ahdrnet"], tmp_path / "o", max_scenes=1, progress=False, thumb_width=32,
                   method_options={"ahdrnet": {"weights": weights, "dtype": "fp32", "device": "cpu"}})
    info = res["methods"]["ahdrnet"]
    assert info["learned"] is True and info["kind"] == "merge" and info["frames"] == [3, 3]
    assert info["options"] == {"weights": str(weights), "dtype": "fp32", "device": "cpu"}
    assert info["scenes"]["scene_000"]["seconds"] > 0 and set(info["scenes"]["scene_000"]) >= set(DEFAULT_METRICS)


def test_bracket_batch_normalizes_once_and_validates():
    ldr = torch.rand(3, 3, 4, 5)
    b = BracketBatch.from_frames(ldr, [0.5, 2.0, 8.0], bits=8)
    assert b.ldr.shape == (1, 3, 3, 4, 5) and b.exposure_times.tolist() == [[1.0, 4.0, 16.0]]
    assert b.reference.dtype == torch.int64 and b.reference.tolist() == [1]  # default: the middle frame
    assert b.replace(bits=16).exposure_times.tolist() == [[1.0, 4.0, 16.0]]  # normalizing again is a no-op
    bb = BracketBatch.from_frames(torch.rand(2, 2, 3, 4, 5), torch.tensor([[2.0, 4.0], [1.0, 3.0]]), 0)
    assert bb.reference.tolist() == [0, 0] and bb.exposure_times.tolist() == [[1.0, 2.0], [1.0, 3.0]]
    assert bb.reference_frames().shape == (2, 3, 4, 5)
    with pytest.raises(HdrkitError, match="exposure_times"):
        BracketBatch.from_frames(ldr, [1.0, 2.0])
    with pytest.raises(HdrkitError, match="positive"):
        BracketBatch.from_frames(ldr, [1.0, 0.0, 2.0])
    with pytest.raises(HdrkitError, match="reference"):
        BracketBatch.from_frames(ldr, [1.0, 2.0, 4.0], 3)
    with pytest.raises(HdrkitError, match="shape"):
        BracketBatch.from_frames(torch.rand(3, 4, 5), [1.0])
    with pytest.raises(HdrkitError, match="float"):
        BracketBatch.from_frames(torch.zeros(3, 3, 4, 5, dtype=torch.uint8), [1.0, 2.0, 4.0])
    with pytest.raises(AttributeError):
        b.bits = 16  # frozen
