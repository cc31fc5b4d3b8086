"""Previews of the default ``hdrkit merge`` on two real dynamic stacks, to check for ghosts by eye.

Usage: python scripts/make_deghost_previews.py OUT_DIR [--data ../shared/data]

For each stack (pingpong: hand-held, EXIF times 1/1000, 1/250, 1/60 s; kalantari17_002: EV 0/3/6; both
read as gamma 2.2) it runs the same pipeline as the CLI default (homography alignment, ``deghost``) and
writes ``<stack>_deghost.png``, ``<stack>_static.png`` (plain noise-optimal Debevec merge of the aligned
frames, to show the ghosts the deghosting removes), ``<stack>_reference.png`` (the reference frame alone)
and ``<stack>_masks.png`` (where each non-reference frame was rejected: red = shorter, green = longer).
All previews use the same Reinhard 2002 tone mapping. The PNGs are not committed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from hdrkit.io import write_ldr
from hdrkit.merge import merge_debevec1997
from hdrkit.merge.deghost import merge_granados2013
from hdrkit.pipeline import hdr_from_brackets
from hdrkit.tonemap import tonemap

STACKS = {
    "pingpong": (["Img1.JPG", "Img2.JPG", "Img3.JPG"], {"times": [1 / 1000, 1 / 250, 1 / 60]}),
    "kalantari17_002": (["input_1_aligned.jpg", "input_2_aligned.jpg", "input_3_aligned.jpg"], {"ev": [0, 3, 6]}),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = ap.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for stack, (names, exposure) in STACKS.items():
        paths = [args.data / "stacks" / stack / n for n in names]
        result = hdr_from_brackets(paths, **exposure)
        ldr = result.alignment.ldr
        t = result.bracket.exposure_times[None].to(torch.float32)
        ref = result.reference
        static = merge_debevec1997(ldr, t, result.response, reference=ref)[0]
        reference = result.response.inverse(ldr[0, ref]) / t[0, ref]
        _, masks = merge_granados2013(ldr, t, result.response, reference=ref, return_masks=True)
        # one exposure for all previews: Reinhard's key from the deghosted result
        scale = 1.0 / result.hdr.mean().clamp_min(1e-6)
        for name, hdr in (("deghost", result.hdr), ("static", static), ("reference", reference)):
            write_ldr(args.out_dir / f"{stack}_{name}.png", tonemap(hdr * scale, op="reinhard"))
        m = masks[0].float()
        others = [k for k in range(m.shape[0]) if k != ref]
        mask_rgb = torch.zeros(3, *m.shape[-2:])
        for k in others:
            mask_rgb[0 if k < ref else 1] = torch.maximum(mask_rgb[0 if k < ref else 1], m[k, 0])
        write_ldr(args.out_dir / f"{stack}_masks.png", mask_rgb)
        print(f"{stack}: aligned by {result.alignment.info.get('method')}; previews -> {args.out_dir}")


if __name__ == "__main__":
    main()
