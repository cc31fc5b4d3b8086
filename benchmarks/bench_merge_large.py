"""Wall time and peak RSS of ``hdrkit merge`` on a large (default 6000x4000) 3-frame 16-bit TIFF bracket.

Run: python benchmarks/bench_merge_large.py [--size 6000x4000] [--method ahdrnet] [--dtype bf16]
                                           [--weights PATH] [--limit-gb 8] [--align none]

``--size`` is WIDTHxHEIGHT. The script writes a synthetic bracket to a temporary folder (or ``--work``,
where it is kept and reused): the built-in procedural scene rendered at up to 1500x1000, upsampled
bicubically to the size and given full-resolution texture (log-normal, 5 %), exposed at t = 1, 4, 16 with
gamma 2.2 and written as three 16-bit TIFFs. It then runs the command line in a fresh process,

    python -m hdrkit.cli merge F1 F2 F3 --times 1 4 16 --method M --align A -o out.exr [--weights W] [--dtype D]

(``--align`` defaults to none here; ``--method deghost --align homography`` is the ``hdrkit merge`` default.)

and prints its wall time, CPU time and peak RSS (``ru_maxrss`` of that process, from ``os.wait4``), against
``--limit-gb``. ``--weights``/``--dtype`` (and ``--device``, ``--max-memory``) are passed only when
``hdrkit merge --help`` lists them; the output says which were dropped. Without ``--weights`` a learned
method gets a randomly initialized weights file written by the script (no weights are shipped yet), so
only time and memory are meaningful, not the image.

If the command line fails (e.g. it cannot run learned methods or take ``--weights`` yet), the script says
so and measures the same steps through the library instead, in a fresh process: ``hdrkit.io.read_bracket``,
``hdrkit.methods.run_method(method, ..., weights=, dtype=)``, ``hdrkit.io.write_hdr``; that row is
labelled ``library``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from hdrkit.report import cpu_name

TIMES = (1.0, 4.0, 16.0)
SCENE_MAX = (1500, 1000)  # largest procedural render (width, height); larger sizes are upsampled

LIBRARY = r"""
import sys, torch
from hdrkit.io import read_bracket, write_hdr
from hdrkit.methods import get_method, run_method
from hdrkit.pipeline import resolve_response
frames, times, method, out, weights, dtype = sys.argv[1:4], [float(t) for t in sys.argv[4].split(",")], sys.argv[5], sys.argv[6], sys.argv[7], sys.argv[8]
bracket = read_bracket(frames, times=times)
ref = bracket.ldr.shape[0] // 2
crf = resolve_response("gamma", bracket)
opts = {}
if get_method(method).learned:
    opts = {"dtype": dtype, **({"weights": weights} if weights else {})}
image = run_method(method, bracket.ldr[None], bracket.exposure_times[None].float(), ref, response=crf,
                   bits=max(bracket.bits), **opts)
write_hdr(out, image[0])
print(f"merged with {method} {opts} -> {out}")
"""


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"--size must be WIDTHxHEIGHT, e.g. 6000x4000; got {text!r}") from None
    return w, h


def write_bracket(folder: Path, width: int, height: int, seed: int = 0) -> list[Path]:
    """Three 16-bit TIFFs of a synthetic scene (reused when already in ``folder``)."""
    import torch.nn.functional as F

    from hdrkit.camera import GammaResponse
    from hdrkit.data import normalize_scene, procedural_scene
    from hdrkit.io import write_ldr

    paths = [folder / f"frame_t{int(t)}_{width}x{height}.tif" for t in TIMES]
    if all(p.is_file() for p in paths):
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    k = max(1.0, width / SCENE_MAX[0], height / SCENE_MAX[1])
    sw, sh = max(64, round(width / k)), max(64, round(height / k))
    hdr = normalize_scene(procedural_scene(sh, sw, seed=seed))
    if (sw, sh) != (width, height):
        # bicubic in log space (no negative radiance), then full-resolution texture; about 1 GB at 6000x4000
        log = F.interpolate(torch.log(hdr.clamp_min(1e-6))[None], size=(height, width), mode="bicubic",
                            align_corners=False)[0]
        log += 0.05 * torch.randn(log.shape, generator=torch.Generator().manual_seed(seed))
        hdr = log.exp_()
        del log
    resp = GammaResponse(2.2)
    for p, t in zip(paths, TIMES):
        write_ldr(p, resp.forward((hdr * t).clamp(0, 1)), bits=16)
    return paths


def cli_flags() -> set[str]:
    p = subprocess.run([sys.executable, "-m", "hdrkit.cli", "merge", "--help"], capture_output=True, text=True)
    return set(re.findall(r"(--[a-z][a-z0-9-]*)", p.stdout))


def measure(cmd: list[str]) -> dict:
    """Run ``cmd``; wall seconds, CPU seconds, peak RSS (bytes) of that process, exit code, output tail."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log:
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        log.seek(0)
        tail = log.read().strip().splitlines()[-3:]
    return {"rc": p.returncode, "wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "peak_rss": ru.ru_maxrss * 1024,
            "tail": tail}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[1:]))
    ap.add_argument("--size", default="6000x4000", help="bracket WIDTHxHEIGHT (default 6000x4000)")
    ap.add_argument("--method", default="ahdrnet", help="merge method (default ahdrnet; `hdrkit methods` lists them)")
    ap.add_argument("--dtype", default="bf16", choices=("fp32", "bf16"), help="for learned methods (default bf16)")
    ap.add_argument("--weights", default=None, help="weights file (default: random init written by this script)")
    ap.add_argument("--device", default=None, help="passed as --device when the CLI has it")
    ap.add_argument("--max-memory", default=None, help="GB of activations per tile, passed as --max-memory when the CLI has it")
    ap.add_argument("--align", default="none", help="alignment passed to hdrkit merge (default none; homography is the CLI default)")
    ap.add_argument("--limit-gb", type=float, default=8.0, help="peak RSS limit to check against, GB = 1e9 bytes (default 8)")
    ap.add_argument("--work", default=None, help="keep the bracket here and reuse it (default: a temporary folder)")
    ap.add_argument("--no-fallback", action="store_true", help="do not measure the library path when the CLI fails")
    args = ap.parse_args()
    w, h = parse_size(args.size)

    from hdrkit.methods import get_method

    card = get_method(args.method)
    with tempfile.TemporaryDirectory(prefix="hdrkit_merge_large_") as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        t0 = time.perf_counter()
        frames = write_bracket(work, w, h)
        print(f"bracket: 3 x {w}x{h} 16-bit TIFF, t = 1, 4, 16, gamma 2.2, in {work} "
              f"({sum(p.stat().st_size for p in frames) / 1e6:.0f} MB, {time.perf_counter() - t0:.1f} s)", file=sys.stderr)
        weights, random_weights = args.weights, False
        if card.learned and weights is None:
            from hdrkit.models import MODELS
            from hdrkit.models.weights import save_weights

            torch.manual_seed(0)
            weights = str(Path(tmp) / f"{args.method}_random.safetensors")
            save_weights(MODELS[args.method](), weights)
            random_weights = True
        out = Path(tmp) / "out.exr"

        flags = cli_flags()
        cmd = [sys.executable, "-m", "hdrkit.cli", "merge", *map(str, frames), "--times", *(f"{t:g}" for t in TIMES),
               "--method", args.method, "--align", args.align, "-o", str(out)]
        dropped = []
        wanted = [("--weights", weights), ("--device", args.device), ("--max-memory", args.max_memory)]
        if card.learned:
            wanted.insert(1, ("--dtype", args.dtype))
        for flag, value in wanted:
            if value is None:
                continue
            if flag in flags:
                cmd += [flag, str(value)]
            else:
                dropped.append(flag)
        runs = []
        print("running: " + " ".join(Path(c).name if c == sys.executable else c for c in cmd), file=sys.stderr, flush=True)
        r = measure(cmd)
        r["path"] = "CLI"
        runs.append(r)
        if r["rc"] != 0:
            print(f"`hdrkit merge` failed (exit {r['rc']}): {' | '.join(r['tail'])}", file=sys.stderr)
            if not args.no_fallback:
                lib = [sys.executable, "-c", LIBRARY, *map(str, frames), ",".join(f"{t:g}" for t in TIMES), args.method,
                       str(out), weights or "", args.dtype]
                print("measuring the same steps through the library instead (read_bracket, run_method, write_hdr)",
                      file=sys.stderr)
                r = measure(lib)
                r["path"] = "library"
                runs.append(r)
                if r["rc"] != 0:
                    print(f"library path failed (exit {r['rc']}): {' | '.join(r['tail'])}", file=sys.stderr)
        out_mb = out.stat().st_size / 1e6 if out.is_file() else None

    load = os.getloadavg()
    print(f"{cpu_name()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
          f"(default threads {torch.get_num_threads()}); load average {load[0]:.1f}")
    notes = []
    if random_weights:
        notes.append("weights are random (written by this script): only time and memory are meaningful")
    if dropped:
        notes.append(f"`hdrkit merge` has no {', '.join(dropped)} option: not passed"
                     + (f" (dtype was the CLI's default, not {args.dtype})" if "--dtype" in dropped else ""))
    print()
    print(f"| path    | method | align | size | dtype | wall s | CPU s | peak RSS GB | under {args.limit_gb:g} GB |")
    print("|:--------|:-------|:------|-----:|:------|-------:|------:|------------:|:-----------|")
    for r in runs:
        ok = "failed" if r["rc"] != 0 else ("yes" if r["peak_rss"] < args.limit_gb * 1e9 else "**no**")
        dt = args.dtype if card.learned and (r["path"] == "library" or "--dtype" not in dropped) else "-"
        print(f"| {r['path']:<7} | {args.method} | {args.align} | {w}x{h} | {dt} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | "
              f"{r['peak_rss'] / 1e9:.2f} | {ok} |")
    print()
    if out_mb is not None:
        notes.append(f"output: {out_mb:.1f} MB EXR")
    for n in notes:
        print(f"- {n}")
    if runs[-1]["rc"] != 0:
        sys.exit(1)


if __name__ == "__main__":
    main()
