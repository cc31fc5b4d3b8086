"""Speed of hdrkit.merge against OpenCV on a 3 x 1500x1000 8-bit bracket (CPU, 2 threads).

Run: python benchmarks/bench_merge.py [--reps 7]

Prints median wall times of our merges and OpenCV's, and the ratio ours / OpenCV (lower is
better). Inputs are prepared once in each library's own layout (ours: uint8 or float (1, 3, 3, H, W)
tensors; OpenCV: a list of HxWx3 uint8 arrays), so layout conversion is not timed. Each of our
merges is timed alternately with its OpenCV counterpart, so machine load hits both alike.
"""

from __future__ import annotations

import argparse
import statistics
import time

import cv2
import numpy as np
import torch

from hdrkit.camera.response import TabulatedResponse
from hdrkit.merge import fuse_mertens2007, merge_debevec1997, merge_granados2013, merge_robertson2003


def paired(ours, theirs, reps: int) -> tuple[float, float]:
    """Median wall times of ``ours`` and ``theirs``, run alternately after one warm-up each (so both
    see the same machine load)."""
    ours(), theirs()
    a, b = [], []
    for _ in range(reps):
        for fn, ts in ((ours, a), (theirs, b)):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    return statistics.median(a), statistics.median(b)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args()
    torch.set_num_threads(2)
    cv2.setNumThreads(2)
    h, w = 1000, 1500
    rng = np.random.default_rng(0)
    low = cv2.resize(rng.normal(0, 1.5, (h // 50, w // 50, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    rad = np.exp(low + rng.normal(0, 0.15, (h, w, 3)).astype(np.float32)) * 0.3
    times = np.array([0.25, 1.0, 4.0], np.float32)
    imgs = [(np.clip(rad * t, 0, 1) ** (1 / 2.2) * 255 + 0.5).astype(np.uint8) for t in times]
    resp = cv2.createCalibrateDebevec().process(imgs, times)
    table = resp.reshape(256, 3).T.astype(np.float64)
    response = TabulatedResponse(table / table[:, -1:])
    ldr8 = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous()[None]
    ldrf = ldr8.float() * np.float32(1 / 255)  # as hdrkit.io reads 8-bit files (the CLI path)
    t = torch.from_numpy(times)[None]
    md, mr, mm = cv2.createMergeDebevec(), cv2.createMergeRobertson(), cv2.createMergeMertens(1.0, 1.0, 1.0)
    cv_deb, cv_rob, cv_mer = (lambda: md.process(imgs, times, resp)), (lambda: mr.process(imgs, times, resp)), (lambda: mm.process(imgs))
    few = max(3, args.reps // 2)
    cases = [
        ("debevec opencv_hat, uint8", lambda: merge_debevec1997(ldr8, t, response, weighting="opencv_hat"), "MergeDebevec", cv_deb, args.reps),
        ("debevec opencv_hat, float on 8-bit grid", lambda: merge_debevec1997(ldrf, t, response, weighting="opencv_hat"), "MergeDebevec", cv_deb, args.reps),
        ("debevec noise_optimal, uint8", lambda: merge_debevec1997(ldr8, t, response), "MergeDebevec", cv_deb, args.reps),
        ("debevec noise_optimal, float on 8-bit grid", lambda: merge_debevec1997(ldrf, t, response), "MergeDebevec", cv_deb, args.reps),
        ("deghost granados2013 (CLI default)", lambda: merge_granados2013(ldrf, t, response), "MergeDebevec", cv_deb, few),
        ("deghost granados2013, calibrate=False", lambda: merge_granados2013(ldrf, t, response, calibrate=False), "MergeDebevec", cv_deb, few),
        ("robertson gaussian, float on 8-bit grid", lambda: merge_robertson2003(ldrf, t, response), "MergeRobertson", cv_rob, few),
        ("mertens, uint8", lambda: fuse_mertens2007(ldr8), "MergeMertens", cv_mer, args.reps),
    ]
    rows = []
    with torch.inference_mode():
        for _, ours, _, theirs, _ in cases:  # warm-up: caches, thread pools and the allocator
            ours(), theirs()
        for name, ours, cvname, theirs, reps in cases:
            rows.append((name, *paired(ours, theirs, reps), cvname))
    print(f"3 x {w}x{h} uint8, torch {torch.__version__} ({torch.get_num_threads()} threads), OpenCV {cv2.__version__} (2 threads); medians, ratio = ours / OpenCV")
    print(f"{'ours':<42} {'ms':>8}   {'OpenCV':<15} {'ms':>8}   {'ratio':>6}")
    for name, ours, cvt, cvname in rows:
        print(f"{name:<42} {ours * 1e3:8.1f}   {cvname:<15} {cvt * 1e3:8.1f}   {ours / cvt:6.2f}")


if __name__ == "__main__":
    main()
