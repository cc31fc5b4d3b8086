"""Speed of the default ``hdrkit merge`` pipeline against OpenCV on the same files, in one process.

Run: python benchmarks/bench_pipeline_speed.py [--stack DIR] [--reps 7] [--out benchmarks/results/pipeline_speed.md]
                                              [--threads N] [--profile]

The stack defaults to ``../shared/data/stacks/pingpong`` (3 JPEG frames, 1920x1080, EXIF exposure times
1/1000, 1/250 and 1/60 s). Every hdrkit case is timed alternately with its OpenCV counterpart, after one
warm-up run of each, in this one process with both libraries at their default thread counts; the table
gives medians of ``--reps`` runs and their ratio (hdrkit / OpenCV; the targets are issue 9's, on wall time). Other jobs
share the machine, so absolute times move with the load; the ratios are what the runs compare. The CPU-time
ratio (CPU seconds of this process, all threads, per run) moves less with the load than the wall-time ratio
and shows what each side would cost on an idle machine with the same threads; ``--threads 1`` compares the
two libraries single-threaded.

| case | hdrkit | OpenCV |
|---|---|---|
| default pipeline | ``hdr_from_brackets(files)``: read (EXIF), homography alignment, deghosting merge | ``cv2.imread`` x 3, ``AlignMTB``, ``CalibrateDebevec``, ``MergeDebevec`` |
| MTB alignment | ``align_mtb_ward2003`` on the bracket as read (float32 codes, exposure times, gamma 2.2) | ``AlignMTB.process`` on the decoded frames |
| MTB alignment, 8-bit codes | ``align_mtb_ward2003`` on the same uint8 frames OpenCV gets (codes in, codes out) | ``AlignMTB.process`` on the decoded frames |
| debevec, no alignment | ``hdr_from_brackets(files, method='debevec', align_method='none')`` | ``cv2.imread`` x 3, ``MergeDebevec`` with a known response (gamma 2.2 table) |

Further rows (no target) break the default pipeline down: the other ``--align`` choices, and the merges on
frames already in memory. ``--profile`` prints a CPU-time profile (one thread) of each hdrkit case. The
``hdrkit --help`` row runs the command line in a fresh process and says whether it imported torch.

Where the time went (CPU-time profiles, one thread, 3 x 1920x1080 pingpong; the profile notes of the
performance work on issue 9, section 2):

- before: read 0.1 s; homography alignment 5.3 s (full-resolution MTB initialization 3.5 s of it: a
  Python loop of torch reductions per candidate shift; full-resolution float64 correlation checks, a
  full-resolution comparison at 3 candidates and a ``grid_sample`` warp with float64 coordinates); the
  deghosting merge 2.1 s with homography-warped frames (off the code grid: float formulas, ``pow`` per
  pixel) and 5.7 s unwarped (masks, calibration and blurs at full resolution over (N, 3, H, W) float
  tensors); ``--align mtb`` 1.2 s in MTB (the same per-shift loop) and the fill of uncovered strips
  knocked the merge off the code grid; ``--method debevec --align none`` 0.2 s in process (3.7 s from
  the shell, 2.8 s of it importing).
- after: every estimate (MTB start, ECC, photometric matching, checks, model selection) on comparison
  images of at most 1024 px built from per-code tables, and the homography applied once to the full
  frames (``cv2.warpPerspective``, rounded to the 16-bit code grid); MTB on uint8 bitmaps with one
  OpenCV AND and two non-zero counts per candidate, frames on parallel threads; ghost test and
  calibration fit at 1/2 resolution for 1920x1080 (1/4 for 6000x4000), the merge at full resolution
  from per-code tables in row bands on threads. Then (session 5): JPEG decoded by OpenCV, homography warps on
  16-bit codes, ECC stopping at a 1e-5 correlation gain with one 960x540 iteration. What remains: ECC itself
  (~0.09 s per frame), the 16-bit gathers, the calibration gain and the two ghost tests of the merge.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hdrkit.align import align_homography, align_mtb_ward2003  # noqa: E402
from hdrkit.camera.response import GammaResponse  # noqa: E402
from hdrkit.io import read_bracket  # noqa: E402
from hdrkit.merge import merge_debevec1997, merge_granados2013  # noqa: E402
from hdrkit.pipeline import hdr_from_brackets  # noqa: E402
from hdrkit.report import cpu_name  # noqa: E402

TARGETS = {"default pipeline": 3.0, "MTB alignment": 1.5, "MTB alignment, 8-bit codes": 1.5, "debevec, no alignment": 1.0}


def paired(ours, theirs, reps: int) -> tuple[float, float, float, float]:
    """Median wall seconds of ``ours`` and ``theirs``, run alternately after one warm-up each, and the median
    CPU seconds of this process (all its threads) over the same runs."""
    ours(), theirs()
    wall, cpu = ([], []), ([], [])
    for _ in range(reps):
        for k, fn in enumerate((ours, theirs)):
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall[k].append(time.perf_counter() - t0)
            cpu[k].append(time.process_time() - c0)
    return (*map(statistics.median, wall), *map(statistics.median, cpu))


def cli_help() -> tuple[float, bool]:
    """Wall seconds of ``python -m hdrkit.cli --help`` in a fresh process (median of 3), and whether it imported torch."""
    cmd = [sys.executable, "-X", "importtime", "-m", "hdrkit.cli", "--help"]
    walls, torch_seen = [], False
    for _ in range(3):
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        walls.append(time.perf_counter() - t0)
        torch_seen |= any(line.rstrip().endswith("| torch") for line in p.stderr.splitlines())
    return statistics.median(walls), torch_seen


def cpu_profile(fn, top: int = 12) -> str:
    torch_threads, cv_threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        fn()
        pr = cProfile.Profile(time.process_time)
        pr.enable()
        fn()
        pr.disable()
    finally:
        torch.set_num_threads(torch_threads)
        cv2.setNumThreads(cv_threads)
    s = io.StringIO()
    pstats.Stats(pr, stream=s).sort_stats("cumulative").print_stats(top)
    return "\n".join(line for line in s.getvalue().splitlines() if line.strip())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stack", type=Path, default=Path(os.environ.get("HDRKIT_DATA", ROOT.parent / "shared" / "data")) / "stacks" / "pingpong")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--out", type=Path, default=None, help="also write the table as markdown here")
    ap.add_argument("--profile", action="store_true", help="print a one-thread CPU-time profile of every hdrkit case")
    ap.add_argument("--threads", type=int, default=None, help="torch and OpenCV threads (default: their defaults)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    files = sorted(p for p in args.stack.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".tif", ".tiff"))
    bracket = read_bracket(files)
    paths = [str(p) for p in bracket.paths]  # exposure order, shortest first
    seconds = bracket.seconds.numpy().astype(np.float32)
    ldr, t = bracket.ldr, bracket.exposure_times.to(torch.float32)
    gamma = GammaResponse(2.2)
    n, _, h, w = ldr.shape
    imgs = [cv2.imread(p) for p in paths]
    known = (np.arange(256, dtype=np.float64) / 255) ** 2.2
    known = np.repeat(np.maximum(known, 1e-6).astype(np.float32)[:, None, None], 3, axis=2)  # (256, 1, 3)
    mtb, calib, merge = cv2.createAlignMTB(), cv2.createCalibrateDebevec(), cv2.createMergeDebevec()

    def cv_default():
        frames = [cv2.imread(p) for p in paths]
        out = [np.zeros_like(f) for f in frames]  # AlignMTB writes the shifted content; borders stay black
        mtb.process(frames, out)
        out[n // 2] = frames[n // 2]  # AlignMTB leaves the pivot to the caller's list
        merge.process(out, seconds, calib.process(out, seconds))

    def cv_mtb():
        mtb.process(imgs, [np.empty_like(f) for f in imgs])

    aligned = align_homography(ldr, t, gamma).ldr[None]
    codes8 = torch.from_numpy(np.stack([np.ascontiguousarray(im[..., ::-1].transpose(2, 0, 1)) for im in imgs]))  # as decoded, RGB
    cases = [
        ("default pipeline", "hdr_from_brackets (read, homography, deghost)", lambda: hdr_from_brackets(paths),
         "imread + AlignMTB + CalibrateDebevec + MergeDebevec", cv_default),
        ("MTB alignment", "align_mtb_ward2003", lambda: align_mtb_ward2003(ldr, exposure_times=t, response=gamma),
         "AlignMTB", cv_mtb),
        ("MTB alignment, 8-bit codes", "align_mtb_ward2003 on the uint8 codes", lambda: align_mtb_ward2003(codes8, exposure_times=t, response=gamma),
         "AlignMTB", cv_mtb),
        ("debevec, no alignment", "hdr_from_brackets(method='debevec', align_method='none')",
         lambda: hdr_from_brackets(paths, method="debevec", align_method="none"),
         "imread + MergeDebevec (known response)", lambda: merge.process([cv2.imread(p) for p in paths], seconds, known)),
        ("pipeline, --align mtb", "hdr_from_brackets(align_method='mtb')", lambda: hdr_from_brackets(paths, align_method="mtb"),
         "imread + AlignMTB + CalibrateDebevec + MergeDebevec", cv_default),
        ("pipeline, --align none", "hdr_from_brackets(align_method='none')", lambda: hdr_from_brackets(paths, align_method="none"),
         "imread + AlignMTB + CalibrateDebevec + MergeDebevec", cv_default),
        ("homography alignment", "align_homography", lambda: align_homography(ldr, t, gamma), "AlignMTB", cv_mtb),
        ("deghost merge, in memory", "merge_granados2013 (homography-aligned frames)",
         lambda: merge_granados2013(aligned, t[None], gamma), "MergeDebevec (known response)",
         lambda: merge.process(imgs, seconds, known)),
        ("debevec merge, in memory", "merge_debevec1997", lambda: merge_debevec1997(ldr[None], t[None], gamma),
         "MergeDebevec (known response)", lambda: merge.process(imgs, seconds, known)),
    ]
    load0 = os.getloadavg()
    rows = []
    for name, ours_name, ours, theirs_name, theirs in cases:
        a, b, ca, cb = paired(ours, theirs, args.reps)
        target = TARGETS.get(name)
        ok = "" if target is None else ("yes" if a / b <= target else "**no**")
        rows.append((name, ours_name, a, theirs_name, b, a / b, ca / cb, target, ok))
        print(f"{name:28s} hdrkit {a * 1e3:8.1f} ms   OpenCV {b * 1e3:8.1f} ms   ratio {a / b:5.2f}   CPU ratio {ca / cb:5.2f}"
              + (f"   target <= {target:g}: {ok}" if target else ""), flush=True)
    help_s, help_torch = cli_help()
    load1 = os.getloadavg()
    head = (f"{n} x {w}x{h} frames from `{args.stack.name}`, {cpu_name()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), OpenCV {cv2.__version__} ({cv2.getNumThreads()} threads); medians of {args.reps} "
            f"alternating runs after a warm-up; load average {load0[0]:.1f} -> {load1[0]:.1f}.")
    lines = [head, "", "| case | hdrkit | s | OpenCV | s | ratio | CPU-time ratio | target (wall ratio) |",
             "|:---|:---|---:|:---|---:|---:|---:|:---|"]
    for name, on, a, tn, b, ratio, cpu_ratio, target, ok in rows:
        lines.append(f"| {name} | {on} | {a:.3f} | {tn} | {b:.3f} | {ratio:.2f} | {cpu_ratio:.2f} | "
                     f"{'' if target is None else f'<= {target:g}: {ok}'} |")
    lines += ["", f"`hdrkit --help` in a fresh process: {help_s:.2f} s wall, torch imported: {'yes' if help_torch else 'no'}."]
    print("\n".join(lines[-1:]))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")
        print(f"-> {args.out}")
    if args.profile:
        for name, _, ours, _, _ in cases[:6]:
            print(f"\n## {name}: CPU-time profile, one thread\n{cpu_profile(ours)}")


if __name__ == "__main__":
    main()
