"""Learned networks: size, MACs, inference time and peak memory (fp32 / bf16), training and data throughput.

Run: python benchmarks/bench_models.py [--size 1500x1000] [--reps 2] [--models ahdrnet deghost_refine]
                                       [--out results.json]

``--size`` is WIDTHxHEIGHT. The bracket is the built-in procedural scene (``hdrkit.data.procedural_scene``,
normalized by ``normalize_scene``) exposed with ``hdrkit.camera.expose`` at t = 1, 4, 16, gamma 2.2,
8-bit, reference the middle frame. Networks are randomly initialized (weights do not change speed).
For every network it prints, one markdown table per group:

- size: trainable and total parameters; MACs of one forward of the learned part (``refine``) on the
  whole bracket at the size, counted with forward hooks on Conv2d / ConvTranspose2d / Linear on the meta
  device (multiply-accumulates of those layers only: element-wise work is not counted; tiled inference
  recomputes the tile overlaps on top of this); the core tile side ``run_model`` picks at its default
  memory budget (``-`` = whole image in one piece).
- inference: seconds of ``model.prepare`` (the whole-image non-learned priors) and of the whole
  ``hdrkit.models.inference.run_model`` (prepare + tiled refine) in fp32 and in bf16 autocast; medians of
  ``--reps`` runs after one warm-up, torch (and OpenCV) threads = ``--threads``.
- memory: peak RSS (``ru_maxrss``) of each of those measurements, and of the process before it started
  (Python, torch, the model and the bracket). Every measurement runs in a fresh subprocess, so peaks do
  not mix; the bracket is generated once by the parent and handed over as a .npy file.
- training: patches/s of optimizer steps as ``hdrkit.train.fit`` takes them (batch 8 of 128x128 patches,
  Adam, mu-law L1, gradient clipping; bf16 autocast and fp32), ``model(ldr, t, ref, priors=priors)`` with
  the priors computed once by ``prepare`` on the patch batch; and data generation: patches/s of
  ``PatchDataset`` item assembly with the network's priors, collated as ``fit`` does (``hdrkit.train._batch``),
  in one process, from 256x256 scene crops (``DataConfig.crop``), with ``--threads`` and with 1 torch thread
  (collation is ``torch.stack``, which uses intra-op threads), and without priors for comparison. ``fit``
  assembles a batch and then steps in the same process, so its rate is ``1 / (1 / train + 1 / data)``;
  the table shows that (bf16, ``--threads``) and the share of each step spent on data.

bf16 is faster than fp32 on a CPU only with native bf16 instructions (AVX512-BF16 or AMX); the machine line
says whether this CPU has them. Other processes on the machine slow every number: the load average at the
start and end is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hdrkit.report import cpu_name

PATCH = 128
BATCH = 8
CROP = 256
TIMES = (1.0, 4.0, 16.0)
REFERENCE = 1


# ---------------------------------------------------------------- helpers

def parse_size(text: str) -> tuple[int, int]:
    """'1500x1000' -> (width, height)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"--size must be WIDTHxHEIGHT, e.g. 1500x1000; got {text!r}") from None
    return w, h


def make_bracket(width: int, height: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ldr (1, 3, 3, H, W) float32 8-bit codes, times (1, 3), hdr (3, H, W) ground truth)."""
    from hdrkit.camera import GammaResponse, expose
    from hdrkit.data import normalize_scene, procedural_scene

    hdr = normalize_scene(procedural_scene(height, width, seed=seed))
    times = torch.tensor([TIMES], dtype=torch.float32)
    ldr = expose(hdr[None], times, GammaResponse(2.2), bits=8)
    return ldr.numpy(), times.numpy(), hdr.numpy()


def rss_peak_mib() -> float:
    """High-water resident set size of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def count_macs(model: torch.nn.Module, run) -> int:
    """Multiply-accumulates of Conv2d / ConvTranspose2d / Linear layers during ``run()``."""
    total = 0

    def hook(mod, inputs, output):
        nonlocal total
        if isinstance(mod, torch.nn.ConvTranspose2d):
            x = inputs[0]  # every input element meets (C_out / groups) x kernel weights
            total += x.numel() * (mod.out_channels // mod.groups) * mod.kernel_size[0] * mod.kernel_size[1]
        elif isinstance(mod, torch.nn.Conv2d):
            total += output.numel() * (mod.in_channels // mod.groups) * mod.kernel_size[0] * mod.kernel_size[1]
        elif isinstance(mod, torch.nn.Linear):
            total += output.numel() * mod.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear))]
    try:
        run()
    finally:
        for h in handles:
            h.remove()
    return total


def refine_macs(name: str, n: int, height: int, width: int) -> int:
    """MACs of one ``refine`` on a (1, n, 3, H, W) bracket, traced on the meta device (no memory, no time).

    Prior shapes come from a real ``prepare`` on a 64x64 bracket. Data-dependent indexing (``nonzero``)
    has no meta kernel; it is allowed to assume every element is selected, which changes index values,
    never the shapes that convolutions see.
    """
    import torch.fx.experimental._config as fx_config

    from hdrkit.models import MODELS

    small = MODELS[name]().eval()
    t = torch.tensor([TIMES[:n]])
    with torch.inference_mode():
        priors = small.prepare(torch.rand(1, n, 3, 64, 64), t, torch.tensor([REFERENCE]), None)
    d = small.size_divisor
    hp, wp = -(-height // d) * d, -(-width // d) * d  # run_model pads to the size divisor
    model = MODELS[name]().to("meta").eval()
    meta = {k: torch.empty(*v.shape[:-2], hp, wp, device="meta") for k, v in priors.items()}
    ldr = torch.empty(1, n, 3, hp, wp, device="meta")
    old = fx_config.meta_nonzero_assume_all_nonzero
    fx_config.meta_nonzero_assume_all_nonzero = True
    try:
        with torch.inference_mode():
            return count_macs(model, lambda: model.refine(ldr, t.to("meta"), torch.tensor([REFERENCE], device="meta"), **meta))
    finally:
        fx_config.meta_nonzero_assume_all_nonzero = old


def timed(fn, reps: int, sync=lambda: None) -> list[float]:
    fn()
    sync()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync()
        out.append(time.perf_counter() - t0)
    return out


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


# ---------------------------------------------------------------- worker (one measurement per process)

def worker(args) -> dict:
    import cv2

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    from hdrkit.models import MODELS
    from hdrkit.models.inference import resolve_device, run_model, tile_size

    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    z = np.load(args.data)
    ldr, times, hdr = torch.from_numpy(z["ldr"]), torch.from_numpy(z["times"]), torch.from_numpy(z["hdr"])
    n, h, w = ldr.shape[1], ldr.shape[-2], ldr.shape[-1]
    ref = torch.tensor([REFERENCE])
    torch.manual_seed(0)
    model = MODELS[args.model]().eval()
    res: dict = {}
    kind = args.worker

    if kind == "size":
        res["params_trainable"], res["params_total"] = count_parameters(model)
        res["macs"] = refine_macs(args.model, n, h, w)
        for dt in ("fp32", "bf16"):
            side = tile_size(model, 1, dt)
            res[f"tile_{dt}"] = None if side >= h and side >= w else side
        return res

    res["rss_before_mib"] = rss_peak_mib()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    if kind == "prepare":
        model.to(device)
        x, tt, rr = ldr.to(device), times.to(device), ref.to(device)

        def fn():
            with torch.inference_mode():
                model.prepare(x, tt, rr, None)
        res["seconds"] = timed(fn, args.reps, sync)
    elif kind == "run":
        res["seconds"] = timed(lambda: run_model(model, ldr, times, ref, device=device, dtype=args.dtype), args.reps, sync)
    elif kind == "train":
        from hdrkit.losses import mu_l1

        if h < PATCH or w < PATCH:
            raise SystemExit(f"training patches are {PATCH}x{PATCH}; the bracket is only {w}x{h}")
        rng = np.random.default_rng(0)
        ys, xs = rng.integers(0, h - PATCH + 1, BATCH), rng.integers(0, w - PATCH + 1, BATCH)
        lp = torch.stack([ldr[0, :, :, y:y + PATCH, x:x + PATCH] for y, x in zip(ys, xs)]).to(device)
        hp = torch.stack([hdr[:, y:y + PATCH, x:x + PATCH] for y, x in zip(ys, xs)]).to(device)
        tp, rp = times.expand(BATCH, n).contiguous().to(device), ref.expand(BATCH).contiguous().to(device)
        model.to(device)
        with torch.no_grad():
            priors = model.prepare(lp, tp, rp, None)
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        bf16 = args.dtype == "bf16"
        model.train()

        def step():
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                pred = model(lp, tp, rp, priors=priors)
            loss = mu_l1(pred.float(), hp)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        step()  # Adam's state is allocated on the first step; timed() warms up once more
        res["seconds"] = timed(step, args.train_steps, sync)
        res["patches_per_s"] = BATCH / statistics.median(res["seconds"])
    elif kind == "data":
        from hdrkit.data import PatchDataset
        from hdrkit.train import PreparedScene, _batch

        ch, cw = min(CROP, h), min(CROP, w)
        corners = [(0, 0), (h - ch, w - cw), (0, w - cw), (h - ch, 0)]
        scenes = []
        for i, (y, x) in enumerate(corners):
            crop_ldr = ldr[:, :, :, y:y + ch, x:x + cw].contiguous()
            with torch.inference_mode():
                priors = model.prepare(crop_ldr, times, ref, None)
            scenes.append(PreparedScene(f"crop{i}", crop_ldr[0], times[0], hdr[:, y:y + ch, x:x + cw].contiguous(),
                                        REFERENCE, {k: v[0].numpy() for k, v in priors.items()}))
        res["prior_channels"] = int(sum(np.prod(v.shape[:-2]) for v in scenes[0].priors.values()))
        patch = min(PATCH, ch, cw)
        bare = [PreparedScene(s.name, s.ldr, s.exposure_times, s.hdr, s.reference, {}) for s in scenes]
        for key, sc, threads in (("patches_per_s", scenes, args.threads), ("patches_per_s_no_priors", bare, args.threads),
                                 ("patches_per_s_1thread", scenes, 1)):
            torch.set_num_threads(threads)  # collation (torch.stack) uses intra-op threads
            ds = PatchDataset(sc, patch_size=patch, seed=0)
            order = np.random.default_rng(0).permutation(len(ds))
            nb = args.data_batches
            _batch(ds, order[:BATCH])
            _batch(ds, order[BATCH:2 * BATCH])
            t0 = time.perf_counter()
            for j in range(nb):
                k = (j * BATCH) % (len(ds) - BATCH)
                _batch(ds, order[k:k + BATCH])
            res[key] = nb * BATCH / (time.perf_counter() - t0)
    else:
        raise SystemExit(f"unknown worker {kind!r}")
    res["rss_peak_mib"] = rss_peak_mib()
    if cuda:
        res["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return res


def spawn(args, data: Path, model: str, kind: str, dtype: str = "fp32") -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--model", model, "--data", str(data),
           "--dtype", dtype, "--reps", str(args.reps), "--threads", str(args.threads), "--device", args.device,
           "--train-steps", str(args.train_steps), "--data-batches", str(args.data_batches)]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
    if p.returncode != 0 or not lines:
        tail = (p.stderr.strip().splitlines() or ["(no output)"])[-1]
        print(f"  {model} {kind} {dtype}: failed (exit {p.returncode}): {tail}", file=sys.stderr)
        return {"error": tail}
    r = json.loads(lines[-1][len("RESULT "):])
    print(f"  {model} {kind} {dtype}: done in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return r


# ---------------------------------------------------------------- tables

def med(r: dict, key: str = "seconds"):
    return statistics.median(r[key]) if key in r else None


def fmt(v, spec: str) -> str:
    return "error" if v is None else format(v, spec)


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).rjust(wd) if i else str(c).ljust(wd) for i, (c, wd) in enumerate(zip(cells, widths))) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (wd + 1) + ":" if i else ":" + "-" * (wd + 1) for i, wd in enumerate(widths)) + "|"
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


def report(out: dict) -> str:
    w, h = out["size"]
    res = out["results"]
    parts = [out["machine_line"], ""]
    busy = max(out["load_start"][0], out["load_end"][0])
    if busy > out["cpu_count"] - out["threads"] + 0.5:
        why = (f"; {out['threads']} intra-op threads that wait on each other can run many times slower than on an idle "
               "machine (compare `--threads 1`)" if out["threads"] > 1 else "")
        parts += [f"**Warning**: load average {busy:.1f} on {out['cpu_count']} CPUs: other processes share the cores{why}. "
                  "Treat these numbers as upper bounds.", ""]

    rows = []
    for name, r in res.items():
        s = r["size"]
        if "error" in s:
            rows.append([name, "error", "error", "error", "error", "error"])
            continue
        tiles = [("-" if s[f"tile_{d}"] is None else str(s[f"tile_{d}"])) for d in ("fp32", "bf16")]
        rows.append([name, f"{s['params_trainable']:,}", f"{s['params_total']:,}", f"{s['macs'] / 1e9:,.1f}",
                     f"{s['macs'] / (w * h) / 1e3:,.0f}", " / ".join(tiles)])
    parts += [f"**Size** (MACs: Conv/Linear multiply-accumulates of one `refine` on the whole {w}x{h} bracket; "
              "tile: core side `run_model` picks at its default 4 GiB budget, fp32 / bf16, `-` = untiled)", "",
              table(["model", "params (trainable)", "params (total)", f"GMACs @ {w}x{h}", "kMACs / pixel", "tile fp32 / bf16"], rows), ""]

    rows = []
    for name, r in res.items():
        p, f, b = med(r["prepare"]), med(r["run_fp32"]), med(r["run_bf16"])
        ratio = f / b if f and b else None
        rows.append([name, fmt(p, ".2f"), fmt(f, ".2f"), fmt(b, ".2f"), fmt(ratio, ".2f")])
    parts += [f"**Inference**, seconds per {w}x{h} 3-frame bracket (median of {out['reps']} after a warm-up; "
              "`run_model` includes `prepare`)", "",
              table(["model", "prepare", "run_model fp32", "run_model bf16", "bf16 speed-up"], rows), ""]

    rows = []
    for name, r in res.items():
        cells = [name, fmt(r["run_fp32"].get("rss_before_mib"), ",.0f")]
        for key in ("prepare", "run_fp32", "run_bf16", "train_fp32", "train_bf16"):
            cells.append(fmt(r[key].get("rss_peak_mib"), ",.0f"))
        rows.append(cells)
    parts += ["**Peak memory**, MiB of peak RSS, each measurement in its own process (`before`: Python, torch, "
              "the model and the bracket, before the measured work)", "",
              table(["model", "before", "prepare", "run_model fp32", "run_model bf16", "train fp32", "train bf16"], rows), ""]

    rows = []
    for name, r in res.items():
        tf, tb = r["train_fp32"].get("patches_per_s"), r["train_bf16"].get("patches_per_s")
        d, d0, d1 = (r["data"].get(k) for k in ("patches_per_s", "patches_per_s_no_priors", "patches_per_s_1thread"))
        serial = 1 / (1 / tb + 1 / d) if tb and d else None
        share = tb / (tb + d) * 100 if tb and d else None
        rows.append([name, fmt(tf, ".1f"), fmt(tb, ".1f"), fmt(d, ",.0f"), fmt(d0, ",.0f"), fmt(d1, ",.0f"),
                     fmt(serial, ".1f"), fmt(share, ".1f")])
    parts += [f"**Training**, patches/s (batch {BATCH} of {PATCH}x{PATCH}: Adam steps; data: `PatchDataset` items "
              "with the model's priors, collated as `fit` does, one process; `fit` bf16: the rate of `fit`'s loop, "
              "which assembles each batch then steps, in one process)", "",
              table(["model", "train fp32", "train bf16", "data", "data (no priors)", "data (1 thread)", "fit bf16",
                     "data % of a step"], rows)]
    return "\n".join(parts)


# ---------------------------------------------------------------- main

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[1:]))
    ap.add_argument("--size", default="1500x1000", help="bracket WIDTHxHEIGHT (default 1500x1000)")
    ap.add_argument("--reps", type=int, default=2, help="timed runs per inference measurement, after one warm-up")
    ap.add_argument("--models", nargs="+", default=None, help="networks (default: every one in hdrkit.models.MODELS)")
    ap.add_argument("--out", default=None, help="also write every number (and raw timings) to this JSON file")
    ap.add_argument("--threads", type=int, default=2, help="torch and OpenCV threads (default 2)")
    ap.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    ap.add_argument("--train-steps", type=int, default=5, help="timed optimizer steps (median; default 5)")
    ap.add_argument("--data-batches", type=int, default=50, help="batches assembled for the data rate (default 50)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--dtype", default="fp32", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        print("RESULT " + json.dumps(worker(args)))
        return

    from hdrkit.models import MODELS

    names = args.models or list(MODELS)
    unknown = [m for m in names if m not in MODELS]
    if unknown:
        raise SystemExit(f"unknown model(s) {unknown}: choose from {', '.join(MODELS)}")
    w, h = parse_size(args.size)
    flags = cpu_flags()
    native_bf16 = sorted(flags & {"avx512_bf16", "amx_bf16"})
    load0 = os.getloadavg()
    out = {"size": [w, h], "reps": args.reps, "threads": args.threads, "device": args.device,
           "torch": torch.__version__, "cpu": cpu_name(), "cpu_count": os.cpu_count(),
           "cpu_capability": torch.backends.cpu.get_cpu_capability(), "native_bf16": native_bf16,
           "load_start": load0, "results": {}}
    with tempfile.TemporaryDirectory(prefix="hdrkit_bench_models_") as tmp:
        t0 = time.perf_counter()
        ldr, times, hdr = make_bracket(w, h)
        data = Path(tmp) / "bracket.npz"
        np.savez(data, ldr=ldr, times=times, hdr=hdr)
        del ldr, times, hdr
        print(f"bracket {w}x{h} synthesized in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        for name in names:
            r = out["results"][name] = {}
            r["size"] = spawn(args, data, name, "size")
            r["prepare"] = spawn(args, data, name, "prepare")
            for dt in ("fp32", "bf16"):
                r[f"run_{dt}"] = spawn(args, data, name, "run", dt)
            for dt in ("fp32", "bf16"):
                r[f"train_{dt}"] = spawn(args, data, name, "train", dt)
            r["data"] = spawn(args, data, name, "data")
    out["load_end"] = os.getloadavg()
    bf = f"native bf16: {', '.join(native_bf16)}" if native_bf16 else "no native bf16 (AVX512-BF16/AMX): bf16 will not be faster"
    out["machine_line"] = (f"{out['cpu']} ({out['cpu_count']} CPUs, {bf}, torch ISA {out['cpu_capability']}); "
                           f"torch {torch.__version__}, {args.threads} threads, device {args.device}; "
                           f"load average {load0[0]:.1f} at start, {out['load_end'][0]:.1f} at end")
    print(report(out))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
