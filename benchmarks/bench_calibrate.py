"""Camera response recovery: hdrkit vs OpenCV on a 3 x 1500x1000 8-bit bracket (time and accuracy).

Usage: python benchmarks/bench_calibrate.py [--repeats 5] [--dorf K]

The bracket is synthetic: a smooth random radiance field over ~12 stops, exposed at 1, 4, 16
(2 EV steps) with darktable's median ISO 400 noise through DoRF curve K (if ../shared/data is
present) or the sRGB curve. Times are medians over repeats and include hdrkit's float->code
conversion; OpenCV gets the uint8 frames it needs, prepared outside the timer. Accuracy is RMS
over 1024 codes of f^-1 against the truth, both normalized to f^-1(1) = 1, worst channel.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from hdrkit.camera import (
    NoiseModel,
    SRGBResponse,
    TabulatedResponse,
    expose,
    load_dorf,
    recover_response_debevec1997,
    recover_response_robertson2003,
)

ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path | None:
    env = os.environ.get("HDRKIT_DATA")
    for cand in ([Path(env)] if env else []) + [ROOT.parent / "shared" / "data"]:
        if cand.is_dir():
            return cand
    return None


def scene(h=1000, w=1500, stops=12.0, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    field = F.interpolate(torch.randn(1, 1, h // 16, w // 16, generator=g), size=(h, w), mode="bicubic")[0, 0]
    ramp = torch.linspace(-1, 1, w).expand(h, w)
    log2 = field / field.std() * stops / 6 + ramp * stops / 3
    tint = torch.tensor([1.0, 0.85, 0.7]).view(3, 1, 1)
    return torch.exp2(log2)[None].expand(3, h, w) * tint


def rms(response, truth) -> float:
    a, b = response.table(1024), truth.table(1024)
    return float(((a - b) ** 2).mean(dim=1).sqrt().max())


def timed(fn, repeats):
    out, times = None, []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, statistics.median(times)


def opencv_table(inv: np.ndarray) -> TabulatedResponse:
    """OpenCV's (256, 1, 3) BGR response -> RGB TabulatedResponse normalized to f^-1(1) = 1."""
    t = inv[:, 0, ::-1].T.astype(np.float64)
    return TabulatedResponse(t / t[:, -1:])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dorf", type=int, default=20)
    args = ap.parse_args()

    d = data_dir()
    truth = load_dorf(d / "crf" / "dorf_public_151.npz", args.dorf) if d else SRGBResponse()
    times = np.array([1.0, 4.0, 16.0])
    hdr = scene()
    hdr = hdr * (0.3 / (float(hdr.mean(0).median()) * times[1]))
    noise = NoiseModel(a=(2.5e-5,) * 3, b=(5.7e-8,) * 3)
    ldr = expose(hdr[None], torch.tensor(times)[None], truth, noise, 8, torch.Generator().manual_seed(0))[0].float()
    frames = [np.ascontiguousarray((f.permute(1, 2, 0).numpy()[:, :, ::-1] * 255).round().astype(np.uint8)) for f in ldr]
    t32 = times.astype(np.float32)

    rows = []
    ours, t_ours = timed(lambda: recover_response_debevec1997(ldr, times), args.repeats)
    cv, t_cv = timed(lambda: cv2.createCalibrateDebevec(samples=70).process(frames, t32), args.repeats)
    rows.append(("Debevec 1997", t_ours, t_cv, rms(ours, truth), rms(opencv_table(cv), truth)))
    rep = max(1, min(args.repeats, 3))
    ours, t_ours = timed(lambda: recover_response_robertson2003(ldr, times), rep)
    cv, t_cv = timed(lambda: cv2.createCalibrateRobertson().process(frames, t32), rep)
    rows.append(("Robertson 2003", t_ours, t_cv, rms(ours, truth), rms(opencv_table(cv), truth)))

    print(f"3 x {hdr.shape[2]}x{hdr.shape[1]} 8-bit bracket, t = {times.tolist()}, truth = {truth!r}, torch threads {torch.get_num_threads()}")
    print(f"{'method':16s} {'hdrkit ms':>10s} {'OpenCV ms':>10s} {'ratio':>6s} {'hdrkit RMS':>11s} {'OpenCV RMS':>11s}")
    for name, a, b, ra, rb in rows:
        print(f"{name:16s} {a * 1e3:10.1f} {b * 1e3:10.1f} {a / b:6.2f} {ra:11.4f} {rb:11.4f}")


if __name__ == "__main__":
    main()
