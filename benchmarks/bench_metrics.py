"""Time hdrkit.metrics at 1500 x 1000 x 3 (the Kalantari test resolution) and print a table.

Compares our fast float32 SSIM with scikit-image (Wang settings) and with the literal float64 protocol
(tests/reference/protocol_reference.py), and times PSNR, PU21 and the torch SSIM. The value column
shows that the paths agree. Median of ``--reps`` runs after one warm-up.

    python benchmarks/bench_metrics.py [--reps 5] [--flip]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from skimage.metrics import structural_similarity

from hdrkit.metrics import (
    compute_metrics,
    hdr_flip,
    mu_law_np,
    psnr_l,
    psnr_mu,
    pu21_encode,
    pu21_psnr,
    pu21_ssim,
    ssim_l,
    ssim_mu,
    ssim_torch,
)

ROOT = Path(__file__).resolve().parents[1]
H, W = 1000, 1500


def _protocol():
    spec = importlib.util.spec_from_file_location("protocol_reference", ROOT / "tests/reference/protocol_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _images() -> tuple[np.ndarray, np.ndarray]:
    """A smooth log-normal radiance field with detail (as in the machine notes), in [0, 1], and a degraded copy."""
    rng = np.random.default_rng(0)
    low = cv2.resize(rng.normal(0, 1.5, (H // 50, W // 50, 3)).astype(np.float32), (W, H),
                     interpolation=cv2.INTER_CUBIC)
    rad = np.exp(low + rng.normal(0, 0.15, (H, W, 3)).astype(np.float32))
    target = np.clip(rad / np.percentile(rad, 99.5), 0, 1).astype(np.float32)
    pred = np.clip(cv2.GaussianBlur(target, (0, 0), 1.0) * (1 + rng.normal(0, 0.05, target.shape)), 0, 1)
    return pred.astype(np.float32), target


def _time(fn, reps: int) -> tuple[float, float, object]:
    value = fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        value = fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), min(ts), value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--flip", action="store_true", help="also time HDR-FLIP (about 10 s per call)")
    args = ap.parse_args()
    cv2.setNumThreads(2)
    torch.set_num_threads(2)
    proto = _protocol()
    pred, target = _images()
    p255, t255 = np.clip(pred * 255.0, 0, 255).astype(np.float64), np.clip(target * 255.0, 0, 255).astype(np.float64)
    p64, t64 = pred.astype(np.float64), target.astype(np.float64)
    pt, tt = torch.from_numpy(pred).permute(2, 0, 1), torch.from_numpy(target).permute(2, 0, 1)

    def torch_ssim() -> float:
        with torch.inference_mode():
            return ssim_torch(pt, tt).item()

    cases = [
        ("ssim_l fast (float32 sepFilter2D)", lambda: ssim_l(pred, target)),
        ("ssim_l precise (float64 filter2D)", lambda: ssim_l(pred, target, precise=True)),
        ("protocol ssim(), one call, float64", lambda: proto.ssim_single(p255, t255)),
        ("protocol calculate_ssim (3 calls)", lambda: proto.calculate_ssim(p255, t255)),
        ("skimage SSIM (Wang settings)", lambda: structural_similarity(
            p64, t64, data_range=1.0, channel_axis=2, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)),
        ("ssim_torch float32 (no grad)", torch_ssim),
        ("ssim_mu fast", lambda: ssim_mu(pred, target)),
        ("psnr_l", lambda: psnr_l(pred, target)),
        ("psnr_mu", lambda: psnr_mu(pred, target)),
        ("pu21_encode (float64, RGB)", lambda: float(pu21_encode(t64 * 1000.0).mean())),
        ("pu21_encode (float32, RGB)", lambda: float(pu21_encode(target * np.float32(1000.0)).mean())),
        ("pu21_psnr", lambda: pu21_psnr(pred, target)),
        ("pu21_ssim", lambda: pu21_ssim(pred, target)),
        ("compute_metrics 4 protocol, fast", lambda: compute_metrics(pred, target)["ssim_mu"]),
        ("compute_metrics 4 protocol, precise", lambda: compute_metrics(pred, target, precise=True)["ssim_mu"]),
    ]
    if args.flip:
        cases.append(("hdr_flip (flip-evaluator)", lambda: hdr_flip(pred, target)))
    print(f"hdrkit.metrics at {W}x{H}x3, median of {args.reps} (min), {torch.get_num_threads()} threads")
    print(f"| {'operation':<38} | {'median ms':>9} | {'min ms':>8} | {'value':>16} |")
    print(f"|{'-' * 40}|{'-' * 11}|{'-' * 10}|{'-' * 18}|")
    for name, fn in cases:
        med, mn, val = _time(fn, args.reps)
        print(f"| {name:<38} | {med * 1e3:9.1f} | {mn * 1e3:8.1f} | {float(val):16.10f} |")
    ref = proto.scene_metrics(pred.transpose(2, 0, 1), target.transpose(2, 0, 1))
    fast = compute_metrics(pred, target)
    print("\n|fast - literal protocol| per metric: "
          + ", ".join(f"{k} {abs(fast[k] - ref[k]):.2e}" for k in ref))
    print(f"mu-law sanity: mu_law_np(1) = {float(mu_law_np(np.float32([1.0]))[0]):.6f}")


if __name__ == "__main__":
    main()
