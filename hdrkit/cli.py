"""The ``hdrkit`` command line: it parses arguments and calls the library, nothing more."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hdrkit.errors import HdrkitError

__all__ = ["main"]

HDR_SUFFIXES = (".exr", ".hdr", ".pfm")
LDR_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


def _method_options(args) -> dict:
    opts = {"device": args.device, "dtype": args.dtype, "max_memory": args.max_memory * 2**30 if args.max_memory else None,
            "weights": args.weights}
    return {k: v for k, v in opts.items() if v is not None}


def _check_paths(inputs, outputs=(), min_inputs: int = 1) -> None:
    """The mistakes found without reading any image, checked before the library (and torch) is imported,
    with the library's messages: too few inputs, a missing input, an output that is also an input or
    whose directory does not exist."""
    inputs = [Path(p) for p in inputs]
    for out in (Path(o) for o in outputs if o is not None):
        if any(out.resolve() == src.resolve() for src in inputs):
            raise HdrkitError(f"{out}: output path is also an input; choose another output name")
        if not out.parent.exists() and str(out.parent) not in ("", "."):
            raise HdrkitError(f"{out}: directory {out.parent} does not exist")
    if len(inputs) < min_inputs:
        raise HdrkitError(f"a bracket needs at least {min_inputs} frames, got {len(inputs)} ({', '.join(map(str, inputs)) or 'none'})")
    for p in inputs:
        if not p.exists():
            raise HdrkitError(f"{p}: file not found")
        if not p.is_file():
            raise HdrkitError(f"{p}: is not a file")


def _check_exposures(args) -> None:
    """``--times`` / ``--ev``: one finite value per frame, times positive (before importing the library)."""
    given, flag = (args.times, "--times") if args.times is not None else (args.ev, "--ev")
    if given is None:
        return
    if len(given) != len(args.frames):
        raise HdrkitError(f"{flag} has {len(given)} values but {len(args.frames)} files were given; give one value per file")
    for p, v in zip(args.frames, given):
        if not v == v or v in (float("inf"), float("-inf")):
            raise HdrkitError(f"{p}: {flag} value {v} is not a finite number")
        if args.times is not None and v <= 0:
            raise HdrkitError(f"{p}: exposure time must be positive, got {v} s")


def _cmd_merge(args) -> None:
    _check_paths(args.frames, (args.output, args.preview), min_inputs=2)
    _check_exposures(args)
    from hdrkit.io import write_hdr, write_ldr
    from hdrkit.io.atomic import check_output_path
    from hdrkit.methods import get_method
    from hdrkit.pipeline import hdr_from_brackets
    from hdrkit.tonemap import tonemap

    out = check_output_path(args.output, args.frames)
    card = get_method(args.method)
    options = _method_options(args)
    if not card.learned and options:
        raise HdrkitError(f"--device/--dtype/--max-memory/--weights apply to learned methods; {card.name!r} is classical")
    fused = card.output == "display"
    allowed = LDR_SUFFIXES if fused else HDR_SUFFIXES
    if out.suffix.lower() not in allowed:
        kind = "a display-referred image" if fused else "a radiance map"
        raise HdrkitError(f"{out}: method {args.method!r} writes {kind}; the output must end in {', '.join(allowed)}")
    preview = check_output_path(args.preview, args.frames) if args.preview else None
    result = hdr_from_brackets(
        args.frames,
        times=args.times,
        ev=args.ev,
        method=args.method,
        response=args.response,
        align_method=args.align,
        reference=args.reference,
        progress=True,
        **options,
    )
    if fused:
        write_ldr(out, result.image)
    else:
        write_hdr(out, result.image)
        if preview is not None:
            write_ldr(preview, tonemap(result.image, op=args.preview_op))
    order = ", ".join(Path(p).name for p in result.bracket.paths)
    print(f"merged {len(args.frames)} frames ({order}) with {result.method}; reference frame {result.reference}; "
          f"response {result.response!r} -> {out}")


def _cmd_tonemap(args) -> None:
    _check_paths([args.input], [args.output])
    from hdrkit.io import read_hdr, write_ldr
    from hdrkit.io.atomic import check_output_path
    from hdrkit.tonemap import tonemap

    out = check_output_path(args.output, [args.input])
    write_ldr(out, tonemap(read_hdr(args.input), op=args.op), bits=args.bits)
    print(f"{args.input} -> {out} ({args.op})")


def _cmd_calibrate(args) -> None:
    _check_paths(args.frames, (args.output, args.plot), min_inputs=2)
    _check_exposures(args)
    from hdrkit.camera.calibrate import DEFAULT_CALIBRATION, recover_response
    from hdrkit.camera.response import save_response_table
    from hdrkit.io import read_bracket
    from hdrkit.io.atomic import check_output_path

    out = check_output_path(args.output, args.frames)
    bracket = read_bracket(args.frames, times=args.times, ev=args.ev, progress=True)
    method = args.method or DEFAULT_CALIBRATION
    response = recover_response(bracket.ldr, bracket.exposure_times, method=method, bits=max(bracket.bits))
    save_response_table(response, out)
    print(f"recovered inverse response ({method}) -> {out}")
    if args.plot:
        from hdrkit.camera.plot import plot_response

        plot_response(response, check_output_path(args.plot, args.frames))
        print(f"plot -> {args.plot}")


def _cmd_info(args) -> None:
    _check_paths([args.input])
    from hdrkit.io import read_hdr
    from hdrkit.stats import hdr_stats

    stats = hdr_stats(read_hdr(args.input))
    print(f"{args.input}")
    for key, value in stats.items():
        print(f"  {key:<18} {value}")


def _cmd_expand(args) -> None:
    from hdrkit.expand.photo import DEFAULT_METHOD, hdr_from_photo
    from hdrkit.io import write_hdr, write_ldr
    from hdrkit.io.atomic import check_output_path
    from hdrkit.methods import get_method
    from hdrkit.tonemap import tonemap

    out = check_output_path(args.output, [args.photo])
    if out.suffix.lower() not in HDR_SUFFIXES:
        raise HdrkitError(f"{out}: hdrkit expand writes a radiance map; the output must end in {', '.join(HDR_SUFFIXES)}")
    preview = check_output_path(args.preview, [args.photo]) if args.preview else None
    if preview is not None and preview.suffix.lower() not in LDR_SUFFIXES:
        raise HdrkitError(f"{preview}: the preview is a display image; it must end in {', '.join(LDR_SUFFIXES)}")
    method = args.method or DEFAULT_METHOD
    options = _method_options(args)
    if options and not get_method(method).learned:
        raise HdrkitError(f"--device/--dtype/--max-memory/--weights apply to learned methods; {method!r} is classical")
    result = hdr_from_photo(args.photo, method=method, response=args.response, **options)
    write_hdr(out, result.hdr)
    if preview is not None:
        write_ldr(preview, tonemap(result.hdr))
    notes = "".join(f"; {n}" for n in result.notes)
    print(f"expanded {args.photo} with {method}{notes} -> {out}")


def _cmd_methods(args) -> None:
    from hdrkit.methods import all_methods

    cards = all_methods()
    width = max(map(len, cards))
    for name, c in cards.items():
        learned = ("learned, weights shipped" if c.weights_available else "learned, no weights shipped") if c.learned else "classical"
        print(f"{name:<{width}}  {c.kind:<6}  {c.output:<8}  frames {c.frames_text:<10}  {learned}")
        print(f"{'':<{width}}  {c.summary}")
        print(f"{'':<{width}}  {c.paper}")


def _cmd_train(args) -> None:
    from hdrkit.train import fit, load_config

    cfg = load_config(args.config, out_dir=args.out_dir, steps=args.steps, threads=args.threads, max_minutes=args.max_minutes)
    last = fit(cfg, resume=not args.restart, progress=True)
    val = ", validation " + ", ".join(f"{k} {v:.3f}" for k, v in last["val"].items()) if last.get("val") else ""
    print(f"trained {cfg.model} to step {last['step']} (loss {last['loss']}){val}; checkpoint {cfg.out_dir}/checkpoint.pt")


def _cmd_export(args) -> None:
    from hdrkit.io.atomic import check_output_path
    from hdrkit.train import export_weights

    out = check_output_path(args.output, [args.checkpoint])
    digest = export_weights(args.checkpoint, out, dtype={"fp32": None, "bf16": "bf16", "fp16": "fp16"}[args.dtype])
    print(f"{args.checkpoint} -> {out} (sha256 {digest})")


def _cmd_demo(args) -> None:
    from hdrkit.demo import run_demo

    run_demo(Path(args.output_dir), seed=args.seed)


def _eval_method_options(args) -> dict[str, dict]:
    """``--device``/``--dtype`` for every learned method named, ``--weights NAME=PATH`` for that one."""
    from hdrkit.methods import get_method

    weights = {}
    for spec in args.weights or []:
        name, sep, path = spec.partition("=")
        if not (sep and name and path):
            raise HdrkitError(f"--weights {spec!r}: use NAME=PATH, e.g. ahdrnet=ahdrnet.safetensors")
        weights[name] = path
    stray = sorted(set(weights) - set(args.method))
    if stray:
        raise HdrkitError(f"--weights given for {', '.join(stray)}, which no --method names")
    learned = [n for n in args.method if get_method(n).learned]
    classical = sorted(set(weights) - set(learned))
    if classical:
        raise HdrkitError(f"--weights applies to learned methods; {', '.join(classical)} is classical")
    if not learned and (args.device or args.dtype):
        raise HdrkitError("--device/--dtype apply to learned methods; none of the methods named is learned")
    options = {n: {k: v for k, v in (("device", args.device), ("dtype", args.dtype), ("weights", weights.get(n)))
                   if v is not None} for n in learned}
    return {n: o for n, o in options.items() if o}


def _cmd_eval(args) -> None:
    from hdrkit.evaluate import evaluate

    res = evaluate(args.data, args.method, args.output, split=args.split, response=args.response,
                   align=args.align, max_scenes=args.max_scenes, method_options=_eval_method_options(args))
    print(f"evaluated {', '.join(res['methods'])} on {len(res['scenes'])} scenes -> {Path(args.output) / 'index.html'}")


def _cmd_synth(args) -> None:
    from hdrkit.data import synthesize_dataset

    synthesize_dataset(
        args.input, args.output, dorf_path=args.dorf, emor_path=args.emor, noise_profiles_path=args.noise_profiles, n_scenes=args.scenes, seed=args.seed, crop_size=args.crop,
        exposures=args.exposures, ev_step=args.ev_step, response_family=args.response, bits=args.bits,
        jpeg_quality=args.jpeg, global_motion=args.global_motion, moving_objects=args.moving_objects,
        single_image=args.single_image,
    )
    print(f"wrote {args.scenes} scenes to {args.output}")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hdrkit", description="High dynamic range imaging: merge brackets, tone map, evaluate.")
    p.add_argument("--version", action="version", version=_version())
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    m = sub.add_parser("merge", help="merge a bracket of LDR frames into a linear radiance map")
    m.add_argument("frames", nargs="+", help="two or more LDR frames (JPEG, PNG, TIFF, RAW)")
    m.add_argument("-o", "--output", required=True, help="output radiance map (.exr, .hdr or .pfm)")
    exp = m.add_mutually_exclusive_group()
    exp.add_argument("--times", nargs="+", type=float, metavar="T", help="exposure times in seconds, one per frame")
    exp.add_argument("--ev", nargs="+", type=float, metavar="EV", help="exposure values in stops (t = 2**EV), one per frame")
    m.add_argument("--method", default="deghost", help="merge method (see `hdrkit methods`); default: deghost")
    m.add_argument("--response", default="gamma", help="gamma | srgb | linear | calibrate | calibrate:emor|debevec|robertson | FILE.csv (default: gamma 2.2; "
                   "RAW is linear; calibrate recovers it from the bracket, see `hdrkit calibrate --help`)")
    m.add_argument("--align", default="homography", choices=["none", "mtb", "homography", "flow"],
                   help="alignment (default: homography; flow: homography plus dense optical flow with occlusion masks, "
                        "for parallax and non-rigid motion)")
    m.add_argument("--reference", type=int, default=None, help="reference frame index in exposure order (default: middle)")
    m.add_argument("--preview", default=None, metavar="PNG", help="also write a tone-mapped preview")
    m.add_argument("--preview-op", default="durand", help="tone mapper for the preview: durand (default: best mean TMQI, "
                   "benchmarks/results/tonemap_tmqi.md) | reinhard | reinhard_local | drago | mu_law | exposure_gamma")
    m.add_argument("--device", default=None, help="learned methods: cpu | cuda | auto (default: CUDA when present)")
    m.add_argument("--dtype", default=None, choices=["fp32", "bf16"], help="learned methods: bf16 autocast or fp32 (default)")
    m.add_argument("--max-memory", type=float, default=None, metavar="GB",
                   help="learned methods: activation memory per tile in GB (default 4; the process stays under 8 GB)")
    m.add_argument("--weights", default=None, metavar="FILE", help="learned methods: safetensors weights instead of the packaged ones")
    m.set_defaults(func=_cmd_merge)

    t = sub.add_parser("tonemap", help="tone map a radiance map to an 8/16-bit image")
    t.add_argument("input")
    t.add_argument("-o", "--output", required=True)
    t.add_argument("--op", default="durand", help="durand (default: best mean TMQI) | reinhard | reinhard_local | drago | "
                   "mu_law | exposure_gamma")
    t.add_argument("--bits", type=int, default=8, choices=[8, 16])
    t.set_defaults(func=_cmd_tonemap)

    c = sub.add_parser("calibrate", help="recover the camera response from a bracket")
    c.add_argument("frames", nargs="+")
    c.add_argument("-o", "--output", required=True, help="response table (.csv: code,r,g,b)")
    exp = c.add_mutually_exclusive_group()
    exp.add_argument("--times", nargs="+", type=float, metavar="T")
    exp.add_argument("--ev", nargs="+", type=float, metavar="EV")
    c.add_argument("--method", default=None, choices=["emor", "debevec", "robertson"],
                   help="emor: Grossberg & Nayar 2004 prior over real responses; debevec: Debevec & Malik 1997; "
                        "robertson: Robertson et al. 2003 (default: emor, hdrkit.camera.calibrate.DEFAULT_CALIBRATION)")
    c.add_argument("--plot", default=None, metavar="PNG", help="also plot the recovered curves")
    c.set_defaults(func=_cmd_calibrate)

    i = sub.add_parser("info", help="size, range, dynamic range and clipping of a radiance map")
    i.add_argument("input")
    i.set_defaults(func=_cmd_info)

    s = sub.add_parser("methods", help="list every method: kind, output, frames, learned/weights, paper")
    s.set_defaults(func=_cmd_methods)

    tr = sub.add_parser("train", help="train a learned method from a YAML config (configs/NAME.yaml); resumes from its checkpoint")
    tr.add_argument("config", help="training config (YAML; see configs/)")
    tr.add_argument("--out-dir", default=None, help="override the config's out_dir")
    tr.add_argument("--steps", type=int, default=None, help="override the number of steps")
    tr.add_argument("--threads", type=int, default=None, help="torch threads per process")
    tr.add_argument("--max-minutes", type=float, default=None, help="stop (with a checkpoint) after this many minutes")
    tr.add_argument("--restart", action="store_true", help="ignore an existing checkpoint and start from scratch")
    tr.set_defaults(func=_cmd_train)

    ex = sub.add_parser("export", help="write a training checkpoint's network as safetensors weights")
    ex.add_argument("checkpoint", help="checkpoint.pt written by `hdrkit train`")
    ex.add_argument("-o", "--output", required=True, help="weights file (.safetensors)")
    ex.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"])
    ex.set_defaults(func=_cmd_export)

    d = sub.add_parser("demo", help="merge a built-in procedural bracket (shake + moving object); writes demo.exr, demo.png")
    d.add_argument("-o", "--output-dir", default=".", help="where to write demo.exr and demo.png (default: .)")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=_cmd_demo)

    e = sub.add_parser("eval", help="evaluate methods on a Kalantari-layout dataset; writes results.json, .md and an HTML report")
    e.add_argument("--data", required=True, help="dataset root (Kalantari layout)")
    e.add_argument("--method", action="append", required=True, help="method name; repeat for several")
    e.add_argument("-o", "--output", required=True, help="report directory")
    e.add_argument("--split", default=None, help="Test or Training (default: whatever is there)")
    e.add_argument("--response", default="gamma")
    e.add_argument("--align", default="none", choices=["none", "mtb", "homography"])
    e.add_argument("--max-scenes", type=int, default=None)
    e.add_argument("--device", default=None, help="learned methods: cpu | cuda | auto (default: CUDA when present)")
    e.add_argument("--dtype", default=None, choices=["fp32", "bf16"], help="learned methods: bf16 autocast or fp32 (default)")
    e.add_argument("--weights", action="append", default=[], metavar="NAME=PATH",
                   help="safetensors weights for learned method NAME instead of the packaged ones; repeat for several")
    e.set_defaults(func=_cmd_eval)

    y = sub.add_parser("synth", help="synthesize brackets with ground truth from a folder of HDR images")
    y.add_argument("input", help="folder of .hdr/.exr images")
    y.add_argument("-o", "--output", required=True)
    y.add_argument("--scenes", type=int, default=10)
    y.add_argument("--seed", type=int, default=0)
    y.add_argument("--crop", type=int, default=512)
    y.add_argument("--exposures", type=int, default=3, choices=[2, 3, 5, 7])
    y.add_argument("--ev-step", type=float, default=2.0)
    y.add_argument("--response", default="gamma", help="gamma | srgb | dorf | emor")
    y.add_argument("--bits", type=int, default=16, choices=[8, 16])
    y.add_argument("--jpeg", type=int, default=None, metavar="QUALITY")
    y.add_argument("--global-motion", type=float, default=0.0, metavar="PX")
    y.add_argument("--moving-objects", type=int, default=0)
    y.add_argument("--single-image", action="store_true")
    y.add_argument("--dorf", default=None, metavar="NPZ", help="DoRF curves .npz (for --response dorf)")
    y.add_argument("--emor", default=None, metavar="TXT", help="Grossberg-Nayar emor.txt (for --response emor)")
    y.add_argument("--noise-profiles", default=None, metavar="JSON", help="darktable noise profiles (default: no noise)")
    y.set_defaults(func=_cmd_synth)

    x = sub.add_parser("expand", help="reconstruct a radiance map from one LDR photo (single-image methods)")
    x.add_argument("photo", help="one LDR photo (JPEG, PNG, TIFF; 8 or 16 bits; grey or RGB; RAW)")
    x.add_argument("-o", "--output", required=True, help="output radiance map (.exr, .hdr or .pfm)")
    x.add_argument("--method", default=None, help="single-image method (kind 'single' in `hdrkit methods`; "
                   "default: hdrkit.expand.photo.DEFAULT_METHOD)")
    x.add_argument("--response", default="gamma", help="response to linearize with: gamma | srgb | linear | FILE.csv (default: gamma 2.2)")
    x.add_argument("--preview", default=None, metavar="PNG", help="also write a tone-mapped preview")
    x.add_argument("--device", default=None, help="learned methods: cpu | cuda | auto (default: CUDA when present)")
    x.add_argument("--dtype", default=None, choices=["fp32", "bf16"], help="learned methods: bf16 autocast or fp32 (default)")
    x.add_argument("--max-memory", type=float, default=None, metavar="GB", help="learned methods: activation memory per tile in GB")
    x.add_argument("--weights", default=None, metavar="FILE", help="learned methods: safetensors weights instead of the packaged ones")
    x.set_defaults(func=_cmd_expand)
    return p


def _version() -> str:
    from hdrkit import __version__

    return f"hdrkit {__version__}"


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        args.func(args)
    except HdrkitError as e:
        print(f"hdrkit {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        print(f"hdrkit {args.command}: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hdrkit: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
