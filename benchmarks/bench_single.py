"""Single-image HDR methods: accuracy over the highlights the photo clipped, size, speed and peak memory.

Run: python benchmarks/bench_single.py [--pairs 24] [--seed 2024] [--split validation] [--methods NAME ...]
                                       [--weights NAME=FILE ...] [--size 1500x1000] [--reps 2] [--threads 2]
                                       [--previews DIR] [--out benchmarks/results/single_image.md]

For every registered single-image method (``hdrkit methods``: kind ``single``; learned ones only when their
weights are shipped or given with ``--weights``; the others get speed and memory rows only, measured with random
weights, ``--untrained``):

- accuracy on ``--pairs`` held-out LDR/HDR pairs synthesized (``hdrkit.data.synthesize_dataset``,
  ``single_image=True``) from the ``--split`` radiance maps (``hdrkit.data.splits``; default the validation
  split, never seen in training), seed ``--seed``: crops of 384x512, one exposure that saturates 1-15 % of the
  pixels (uniform, as ``hdrkit.train`` trains), a random measured DoRF response, darktable sensor noise, 8-bit
  codes; the second half of the pairs JPEG-compressed at quality 90. Methods are blind: they get no response
  (gamma 2.2 where they need one). Scores: ``hdrkit.metrics.log2_rmse_regions``, i.e. log2 RMSE in stops over
  the pixels the photo clipped and over its well-exposed pixels, after the global scale fitted in the log
  domain on the well-exposed pixels; mean over pairs (a pair without clipped pixels counts only for the
  second number).
- parameters (learned methods), seconds per ``--size`` photo in fp32 and bf16 (``dtype`` of the learned
  part; classical operators run in float32 either way), medians of ``--reps`` runs after one warm-up, and peak
  RSS during the runs (the high-water mark reset through ``/proc/self/clear_refs`` once the method is built and
  the photo loaded; that starting RSS in brackets), each measurement in a fresh subprocess, on the CPU or CUDA
  when present.
- ``--previews DIR``: tone-mapped previews of each method on the real photos of
  ``<data>/single/hdrcnn_ldr`` (no ground truth: qualitative only).

Prints the tables and writes them as markdown to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_models import med, table, timed  # noqa: E402

from hdrkit.methods import all_methods, apply  # noqa: E402
from hdrkit.report import cpu_name, load_average  # noqa: E402
from hdrkit.train import default_data_root  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CROP = (384, 512)
CLIP = (0.01, 0.15)
JPEG_QUALITY = 90
VARIANTS = {"landis2002, HDR Toolbox defaults (R 0.5, alpha 2, k 3000)":
            ("landis2002", {"threshold": 0.5, "alpha": 2.0, "boost": 3000.0})}
"""Extra accuracy rows: a registered method with other options (label -> (method, options))."""


def single_methods(names=None) -> list[str]:
    found = [n for n, c in all_methods().items() if c.kind == "single"]
    return [n for n in names if n in found] if names else found


def make_pairs(split: str, n: int, seed: int, cache: Path) -> list[Path]:
    """Synthesize (once, cached) the held-out pairs; returns the LDR paths."""
    from hdrkit.data import find_pairs, synthesize_dataset
    from hdrkit.data.splits import split_paths

    data = default_data_root()
    out = cache / f"{split}_{seed}_{n}"
    done = out / ".complete"
    if not done.is_file():
        for half, jpeg in ((0, None), (1, JPEG_QUALITY)):
            synthesize_dataset(split_paths(data / "hdr", split), out / f"part{half}", n_scenes=n // 2 + half * (n % 2),
                               seed=seed + half, crop_size=CROP, response_family="dorf",
                               dorf_path=data / "crf" / "dorf_public_151.npz",
                               noise_profiles_path=data / "noise" / "darktable.json", bits=8, jpeg_quality=jpeg,
                               single_image=True, clip_quantiles=(1 - CLIP[1], 1 - CLIP[0]))
        done.write_text("ok\n")
    return [ldr for half in (0, 1) for ldr, _ in find_pairs(out / f"part{half}" / "Test" / "pairs")]


def build(name: str, weights: dict, dtype: str = "fp32", options: dict | None = None):
    card = all_methods()[name]
    opts = {"dtype": dtype, **({"weights": weights[name]} if name in weights else {})} if card.learned else {}
    return card, card.build(**opts, **(options or {}))


def accuracy(name: str, pairs: list[Path], weights: dict, options: dict | None = None) -> dict:
    from hdrkit.io import read_hdr, read_ldr
    from hdrkit.metrics import SINGLE_IMAGE_METRICS, log2_rmse_regions

    card, runner = build(name, weights, options=options)
    rows = []
    for p in pairs:
        ldr = read_ldr(p).image.float()
        hdr = read_hdr(p.with_suffix(".hdr")).float()
        out = apply(card, runner, ldr[None, None], torch.ones(1, 1), 0)[0]
        rows.append(log2_rmse_regions(out, hdr, ldr))
    res = {k: float(np.nanmean([r[k] for r in rows])) for k in SINGLE_IMAGE_METRICS}
    res["pairs_with_clipping"] = int(sum(np.isfinite(r["log2_rmse_clipped"]) for r in rows))
    return res


def photo(width: int, height: int) -> np.ndarray:
    """A (3, H, W) 8-bit-quantized photo of the procedural scene, exposed so that 5 % of it clips."""
    from hdrkit.camera import GammaResponse, expose
    from hdrkit.data import normalize_scene, procedural_scene

    hdr = normalize_scene(procedural_scene(height, width, seed=0), quantile=0.95)
    return expose(hdr[None], torch.ones(1, 1), GammaResponse(2.2), bits=8)[0, 0].numpy()


def _status_mib(key: str) -> float:
    """``VmRSS`` / ``VmHWM`` of this process from ``/proc/self/status``, in MiB."""
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(key + ":"))
    return int(line.split()[1]) / 1024


def worker(args) -> None:
    """One speed/memory measurement (runs in its own process): prints a JSON line."""
    torch.set_num_threads(args.threads)
    weights = dict(w.split("=", 1) for w in args.weights)
    x = torch.from_numpy(np.load(args.photo))[None, None]
    t = torch.ones(1, 1)
    card, runner = build(args.measure, weights, args.dtype)
    Path("/proc/self/clear_refs").write_text("5")  # Linux: reset the high-water mark to the current RSS
    res = {"rss_before_mib": _status_mib("VmRSS")}
    cuda = torch.cuda.is_available()
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    res["seconds"] = timed(lambda: apply(card, runner, x, t, 0), args.reps, sync)
    res["rss_peak_mib"] = _status_mib("VmHWM")
    if cuda:
        res["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(res))


def spawn(args, photo_path: Path, name: str, dtype: str) -> dict:
    cmd = [sys.executable, __file__, "--measure", name, "--dtype", dtype, "--photo", str(photo_path),
           "--reps", str(args.reps), "--threads", str(args.threads), *sum((["--weights", w] for w in args.weights), [])]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        print(f"{name} {dtype}: failed: {r.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return {}
    return json.loads(r.stdout.strip().splitlines()[-1])


def parameters(name: str, weights: dict) -> int | None:
    card = all_methods()[name]
    if not card.learned:
        return None
    from hdrkit.models import MODELS

    return sum(p.numel() for p in MODELS[name]().parameters())


def previews(names: list[str], weights: dict, out: Path) -> None:
    from hdrkit.io import read_ldr, write_ldr
    from hdrkit.tonemap import tonemap

    out.mkdir(parents=True, exist_ok=True)
    for p in sorted((default_data_root() / "single" / "hdrcnn_ldr").glob("*.png")):
        ldr = read_ldr(p).image.float()
        for name in names:
            card, runner = build(name, weights)
            hdr = apply(card, runner, ldr[None, None], torch.ones(1, 1), 0)[0]
            write_ldr(out / f"{p.stem}_{name}.png", tonemap(hdr), bits=8)


def mem(r: dict) -> str:
    """Peak RSS and, in brackets, the RSS before the measurement (Python, torch, the method and the photo)."""
    return f"{r['rss_peak_mib']:,.0f} ({r['rss_before_mib']:,.0f})" if r.get("rss_peak_mib") else "-"


def report(args, acc: dict, speed: dict, params: dict) -> str:
    w, h = args.size
    rows = []
    for name in acc:
        s32, s16 = speed.get((name, "fp32"), {}), speed.get((name, "bf16"), {})
        params.setdefault(name, None)
        cell = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
        rows.append([name, cell(acc[name]["log2_rmse_clipped"], ".3f"), cell(acc[name]["log2_rmse_exposed"], ".3f"),
                     cell(params[name], ",d"), cell(med(s32) if s32 else None, ".3f"), cell(med(s16) if s16 else None, ".3f"),
                     mem(s32), mem(s16)])
    base = acc.get("single_linearize", {}).get("log2_rmse_clipped")
    n_clip = next(iter(acc.values()))["pairs_with_clipping"] if acc else 0
    lines = [
        f"# Single-image HDR: {args.pairs} held-out pairs from the {args.split} split (seed {args.seed})",
        "",
        f"Machine: {cpu_name()}, {args.threads} threads, CUDA: {torch.cuda.is_available()}; load average "
        f"{args.load[0]:.1f} -> {load_average():.1f}. `python benchmarks/bench_single.py` (see its docstring for the protocol).",
        "",
        f"log2 RMSE in stops (lower is better) over the pixels the photo clipped ({n_clip} of {args.pairs} pairs have any) "
        "and over its well-exposed pixels, after one global scale fitted on the well-exposed pixels; "
        f"seconds and peak RSS in MiB (in brackets: before the runs) per {w}x{h} photo, median of {args.reps} runs; "
        "`-`: not measured (accuracy-only variants) or not applicable (parameters of classical operators).",
        "",
        table(["method", "clipped", "well-exposed", "parameters", "s fp32", "s bf16", "MiB fp32", "MiB bf16"], rows),
    ]
    if base:
        lines += ["", "Clipped-pixel error relative to `single_linearize`: "
                  + ", ".join(f"{n} {acc[n]['log2_rmse_clipped'] / base:.3f}" for n in acc) + "."]
    return "\n".join(lines) + "\n"


def random_weights(name: str, folder: Path) -> Path:
    """A randomly initialized ``name`` saved as safetensors in ``folder`` (for speed and memory only)."""
    from hdrkit.models import MODELS
    from hdrkit.models.weights import save_weights

    torch.manual_seed(0)
    path = folder / f"{name}_random.safetensors"
    save_weights(MODELS[name](), path)
    return path


def untrained_report(args, names: list[str], speed: dict, params: dict) -> str:
    if not names or not speed:
        return ""
    w, h = args.size
    rows = []
    for n in names:
        s32, s16 = speed.get((n, "fp32"), {}), speed.get((n, "bf16"), {})
        rows.append([n, format(params[n], ",d"), format(med(s32), ".3f") if s32 else "-", format(med(s16), ".3f") if s16 else "-",
                     mem(s32), mem(s16)])
    return "\n".join([
        "", "## Learned methods without shipped weights: cost per photo", "",
        f"Registered networks that ship no weights yet (not trained to a useful point, see their model files and the README), "
        f"measured with randomly initialized weights (the same arithmetic as trained ones; `--untrained`): seconds and peak "
        f"RSS in MiB per {w}x{h} photo, as above. Their accuracy is not reported.", "",
        table(["method", "parameters", "s fp32", "s bf16", "MiB fp32", "MiB bf16"], rows), ""])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=24)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--split", default="validation", choices=["validation", "training"])
    ap.add_argument("--methods", nargs="*")
    ap.add_argument("--weights", action="append", default=[], help="NAME=FILE for a learned method")
    ap.add_argument("--size", type=lambda s: tuple(int(v) for v in s.lower().split("x")), default=(1500, 1000))
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--previews", type=Path)
    ap.add_argument("--cache", type=Path, default=ROOT / ".cache" / "bench_single")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "single_image.md")
    ap.add_argument("--untrained", nargs="*", default=None,
                    help="learned methods measured for speed and memory only, with randomly initialized weights (the same "
                         "arithmetic as trained ones); default: every learned single-image method without weights")
    ap.add_argument("--measure", help=argparse.SUPPRESS)
    ap.add_argument("--dtype", default="fp32", help=argparse.SUPPRESS)
    ap.add_argument("--photo", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        return worker(args)
    torch.set_num_threads(args.threads)
    args.load = [load_average()]
    weights = dict(w.split("=", 1) for w in args.weights)
    names = [n for n in single_methods(args.methods)
             if not all_methods()[n].learned or all_methods()[n].weights_available or n in weights]
    pairs = make_pairs(args.split, args.pairs, args.seed, args.cache)
    acc = {n: accuracy(n, pairs, weights) for n in names}
    acc.update({label: accuracy(m, pairs, weights, o) for label, (m, o) in VARIANTS.items() if m in names})
    params = {n: parameters(n, weights) for n in names}
    untrained = [n for n in single_methods(args.untrained) if all_methods()[n].learned and n not in names] if args.untrained != [] else []
    speed = {}
    if not args.no_speed:
        with tempfile.TemporaryDirectory() as tmp:
            photo_path = Path(tmp) / "photo.npy"
            np.save(photo_path, photo(*args.size))
            speed = {(n, d): spawn(args, photo_path, n, d) for n in names for d in ("fp32", "bf16")}
            for n in untrained:
                args.weights.append(f"{n}={random_weights(n, Path(tmp))}")
                params[n] = parameters(n, weights)
                speed.update({(n, d): spawn(args, photo_path, n, d) for d in ("fp32", "bf16")})
    if args.previews:
        previews(names, weights, args.previews)
    text = report(args, acc, speed, params) + untrained_report(args, untrained, speed, params)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
