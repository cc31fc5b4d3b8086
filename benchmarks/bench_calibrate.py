"""Camera response recovery: hdrkit vs OpenCV on one bracket, and a sweep over the DoRF curves.

Usage:
    python benchmarks/bench_calibrate.py [--repeats 5] [--dorf K]
    python benchmarks/bench_calibrate.py --sweep [--threads 2] [--curves all|N,N,...] [--scenes 4] [--out benchmarks/results/calibrate_emor.md]

Default mode: the bracket is synthetic: a smooth random radiance field over ~12 stops, exposed at 1,
4, 16 (2 EV steps) with darktable's median ISO 400 noise through DoRF curve K (if ../shared/data is
present) or the sRGB curve. Times are medians over repeats and include hdrkit's float->code
conversion; OpenCV gets the uint8 frames it needs, prepared outside the timer. Accuracy is RMS
over 1024 codes of f^-1 against the truth, both normalized to f^-1(1) = 1, worst channel.

``--sweep`` (needs ../shared/data): every (DoRF curve, scene) case at +-2 EV and +-3 EV. Curve ``k``
is paired with ``--scenes`` Poly Haven radiance maps (round robin over the 20, each cropped to the
band around the equator and resized to 256 px wide), exposed as a 3-frame bracket (t = 1, 2^ev,
2^2ev) metered so that the middle frame's median is 0.3 linear, with the same noise and 8-bit
quantization (seed 1000 k + scene slot). Methods: Debevec 1997, and the EMoR-prior recovery with
three basis/prior sources, among them a 5-fold split of the DoRF curves (fold ``k % 5`` held out).
Writes a Markdown table (method, spacing, % within 0.02 RMS, median and p95 RMS, seconds).
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
from hdrkit.camera.emor import EMoR
from hdrkit.camera.emor2004 import EMOR_COMPONENTS, EmorPrior, default_prior, recover_response_emor2004

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


#: Sweep: DoRF curves reported one by one (the issue's examples of the periodic ambiguity).
NAMED_CURVES = (127, 140, 148)
SWEEP_SPACINGS = (2.0, 3.0)
SWEEP_WIDTH = 256
MID_MEDIAN = 0.3  # the middle frame's median, linear (metered exposure)
WITHIN = 0.02
TARGET = 95.0  # % of cases within WITHIN (issue 9)
FOLDS = 5
ISO400 = NoiseModel(a=(2.5e-5,) * 3, b=(5.7e-8,) * 3)  # darktable's median profile at ISO 400


def sweep_scenes(d: Path, width: int = SWEEP_WIDTH) -> list[tuple[str, torch.Tensor]]:
    """The Poly Haven maps, each cropped to rows H/4..3H/4 (near the equator) and resized to ``width``: [(name, (3, h, w))]."""
    from hdrkit.io.hdr import read_hdr

    out = []
    for p in sorted((d / "hdr" / "polyhaven").glob("*.hdr")):
        x = read_hdr(p).clamp_min(0)
        h = x.shape[1]
        img = x[:, h // 4 : 3 * h // 4].permute(1, 2, 0).numpy()
        img = cv2.resize(img, (width, round(img.shape[0] * width / img.shape[1])), interpolation=cv2.INTER_AREA)
        out.append((p.stem, torch.from_numpy(np.maximum(img, 0)).permute(2, 0, 1).double()))
    return out


def sweep_bracket(hdr: torch.Tensor, truth, ev: float, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """(3, 3, h, w) 8-bit codes and times (1, 2^ev, 2^2ev), the middle frame metered to :data:`MID_MEDIAN`."""
    t = 2.0 ** (ev * np.arange(3))
    hdr = hdr * (MID_MEDIAN / (float(hdr.mean(0).median()) * t[1]))
    ldr = expose(hdr[None], torch.tensor(t)[None], truth, ISO400, 8, torch.Generator().manual_seed(seed))[0]
    return ldr, t


def sweep(args) -> None:
    d = data_dir()
    if d is None:
        raise SystemExit("bench_calibrate --sweep needs the shared data (../shared/data or HDRKIT_DATA)")
    dorf = d / "crf" / "dorf_public_151.npz"
    with np.load(dorf) as z:
        irradiance, bright = z["I"].astype(np.float64), z["B"].astype(np.float64)
    curves = range(bright.shape[0]) if args.curves == "all" else [int(c) for c in args.curves.split(",")]
    scenes = sweep_scenes(d)
    emor_basis = EMoR.from_inverse_file(d / "crf" / "invemor.txt", EMOR_COMPONENTS)
    fold = np.arange(bright.shape[0]) % FOLDS
    cv_priors = {
        f: EmorPrior.from_curves(emor_basis, bright[fold != f], f"invemor.txt, DoRF prior without fold {f}", irradiance=irradiance[fold != f])
        for f in range(FOLDS)
    }
    shipped = default_prior(basis="shipped")
    default = default_prior()
    methods = {
        "debevec": ("Debevec 1997 (`--method debevec`)", lambda ldr, t, k: recover_response_debevec1997(ldr, t)),
        "emor": (f"EMoR prior (`--method emor`, what `--response calibrate` uses), its default basis and prior: {default.source}", lambda ldr, t, k: recover_response_emor2004(ldr, t, prior=default)),
        "emor_dorf_cv": ("EMoR prior: invemor.txt, prior of the DoRF curves of the 4 other folds", lambda ldr, t, k: recover_response_emor2004(ldr, t, prior=cv_priors[k % FOLDS])),
        "emor_shipped": (f"EMoR prior without shared data: {shipped.source}", lambda ldr, t, k: recover_response_emor2004(ldr, t, prior=shipped)),
    }
    rows: dict = {}
    t_start = time.time()
    for k in curves:
        truth = load_dorf(dorf, k)
        for ev in SWEEP_SPACINGS:
            for slot in range(args.scenes):
                name, hdr = scenes[(k * args.scenes + slot) % len(scenes)]
                ldr, t = sweep_bracket(hdr, truth, ev, 1000 * k + slot)
                for m, (_, fn) in methods.items():
                    t0 = time.perf_counter()
                    r = fn(ldr, t, k)
                    rows.setdefault((m, ev), []).append((k, name, rms(r, truth), time.perf_counter() - t0))
        print(f"curve {k}: {time.time() - t_start:.0f} s", flush=True)

    lines = [
        "# Camera response recovery over the DoRF curves: EMoR prior vs Debevec 1997",
        "",
        "Generated by `python benchmarks/bench_calibrate.py --sweep" + (f" --curves {args.curves}" if args.curves != "all" else "")
        + (f" --scenes {args.scenes}" if args.scenes != 4 else "") + "`; do not edit by hand.",
        "",
        f"{machine()}. Cases: {len(list(curves))} DoRF curves x {args.scenes} scenes per spacing; "
        f"3-frame 8-bit brackets (t = 1, 2^ev, 2^2ev), middle frame metered to a median of {MID_MEDIAN} linear, "
        "darktable median ISO 400 noise, from Poly Haven maps (equator band, 256 px wide). RMS over 1024 codes of f^-1 "
        "against the truth, worst channel. Seconds: mean wall time per recovery (shared machine).",
        "",
        "| method | EV spacing | % within 0.02 | median RMS | p95 RMS | seconds |",
        "|:---|---:|---:|---:|---:|---:|",
    ]
    for m in methods:
        for ev in SWEEP_SPACINGS:
            e = np.array([r[2] for r in rows[(m, ev)]])
            s = np.array([r[3] for r in rows[(m, ev)]])
            lines.append(f"| `{m}` | +-{ev:g} | {100 * (e < WITHIN).mean():.1f} | {np.median(e):.4f} | {np.percentile(e, 95):.4f} | {s.mean():.3f} |")
    lines += ["", "Methods:", ""] + [f"- `{m}`: {desc}" for m, (desc, _) in methods.items()]
    lines += ["", f"Target (issue 9): at least {TARGET:.0f} % of cases within {WITHIN} RMS at +-2 and +-3 EV.", ""]
    for m in methods:
        share = {ev: 100 * np.mean([r[2] < WITHIN for r in rows[(m, ev)]]) for ev in SWEEP_SPACINGS}
        lines.append(f"- `{m}`: " + ", ".join(f"+-{ev:g} EV {'met' if share[ev] >= TARGET else 'not met'} ({share[ev]:.1f} %)" for ev in SWEEP_SPACINGS))
    lines += [
        "",
        "What is held out:",
        "",
        "- `emor_dorf_cv`: the prior is fitted to the DoRF curves of 4 folds (curve k is in fold k % 5) and scored on the "
        "fifth, so no curve is scored with a prior that saw it.",
        "- `emor` (what `recover_response_emor2004` uses by default when the shared data is present): the prior comes from the 3000 curves hdrkit generates "
        "(`hdrkit.camera.crf_families`), not from DoRF.",
        "- But the basis `invemor.txt` was derived by Grossberg & Nayar from the DoRF database, which contains these 151 curves: "
        "`emor` and `emor_dorf_cv` are not fully held out. `emor_shipped` is: its basis and prior come from generated curves only.",
        "- `emor` and `emor_dorf_cv` fit the inverse basis `invemor.txt` (log domain); `emor_shipped` fits the forward shipped "
        "basis. In `hdrkit/camera/emor2004.py`, `EMOR_COMPONENTS` (among 7, 9, 10 and 11) and the relative start "
        "(`RELATIVE_START_FLOOR`, added for curve 149 at +-3 EV) were chosen on all 151 curves, one scene each, with this "
        "protocol: every curve is in-sample for those two. `SHIPPED_COMPONENTS`, "
        "`EMOR_DATA_TAU` and `REFINE_SMOOTHNESS` were chosen for the forward fit on every 6th curve plus 127, 140 and 148 "
        "(29 curves in-sample); the data weight was rechecked for the inverse fit on 32 curves (those 7 components missed "
        "plus every 10th).",
        "- The sample weights assume darktable's median ISO 400 noise, which is also the noise simulated here; "
        "`tests/test_calibration.py::test_dorf_emor_beats_debevec` uses a real EOS 5D Mark II ISO 800 profile instead.",
    ]
    named = [k for k in NAMED_CURVES if k in curves]
    if named:
        lines += ["", "Curves " + ", ".join(map(str, named)) + " (RMS per scene):", "", "| curve | EV | " + " | ".join(f"`{m}`" for m in methods) + " |",
                  "|---:|---:|" + "---|" * len(methods)]
        for k in named:
            for ev in SWEEP_SPACINGS:
                cells = [", ".join(f"{r[2]:.3f}" for r in rows[(m, ev)] if r[0] == k) for m in methods]
                lines.append(f"| {k} | +-{ev:g} | " + " | ".join(cells) + " |")
    lines += ["", f"Cases over {WITHIN} RMS (curve: worst RMS):", ""]
    for m in methods:
        for ev in SWEEP_SPACINGS:
            worst: dict = {}
            for k, _, e, _ in rows[(m, ev)]:
                if e >= WITHIN:
                    worst[k] = max(worst.get(k, 0.0), e)
            lines.append(f"- `{m}` +-{ev:g}: {len(worst)} curves: " + (", ".join(f"{k}: {v:.3f}" for k, v in sorted(worst.items())) or "none"))
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
        print(f"-> {args.out}")


def machine() -> str:
    from hdrkit.report import load_average, machine_description

    load = load_average()
    return f"{machine_description()}" + (f", load average {load:.1f}" if load is not None else "")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dorf", type=int, default=20)
    ap.add_argument("--sweep", action="store_true", help="every (DoRF curve, scene) case at +-2 and +-3 EV; writes --out")
    ap.add_argument("--curves", default="all", help="sweep: 'all' or comma-separated DoRF rows")
    ap.add_argument("--scenes", type=int, default=4, help="sweep: scenes per curve")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (set OMP_NUM_THREADS too for BLAS)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "calibrate_emor.md"), help="sweep: Markdown output ('' for none)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.sweep:
        sweep(args)
        return

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
    ours, t_ours = timed(lambda: recover_response_emor2004(ldr, times), args.repeats)
    rows.append(("EMoR 2004", t_ours, None, rms(ours, truth), None))  # OpenCV has no counterpart
    rep = max(1, min(args.repeats, 3))
    ours, t_ours = timed(lambda: recover_response_robertson2003(ldr, times), rep)
    cv, t_cv = timed(lambda: cv2.createCalibrateRobertson().process(frames, t32), rep)
    rows.append(("Robertson 2003", t_ours, t_cv, rms(ours, truth), rms(opencv_table(cv), truth)))

    print(f"3 x {hdr.shape[2]}x{hdr.shape[1]} 8-bit bracket, t = {times.tolist()}, truth = {truth!r}, torch threads {torch.get_num_threads()}")
    print(f"{'method':16s} {'hdrkit ms':>10s} {'OpenCV ms':>10s} {'ratio':>6s} {'hdrkit RMS':>11s} {'OpenCV RMS':>11s}")
    for name, a, b, ra, rb in rows:
        if b is None:
            print(f"{name:16s} {a * 1e3:10.1f} {'-':>10s} {'-':>6s} {ra:11.4f} {'-':>11s}")
        else:
            print(f"{name:16s} {a * 1e3:10.1f} {b * 1e3:10.1f} {a / b:6.2f} {ra:11.4f} {rb:11.4f}")


if __name__ == "__main__":
    main()
