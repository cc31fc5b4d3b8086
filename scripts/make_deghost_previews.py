"""Write tone-mapped previews of the default deghosting merge on two real dynamic stacks.

The frames are first aligned globally (hdrkit.align homography, or OpenCV MTB if that module is
missing): pingpong is hand-held and shifted by tens of pixels.

Usage: python scripts/make_deghost_previews.py OUT_DIR [--data DIR] [--scale S]

For each stack (pingpong: EXIF 1/1000, 1/250, 1/60 s; kalantari17_002: EV 0/3/6 -> t = 1, 8, 64;
both read as gamma 2.2) it writes ``<stack>_deghost.png`` (default method), ``<stack>_static.png``
(plain noise-optimal merge, shows the ghosts the deghosting removes), ``<stack>_reference.png``
(reference frame alone) and ``<stack>_masks.png`` (ghost masks of the non-reference frames as
red/green). Tone mapping: Reinhard et al. (2002) global operator, then gamma 2.2.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import cv2
import numpy as np
import torch

from hdrkit.io.atomic import atomic_path
from hdrkit.merge import merge
from hdrkit.merge.deghost import merge_granados2013

STACKS = {
    "pingpong": (["Img1.JPG", "Img2.JPG", "Img3.JPG"], [1 / 1000, 1 / 250, 1 / 60]),
    "kalantari17_002": (["input_1_aligned.jpg", "input_2_aligned.jpg", "input_3_aligned.jpg"], [1.0, 8.0, 64.0]),
}


def read_stack(folder: Path, names, scale: float) -> torch.Tensor:
    frames = []
    for name in names:
        img = cv2.imread(str(folder / name), cv2.IMREAD_COLOR)
        if img is None:
            raise SystemExit(f"{folder / name}: cannot read image")
        if scale != 1.0:
            img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        frames.append(torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1])).permute(2, 0, 1))
    return torch.stack(frames)[None]


def align_bracket(ldr: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Global alignment to the middle frame: ``hdrkit.align`` (homography) if present, else OpenCV MTB."""
    x = ldr.float() / 255
    try:
        from hdrkit.align import align
    except ImportError:
        align = None
    if align is not None:
        return align(x, t, method="homography").ldr
    grey = [cv2.cvtColor((f.permute(1, 2, 0).numpy() * 255).astype(np.uint8), cv2.COLOR_RGB2GRAY) for f in x[0]]
    mtb, out = cv2.createAlignMTB(), [x[0, 1]]
    for i in (0, 2):
        dx, dy = mtb.calculateShift(grey[1], grey[i])
        out.insert(i, torch.roll(x[0, i], shifts=(dy, dx), dims=(1, 2)))
    return torch.stack(out)[None]


def reinhard_global(hdr: torch.Tensor, key: float = 0.18) -> np.ndarray:
    lum = (0.2126 * hdr[0] + 0.7152 * hdr[1] + 0.0722 * hdr[2]).clamp_min(1e-9)
    lavg = torch.exp(torch.log(lum).mean())
    scaled = key * lum / lavg
    out = hdr * (scaled / (1 + scaled) / lum)
    out = out.clamp(0, 1) ** (1 / 2.2)
    return (out.permute(1, 2, 0).numpy()[:, :, ::-1] * 255 + 0.5).astype(np.uint8)


def write_png(path: Path, img: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), img):
            raise SystemExit(f"{path}: cannot write PNG")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("HDRKIT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")))
    ap.add_argument("--scale", type=float, default=0.5, help="downscale factor for speed (default 0.5)")
    args = ap.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    for stack, (names, times) in STACKS.items():
        ldr = read_stack(args.data / "stacks" / stack, names, args.scale)
        t = torch.tensor([times])
        ldr = align_bracket(ldr, t)
        hdr, masks = merge_granados2013(ldr, t, return_masks=True)
        static = merge(ldr, t, method="debevec")
        ref = ldr[0, 1]
        ref_hdr = ref ** 2.2 / (t[0, 1] / t.min())
        # one exposure scale for all previews so they compare
        for tag, img in [("deghost", hdr[0]), ("static", static[0]), ("reference", ref_hdr)]:
            write_png(args.out_dir / f"{stack}_{tag}.png", reinhard_global(img))
        m = masks[0, :, 0]
        vis = torch.stack([torch.zeros_like(m[0]), m[2], m[0]], -1).numpy()  # BGR: frame 0 red, frame 2 green
        base = ref.permute(1, 2, 0).numpy()[:, :, ::-1] * 0.5
        write_png(args.out_dir / f"{stack}_masks.png", ((base + 0.5 * vis).clip(0, 1) * 255).astype(np.uint8))
        print(f"{stack}: wrote {stack}_{{deghost,static,reference,masks}}.png; ghost fraction "
              f"{[round(float(x), 3) for x in m.mean(dim=(1, 2))]}")


if __name__ == "__main__":
    main()
