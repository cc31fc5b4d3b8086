"""Every merge method side by side: quality on the public validation set, size, speed and memory.

Run: python benchmarks/side_by_side.py [--results DIR ...] [--methods NAME ...] [--threads 2]
                                       [--size 1500x1000] [--speed FILE.json] [--out benchmarks/results/side_by_side.md]

``--speed FILE.json`` keeps the speed and memory measurements: methods already in the file are not measured
again (the quality columns can be refreshed alone), the others are measured and added.

Quality comes from the public benchmark's JSON files in each ``--results`` folder (``python
benchmarks/public_benchmark.py``: ``kalantari_gamma16.json`` and ``phone_dorf8.json``, true response, homography
alignment; a later folder adds methods, e.g. a network trained here but not shipped, evaluated with
``--only NAME --weights NAME=FILE --out DIR``): PSNR-mu, PSNR-L and SSIM-mu of the static and of the dynamic
scenes. A network with neither shipped weights nor results gets ``-``: untrained weights have no quality.

Speed and memory are measured here for every method, each in a fresh process: one ``run_method`` call on a
1500x1000 3-frame 8-bit bracket (the procedural scene of ``bench_models.py``, t = 1, 4, 16, gamma 2.2,
reference the middle frame), after a warm-up call on a 256x256 crop; learned networks in fp32 and in bf16
autocast, through ``hdrkit.models.inference.run_model`` (tiled at its default memory budget, including the
network's whole-image ``prepare``; randomly initialized where no weights ship: weights do not change speed).
Alignment is not included (the bracket is aligned). Peak memory is the process's peak RSS (``ru_maxrss``),
Python and torch included. Other jobs on the machine slow every number: the load average is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_models import count_parameters, make_bracket, parse_size, rss_peak_mib  # noqa: E402

REGIMES = (("kalantari_gamma16", "gamma 2.2, 16-bit"), ("phone_dorf8", "DoRF 8-bit + noise"))
WARMUP = 256
REFERENCE = 1


def worker(method: str, data: str, dtype: str, threads: int) -> dict:
    """Time one ``run_method`` call (after a small warm-up) and return seconds, peak RSS and parameters."""
    torch.set_num_threads(threads)
    from hdrkit.camera import GammaResponse
    from hdrkit.methods import get_method, run_method

    z = np.load(data)
    ldr, times = torch.from_numpy(z["ldr"]), torch.from_numpy(z["times"])
    card = get_method(method)
    params = 0
    if card.learned and not card.weights_available:
        from hdrkit.models import MODELS
        from hdrkit.models.inference import run_model

        torch.manual_seed(0)
        model = MODELS[method]().eval()
        params = count_parameters(model)[1]

        def run(x):
            return run_model(model, x, times, torch.tensor([REFERENCE]), dtype=dtype)
    else:
        opts = {"dtype": dtype} if card.learned else {}
        if card.learned:
            from hdrkit.models import create_model

            params = count_parameters(create_model(method, pretrained=True))[1]

        def run(x):
            return run_method(method, x, times, REFERENCE, response=GammaResponse(2.2), bits=8, **opts)
    run(ldr[..., :WARMUP, :WARMUP].contiguous())
    t0 = time.perf_counter()
    out = run(ldr)
    seconds = time.perf_counter() - t0
    if not torch.isfinite(out).all():
        raise SystemExit(f"{method}: non-finite output")
    return {"seconds": seconds, "rss_peak_mib": rss_peak_mib(), "params": params}


def spawn(method: str, data: Path, dtype: str, threads: int) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", method, "--data", str(data), "--dtype", dtype,
           "--threads", str(threads)]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
    if p.returncode != 0 or not lines:
        tail = (p.stderr.strip().splitlines() or ["(no output)"])[-1]
        print(f"  {method} {dtype}: failed: {tail}", file=sys.stderr)
        return {"error": tail}
    r = json.loads(lines[-1][len("RESULT "):])
    print(f"  {method} {dtype}: {r['seconds']:.2f} s, {r['rss_peak_mib']:.0f} MiB", file=sys.stderr)
    return r


def quality(folders: list[Path]) -> dict[str, dict[str, dict]]:
    """``{regime: {method: {'static'|'dynamic': {metric: mean}}}}`` from the public benchmark's JSON files (a
    method in several folders: the last one's)."""
    out: dict[str, dict] = {regime: {} for regime, _ in REGIMES}
    for results, (regime, _) in ((r, g) for r in folders for g in REGIMES):
        path = results / f"{regime}.json"
        if not path.is_file():
            raise SystemExit(f"{path}: missing; run `python benchmarks/public_benchmark.py` first")
        res = json.loads(path.read_text())
        for name, info in res["methods"].items():
            if info.get("output") != "radiance":
                continue
            subsets = {}
            for subset in ("static", "dynamic"):
                rows = [r for s, r in info["scenes"].items() if s.startswith(subset + "/")]
                subsets[subset] = {m: float(np.mean([r[m] for r in rows])) for m in ("psnr_mu", "psnr_l", "ssim_mu")
                                   if rows and all(r.get(m) is not None for r in rows)}
            out[regime][name] = subsets
    return out


def cell(q: dict | None, metric: str, digits: int) -> str:
    if not q:
        return "-"
    s, d = q["static"].get(metric), q["dynamic"].get(metric)
    return " / ".join("-" if v is None else f"{v:.{digits}f}" for v in (s, d))


def markdown(q: dict, speed: dict, size: tuple[int, int], load: tuple[float, float], threads: int, machine: str) -> str:
    from hdrkit.methods import get_method

    w, h = size
    head = ["method", "weights", "parameters"]
    for _, label in REGIMES:
        head += [f"{label}: PSNR-mu static / dynamic", "PSNR-L", "SSIM-mu"]
    head += [f"s per {w}x{h} fp32 / bf16", "peak RSS MiB fp32 / bf16"]
    rows = []
    for name, sp in speed.items():
        card = get_method(name)
        fp, bf = sp.get("fp32", {}), sp.get("bf16", {})
        params = fp.get("params") or bf.get("params") or 0
        trained = name in q[REGIMES[0][0]]
        shipped = "shipped" if card.weights_available else ("n/a" if not card.learned else ("not shipped" if trained else "none"))
        row = [f"`{name}`", shipped, f"{params:,}" if card.learned else "0"]
        for regime, _ in REGIMES:
            qq = q[regime].get(name)
            row += [cell(qq, "psnr_mu", 2), cell(qq, "psnr_l", 2), cell(qq, "ssim_mu", 4)]
        secs = " / ".join(f"{r['seconds']:.2f}" if "seconds" in r else "error" for r in (fp, bf) if r)
        mems = " / ".join(f"{r['rss_peak_mib']:,.0f}" if "rss_peak_mib" in r else "error" for r in (fp, bf) if r)
        rows.append(row + [secs, mems])
    lines = [
        "# All merge methods side by side",
        "",
        "Generated by `python benchmarks/side_by_side.py`; do not edit by hand.",
        "",
        f"Speed measured on {machine}, torch {torch.__version__} ({threads} threads); load average "
        f"{load[0]:.1f} -> {load[1]:.1f} (other jobs share the machine: seconds are upper bounds).",
        "",
        "Quality: public validation set (`benchmarks/results/README.md`: 4 static + 18 dynamic 512x384 scenes per "
        "regime, true response, homography alignment), means over the static and over the dynamic scenes. "
        "`not shipped`: trained here, scored from its checkpoint by the public benchmark (a later `--results` "
        "folder), below the shipping rule; `none`: untrained, no quality (`-`). Speed and memory: one call on a "
        f"{w}x{h} 3-frame 8-bit bracket, in a fresh process, alignment excluded, learned networks through tiled "
        "`run_model` (their whole-image priors included).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join([":---"] * 2 + ["---:"] * (len(head) - 2)) + "|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, action="append", help="public benchmark results folder(s) (default benchmarks/results)")
    ap.add_argument("--speed", type=Path, default=None, help="speed/memory measurements: written if missing, else read")
    ap.add_argument("--methods", nargs="+", default=None, help="default: every radiance merge in the results plus every learned merge network")
    ap.add_argument("--size", default="1500x1000")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--dtype", default="fp32", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print("RESULT " + json.dumps(worker(args.worker, args.data, args.dtype, args.threads)))
        return 0
    from hdrkit.methods import all_methods, get_method

    q = quality(args.results or [ROOT / "benchmarks" / "results"])
    methods = args.methods or list(dict.fromkeys(
        [n for n in q[REGIMES[0][0]]] + [n for n, c in all_methods().items() if c.learned and c.kind == "merge"]))
    stored = json.loads(args.speed.read_text()) if args.speed is not None and args.speed.is_file() else {}
    size = tuple(stored.get("size") or parse_size(args.size))
    threads = stored.get("threads", args.threads)
    speed, load = stored.get("speed", {}), stored.get("load", [os.getloadavg()[0]] * 2)
    from hdrkit.report import cpu_name

    machine = stored.get("machine") or f"{cpu_name()}, {os.cpu_count()} CPUs"
    todo = [n for n in methods if n not in speed]
    if todo:
        load0 = os.getloadavg()[0]
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "bracket.npz"
            ldr, times, _ = make_bracket(*size)
            np.savez(data, ldr=ldr, times=times)
            for name in todo:
                dtypes = ("fp32", "bf16") if get_method(name).learned else ("fp32",)
                speed[name] = {dt: spawn(name, data, dt, threads) for dt in dtypes}
        load = [min(load[0], load0), max(load[1], os.getloadavg()[0])] if stored else [load0, os.getloadavg()[0]]
        if args.speed is not None:
            from hdrkit.report import write_text

            write_text(args.speed, json.dumps({"speed": speed, "size": size, "load": load, "threads": threads, "machine": machine},
                                              indent=1))
    speed = {n: speed[n] for n in methods}
    md = markdown(q, speed, size, load, threads, machine)
    print(md)
    if args.out:
        from hdrkit.report import write_text

        write_text(args.out, md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
