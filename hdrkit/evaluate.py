"""``hdrkit eval``: run registered methods (``hdrkit.methods``) over a Kalantari-layout dataset and write a report.

Protocol: :data:`PROTOCOL` (Kalantari & Ramamoorthi, "Deep High Dynamic Range Imaging of Dynamic Scenes",
SIGGRAPH 2017). Scenes are read by ``hdrkit.data.eval_scenes``, methods resolved and run only through ``hdrkit.methods``
(``get_method``, ``apply``), and images and pages written by ``hdrkit.report``.

Outputs in ``out_dir``: ``results.json`` (per method, per scene metrics and seconds; aggregates; metadata),
``results.md`` (tables), ``index.html`` (report with contact sheets) and ``img/`` (PNG thumbnails).
"""

from __future__ import annotations

import datetime
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from hdrkit.camera.response import Response
from hdrkit.data.eval_scenes import check_response_spec, default_split, load_eval_dataset, resolve_response, scene_bits
from hdrkit.errors import HdrkitError
from hdrkit.io.batch import BracketBatch
from hdrkit.methods import MethodCard, Runner, apply, get_method
from hdrkit.metrics.scale_invariant import CLIPPED_CODE, SINGLE_IMAGE_METRICS, WELL_EXPOSED
from hdrkit.report import (THUMB_WIDTH, display_info, jsonable, load_average, machine_description, output_thumbnails,
                           scene_thumbnails, slug, write_report)
from hdrkit.tonemap.mu_law import MU

__all__ = ["DEFAULT_METRICS", "PROTOCOL", "SCALE_INVARIANT_METRICS", "SINGLE_IMAGE_METRICS", "PreparedScene", "evaluate"]

DEFAULT_METRICS = ("psnr_mu", "psnr_l", "ssim_mu", "ssim_l")
"""Kalantari & Ramamoorthi 2017 metrics: PSNR and SSIM in the mu-law and linear domains."""

SCALE_INVARIANT_METRICS = ("psnr_scale_invariant", "log_rmse_scale_invariant")
"""Added for single-image methods, whose output scale is only known up to a factor."""

PROTOCOL = (
    "Kalantari & Ramamoorthi 2017 protocol: each method's output is compared as-is with the ground truth "
    "HDRImg.hdr, both linear and in units of the shortest exposure (t = 1); images are clipped to [0, 1] inside "
    "the metrics; -l metrics use linear values, -mu metrics the mu-law compressor log(1 + mu H) / log(1 + mu) with "
    f"mu = {MU:g}. Aggregates are arithmetic means over scenes. Single-image methods see only the reference "
    "(middle) frame and are also scored with scale-invariant metrics (best scale fitted per image), and with the "
    f"log2 RMSE in stops over the pixels that frame clipped (a channel code >= {CLIPPED_CODE}) and over its well-exposed "
    f"pixels (every code in [{WELL_EXPOSED[0]}, {WELL_EXPOSED[1]}]), after one global scale fitted in the log domain on the well-exposed "
    "pixels. Methods whose "
    "output is a display-referred fusion (not radiance) are marked n/a. Seconds: wall time per scene on this "
    "machine, including response recovery (every method) and alignment (multi-frame methods), excluding file "
    "I/O and metrics."
)

_NA_NOTE = ("output is a display-referred fusion, not radiance: HDR metrics do not apply (n/a); "
            "shown on the contact sheet as produced")


@dataclass
class PreparedScene:
    """One scene ready for every method: ``batch`` as read (single-image methods), ``aligned`` (multi-frame)."""

    name: str
    batch: BracketBatch
    aligned: BracketBatch
    gt: torch.Tensor | None
    response_seconds: float
    align_seconds: float

    def info(self) -> dict:
        b = self.batch
        return {"frames": b.frames, "height": int(b.ldr.shape[3]), "width": int(b.ldr.shape[4]),
                "exposure_times": [round(float(v), 6) for v in b.exposure_times[0]],
                "reference": int(b.reference[0]), "bits": b.bits,
                "prep_seconds": self.response_seconds + self.align_seconds, "ground_truth": self.gt is not None}


def _check_request(data_dir: Path, methods, align: str, max_scenes, method_options) -> list[MethodCard]:
    """Validate the arguments (nothing written yet); returns the methods' cards in the order given."""
    if not methods:
        raise HdrkitError("no methods given: name at least one (`hdrkit methods` lists them)")
    cards = [get_method(m) for m in methods]
    names = [c.name for c in cards]
    if len(set(names)) != len(names):
        raise HdrkitError(f"methods listed twice: {sorted({n for n in names if names.count(n) > 1})}")
    extra = sorted(set(method_options or {}) - set(names))
    if extra:
        raise HdrkitError(f"method_options given for {', '.join(extra)}, which are not evaluated ({', '.join(names)})")
    if not data_dir.is_dir():
        raise HdrkitError(f"{data_dir}: dataset folder not found")
    if align not in ("none", "mtb", "homography"):
        raise HdrkitError(f"unknown align {align!r}: use none, mtb or homography")
    if max_scenes is not None and max_scenes < 1:
        raise HdrkitError(f"max_scenes must be >= 1, got {max_scenes}")
    return cards


def _metric_names(metrics: Sequence[str] | None) -> tuple[tuple[str, ...], dict]:
    from hdrkit.metrics import METRICS

    names = tuple(metrics) if metrics is not None else DEFAULT_METRICS
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        raise HdrkitError(f"unknown metric(s) {unknown}: choose from {', '.join(sorted(METRICS))}")
    return names, METRICS


def _method_entry(card: MethodCard, names: tuple[str, ...], table: dict, options: dict) -> dict:
    """The results.json entry of one method, before any scene: what it is and which metrics apply."""
    if card.output == "display":
        metrics, note = [], _NA_NOTE
    elif card.kind == "single":
        extra = [k for k in SCALE_INVARIANT_METRICS if k in table and k not in names] + list(SINGLE_IMAGE_METRICS)
        metrics, note = list(names) + extra, "single-image: sees the reference frame only"
    else:
        metrics, note = list(names), ""
    return {"kind": card.kind, "output": card.output, "summary": card.summary, "paper": card.paper,
            "frames": list(card.frames), "learned": card.learned, "options": jsonable(options), "note": note,
            "metrics": metrics, "aggregate": {}, "scenes": {}}


def _prepare_scene(scene, response, align: str, multi: bool) -> PreparedScene:
    """Read one scene into a ``BracketBatch``, find its response and (for multi-frame methods) align it."""
    ldr = torch.as_tensor(scene.ldr, dtype=torch.float32)
    ref = getattr(scene, "reference", None)
    batch = BracketBatch.from_frames(ldr, torch.as_tensor(scene.exposure_times, dtype=torch.float32),
                                     ldr.shape[0] // 2 if ref is None else int(ref), bits=scene_bits(scene))
    gt = None if scene.hdr is None else torch.as_tensor(scene.hdr, dtype=torch.float32)
    t0 = time.perf_counter()
    batch = batch.replace(response=resolve_response(response, scene, batch.ldr, batch.exposure_times, batch.bits))
    t1 = time.perf_counter()
    aligned = batch
    if align != "none" and multi and batch.frames > 1:
        from hdrkit.align import align as align_fn

        moved = align_fn(batch.ldr, batch.exposure_times, method=align, reference=int(batch.reference[0]),
                         response=batch.response).ldr
        aligned = batch.replace(ldr=moved)
    return PreparedScene(str(scene.name), batch, aligned, gt, t1 - t0, time.perf_counter() - t1)


def _run_one(card: MethodCard, runner: Runner, prep: PreparedScene) -> tuple[torch.Tensor, float]:
    """Run one built method on one scene -> ((3, H, W) float32 output on the CPU, seconds incl. preparation)."""
    b = prep.batch if card.kind == "single" else prep.aligned
    t0 = time.perf_counter()
    out = apply(card, runner, b.ldr, b.exposure_times, b.reference, response=b.response, bits=b.bits)
    seconds = time.perf_counter() - t0 + prep.response_seconds + (0.0 if card.kind == "single" else prep.align_seconds)
    out = torch.as_tensor(out).detach().float().cpu()
    want = (1, *b.ldr.shape[2:])
    if tuple(out.shape) != want:
        raise HdrkitError(f"method {card.name} returned shape {tuple(out.shape)} for scene {prep.name}; expected {want}")
    return out[0], seconds


def _score(out: torch.Tensor, gt: torch.Tensor | None, metrics: list[str], ldr: torch.Tensor) -> dict:
    """Metric values of one output; ``ldr`` (3, H, W): the input frame (regions of the single-image metrics)."""
    record: dict = {k: None for k in metrics}
    if gt is not None and metrics:
        from hdrkit.metrics import compute_metrics, log2_rmse_regions

        plain = [k for k in metrics if k not in SINGLE_IMAGE_METRICS]
        vals = dict(compute_metrics(out, gt, plain)) if plain else {}
        if any(k in SINGLE_IMAGE_METRICS for k in metrics):
            vals.update(log2_rmse_regions(out, gt, ldr))
        for k in metrics:
            v = float(vals[k].item() if torch.is_tensor(vals[k]) else vals[k])
            record[k] = v if math.isfinite(v) else None
    return record


def _output_files(card: MethodCard, out: torch.Tensor, prep: PreparedScene, out_dir: Path, thumb_width: int,
                  save_outputs: bool) -> dict:
    """Thumbnails of one output (``hdrkit.report``) and, with ``save_outputs``, the full-resolution file."""
    display = card.output == "display"
    o = output_thumbnails(prep.name, card.name, out, prep.gt, display, out_dir, thumb_width)
    if save_outputs:
        from hdrkit.io import write_hdr, write_ldr

        target = out_dir / "outputs" / slug(card.name) / f"{prep.name}.{'png' if display else 'exr'}"
        target.parent.mkdir(parents=True, exist_ok=True)
        if display:
            write_ldr(target, out.clamp(0, 1), bits=16)
        else:
            write_hdr(target, torch.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0))
        o["file"] = target.relative_to(out_dir).as_posix()
    return o


def _aggregate(per_method: dict[str, dict]) -> None:
    """Fill every method's ``aggregate``: the mean over scenes of each metric and of ``seconds`` (None if none)."""
    for info in per_method.values():
        for k in info["metrics"] + ["seconds"]:
            vals = [r.get(k) for r in info["scenes"].values() if r.get(k) is not None]
            info["aggregate"][k] = sum(vals) / len(vals) if vals else None


def _metadata(data_dir: Path, title, split, layout, response, align, n_scenes, names, table, load_start) -> dict:
    from hdrkit import __version__
    from hdrkit.metrics import LOWER_IS_BETTER

    return {"hdrkit_version": __version__,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine_description(), "dataset": title or data_dir.name, "data_dir": str(data_dir), "split": split,
            "layout": layout, "response": response if isinstance(response, str) else repr(response), "align": align,
            "n_scenes": n_scenes, "metrics": list(names),
            "lower_is_better": sorted(k for k in {*table, *SINGLE_IMAGE_METRICS} if k in LOWER_IS_BETTER),
            "load_average": [load_start, load_average()]}


def _open_dataset(data_dir: Path, split, cards: list[MethodCard], response, max_scenes):
    """(dataset, layout, split, number of scenes to evaluate), after checking methods and response fit the data."""
    split = default_split(data_dir, split)
    dataset, layout = load_eval_dataset(data_dir, split)
    multi = [c.name for c in cards if c.kind != "single"]
    if layout == "pairs" and multi:
        raise HdrkitError(f"{data_dir}: holds single-image LDR/HDR pairs, but {', '.join(multi)} need exposure "
                          "brackets; evaluate single-image methods only")
    if layout == "pairs" and response == "calibrate":
        raise HdrkitError(f"{data_dir}: holds single-image pairs; response='calibrate' needs exposure brackets")
    n_scenes = len(dataset) if max_scenes is None else min(len(dataset), max_scenes)
    if n_scenes == 0:
        raise HdrkitError(f"{data_dir}: no scenes found (expected <root>/<Test|Training>/<scene>/ with exposure.txt)")
    return dataset, layout, split, n_scenes


def evaluate(data_dir: str | Path, methods: Sequence[str], out_dir: str | Path, *, split: str | None = None,
             metrics: Sequence[str] | None = None, response: str | Response = "gamma", align: str = "none",
             max_scenes: int | None = None, progress: bool = True, thumb_width: int = THUMB_WIDTH,
             title: str | None = None, save_outputs: bool = False,
             method_options: dict[str, dict] | None = None) -> dict:
    """Run ``methods`` on every scene of a Kalantari-layout dataset and write a report folder.

    Args:
        data_dir: dataset root: ``<root>/<split>/<scene>/`` holding LDR frames, ``exposure.txt`` and ``HDRImg.hdr``
            (Kalantari layout); or, for single-image methods only, ``<root>/<split>/pairs/`` of ``<name>.png`` +
            ``<name>.hdr`` pairs (``hdrkit.data.synthesize_dataset(..., single_image=True)``).
        methods: names from the method registry (``hdrkit.methods.get_method``; `hdrkit methods` lists them).
        out_dir: report folder (created if missing): ``results.json``, ``results.md``, ``index.html``, ``img/``.
        split: ``'Test'``, ``'Training'`` or None: the ``Test`` folder if ``data_dir`` has one, else every scene
            under ``data_dir`` (which may itself be a split folder).
        metrics: names from ``hdrkit.metrics.METRICS``; default :data:`DEFAULT_METRICS`.
            Single-image methods additionally get :data:`SCALE_INVARIANT_METRICS` (when registered).
        response: the camera response every method is given: a name for ``response_from_name`` (``'gamma'``,
            ``'srgb'``, ``'linear'``, a table file), ``'calibrate'`` (Debevec 1997 per scene), ``'scene'`` (the
            response stored with each synthetic scene) or a ``Response``.
        align: ``'none'``, ``'mtb'`` or ``'homography'``, applied to the brackets before multi-frame methods.
        max_scenes: evaluate only the first ``max_scenes`` scenes (sorted by name).
        progress: show a progress bar on stderr.
        thumb_width: maximum width of the contact-sheet thumbnails in pixels.
        title: dataset name shown in the report (default: the folder name).
        save_outputs: also write every output at full resolution: ``outputs/<method>/<scene>.exr`` (float32
            radiance, as scored) or ``.png`` (16-bit, display-referred methods). The radiance files can be
            rescored independently with ``tests/reference/protocol_reference.py GT_ROOT out_dir/outputs/<method>
            --pred-name "{scene}.exr"``.
        method_options: method name -> options for its ``build`` (learned methods: ``device``, ``dtype``
            ``'fp32'``/``'bf16'``, ``max_memory``, ``weights`` path, ``tile``). Each runner is built once.

    Returns:
        The results dictionary also written to ``results.json``: ``metadata``, ``protocol``, ``scenes`` (names),
        ``scene_info`` (scene -> frames, size, normalized exposure times, reference, bits, ``prep_seconds`` spent on
        response recovery and alignment, which every multi-frame method's ``seconds`` includes),
        ``methods`` (name -> ``kind`` (``merge``/``fusion``/``single``), ``output`` (``radiance``/``display``),
        ``summary``, ``paper``, ``frames`` ([min, max]), ``learned``, ``options``, ``note``, ``metrics``,
        ``aggregate`` (metric -> mean over scenes, ``seconds`` -> mean seconds per scene), ``scenes`` (scene ->
        metric values and ``seconds``)), ``display`` and ``images`` (relative thumbnail paths per scene). Metrics
        that do not apply or are not finite are ``None`` (``n/a`` in the tables).
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    methods = [methods] if isinstance(methods, str) else list(methods)
    options = {k: dict(v) for k, v in (method_options or {}).items()}
    cards = _check_request(data_dir, methods, align, max_scenes, options)
    names, table = _metric_names(metrics)
    check_response_spec(response)
    dataset, layout, split, n_scenes = _open_dataset(data_dir, split, cards, response, max_scenes)
    runners = {c.name: c.build(**options.get(c.name, {})) for c in cards}
    per_method = {c.name: _method_entry(c, names, table, options.get(c.name, {})) for c in cards}
    multi = any(c.kind != "single" for c in cards)

    (out_dir / "img").mkdir(parents=True, exist_ok=True)
    load_start = load_average()
    images: dict[str, dict] = {}
    scene_info: dict[str, dict] = {}
    indices = range(n_scenes)
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc="eval", unit="scene", file=sys.stderr)
    for i in indices:
        prep = _prepare_scene(dataset[i], response, align, multi)
        scene_info[prep.name] = prep.info()
        b = prep.batch
        images[prep.name] = entry = scene_thumbnails(prep.name, b.ldr[0], b.exposure_times[0], int(b.reference[0]),
                                                     prep.gt, out_dir, thumb_width)
        for card in cards:
            out, seconds = _run_one(card, runners[card.name], prep)
            info = per_method[card.name]
            ldr = b.ldr[0, int(b.reference[0])]
            info["scenes"][prep.name] = {**_score(out, prep.gt, info["metrics"], ldr), "seconds": seconds}
            entry["outputs"][card.name] = _output_files(card, out, prep, out_dir, thumb_width, save_outputs)
    _aggregate(per_method)

    results = {
        "metadata": _metadata(data_dir, title, split, layout, response, align, len(images), names, table, load_start),
        "protocol": PROTOCOL,
        "scenes": list(images),
        "scene_info": scene_info,
        "methods": per_method,
        "display": display_info(thumb_width),
        "images": images,
    }
    return write_report(out_dir, results)
