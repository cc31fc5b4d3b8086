"""Score every tone mapper by TMQI (Yeganeh & Wang 2013) over the shared HDR images and write a table.

Operators: every entry of ``hdrkit.tonemap.TONEMAPPERS`` with its defaults (sRGB-encoded), and
OpenCV's ``createTonemap`` / ``createTonemapReinhard`` / ``createTonemapDrago`` /
``createTonemapMantiuk`` as users apply them: gamma 2.2 with the defaults, plus the settings of the
popular LearnOpenCV HDR tutorial (Drago and Mantiuk output brightened x3), each clipped to [0, 1]
(NaN -> 0). "OpenCV's best" is the best of all these variants by mean TMQI.

Every HDR image (``.hdr``, ``.exr``) under ``<data>/hdr`` is read, clamped at 0 (OpenCV's operators
take logarithms) and, if larger, downscaled to at most ``--max-pixels`` (default 1 MP, area
interpolation) for speed; the same clamped, downscaled radiance map is the TMQI reference. Seconds are
the operator alone on that image (median over images), with ``--threads`` torch and OpenCV threads
(default 1: on a machine shared with other jobs, multi-threaded runs were up to 100x slower).

TMQI's structural fidelity ``S = prod(s_l ^ w_l)`` is undefined (NaN, as in the authors' code) when
a scale's mean structure term is negative, i.e. the tone-mapped image is on average anti-correlated
with the radiance map at that scale. Such an image is scored with ``S = 0`` (no structural
fidelity), ``Q = (1 - a) N^beta``, and counted in the table's "S undefined" column.

    nice -n 19 python benchmarks/bench_tonemap_tmqi.py [--data DIR] [--max-pixels N] [--op NAME ...] [--threads N] [--out FILE]

``--data`` defaults to ``$HDRKIT_DATA`` or ``../shared/data``. Writes ``benchmarks/results/tonemap_tmqi.md``
(mean TMQI, S, N and seconds per operator, then TMQI per image) unless ``--out ''``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

from hdrkit.io import read_hdr
from hdrkit.metrics import tmqi_score
from hdrkit.metrics.tmqi import TMQI_A, TMQI_BETA
from hdrkit.tonemap import TONEMAPPERS, tonemap

ROOT = Path(__file__).resolve().parents[1]
MAX_PIXELS = 1_000_000
"""Images above this many pixels are downscaled (area interpolation) before tone mapping and scoring."""
OPENCV_GAMMA = 2.2
"""The display gamma users pass to OpenCV's tone mappers."""
TUTORIAL_GAIN = 3.0
"""LearnOpenCV's "HDR imaging" tutorial multiplies the Drago and Mantiuk outputs by 3 before saving."""


def _opencv(make: Callable[[], object], gain: float = 1.0) -> Callable[[np.ndarray], np.ndarray]:
    def run(hdr_rgb: np.ndarray) -> np.ndarray:
        bgr = np.ascontiguousarray(hdr_rgb[..., ::-1])
        out = make().process(bgr)[..., ::-1] * gain
        return np.clip(np.nan_to_num(out, nan=0.0, posinf=1.0, neginf=0.0), 0, 1)
    return run


OPENCV_SETTINGS: dict[str, tuple[Callable[[], object], float, str]] = {
    "opencv_gamma": (lambda: cv2.createTonemap(OPENCV_GAMMA), 1.0, "createTonemap(2.2)"),
    "opencv_reinhard": (lambda: cv2.createTonemapReinhard(OPENCV_GAMMA, 0.0, 1.0, 0.0), 1.0,
                        "createTonemapReinhard(2.2, 0, 1, 0) (defaults, gamma 2.2)"),
    "opencv_reinhard_tutorial": (lambda: cv2.createTonemapReinhard(1.5, 0.0, 0.0, 0.0), 1.0,
                                 "createTonemapReinhard(1.5, 0, 0, 0) (tutorial)"),
    "opencv_drago": (lambda: cv2.createTonemapDrago(OPENCV_GAMMA, 1.0, 0.85), 1.0,
                     "createTonemapDrago(2.2, 1, 0.85) (defaults, gamma 2.2)"),
    "opencv_drago_tutorial": (lambda: cv2.createTonemapDrago(1.0, 0.7, 0.85), TUTORIAL_GAIN,
                              "createTonemapDrago(1.0, 0.7) x 3 (tutorial)"),
    "opencv_mantiuk": (lambda: cv2.createTonemapMantiuk(OPENCV_GAMMA, 0.7, 1.0), 1.0,
                       "createTonemapMantiuk(2.2, 0.7, 1) (defaults, gamma 2.2)"),
    "opencv_mantiuk_tutorial": (lambda: cv2.createTonemapMantiuk(OPENCV_GAMMA, 0.85, 1.2), TUTORIAL_GAIN,
                                "createTonemapMantiuk(2.2, 0.85, 1.2) x 3 (tutorial)"),
}
"""OpenCV operators by name: (factory, gain applied to the output, description)."""

OPENCV_OPS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    name: _opencv(make, gain) for name, (make, gain, _) in OPENCV_SETTINGS.items()
}
"""OpenCV operators: (H, W, 3) float32 linear RGB -> (H, W, 3) display codes in [0, 1]."""


def data_root(arg: str | None) -> Path:
    return Path(arg or os.environ.get("HDRKIT_DATA") or ROOT.parent / "shared" / "data")


def load_images(root: Path, max_pixels: int = MAX_PIXELS) -> list[tuple[str, np.ndarray]]:
    """Every radiance map under ``root/hdr`` as ``(name, (H, W, 3) float32 >= 0)``, at most ``max_pixels``."""
    files = sorted(p for p in (root / "hdr").rglob("*") if p.suffix.lower() in (".hdr", ".exr"))
    if not files:
        raise SystemExit(f"no .hdr/.exr files under {root / 'hdr'}: pass --data or set HDRKIT_DATA")
    out = []
    for path in files:
        img = np.clip(read_hdr(path).permute(1, 2, 0).numpy(), 0, None)
        h, w = img.shape[:2]
        if h * w > max_pixels:
            s = (max_pixels / (h * w)) ** 0.5
            img = cv2.resize(img, (max(1, int(w * s)), max(1, int(h * s))), interpolation=cv2.INTER_AREA)
        out.append((str(path.relative_to(root / "hdr")), np.ascontiguousarray(img, dtype=np.float32)))
    return out


def hdrkit_op(name: str, **kwargs) -> Callable[[np.ndarray], np.ndarray]:
    def run(hdr_rgb: np.ndarray) -> np.ndarray:
        return tonemap(torch.from_numpy(hdr_rgb).permute(2, 0, 1), name, **kwargs).permute(1, 2, 0).numpy()
    return run


def all_ops() -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    ops = {name: hdrkit_op(name) for name in TONEMAPPERS}
    ops.update(OPENCV_OPS)
    return ops


def score(images, ops) -> dict[str, dict[str, object]]:
    """Tone map every image with every operator; ``{op: {'q': [...], 's': [...], 'n': [...], 'sec': [...]}}``."""
    rows: dict[str, dict[str, list]] = {name: {"q": [], "s": [], "n": [], "sec": [], "undefined": []} for name in ops}
    for img_name, img in images:
        for name, fn in ops.items():
            t0 = time.perf_counter()
            ldr = fn(img)
            sec = time.perf_counter() - t0
            r = tmqi_score(img, ldr.astype(np.float64))
            undefined = not np.isfinite(r.s)
            q, s = ((1 - TMQI_A) * r.n**TMQI_BETA, 0.0) if undefined else (r.q, r.s)
            for key, val in (("q", q), ("s", s), ("n", r.n), ("sec", sec), ("undefined", undefined)):
                rows[name][key].append(val)
        print(f"  {img_name}: " + ", ".join(f"{n} {rows[n]['q'][-1]:.4f}" for n in ops), flush=True)
    return rows


def summary_table(rows, names) -> list[str]:
    order = sorted(names, key=lambda n: -float(np.mean(rows[n]["q"])))
    lines = ["| operator | TMQI | S | N | S undefined | s/image (median) |", "|---|---|---|---|---|---|"]
    for n in order:
        r = rows[n]
        lines.append(f"| `{n}` | {np.mean(r['q']):.4f} | {np.mean(r['s']):.4f} | {np.mean(r['n']):.4f} | "
                     f"{sum(r['undefined'])} | {statistics.median(r['sec']):.3f} |")
    return lines


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="shared data root (default $HDRKIT_DATA or ../shared/data)")
    ap.add_argument("--max-pixels", type=int, default=MAX_PIXELS)
    ap.add_argument("--op", action="append", default=None, help="only these operators (repeatable)")
    ap.add_argument("--threads", type=int, default=1, help="torch and OpenCV threads (default 1)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "tonemap_tmqi.md"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    ops = all_ops()
    if args.op:
        unknown = sorted(set(args.op) - set(ops))
        if unknown:
            raise SystemExit(f"unknown operator(s) {unknown}; choose from {sorted(ops)}")
        ops = {n: ops[n] for n in args.op}
    images = load_images(data_root(args.data), args.max_pixels)
    print(f"{len(images)} images, {len(ops)} operators, torch threads {torch.get_num_threads()}, "
          f"OpenCV threads {cv2.getNumThreads()}")
    rows = score(images, ops)
    table = summary_table(rows, ops)
    print("\n".join(table))
    ours = [n for n in ops if not n.startswith("opencv")]
    cv = [n for n in ops if n.startswith("opencv")]
    lines = []
    if ours and cv:
        best_ours = max(ours, key=lambda n: np.mean(rows[n]["q"]))
        best_cv = max(cv, key=lambda n: np.mean(rows[n]["q"]))
        wins = sum(a > b for a, b in zip(rows[best_ours]["q"], rows[best_cv]["q"]))
        lines.append(f"Best hdrkit operator `{best_ours}` {np.mean(rows[best_ours]['q']):.4f} vs OpenCV's best "
                     f"`{best_cv}` {np.mean(rows[best_cv]['q']):.4f} (higher on {wins} of {len(images)} images).")
        defined = [i for i in range(len(images)) if not any(rows[n]["undefined"][i] for n in ops)]
        if 0 < len(defined) < len(images):
            mean_on = {n: float(np.mean([rows[n]["q"][i] for i in defined])) for n in ops}
            cv_on = max(cv, key=mean_on.get)
            lines.append(f"On the {len(defined)} images where every operator's S is defined: `{best_ours}` "
                         f"{mean_on[best_ours]:.4f}, OpenCV's best there `{cv_on}` {mean_on[cv_on]:.4f}.")
        for line in lines:
            print(line)
    if args.out:
        names = sorted(ops, key=lambda n: -float(np.mean(rows[n]["q"])))
        per_image = ["| image | " + " | ".join(f"`{n}`" for n in names) + " |",
                     "|---|" + "---|" * len(names)]
        for i, (img_name, img) in enumerate(images):
            best = max(rows[n]["q"][i] for n in names)
            cells = [(f"**{rows[n]['q'][i]:.3f}**" if rows[n]["q"][i] == best else f"{rows[n]['q'][i]:.3f}")
                     + ("*" if rows[n]["undefined"][i] else "") for n in names]
            per_image.append(f"| {img_name} ({img.shape[1]}x{img.shape[0]}) | " + " | ".join(cells) + " |")
        text = "\n".join([
            "# Tone mappers by TMQI",
            "",
            f"`nice -n 19 python benchmarks/bench_tonemap_tmqi.py` on {len(images)} radiance maps from `../shared/data/hdr` "
            f"(clamped at 0, downscaled to at most {args.max_pixels / 1e6:g} MP), TMQI of Yeganeh & Wang 2013 "
            "(`hdrkit.metrics.tmqi`): Q = 0.8012 S^0.3046 + 0.1988 N^0.7088, higher is better.",
            "",
            *table,
            "",
            *lines,
            "",
            "OpenCV operators (BGR float32 in, output clipped to [0, 1], NaN -> 0): "
            + "; ".join(f"`{n}` {OPENCV_SETTINGS[n][2]}" for n in OPENCV_SETTINGS if n in ops) + ". "
            "hdrkit operators run with their defaults (sRGB-encoded).",
            "",
            "Notes. These images are also the set on which the defaults of `durand` (hdrkit's preview default) were "
            "chosen (detail gain, highlight handling; see `hdrkit/tonemap/durand2002.py`), together with looking at the "
            "previews of the shared brackets, so its score here is a selection score, not a held-out one. Every other "
            "operator runs with the settings above. Seconds: one thread, a machine shared with "
            "other jobs. " + f"Images over {args.max_pixels / 1e6:g} MP are downscaled first (area interpolation).",
            "",
            "## TMQI per image",
            "",
            "`*`: S undefined (anti-correlated at some scale), scored with S = 0.",
            "",
            *per_image,
            "",
        ])
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
