"""``hdrkit eval``: run merge methods, learned models and single-image methods over a Kalantari-layout dataset.

Protocol (Kalantari & Ramamoorthi, "Deep High Dynamic Range Imaging of Dynamic Scenes", SIGGRAPH 2017):
every output is compared as-is with the scene's ``HDRImg.hdr``, both in units of the shortest exposure
(the shortest frame has ``t = 1``), with images clipped to [0, 1] inside the metrics; PSNR and SSIM are
computed on linear values (``-l``) and after the mu-law compressor with mu = 5000 (``-mu``). Aggregates are
arithmetic means over scenes. Single-image methods get the reference (middle) frame only and are also scored
with scale-invariant metrics, since a single exposure does not fix the absolute scale.

Outputs in ``out_dir``: ``results.json`` (per method, per scene metrics and seconds; aggregates; metadata),
``results.md`` (tables), ``index.html`` (report with contact sheets) and ``img/`` (PNG thumbnails).
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hdrkit.camera.exposure import normalize_times
from hdrkit.camera.response import GammaResponse, Response, response_from_name
from hdrkit.errors import HdrkitError
from hdrkit.io.atomic import atomic_path
from hdrkit.report import colorize, default_file_mode, render_html, render_markdown, write_text
from hdrkit.tonemap.mu_law import MU, mu_law

__all__ = [
    "DEFAULT_METRICS",
    "ERROR_SCALE",
    "SCALE_INVARIANT_METRICS",
    "SINGLE_IMAGE_METHODS",
    "EvalMethod",
    "SceneInputs",
    "available_methods",
    "evaluate",
    "linearize_single_gamma",
    "resolve_method",
]

DEFAULT_METRICS = ("psnr_mu", "psnr_l", "ssim_mu", "ssim_l")
"""Kalantari & Ramamoorthi 2017 metrics: PSNR and SSIM in the mu-law and linear domains."""

SCALE_INVARIANT_METRICS = ("psnr_scale_invariant", "log_rmse_scale_invariant")
"""Added for single-image methods, whose output scale is only known up to a factor."""

ERROR_SCALE = 0.2
"""Full scale of the error maps: ``|mu(pred) - mu(gt)|`` channel mean, clipped at this value."""

THUMB_WIDTH = 480
"""Contact-sheet thumbnails are downscaled (area filter) to at most this many pixels wide."""

SINGLE_GAMMA = 2.2
"""Gamma of ``single_linearize``: the sRGB-like curve most LDR photos roughly follow."""

PROTOCOL = (
    "Kalantari & Ramamoorthi 2017 protocol: each method's output is compared as-is with the ground truth "
    "HDRImg.hdr, both linear and in units of the shortest exposure (t = 1); images are clipped to [0, 1] inside "
    "the metrics; -l metrics use linear values, -mu metrics the mu-law compressor log(1 + mu H) / log(1 + mu) with "
    f"mu = {MU:g}. Aggregates are arithmetic means over scenes. Single-image methods see only the reference "
    "(middle) frame and are also scored with scale-invariant metrics (best scale fitted per image). Methods whose "
    "output is a display-referred fusion (not radiance) are marked n/a. Seconds: wall time per scene on this "
    "machine, including alignment and response recovery for multi-frame methods, excluding file I/O and metrics."
)


@dataclass
class SceneInputs:
    """What a method sees for one scene.

    ldr: (N, 3, H, W) display-referred codes in [0, 1] (aligned to the reference frame if alignment was asked for).
    exposure_times: (N,) linear, normalized so the shortest is 1.
    reference: index of the reference frame (the frame the ground truth is registered to).
    response: camera response used by classical merges (None when only single-image methods run).
    bits: bit depth of the stored frames, or None if unknown.
    """

    ldr: torch.Tensor
    exposure_times: torch.Tensor
    reference: int
    response: Response | None
    bits: int | None = None


@dataclass(frozen=True)
class EvalMethod:
    """A method resolved by name: ``run(SceneInputs) -> (3, H, W)`` output.

    kind: ``'merge'`` (classical, ``hdrkit.merge``), ``'model'`` (learned, ``hdrkit.models``) or ``'single'``.
    output: ``'hdr'`` (linear radiance, units of the shortest exposure) or ``'ldr'`` (display-referred [0, 1]).
    """

    name: str
    kind: str
    output: str
    summary: str
    run: Callable[[SceneInputs], torch.Tensor] = field(repr=False)


def linearize_single_gamma(ldr: torch.Tensor, exposure_time: torch.Tensor | float, gamma: float = SINGLE_GAMMA) -> torch.Tensor:
    """Single-image baseline: ``ldr ** gamma / t``, no highlight reconstruction.

    Args:
        ldr: (B, 3, H, W) display-referred codes in [0, 1].
        exposure_time: (B,) or scalar linear exposure of that frame (units of the shortest exposure).
        gamma: display gamma to invert.

    Returns:
        (B, 3, H, W) linear radiance; clipped highlights stay clipped at ``1 / t``.
    """
    t = torch.as_tensor(exposure_time, dtype=ldr.dtype, device=ldr.device).reshape(-1, 1, 1, 1)
    return ldr.clamp(0, 1) ** gamma / t


SINGLE_IMAGE_METHODS: dict[str, tuple[Callable[[torch.Tensor, torch.Tensor], torch.Tensor], str]] = {
    "single_linearize": (
        linearize_single_gamma,
        f"single-image baseline: inverse gamma {SINGLE_GAMMA} of the reference frame divided by its exposure "
        "(no highlight or shadow reconstruction)",
    ),
}
"""Single-image methods: ``fn(ldr (B, 3, H, W), exposure_time (B,)) -> hdr (B, 3, H, W)`` and a summary."""


def _merge_registry() -> dict:
    try:
        from hdrkit.merge import MERGE_METHODS
    except ImportError:
        return {}
    return dict(MERGE_METHODS)


def _model_names() -> list[str]:
    try:
        import hdrkit.models as models
    except ImportError:
        return []
    for attr in ("MODELS", "MODEL_REGISTRY", "REGISTRY"):
        reg = getattr(models, attr, None)
        if isinstance(reg, dict):
            return sorted(reg)
    lister = getattr(models, "list_models", None) or getattr(models, "available_models", None)
    if callable(lister):
        return sorted(lister())
    return []


def available_methods() -> dict[str, str]:
    """Every resolvable method name -> its kind (``merge``, ``single`` or ``model``)."""
    out = {name: "merge" for name in _merge_registry()}
    out.update({name: "single" for name in SINGLE_IMAGE_METHODS})
    for name in _model_names():
        out.setdefault(name, "model")
    return out


def _merge_method(name: str, spec) -> EvalMethod:
    import inspect

    from hdrkit.merge import merge

    output = getattr(spec, "output", "hdr")
    params = inspect.signature(spec.fn).parameters if hasattr(spec, "fn") else {}

    def run(s: SceneInputs) -> torch.Tensor:
        if output == "ldr":  # exposure fusion: no response, reference or bit depth
            return merge(s.ldr[None], s.exposure_times[None], method=name)[0]
        kwargs = {"response": s.response, "reference": s.reference, "bits": s.bits}
        kwargs = {k: v for k, v in kwargs.items() if k in params and v is not None}
        return merge(s.ldr[None], s.exposure_times[None], method=name, **kwargs)[0]

    return EvalMethod(name, "merge", output, getattr(spec, "summary", ""), run)


def _model_method(name: str) -> EvalMethod:
    from hdrkit.models import create_model

    model = create_model(name)
    if hasattr(model, "eval"):
        model.eval()
    single = bool(getattr(model, "single_image", False))

    def run(s: SceneInputs) -> torch.Tensor:
        with torch.no_grad():
            if single:
                ref = s.reference
                return model(s.ldr[None, ref : ref + 1], s.exposure_times[None, ref : ref + 1])[0]
            return model(s.ldr[None], s.exposure_times[None])[0]

    summary = getattr(model, "summary", None) or (type(model).__doc__ or "").strip().split("\n")[0]
    return EvalMethod(name, "single" if single else "model", "hdr", summary, run)


def _single_method(name: str) -> EvalMethod:
    fn, summary = SINGLE_IMAGE_METHODS[name]

    def run(s: SceneInputs) -> torch.Tensor:
        ref = s.reference
        return fn(s.ldr[ref][None], s.exposure_times[ref : ref + 1])[0]

    return EvalMethod(name, "single", "hdr", summary, run)


def resolve_method(name: str) -> EvalMethod:
    """Look ``name`` up in the merge registry, then the single-image table, then ``hdrkit.models``.

    A prefix forces the table: ``merge:NAME``, ``single:NAME``, ``model:NAME``.
    """
    prefix, _, bare = name.partition(":") if ":" in name else ("", "", name)
    merges = _merge_registry()
    if prefix in ("", "merge") and bare in merges:
        return _merge_method(bare, merges[bare])
    if prefix in ("", "single") and bare in SINGLE_IMAGE_METHODS:
        return _single_method(bare)
    if prefix in ("", "model") and bare in _model_names():
        return _model_method(bare)
    if prefix == "model":  # a registry without a listing: let create_model decide
        try:
            return _model_method(bare)
        except (ImportError, KeyError, HdrkitError):
            pass
    known = ", ".join(sorted(available_methods())) or "(none registered)"
    raise HdrkitError(f"unknown method {name!r}: choose from {known} (`hdrkit methods` describes them)")


def _metric_table() -> dict:
    try:
        from hdrkit.metrics import METRICS
    except ImportError as e:
        raise HdrkitError(f"hdrkit.metrics is not available ({e}); cannot evaluate") from None
    return METRICS


def _lower_is_better(table: dict) -> set[str]:
    try:
        from hdrkit.metrics import LOWER_IS_BETTER
    except ImportError:
        LOWER_IS_BETTER = ()
    return {k for k in table if k in LOWER_IS_BETTER}


def _compute(pred: torch.Tensor, gt: torch.Tensor, names: Sequence[str]) -> dict[str, float | None]:
    from hdrkit.metrics import compute_metrics

    vals = compute_metrics(pred, gt, list(names))
    return {k: _finite(vals[k]) for k in names}


def _finite(v) -> float | None:
    v = float(v.item() if torch.is_tensor(v) else v)
    return v if math.isfinite(v) else None


def _mean(values: list) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} CPUs, "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads), Python {platform.python_version()}")


def _load_average() -> float | None:
    """1-minute system load average (other jobs on the machine inflate the timings), or None if unknown."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


def _thumbnail(img: torch.Tensor, max_width: int) -> np.ndarray:
    """(3, H, W) [0, 1] -> (h, w, 3) uint8, area-downscaled to at most ``max_width`` wide."""
    x = torch.nan_to_num(img.detach().float(), nan=0.0).clamp(0, 1)
    h, w = x.shape[-2:]
    if w > max_width:
        size = (max(1, round(h * max_width / w)), max_width)
        x = F.interpolate(x[None], size=size, mode="area")[0]
    return (x.permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)


def _save_png(array: np.ndarray, path: Path) -> None:
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG", optimize=False)
        os.chmod(tmp, default_file_mode())


def _display(hdr: torch.Tensor) -> torch.Tensor:
    """Tone mapping shared by every radiance image on the contact sheet: mu-law of the [0, 1] clip."""
    return mu_law(hdr.clamp(0, 1))


def _error_map(pred: torch.Tensor, gt: torch.Tensor, max_width: int) -> np.ndarray:
    err = (_display(pred) - _display(gt)).abs().mean(dim=0, keepdim=True)
    err = torch.nan_to_num(err, nan=ERROR_SCALE)  # NaN outputs show as full-scale error
    h, w = err.shape[-2:]
    if w > max_width:
        err = F.interpolate(err[None], size=(max(1, round(h * max_width / w)), max_width), mode="area")[0]
    return colorize(err[0].numpy(), ERROR_SCALE)


def _scene_response(scene) -> Response:
    """The response a synthetic scene was made with: its ``response.csv``, else the family in ``meta.json``."""
    from hdrkit.camera.response import load_response_table

    folder = Path(scene.paths[0]).parent if getattr(scene, "paths", None) else None
    if folder is not None and (folder / "response.csv").is_file():
        return load_response_table(folder / "response.csv")
    info = (getattr(scene, "meta", None) or {}).get("response") or {}
    family = info.get("family") if isinstance(info, dict) else None
    if family == "gamma":
        return GammaResponse(float(info.get("gamma", 2.2)))
    if family in ("srgb", "linear"):
        return response_from_name(family)
    raise HdrkitError(f"scene {scene.name}: no stored camera response (response.csv or meta.json); "
                      "use response='gamma' or 'calibrate'")


def _resolve_response(response, scene, ldr: torch.Tensor, times: torch.Tensor, bits: int | None) -> Response:
    if isinstance(response, Response):
        return response
    if response == "calibrate":
        from hdrkit.camera.debevec1997 import recover_response_debevec1997

        return recover_response_debevec1997(ldr, times, bits=bits or 8)
    if response == "scene":
        return _scene_response(scene)
    return response_from_name(response)


def _scene_bits(scene) -> int | None:
    meta = getattr(scene, "meta", None) or {}
    if isinstance(meta.get("bits"), int):
        return int(meta["bits"])
    paths = [Path(p) for p in (getattr(scene, "paths", None) or [])]
    for p in paths:
        if p.suffix.lower() in (".tif", ".tiff"):
            try:
                import tifffile

                with tifffile.TiffFile(p) as tf:
                    return int(tf.pages[0].dtype.itemsize * 8)
            except Exception:  # noqa: BLE001 - bit depth is a hint, never fatal
                return None
        if p.suffix.lower() in (".jpg", ".jpeg"):
            return 8
        if p.suffix.lower() == ".png":
            try:
                from PIL import Image

                with Image.open(p) as im:
                    return 16 if im.mode.startswith("I") else 8
            except OSError:
                return None
    return None


def _default_split(data_dir: Path, split: str | None) -> str | None:
    """None -> ``'Test'`` when ``data_dir`` has a Test folder (the evaluation split), else None (every scene)."""
    if split is not None:
        return split
    tests = [p.name for p in data_dir.iterdir() if p.is_dir() and p.name.lower() == "test"]
    return tests[0] if tests else None


@dataclass
class _PairScene:
    """A single-image LDR/HDR pair dressed as a one-frame scene (t = 1: the pair's HDR is in the frame's units)."""

    name: str
    ldr: torch.Tensor
    exposure_times: torch.Tensor
    hdr: torch.Tensor
    paths: list
    reference: int = 0
    meta: dict | None = None


class _PairsAsScenes:
    def __init__(self, pairs):
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> _PairScene:
        p = self.pairs[i]
        return _PairScene(p.name, p.ldr[None], torch.ones(1), p.hdr, [p.ldr_path])


def _load_dataset(data_dir: Path, split: str | None):
    """A Kalantari-layout dataset, or else a folder of single-image pairs (``<split>/pairs/``); returns (ds, kind)."""
    try:
        from hdrkit.data import KalantariDataset, PairsDataset
    except ImportError as e:
        raise HdrkitError(f"hdrkit.data is not available ({e}); cannot read {data_dir}") from None
    try:
        return KalantariDataset(data_dir, split=split), "brackets"
    except HdrkitError as err:
        root = data_dir
        if split is not None:
            subs = [p for p in data_dir.iterdir() if p.is_dir() and p.name.lower() == split.lower()]
            root = subs[0] if subs else data_dir / split
        for cand in (root / "pairs", root):
            if cand.is_dir():
                try:
                    return _PairsAsScenes(PairsDataset(cand)), "pairs"
                except HdrkitError:
                    continue
        raise err


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def evaluate(
    data_dir: str | Path,
    methods: Sequence[str],
    out_dir: str | Path,
    *,
    split: str | None = None,
    metrics: Sequence[str] | None = None,
    response: str | Response = "gamma",
    align: str = "none",
    max_scenes: int | None = None,
    progress: bool = True,
    thumb_width: int = THUMB_WIDTH,
    title: str | None = None,
    save_outputs: bool = False,
) -> dict:
    """Run ``methods`` on every scene of a Kalantari-layout dataset and write a report folder.

    Args:
        data_dir: dataset root: ``<root>/<split>/<scene>/`` holding LDR frames, ``exposure.txt`` and ``HDRImg.hdr``
            (Kalantari layout); or, for single-image methods only, ``<root>/<split>/pairs/`` of ``<name>.png`` +
            ``<name>.hdr`` pairs (``hdrkit.data.synthesize_dataset(..., single_image=True)``).
        methods: names from ``hdrkit.merge.MERGE_METHODS``, :data:`SINGLE_IMAGE_METHODS` or ``hdrkit.models``
            (prefix ``merge:``, ``single:``, ``model:`` to disambiguate).
        out_dir: report folder (created if missing): ``results.json``, ``results.md``, ``index.html``, ``img/``.
        split: ``'Test'``, ``'Training'`` or None: the ``Test`` folder if ``data_dir`` has one, else every scene
            under ``data_dir`` (which may itself be a split folder).
        metrics: names from ``hdrkit.metrics.METRICS``; default :data:`DEFAULT_METRICS`.
            Single-image methods additionally get :data:`SCALE_INVARIANT_METRICS` (when registered).
        response: camera response for classical merges: a name for ``response_from_name`` (``'gamma'``,
            ``'srgb'``, ``'linear'``, a table file), ``'calibrate'`` (Debevec 1997 per scene), ``'scene'`` (the
            response stored with each scene, if the reader provides one) or a ``Response``.
        align: ``'none'``, ``'mtb'`` or ``'homography'``, applied to the brackets before multi-frame methods.
        max_scenes: evaluate only the first ``max_scenes`` scenes (sorted by name).
        progress: show a progress bar on stderr.
        thumb_width: maximum width of the contact-sheet thumbnails in pixels.
        title: dataset name shown in the report (default: the folder name).
        save_outputs: also write every output at full resolution: ``outputs/<method>/<scene>.exr`` (float32
            radiance, as scored) or ``.png`` (16-bit, display-referred methods). The radiance files can be
            rescored independently with ``tests/reference/protocol_reference.py GT_ROOT out_dir/outputs/<method>
            --pred-name "{scene}.exr"``.

    Returns:
        The results dictionary also written to ``results.json``: ``metadata``, ``protocol``, ``scenes`` (names),
        ``scene_info`` (scene -> frames, size, normalized exposure times, reference, bits, ``prep_seconds`` spent on
        response recovery and alignment, which every multi-frame method's ``seconds`` includes),
        ``methods`` (name -> ``kind``, ``output``, ``summary``, ``note``, ``metrics``, ``aggregate``
        (metric -> mean over scenes, ``seconds`` -> mean seconds per scene), ``scenes`` (scene -> metric values
        and ``seconds``)), ``display`` and ``images`` (relative thumbnail paths per scene). Metrics that do not
        apply or are not finite are ``None`` (``n/a`` in the tables).
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    if isinstance(methods, str):
        methods = [methods]
    if not methods:
        raise HdrkitError("no methods given: name at least one (`hdrkit methods` lists them)")
    if not data_dir.is_dir():
        raise HdrkitError(f"{data_dir}: dataset folder not found")
    if align not in ("none", "mtb", "homography"):
        raise HdrkitError(f"unknown align {align!r}: use none, mtb or homography")
    if max_scenes is not None and max_scenes < 1:
        raise HdrkitError(f"max_scenes must be >= 1, got {max_scenes}")
    resolved = [resolve_method(m) for m in methods]
    names_seen = [m.name for m in resolved]
    if len(set(names_seen)) != len(names_seen):
        raise HdrkitError(f"methods listed twice: {sorted({n for n in names_seen if names_seen.count(n) > 1})}")
    table = _metric_table()
    names = tuple(metrics) if metrics is not None else DEFAULT_METRICS
    unknown = [m for m in names if m not in table]
    if unknown:
        raise HdrkitError(f"unknown metric(s) {unknown}: choose from {', '.join(sorted(table))}")
    if isinstance(response, str) and response not in ("calibrate", "scene"):
        response_from_name(response)  # fail early on a bad spec

    split = _default_split(data_dir, split)
    dataset, layout = _load_dataset(data_dir, split)
    multi = [m.name for m in resolved if m.kind != "single"]
    if layout == "pairs" and multi:
        raise HdrkitError(f"{data_dir}: holds single-image LDR/HDR pairs, but {', '.join(multi)} need exposure "
                          "brackets; evaluate single-image methods only")
    n_scenes = len(dataset) if max_scenes is None else min(len(dataset), max_scenes)
    if n_scenes == 0:
        raise HdrkitError(f"{data_dir}: no scenes found (expected <root>/<Test|Training>/<scene>/ with exposure.txt)")

    per_method: dict[str, dict] = {}
    for m in resolved:
        if m.output == "ldr":
            mnames, note = [], ("output is a display-referred fusion, not radiance: HDR metrics do not apply (n/a); "
                                "shown on the contact sheet as produced")
        else:
            extra = [k for k in SCALE_INVARIANT_METRICS if k in table and k not in names] if m.kind == "single" else []
            mnames, note = list(names) + extra, ""
        if m.kind == "single" and m.output == "hdr":
            note = "single-image: sees the reference frame only"
        per_method[m.name] = {"kind": m.kind, "output": m.output, "summary": m.summary, "note": note,
                              "metrics": mnames, "aggregate": {}, "scenes": {}}

    img_dir = out_dir / "img"
    img_dir.mkdir(parents=True, exist_ok=True)
    load_start = _load_average()
    scene_names: list[str] = []
    images: dict[str, dict] = {}
    scene_info: dict[str, dict] = {}

    indices = range(n_scenes)
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc="eval", unit="scene", file=sys.stderr)
    for i in indices:
        scene = dataset[i]
        name = str(scene.name)
        scene_names.append(name)
        ldr = torch.as_tensor(scene.ldr, dtype=torch.float32)
        times = normalize_times(torch.as_tensor(scene.exposure_times, dtype=torch.float32)[None])[0]
        gt = None if scene.hdr is None else torch.as_tensor(scene.hdr, dtype=torch.float32)
        ref = getattr(scene, "reference", None)
        ref = ldr.shape[0] // 2 if ref is None else int(ref)
        bits = _scene_bits(scene)

        t0 = time.perf_counter()
        crf = _resolve_response(response, scene, ldr[None], times[None], bits) if multi else None
        aligned = ldr
        if align != "none" and multi:
            from hdrkit.align import align as align_fn

            aligned = align_fn(ldr[None], times[None], method=align, reference=ref, response=crf).ldr[0]
        prep_seconds = time.perf_counter() - t0
        scene_info[name] = {"frames": int(ldr.shape[0]), "height": int(ldr.shape[2]), "width": int(ldr.shape[3]),
                            "exposure_times": [round(float(v), 6) for v in times], "reference": ref, "bits": bits,
                            "prep_seconds": prep_seconds, "ground_truth": gt is not None}
        inputs_multi = SceneInputs(aligned, times, ref, crf, bits)
        inputs_single = SceneInputs(ldr, times, ref, crf, bits)

        slug = _slug(name)
        entry = {"inputs": [], "gt": None, "outputs": {}}
        for k in range(ldr.shape[0]):
            rel = f"img/{slug}_in{k}.png"
            _save_png(_thumbnail(ldr[k], thumb_width), out_dir / rel)
            cap = f"t = {times[k].item():g}" + (" (reference)" if k == ref else "")
            entry["inputs"].append({"src": rel, "caption": cap})
        if gt is not None:
            entry["gt"] = f"img/{slug}_gt.png"
            _save_png(_thumbnail(_display(gt), thumb_width), out_dir / entry["gt"])

        for m in resolved:
            s = inputs_single if m.kind == "single" else inputs_multi
            t0 = time.perf_counter()
            out = m.run(s)
            seconds = time.perf_counter() - t0 + (0.0 if m.kind == "single" else prep_seconds)
            out = torch.as_tensor(out, dtype=torch.float32).detach().cpu()
            if out.ndim == 4 and out.shape[0] == 1:
                out = out[0]
            if out.shape != ldr.shape[1:]:
                raise HdrkitError(f"method {m.name} returned shape {tuple(out.shape)} for scene {name}; "
                                  f"expected {tuple(ldr.shape[1:])}")
            info = per_method[m.name]
            record: dict = {k: None for k in info["metrics"]}
            if gt is not None and info["metrics"]:
                record.update(_compute(out, gt, info["metrics"]))
            record["seconds"] = seconds
            info["scenes"][name] = record
            mslug = _slug(m.name)
            rel = f"img/{slug}__{mslug}.png"
            shown = out.clamp(0, 1) if m.output == "ldr" else _display(out)
            _save_png(_thumbnail(shown, thumb_width), out_dir / rel)
            o = {"src": rel, "error": None}
            if gt is not None and m.output == "hdr":
                o["error"] = f"img/{slug}__{mslug}_err.png"
                _save_png(_error_map(out, gt, thumb_width), out_dir / o["error"])
            entry["outputs"][m.name] = o
            if save_outputs:
                from hdrkit.io import write_hdr, write_ldr

                target = out_dir / "outputs" / mslug / f"{name}.{'png' if m.output == 'ldr' else 'exr'}"
                target.parent.mkdir(parents=True, exist_ok=True)
                if m.output == "ldr":
                    write_ldr(target, out.clamp(0, 1), bits=16)
                else:
                    write_hdr(target, torch.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0))
                o["file"] = target.relative_to(out_dir).as_posix()
        images[name] = entry

    for info in per_method.values():
        for k in info["metrics"] + ["seconds"]:
            info["aggregate"][k] = _mean([r.get(k) for r in info["scenes"].values()])

    from hdrkit import __version__

    results = {
        "metadata": {
            "hdrkit_version": __version__,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": _machine(),
            "dataset": title or data_dir.name,
            "data_dir": str(data_dir),
            "split": split,
            "layout": layout,
            "response": response if isinstance(response, str) else repr(response),
            "align": align,
            "n_scenes": len(scene_names),
            "metrics": list(names),
            "lower_is_better": sorted(_lower_is_better(table)),
            "load_average": [load_start, _load_average()],
        },
        "protocol": PROTOCOL,
        "scenes": scene_names,
        "scene_info": scene_info,
        "methods": per_method,
        "display": {"tonemap": f"mu-law (mu = {MU:g}) of the radiance clipped to [0, 1], as in the -mu metrics",
                    "error_domain": "mu(pred) - mu(gt), channel mean", "error_scale": ERROR_SCALE,
                    "thumb_width": thumb_width},
        "images": images,
    }
    results = _jsonable(results)
    write_text(out_dir / "results.json", json.dumps(results, indent=1, allow_nan=False) + "\n")
    write_text(out_dir / "results.md", render_markdown(results))
    write_text(out_dir / "index.html", render_html(results))
    return results
