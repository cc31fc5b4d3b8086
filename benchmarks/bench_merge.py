"""Speed of hdrkit.merge against OpenCV on a 3 x 1500x1000 8-bit bracket (CPU, 2 threads).

Run: python benchmarks/bench_merge.py [--reps 5]

Prints median wall times of our merges and OpenCV's, and the ratio ours / OpenCV (lower is
better). Inputs are prepared once in each library's own layout (ours: uint8 or float (1, 3, 3, H, W)
tensors; OpenCV: a list of HxWx3 uint8 arrays), so layout conversion is not timed.
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


def timeit(fn, reps: int) -> float:
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
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
    ldrf = ldr8.float() / 255
    t = torch.from_numpy(times)[None]
    md, mr, mm = cv2.createMergeDebevec(), cv2.createMergeRobertson(), cv2.createMergeMertens(1.0, 1.0, 1.0)
    rows = []
    with torch.inference_mode():
        cv_deb = timeit(lambda: md.process(imgs, times, resp), args.reps)
        rows.append(("debevec opencv_hat, uint8 (LUT)", timeit(lambda: merge_debevec1997(ldr8, t, response, weighting="opencv_hat"), args.reps), "MergeDebevec", cv_deb))
        rows.append(("debevec noise_optimal, uint8 (LUT)", timeit(lambda: merge_debevec1997(ldr8, t, response), args.reps), "MergeDebevec", cv_deb))
        rows.append(("debevec noise_optimal, float path", timeit(lambda: merge_debevec1997(ldrf, t, response), args.reps), "MergeDebevec", cv_deb))
        cv_rob = timeit(lambda: mr.process(imgs, times, resp), args.reps)
        rows.append(("robertson (float path)", timeit(lambda: merge_robertson2003(ldrf, t, response), args.reps), "MergeRobertson", cv_rob))
        cv_mer = timeit(lambda: mm.process(imgs), args.reps)
        rows.append(("mertens", timeit(lambda: fuse_mertens2007(ldr8), args.reps), "MergeMertens", cv_mer))
        rows.append(("deghost granados2013 (default)", timeit(lambda: merge_granados2013(ldrf, t, response), max(1, args.reps // 2)), "MergeDebevec", cv_deb))
    print(f"3 x {w}x{h} uint8, torch {torch.__version__} ({torch.get_num_threads()} threads), OpenCV {cv2.__version__}")
    print(f"{'ours':<38} {'ms':>8}   {'OpenCV':<15} {'ms':>8}   {'ratio':>6}")
    for name, ours, cvname, cvt in rows:
        print(f"{name:<38} {ours * 1e3:8.1f}   {cvname:<15} {cvt * 1e3:8.1f}   {ours / cvt:6.2f}")


if __name__ == "__main__":
    main()
