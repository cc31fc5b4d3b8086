"""Alignment speed: hdrkit MTB vs OpenCV ``AlignMTB.process``, and hdrkit homography, on 3 x 1500x1000.

Frames are the Kalantari 2017 test scene 002 from ``$HDRKIT_DATA`` or ``../shared/data`` when
present (shifted by known amounts; a 0.5 degree rotation is added to frame 0 for the homography),
otherwise (or with ``--synthetic``) a synthetic bracket. Prints a table of median wall times (and whether each
method recovered the known shifts), and checks that the unshifted bracket stays unwarped. Usage: ``python benchmarks/bench_align.py [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from hdrkit.align import align_homography, align_mtb_ward2003, warp_homography

ROOT = Path(__file__).resolve().parents[1]
SHIFTS = [(-7, 12), (0, 0), (5, -3)]
TIMES = torch.tensor([1.0, 8.0, 64.0])
H, W = 1000, 1500


def synthetic(h: int, w: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    field = torch.zeros(1, 1, h, w)
    for octave in (8, 32, 128):
        small = torch.randn(1, 1, h // octave + 2, w // octave + 2, generator=g)
        field += F.interpolate(small, size=(h, w), mode="bicubic") * (octave / 128) ** 0.5
    return torch.exp(2 * field).expand(1, 3, h, w) / torch.exp(2 * field).quantile(0.99)


def load_bracket(margin: int = 16, synthetic_only: bool = False, shifts=SHIFTS) -> tuple[torch.Tensor, str]:
    """(3, 3, H, W) codes shifted by ``shifts`` (frame_i[y, x] = ref[y + dy, x + dx])."""
    data = Path(os.environ.get("HDRKIT_DATA", ROOT.parent / "shared" / "data"))
    stack = data / "stacks" / "kalantari17_002"
    if (stack / "input_2_aligned.jpg").exists() and not synthetic_only:
        frames = []
        for i, (dy, dx) in enumerate(shifts):
            bgr = cv2.imread(str(stack / f"input_{i + 1}_aligned.jpg"))
            rgb = torch.from_numpy(np.ascontiguousarray(bgr[..., ::-1])).permute(2, 0, 1).float() / 255
            rgb = F.pad(rgb[None], (margin, margin, margin, margin), mode="replicate")[0]
            hh, ww = rgb.shape[1] - 2 * margin, rgb.shape[2] - 2 * margin
            frames.append(rgb[:, margin + dy : margin + dy + hh, margin + dx : margin + dx + ww])
        return torch.stack(frames), "kalantari17_002 (JPEG, EV 0/3/6)"
    scene = synthetic(H + 2 * margin, W + 2 * margin)
    frames = []
    for (dy, dx), t in zip(shifts, TIMES):
        crop = scene[0, :, margin + dy : margin + dy + H, margin + dx : margin + dx + W]
        frames.append((crop * t).clamp(0, 1).pow(1 / 2.2))
    return torch.stack(frames), "synthetic"


def timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--synthetic", action="store_true", help="use the synthetic bracket even if the data exist")
    ap.add_argument("--threads", type=int, default=1, help="torch and OpenCV threads (1 = fair, stable comparison)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    ldr, source = load_bracket(synthetic_only=args.synthetic)
    n, _, h, w = ldr.shape
    expected = [list(s) for s in SHIFTS]
    codes = [np.ascontiguousarray((f.permute(1, 2, 0).numpy()[..., ::-1] * 255).round().astype(np.uint8)) for f in ldr]

    t_ours, res = timed(lambda: align_mtb_ward2003(ldr, exposure_times=TIMES), args.repeats)
    ok_ours = res.info["shifts"].tolist() == expected

    mtb = cv2.createAlignMTB()
    t_cv, _ = timed(lambda: mtb.process(codes, [c.copy() for c in codes]), args.repeats)
    grey = [cv2.cvtColor(c, cv2.COLOR_BGR2GRAY) for c in codes]
    cv_shifts = [[int(p[1]), int(p[0])] for p in (mtb.calculateShift(grey[1], g) for g in grey)]
    ok_cv = cv_shifts == expected

    # homography on the same frames with a known small rotation added to frame 0
    a = math.radians(0.5)
    c = np.array([[1, 0, (w - 1) / 2], [0, 1, (h - 1) / 2], [0, 0, 1.0]])
    rot = c @ np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]]) @ np.linalg.inv(c)
    warped = ldr.clone()
    warped[0] = warp_homography(ldr[0:1], torch.tensor(rot[None], dtype=torch.float32), padding_mode="border")[0]
    t_h, hres = timed(lambda: align_homography(warped, TIMES), max(1, args.repeats // 2))
    # truth: aligned_i(p) = frame_i(T_i p) with T_0 = R^-1 @ translate(-d_0), T_2 = translate(-d_2)
    def translate(dy, dx):
        return np.array([[1, 0, -dx], [0, 1, -dy], [0, 0, 1.0]])

    truth = {0: np.linalg.inv(rot) @ translate(*SHIFTS[0]), 2: translate(*SHIFTS[2])}
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1.0]]).T

    def corner_err(a, b):
        pa, pb = a @ corners, b @ corners
        return float(np.abs(pa[:2] / pa[2] - pb[:2] / pb[2]).max())

    errs = [corner_err(hres.transforms[i].numpy(), truth[i]) for i in (0, 2)]

    # the same frames without any motion (the unshifted source frames): alignment must stay the identity
    static, _ = load_bracket(synthetic_only=args.synthetic, shifts=[(0, 0)] * len(SHIFTS))
    t_s, sres = timed(lambda: align_homography(static, TIMES), max(1, args.repeats // 2))
    moves = [corner_err(sres.transforms[i].numpy(), np.eye(3)) for i in range(n)]

    load = ", load average %.1f" % os.getloadavg()[0] if hasattr(os, "getloadavg") else ""
    print(f"source: {source}, {n} x {w}x{h}, threads {args.threads}, repeats {args.repeats}{load}")
    print(f"{'method':<38} {'median s':>9} {'ratio':>7}  shifts ok")
    print(f"{'hdrkit align_mtb_ward2003':<38} {t_ours:9.3f} {t_ours / t_cv:7.2f}  {ok_ours} {res.info['shifts'].tolist()}")
    print(f"{'cv2.createAlignMTB().process':<38} {t_cv:9.3f} {1.0:7.2f}  {ok_cv} {cv_shifts}")
    print(f"{'hdrkit align_homography (ecc)':<38} {t_h:9.3f} {t_h / t_cv:7.2f}  corner error px {errs[0]:.2f}, {errs[1]:.2f}")
    print(f"{'hdrkit align_homography, static':<38} {t_s:9.3f} {t_s / t_cv:7.2f}  corner move px {max(moves):.2f} "
          f"(source frames unshifted), chose {sres.info['method']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
