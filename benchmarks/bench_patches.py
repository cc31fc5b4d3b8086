"""Throughput of ``PatchDataset`` (patches/s) for a CPU training loop; prints a table.

Scenes are procedural (no data needed): ``procedural_scene`` -> ``synthesize_bracket`` at
Kalantari-like resolution. Run: ``python benchmarks/bench_patches.py [--size 1000x1500 --scenes 4]``.
"""

from __future__ import annotations

import argparse
import time

import torch

from hdrkit.data import PatchDataset, Scene, normalize_scene, procedural_scene, synthesize_bracket


def make_scenes(n: int, h: int, w: int) -> list[Scene]:
    out = []
    for k in range(n):
        b = synthesize_bracket(normalize_scene(procedural_scene(h, w, seed=k)), bits=16, seed=k)
        out.append(Scene(f"proc{k}", b.ldr, b.exposure_times, b.hdr_gt, [], reference=b.reference))
    return out


def rate(fn, n: int) -> float:
    fn(min(n, 8))
    t = time.perf_counter()
    fn(n)
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", default="512x768", help="scene HxW")
    ap.add_argument("--scenes", type=int, default=4)
    ap.add_argument("--patches", type=int, default=2000, help="patches per measurement")
    args = ap.parse_args()
    h, w = (int(v) for v in args.size.lower().split("x"))
    t0 = time.perf_counter()
    scenes = make_scenes(args.scenes, h, w)
    t_make = time.perf_counter() - t0
    t0 = time.perf_counter()
    ds = PatchDataset(scenes, patch_size=128, patches_per_scene=10_000, augment=True)
    t_cache = time.perf_counter() - t0
    print(f"scenes: {args.scenes} x {h}x{w}, 3 frames; synthesis {t_make:.2f} s, caching {t_cache:.3f} s; "
          f"torch threads {torch.get_num_threads()}")
    print(f"| {'configuration':<38} | {'patches/s':>10} |")
    print(f"|{'-' * 40}|{'-' * 12}|")

    def items(aug):
        ds.augment = aug

        def run(n):
            for i in range(n):
                ds[(i * 7919) % len(ds)]
        return run

    for aug in (False, True):
        print(f"| {'dataset[i], 128px, augment=' + str(aug):<38} | {rate(items(aug), args.patches):>10.0f} |")
    ds.augment = True
    threads = torch.get_num_threads()
    for workers, bs, nt in ((0, 16, threads), (0, 16, 1), (2, 16, threads)):
        torch.set_num_threads(nt)
        loader = torch.utils.data.DataLoader(ds, batch_size=bs, shuffle=True, num_workers=workers,
                                             persistent_workers=workers > 0)

        def run(n, loader=loader, bs=bs):
            it = iter(loader)
            for _ in range(max(1, n // bs)):
                next(it)
        r = rate(run, args.patches)
        print(f"| {f'DataLoader bs={bs} workers={workers} threads={nt}':<38} | {r:>10.0f} |")
    torch.set_num_threads(threads)
    print("(collation is torch.stack: with intra-op threads on a busy machine it can dominate; "
          "DataLoader workers run with 1 thread each)")

if __name__ == "__main__":
    main()
