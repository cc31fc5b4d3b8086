"""Public benchmark: every registered classical method (and learned ones, if asked) on a fixed validation set.

The validation brackets are synthesized, with a fixed seed, from the validation radiance maps only
(``hdrkit.data.splits.VALIDATION_HDR``; training code uses ``TRAINING_HDR``), in two camera regimes:

- ``kalantari_gamma16``: gamma 2.2 response, 16-bit TIFF, no noise (like Kalantari & Ramamoorthi 2017's data);
- ``phone_dorf8``: a measured DoRF response per scene, 8-bit PNG, Poisson-Gaussian sensor noise from
  darktable's profiles (ISO <= 3200), like a phone's processed frames.

Each regime has a few static scenes and more dynamic ones (camera shake and moving objects). Methods get the
camera response the scene was made with (``response='scene'``), so the numbers measure merging and deghosting.
Brackets are aligned with ``align='homography'`` (the ``hdrkit merge`` default); the gamma regime is also
evaluated unaligned (``<regime>__align_none``) to separate merge quality from alignment errors.

Usage::

    python benchmarks/public_benchmark.py --data ../shared/data --work /tmp/hdrkit_bench --out benchmarks/results

Learned methods are added with ``--method NAME`` (``--weights NAME=FILE`` until packaged weights ship,
``--dtype bf16`` for bf16 autocast, ``--device``); ``--only NAME`` replaces the default method list.

writes ``<out>/<run>.md`` and ``.json`` (per-scene and mean metrics) and ``<out>/README.md`` (summary);
the HTML reports with contact sheets stay in ``<work>/<run>/report/index.html``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hdrkit.data import synthesize_dataset  # noqa: E402
from hdrkit.data.splits import VALIDATION_HDR, split_paths  # noqa: E402
from hdrkit.errors import HdrkitError  # noqa: E402
from hdrkit.evaluate import evaluate  # noqa: E402
from hdrkit.methods import all_methods, get_method  # noqa: E402
from hdrkit.report import format_value, markdown_table, render_markdown, write_text  # noqa: E402

SEED = 2017
"""Base seed of the validation set (each scene draws from ``default_rng([seed, k])``)."""

CROP = (384, 512)
"""Scene size (H, W): moderate, so the whole benchmark runs in minutes on 2 CPU cores."""

STATIC_SCENES = 4
DYNAMIC_SCENES = 18
"""Scenes per regime: static (no motion) and dynamic (shake + moving objects), two dynamic crops per source."""

MOTION = {"global_motion": 2.0, "moving_objects": 2, "object_motion_px": (15.0, 45.0)}
"""Dynamic scenes: ~2 px of camera shake (a homography) and two textured objects moving 15-45 px."""

REGIMES = {
    "kalantari_gamma16": {
        "description": "gamma 2.2, 16-bit TIFF, noiseless (Kalantari 2017-like)",
        "synth": {"response_family": "gamma", "bits": 16, "fmt": "tif"},
    },
    "phone_dorf8": {
        "description": "measured DoRF response per scene, 8-bit PNG, darktable sensor noise (ISO <= 3200), phone-like",
        "synth": {"response_family": "dorf", "bits": 8, "fmt": "png", "dorf": "crf/dorf_public_151.npz",
                  "noise": "noise/darktable.json"},
    },
}
"""The camera regimes; ``dorf`` / ``noise`` are paths relative to the shared data folder."""

RESPONSE = "scene"
"""Methods get the scene's own (true) camera response: the benchmark measures merging, not calibration."""

RUNS = (("kalantari_gamma16", "homography", "scene"), ("phone_dorf8", "homography", "scene"),
        ("phone_dorf8", "homography", "calibrate"), ("kalantari_gamma16", "none", "scene"))
"""(regime, alignment) pairs evaluated: homography is the ``hdrkit merge`` default; the unaligned run separates
merge quality from alignment errors (the shake is small, so unaligned merges only suffer at edges)."""

SUMMARY_METRICS = ("psnr_mu", "psnr_l", "ssim_mu", "ssim_l")


def default_methods() -> list[str]:
    """Every registered classical merge and fusion method (registry order) plus the single-image baseline."""
    cards = all_methods()
    return [n for n, c in cards.items() if not c.learned and c.kind in ("merge", "fusion")] + ["single_linearize"]


def method_list(only: list[str] | None, extra: list[str]) -> list[str]:
    """``only`` (or the defaults) followed by ``extra``, without repeats; every name checked against the registry."""
    methods: list[str] = []
    for name in (only or default_methods()) + extra:
        get_method(name)
        if name not in methods:
            methods.append(name)
    return methods


def method_options(methods: list[str], dtype: str | None, device: str | None, weights: list[str]) -> dict[str, dict]:
    """``evaluate``'s ``method_options``: dtype/device for every learned method, ``NAME=PATH`` weights for one."""
    files = {}
    for spec in weights:
        name, sep, path = spec.partition("=")
        if not (sep and name and path) or name not in methods or not get_method(name).learned:
            raise HdrkitError(f"--weights {spec!r}: use NAME=PATH with NAME a learned method being run")
        files[name] = path
    options = {}
    for name in methods:
        if get_method(name).learned:
            opts = {"dtype": dtype, "device": device, "weights": files.get(name)}
            options[name] = {k: v for k, v in opts.items() if v is not None}
    return {k: v for k, v in options.items() if v}


def synthesize_regime(name: str, data: Path, work: Path) -> Path:
    """Write (or reuse) the regime's Kalantari-layout dataset under ``work/name/data``; returns that root."""
    spec = dict(REGIMES[name]["synth"])
    root = work / name / "data"
    val = split_paths(data / "hdr", "validation")
    static_sources = val[::-1][:STATIC_SCENES]  # static scenes from other sources than the first dynamic ones
    config = {"seed": SEED, "crop": CROP, "static": STATIC_SCENES, "dynamic": DYNAMIC_SCENES, "motion": MOTION,
              "spec": spec, "validation": list(VALIDATION_HDR)}
    stamp = root / "config.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == json.loads(json.dumps(config)):
        return root
    kwargs = {"crop_size": CROP, "response_family": spec["response_family"], "bits": spec["bits"], "fmt": spec["fmt"]}
    if "dorf" in spec:
        kwargs["dorf_path"] = data / spec["dorf"]
    if "noise" in spec:
        kwargs["noise_profiles_path"] = data / spec["noise"]
    synthesize_dataset(static_sources, root, n_scenes=STATIC_SCENES, seed=SEED, split="Test/static", **kwargs)
    synthesize_dataset(val, root, n_scenes=DYNAMIC_SCENES, seed=SEED + 1, split="Test/dynamic",
                       global_motion=MOTION["global_motion"], moving_objects=MOTION["moving_objects"],
                       object_motion_px=MOTION["object_motion_px"], **kwargs)
    write_text(stamp, json.dumps(config, indent=1) + "\n")
    return root


def _subset_mean(info: dict, prefix: str, key: str):
    vals = [r.get(key) for s, r in info["scenes"].items() if s.startswith(prefix)]
    vals = [v for v in vals if v is not None]
    return sum(vals) / len(vals) if vals else None


def run_name(regime: str, align: str, response: str = RESPONSE) -> str:
    """``<regime>`` for the default (homography) alignment and the true response, with ``__align_<align>`` and
    ``__response_<response>`` appended otherwise."""
    name = regime if align == "homography" else f"{regime}__align_{align}"
    return name if response == RESPONSE else f"{name}__response_{response}"


CALIBRATED_METRICS = ("psnr_mu_best_scale", "psnr_mu", "psnr_l", "ssim_mu", "ssim_l")
"""Runs with a recovered response are right only up to a global scale: PSNR-mu after the best scale first."""


def summary_markdown(all_results: dict[str, dict], wall: dict[str, float]) -> str:
    """``README.md`` of the results folder: setup and one table per run (all scenes, static, dynamic)."""
    any_res = next(iter(all_results.values()))
    meta = any_res["metadata"]
    lines = [
        "# Public benchmark results\n",
        "Generated by `python benchmarks/public_benchmark.py` (see `benchmarks/README.md`); do not edit by hand.\n",
        f"hdrkit {meta['hdrkit_version']}, {meta['date']}, {meta['machine']}.\n",
        f"Validation set: {STATIC_SCENES} static + {DYNAMIC_SCENES} dynamic scenes per regime, {CROP[1]}x{CROP[0]} crops "
        f"synthesized with seed {SEED} from the {len(VALIDATION_HDR)} validation radiance maps "
        "(`hdrkit.data.splits.VALIDATION_HDR`, disjoint from `TRAINING_HDR`). Dynamic scenes: "
        f"{MOTION['global_motion']:g} px camera shake and {MOTION['moving_objects']} moving objects "
        f"({MOTION['object_motion_px'][0]:g}-{MOTION['object_motion_px'][1]:g} px). Methods get the true camera "
        f"response (`response='{RESPONSE}'`), except in `__response_calibrate` runs, which recover it per scene. Seconds per scene include alignment for multi-frame methods; other "
        "jobs sharing the machine inflate them (see the load averages), so compare seconds within one table.\n",
        f"Protocol: {any_res['protocol']}\n",
    ]
    for run, res in all_results.items():
        regime, align = res["metadata"]["regime"]["name"], res["metadata"]["align"]
        lines.append(f"## {run}: {REGIMES[regime]['description']}; alignment `{align}`\n")
        prep = [v["prep_seconds"] for v in res.get("scene_info", {}).values()]
        prep_text = f" Alignment: {sum(prep) / len(prep):.2f} s/scene of that." if prep and align != "none" else ""
        load = [v for v in res["metadata"].get("load_average") or [] if v is not None]
        load_text = f" System load average {' -> '.join(f'{v:.1f}' for v in load)} on {os.cpu_count()} CPUs." if load else ""
        lines.append(f"Per-scene numbers: [`{run}.md`]({run}.md), [`{run}.json`]({run}.json). "
                     f"Wall time of this evaluation: {wall[run]:.0f} s.{prep_text}{load_text}\n")
        calibrated = res["metadata"].get("response") == "calibrate"
        key = "psnr_mu_best_scale" if calibrated else "psnr_mu"
        summary = (key,) + SUMMARY_METRICS if calibrated else SUMMARY_METRICS
        lines.append(f"Camera response: {'recovered per scene (Debevec 1997, `--response calibrate`); first column: PSNR-mu after the best global scale' if calibrated else 'the true one'}.\n")
        headers = ["method"] + list(summary) + [f"{key} static", f"{key} dynamic", "seconds/scene"]
        rows = []
        for name, info in res["methods"].items():
            agg = info["aggregate"]
            rows.append([name] + [format_value(agg.get(m), 4 if "ssim" in m else 2) for m in summary]
                        + [format_value(_subset_mean(info, "static/", key)),
                           format_value(_subset_mean(info, "dynamic/", key)),
                           format_value(agg.get("seconds"), 3)])
        lines.append(markdown_table(headers, rows))
        notes = [f"- `{n}`: {i['note']}" for n, i in res["methods"].items() if i.get("note")]
        if notes:
            lines.append("\n".join(notes) + "\n")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=Path(os.environ.get("HDRKIT_DATA", ROOT.parent / "shared" / "data")),
                   help="shared data folder (holding hdr/, crf/, noise/)")
    p.add_argument("--work", type=Path, default=Path("/tmp/hdrkit_bench"), help="cache for datasets and HTML reports")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results", help="where the .md/.json tables go")
    p.add_argument("--regime", action="append", choices=sorted(REGIMES), help="default: all")
    p.add_argument("--method", action="append", default=[], help="add a method (e.g. a learned one: ahdrnet); repeat")
    p.add_argument("--only", action="append", help="run only these methods (default: every classical merge and fusion "
                   "method + single_linearize); repeat")
    p.add_argument("--dtype", choices=["fp32", "bf16"], default=None, help="learned methods: fp32 (default) or bf16 autocast")
    p.add_argument("--device", default=None, help="learned methods: cpu | cuda | auto (default: CUDA when present)")
    p.add_argument("--weights", action="append", default=[], metavar="NAME=FILE",
                   help="safetensors weights for learned method NAME (until packaged weights ship); repeat")
    p.add_argument("--response", action="append", choices=sorted({r for _, _, r in RUNS}),
                   help="only the runs with this response (scene: the true one; calibrate: recovered); default: all")
    p.add_argument("--max-scenes", type=int, default=None, help="quick runs: first N scenes per regime")
    args = p.parse_args(argv)

    try:
        methods = method_list(args.only, args.method)
        options = method_options(methods, args.dtype, args.device, args.weights)
    except HdrkitError as e:
        p.error(str(e))
    runs = [(r, a, rs) for r, a, rs in RUNS if (args.regime is None or r in args.regime)
            and (args.response is None or rs in args.response)]
    args.out.mkdir(parents=True, exist_ok=True)
    all_results, wall = {}, {}
    t_all = time.perf_counter()
    for regime, align, response in runs:
        run = run_name(regime, align, response)
        t0 = time.perf_counter()
        root = synthesize_regime(regime, args.data, args.work)
        t_syn = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = evaluate(root, methods, args.work / run / "report", split="Test", max_scenes=args.max_scenes,
                       title=f"public benchmark, {run}", progress=True, response=response, align=align,
                       metrics=CALIBRATED_METRICS if response == "calibrate" else None,
                       method_options=options)
        wall[run] = time.perf_counter() - t0
        res.pop("images", None)
        res["metadata"]["data_dir"] = f"<work>/{regime}/data (synthesized, seed {SEED})"
        res["metadata"]["regime"] = {"name": regime, **REGIMES[regime]}
        write_text(args.out / f"{run}.json", json.dumps(res, indent=1) + "\n")
        write_text(args.out / f"{run}.md", render_markdown(res))
        all_results[run] = res
        print(f"{run}: synthesis {t_syn:.0f} s, evaluation {wall[run]:.0f} s; "
              f"report {args.work / run / 'report' / 'index.html'}", file=sys.stderr)
        for name, info in res["methods"].items():
            agg = info["aggregate"]
            print(f"  {name:18s} psnr_mu {format_value(agg.get('psnr_mu')):>6s}  psnr_l {format_value(agg.get('psnr_l')):>6s}"
                  f"  {format_value(agg.get('seconds'), 2):>6s} s/scene")
    if len(runs) == len(RUNS) and args.max_scenes is None:
        write_text(args.out / "README.md", summary_markdown(all_results, wall))
    print(f"total {time.perf_counter() - t_all:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
