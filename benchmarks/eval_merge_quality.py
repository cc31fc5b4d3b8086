"""PSNR-mu of the classical merges on real radiance maps (Poly Haven), static and with a mover.

Run: python benchmarks/eval_merge_quality.py [--data DIR] [--scale 1.0]

Protocol (Kalantari convention): each HDR image (equator band, rows 128-383 of the 1024x512
panorama) is scaled so the shortest exposure saturates only its brightest 0.5 % (max channel),
i.e. GT in units of the shortest exposure, mostly in [0, 1]. Brackets of 3 frames at +-2 EV
(t = 1, 4, 16) and +-3 EV (t = 1, 8, 64) are simulated with ``hdrkit.camera.exposure.expose``:
Poisson-Gaussian noise (darktable median at ISO 400), gamma 2.2 or DoRF curve #10, 16-bit codes.
PSNR-mu = PSNR of mu_law(clip(x, 0, 1)) (mu = 5000), averaged over images. The dynamic variant
pastes a 64x64 textured patch from another image at positions 20-60 px apart in each frame (GT =
the reference frame's scene) and compares the default deghosting merge with the reference frame
alone and with the static merge.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

import cv2
import numpy as np
import torch

from hdrkit.camera.exposure import NoiseModel, expose
from hdrkit.camera.response import GammaResponse, load_dorf
from hdrkit.merge import merge_debevec1997, merge_granados2013, merge_robertson2003
from hdrkit.tonemap.mu_law import mu_law

NOISE = NoiseModel((1.7e-5,) * 3, (3.4e-8,) * 3)


def psnr_mu(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = ((mu_law(a.clamp(0, 1)) - mu_law(b.clamp(0, 1))) ** 2).mean().item()
    return 10 * math.log10(1 / mse)


def load(path: Path, scale: float) -> torch.Tensor:
    img = cv2.imread(str(path), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_COLOR)[128:384, :, ::-1]
    if scale != 1.0:
        img = cv2.resize(np.ascontiguousarray(img), None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    hdr = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float()
    return hdr / torch.quantile(hdr.amax(1).flatten()[::7], 0.995)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("HDRKIT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")))
    ap.add_argument("--scale", type=float, default=1.0)
    args = ap.parse_args()
    torch.set_num_threads(2)
    files = sorted((args.data / "hdr" / "polyhaven").glob("*.hdr"))
    scenes = [load(f, args.scale) for f in files]
    responses = {"gamma2.2": GammaResponse(2.2), "dorf10": load_dorf(args.data / "crf" / "dorf_public_151.npz", 10)}
    print(f"{len(scenes)} Poly Haven scenes, {tuple(scenes[0].shape[-2:])} px, 16-bit, noise ISO 400")
    print(f"{'response':<9} {'EV':>4}  {'noise_opt':>9} {'hat':>7} {'gauss':>7} {'robertson':>9} {'deghost':>8} {'ref only':>8}")
    for rname, resp in responses.items():
        for ev in (2, 3):
            t = torch.tensor([[1.0, 2.0**ev, 4.0**ev]])
            res = {k: [] for k in ("noise_optimal", "hat", "gaussian", "robertson", "deghost", "ref")}
            for k, gt in enumerate(scenes):
                ldr = expose(gt, t, resp, NOISE, bits=16, generator=torch.Generator().manual_seed(k))
                for w in ("noise_optimal", "hat", "gaussian"):
                    res[w].append(psnr_mu(merge_debevec1997(ldr, t, resp, weighting=w, noise=NOISE, bits=16), gt))
                res["robertson"].append(psnr_mu(merge_robertson2003(ldr, t, resp, bits=16), gt))
                res["deghost"].append(psnr_mu(merge_granados2013(ldr, t, resp, noise=NOISE, bits=16), gt))
                res["ref"].append(psnr_mu(resp.inverse(ldr[:, 1]) / t[0, 1], gt))
            m = {k: float(np.mean(v)) for k, v in res.items()}
            print(f"{rname:<9} {ev:>4}  {m['noise_optimal']:9.2f} {m['hat']:7.2f} {m['gaussian']:7.2f} {m['robertson']:9.2f} {m['deghost']:8.2f} {m['ref']:8.2f}")
    print("\nDynamic (mover 64x64, shifts 20-60 px), gamma 2.2, +-3 EV, reference = middle frame")
    t = torch.tensor([[1.0, 8.0, 64.0]])
    gains, rows = [], []
    for k, scene in enumerate(scenes):
        other = scenes[(k + 7) % len(scenes)]
        h, w = scene.shape[-2:]
        patch = other[..., h // 2 - 32 : h // 2 + 32, w // 3 : w // 3 + 64].clone()
        patch = patch / patch.amax().clamp_min(1e-6) * 0.12  # below the reference's saturation
        y0, x0 = h // 2 - 32, w // 2 - 32
        pos = [(y0 - 20, x0 - 40), (y0, x0), (y0 + 25, x0 + 35)]
        frames, gt = [], None
        for i, (y, x) in enumerate(pos):
            s = scene.clone()
            s[..., y : y + 64, x : x + 64] = patch
            gt = s if i == 1 else gt
            frames.append(expose(s, t[:, i : i + 1], GammaResponse(2.2), NOISE, bits=16, generator=torch.Generator().manual_seed(k))[:, 0])
        ldr = torch.stack(frames, 1)
        p_d = psnr_mu(merge_granados2013(ldr, t, noise=NOISE, bits=16), gt)
        p_r = psnr_mu(GammaResponse(2.2).inverse(ldr[:, 1]) / 8.0, gt)
        p_s = psnr_mu(merge_debevec1997(ldr, t, noise=NOISE, bits=16), gt)
        gains.append(p_d - p_r)
        rows.append((files[k].stem, p_d, p_r, p_s))
    for name, p_d, p_r, p_s in rows:
        print(f"  {name:<28} deghost {p_d:6.2f}  ref only {p_r:6.2f}  static merge {p_s:6.2f}")
    print(f"mean: deghost {np.mean([r[1] for r in rows]):.2f}, ref only {np.mean([r[2] for r in rows]):.2f}, "
          f"static {np.mean([r[3] for r in rows]):.2f}; min gain over ref {min(gains):.2f} dB")


if __name__ == "__main__":
    main()
