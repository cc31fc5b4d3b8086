"""Markdown and HTML writers for ``hdrkit eval`` results, and the contact-sheet images they link.

The input is the results dictionary that :func:`hdrkit.evaluate.evaluate` returns and writes as
``results.json``. The HTML page is self-contained (inline CSS, no scripts, no web fonts) and links its
images relatively, so the output folder can be copied and opened offline. The images are written with
:func:`thumbnail`, :func:`display_radiance`, :func:`error_map` and :func:`save_png`.
"""

from __future__ import annotations

import html
import json
import math
import os
import platform
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hdrkit.io.atomic import atomic_path

__all__ = [
    "ERROR_COLORMAP",
    "ERROR_SCALE",
    "THUMB_WIDTH",
    "colorize",
    "default_file_mode",
    "display_info",
    "display_radiance",
    "error_map",
    "format_value",
    "higher_is_better",
    "jsonable",
    "load_average",
    "machine_description",
    "markdown_table",
    "output_thumbnails",
    "render_html",
    "render_markdown",
    "save_png",
    "scene_thumbnails",
    "slug",
    "thumbnail",
    "write_report",
    "write_text",
]

ERROR_SCALE = 0.2
"""Full scale of the error maps: ``|mu(pred) - mu(gt)|`` channel mean, clipped at this value."""

THUMB_WIDTH = 480
"""Contact-sheet thumbnails are downscaled (area filter) to at most this many pixels wide."""

ERROR_COLORMAP = (
    (0.000, (0, 0, 4)),
    (0.125, (31, 12, 72)),
    (0.250, (85, 15, 109)),
    (0.375, (136, 34, 106)),
    (0.500, (186, 54, 85)),
    (0.625, (227, 89, 51)),
    (0.750, (249, 140, 10)),
    (0.875, (249, 201, 50)),
    (1.000, (252, 255, 164)),
)
"""Anchors ``(position, (r, g, b))`` of an inferno-like perceptually ordered colour map (dark = small error)."""

CAPTION_METRICS = 2
"""How many of the metric columns each contact-sheet caption repeats (the per-scene table has them all)."""

LOWER_IS_BETTER_HINTS = ("rmse", "mse", "mae", "error", "lpips", "seconds", "delta", "flip")
"""Metric-name fragments for which smaller values are better (everything else: larger is better)."""


def higher_is_better(name: str, lower_is_better: Sequence[str] = ()) -> bool:
    """Whether larger values of metric ``name`` are better (PSNR, SSIM, HDR-VDP Q) or smaller (errors, seconds).

    ``lower_is_better`` names metrics known to be errors; other names are judged by :data:`LOWER_IS_BETTER_HINTS`.
    """
    n = name.lower()
    return name not in lower_is_better and not any(h in n for h in LOWER_IS_BETTER_HINTS)


def format_value(value, digits: int = 2) -> str:
    """A metric value as text: ``n/a`` for None/NaN, ``inf`` for infinity, else fixed-point with ``digits``."""
    if value is None:
        return "n/a"
    v = float(value)
    if math.isnan(v):
        return "n/a"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.{digits}f}"


def _digits(metric: str) -> int:
    m = metric.lower()
    if "ssim" in m:
        return 4
    if m == "seconds":
        return 3
    return 2


def colorize(values: np.ndarray, vmax: float, vmin: float = 0.0) -> np.ndarray:
    """Map ``values`` (H, W) linearly from [vmin, vmax] (clipped) through :data:`ERROR_COLORMAP` -> (H, W, 3) uint8."""
    x = np.clip((np.asarray(values, dtype=np.float64) - vmin) / max(vmax - vmin, 1e-12), 0.0, 1.0)
    pos = np.array([p for p, _ in ERROR_COLORMAP])
    rgb = np.array([c for _, c in ERROR_COLORMAP], dtype=np.float64)
    out = np.stack([np.interp(x, pos, rgb[:, k]) for k in range(3)], axis=-1)
    return np.round(out).astype(np.uint8)


def _css_gradient() -> str:
    stops = ", ".join(f"rgb({r},{g},{b}) {p * 100:.1f}%" for p, (r, g, b) in ERROR_COLORMAP)
    return f"linear-gradient(to right, {stops})"


def default_file_mode() -> int:
    """``0o666`` minus the process umask: the mode ``open()`` would give a new file (temporary files get 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically, with the usual permissions of a new file."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
        os.chmod(tmp, default_file_mode())


def _shrink(x: torch.Tensor, max_width: int) -> torch.Tensor:
    """(C, H, W) area-downscaled to at most ``max_width`` wide (aspect kept)."""
    h, w = x.shape[-2:]
    if w > max_width:
        x = F.interpolate(x[None], size=(max(1, round(h * max_width / w)), max_width), mode="area")[0]
    return x


def thumbnail(img: torch.Tensor, max_width: int = THUMB_WIDTH) -> np.ndarray:
    """(3, H, W) [0, 1] -> (h, w, 3) uint8, area-downscaled to at most ``max_width`` wide (NaN shows black)."""
    x = torch.nan_to_num(img.detach().float().cpu(), nan=0.0).clamp(0, 1)
    return (_shrink(x, max_width).permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)


def save_png(array: np.ndarray, path: str | Path) -> None:
    """Write an (h, w, 3) uint8 array as PNG, atomically, with the usual permissions of a new file."""
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG", optimize=False)
        os.chmod(tmp, default_file_mode())


def display_radiance(hdr: torch.Tensor) -> torch.Tensor:
    """Tone mapping shared by every radiance image on the contact sheet: mu-law of the [0, 1] clip."""
    from hdrkit.tonemap.mu_law import mu_law

    return mu_law(hdr.clamp(0, 1))


def error_map(pred: torch.Tensor, gt: torch.Tensor, max_width: int = THUMB_WIDTH) -> np.ndarray:
    """``|mu(pred) - mu(gt)|`` channel mean, colorized on the fixed scale :data:`ERROR_SCALE` -> (h, w, 3) uint8."""
    err = (display_radiance(pred.detach().float().cpu()) - display_radiance(gt.float().cpu())).abs().mean(dim=0, keepdim=True)
    err = torch.nan_to_num(err, nan=ERROR_SCALE)  # NaN outputs show as full-scale error
    return colorize(_shrink(err, max_width)[0].numpy(), ERROR_SCALE)


def slug(text: str) -> str:
    """``text`` reduced to a safe file-name fragment (letters, digits, ``_.-``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


def display_info(thumb_width: int = THUMB_WIDTH) -> dict:
    """The ``display`` entry of the results: how the contact-sheet images were made."""
    from hdrkit.tonemap.mu_law import MU

    return {"tonemap": f"mu-law (mu = {MU:g}) of the radiance clipped to [0, 1], as in the -mu metrics",
            "error_domain": "mu(pred) - mu(gt), channel mean", "error_scale": ERROR_SCALE, "thumb_width": thumb_width}


def scene_thumbnails(scene: str, ldr: torch.Tensor, exposure_times, reference: int, gt: torch.Tensor | None,
                     out_dir: str | Path, thumb_width: int = THUMB_WIDTH) -> dict:
    """Write the thumbnails of a scene's input frames (as captured) and ground truth under ``out_dir/img``.

    ``ldr``: (N, 3, H, W) codes; ``exposure_times``: (N,). Returns the scene's ``images`` entry:
    ``inputs`` (``src``, ``caption``), ``gt`` (path or None) and an empty ``outputs``.
    """
    out_dir, s = Path(out_dir), slug(scene)
    entry: dict = {"inputs": [], "gt": None, "outputs": {}}
    for k in range(ldr.shape[0]):
        rel = f"img/{s}_in{k}.png"
        save_png(thumbnail(ldr[k], thumb_width), out_dir / rel)
        cap = f"t = {float(exposure_times[k]):g}" + (" (reference)" if k == reference else "")
        entry["inputs"].append({"src": rel, "caption": cap})
    if gt is not None:
        entry["gt"] = f"img/{s}_gt.png"
        save_png(thumbnail(display_radiance(gt), thumb_width), out_dir / entry["gt"])
    return entry


def output_thumbnails(scene: str, method: str, out: torch.Tensor, gt: torch.Tensor | None, display_referred: bool,
                      out_dir: str | Path, thumb_width: int = THUMB_WIDTH) -> dict:
    """Write one output's thumbnail (and error map for radiance with ground truth); returns ``{src, error}``."""
    out_dir, base = Path(out_dir), f"img/{slug(scene)}__{slug(method)}"
    shown = out.clamp(0, 1) if display_referred else display_radiance(out)
    save_png(thumbnail(shown, thumb_width), out_dir / f"{base}.png")
    o: dict = {"src": f"{base}.png", "error": None}
    if gt is not None and not display_referred:
        o["error"] = f"{base}_err.png"
        save_png(error_map(out, gt, thumb_width), out_dir / o["error"])
    return o


def cpu_name() -> str:
    """The CPU model from ``/proc/cpuinfo``, else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description() -> str:
    """OS, CPU model and count, torch version and threads, Python version: one line for the report."""
    return (f"{platform.system()} {platform.machine()}, {cpu_name()}, {os.cpu_count()} CPUs, "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads), Python {platform.python_version()}")


def load_average() -> float | None:
    """1-minute system load average (other jobs on the machine inflate the timings), or None if unknown."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def jsonable(obj):
    """``obj`` with tuples as lists, non-finite floats as None and anything not JSON (paths, devices) as ``str``."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj if obj is None or isinstance(obj, (str, int, float, bool)) else str(obj)


def write_report(out_dir: str | Path, results: dict) -> dict:
    """Write ``results.json``, ``results.md`` and ``index.html`` into ``out_dir``; returns the JSON-ready results."""
    out_dir, results = Path(out_dir), jsonable(results)
    write_text(out_dir / "results.json", json.dumps(results, indent=1, allow_nan=False) + "\n")
    write_text(out_dir / "results.md", render_markdown(results))
    write_text(out_dir / "index.html", render_html(results))
    return results


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: Sequence[str] | None = None) -> str:
    """A GitHub-flavoured Markdown table; ``align`` entries are ``'l'`` or ``'r'`` (default: first column left)."""
    def cell(s) -> str:
        return str(s).replace("|", "\\|").replace("\n", " ")

    align = align or ["l"] + ["r"] * (len(headers) - 1)
    lines = ["| " + " | ".join(cell(h) for h in headers) + " |",
             "|" + "|".join("---:" if a == "r" else ":---" for a in align) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _load_text(meta: dict) -> str:
    load = [v for v in meta.get("load_average") or [] if v is not None]
    return f"; load average {' -> '.join(f'{v:.1f}' for v in load)}" if load else ""


def _columns(results: dict) -> list[str]:
    cols: list[str] = []
    for info in results["methods"].values():
        for m in info["metrics"]:
            if m not in cols:
                cols.append(m)
    return cols


def _best(results: dict, cols: list[str]) -> dict[str, float]:
    """Best aggregate value per column among the methods that have one."""
    best: dict[str, float] = {}
    lower = results.get("metadata", {}).get("lower_is_better", ())
    for c in cols + ["seconds"]:
        vals = [info["aggregate"].get(c) for info in results["methods"].values()]
        vals = [v for v in vals if v is not None and math.isfinite(v)]
        if len(vals) >= 2:
            best[c] = max(vals) if higher_is_better(c, lower) else min(vals)
    return best


def _aggregate_rows(results: dict, cols: list[str], mark_best: str | None = None) -> list[list[str]]:
    best = _best(results, cols) if mark_best else {}
    rows = []
    for name, info in results["methods"].items():
        row = [name, info["kind"]]
        for c in cols + ["seconds"]:
            v = info["aggregate"].get(c)
            text = format_value(v, _digits(c))
            if mark_best and c in best and v is not None and v == best[c]:
                text = mark_best.format(text)
            row.append(text)
        rows.append(row)
    return rows


def render_markdown(results: dict) -> str:
    """``results.md``: metadata, the aggregate table (mean over scenes, best in bold) and a per-scene table."""
    meta = results["metadata"]
    cols = _columns(results)
    n = len(results["scenes"])
    out = [f"# hdrkit evaluation: {meta.get('dataset', '')}\n",
           f"{n} scene{'s' if n != 1 else ''}; split `{meta.get('split')}`; response `{meta.get('response')}`; "
           f"alignment `{meta.get('align')}`; hdrkit {meta.get('hdrkit_version')}; {meta.get('date')}; "
           f"{meta.get('machine')}{_load_text(meta)}.\n",
           f"Protocol: {results['protocol']}\n",
           "## Mean over scenes\n",
           markdown_table(["method", "kind"] + cols + ["seconds/scene"], _aggregate_rows(results, cols, "**{}**"),
                          ["l", "l"] + ["r"] * (len(cols) + 1))]
    notes = [f"- `{name}`: {info['note']}" for name, info in results["methods"].items() if info.get("note")]
    if notes:
        out += ["\n" + "\n".join(notes) + "\n"]
    out.append("\n## Per scene\n")
    rows = []
    for scene in results["scenes"]:
        for name, info in results["methods"].items():
            r = info["scenes"].get(scene, {})
            rows.append([scene, name] + [format_value(r.get(c), _digits(c)) for c in cols + ["seconds"]])
    out.append(markdown_table(["scene", "method"] + cols + ["seconds"], rows, ["l", "l"] + ["r"] * (len(cols) + 1)))
    return "\n".join(out)


CSS = """
:root { --bg:#f6f6f4; --fg:#1d1d1f; --muted:#6b6b70; --card:#fff; --line:#dcdcd8; --accent:#2a5db0; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px 48px; background: var(--bg); color: var(--fg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 10px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 0 0 8px; }
p.meta, .muted { color: var(--muted); }
p.meta { margin: 0 0 12px; }
.protocol { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; max-width: 1100px; }
table { border-collapse: collapse; background: var(--card); font-variant-numeric: tabular-nums; }
th, td { border: 1px solid var(--line); padding: 4px 10px; text-align: right; white-space: nowrap; }
th { background: #ececea; font-weight: 600; }
td.name, th.name { text-align: left; }
td.best, span.best { font-weight: 700; color: var(--accent); }
details { margin: 12px 0; }
summary { cursor: pointer; color: var(--accent); }
ul.notes { margin: 8px 0; padding-left: 20px; color: var(--muted); }
section.scene { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; margin: 18px 0; }
.strip { display: grid; grid-template-columns: repeat(auto-fill, minmax(var(--w, 180px), 1fr)); gap: 12px 10px; align-items: start; }
figure { margin: 0; }
figure img { display: block; width: 100%; height: auto; border: 1px solid var(--line); background: #000; image-rendering: auto; }
figcaption { font-size: 12px; margin-top: 3px; line-height: 1.3; word-break: break-word; }
figcaption b { font-weight: 600; }
.pair > figure:first-child figcaption { min-height: 4.0em; }
span.m { white-space: nowrap; }
.pair { display: flex; flex-direction: column; gap: 4px; }
.row-label { font-size: 12px; color: var(--muted); margin: 10px 0 4px; text-transform: uppercase; letter-spacing: .04em; }
.legend { font-size: 12px; color: var(--muted); margin: 4px 0 0; }
.legend .bar { width: 100%; height: 12px; border: 1px solid var(--line); margin-top: 3px; }
.legend .ticks { display: flex; justify-content: space-between; }
.na { color: var(--muted); font-style: italic; }
""".strip()


def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _html_table(headers: Sequence[str], rows: Sequence[Sequence[str]], name_cols: int = 1, best_marker: str = "\x00") -> str:
    head = "".join(f'<th class="name">{_e(h)}</th>' if i < name_cols else f"<th>{_e(h)}</th>" for i, h in enumerate(headers))
    body = []
    for row in rows:
        cells = []
        for i, c in enumerate(row):
            text = str(c)
            cls = "name" if i < name_cols else ""
            if text.startswith(best_marker):
                text, cls = text[len(best_marker):], "best"
            cells.append(f'<td class="{cls}">{_e(text)}</td>' if cls else f"<td>{_e(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _figure(src: str | None, caption_html: str) -> str:
    img = f'<img src="{_e(src)}" alt="">' if src else '<div class="na">no image</div>'
    return f"<figure>{img}<figcaption>{caption_html}</figcaption></figure>"


def _scene_metrics_caption(info: dict, scene: str, cols: list[str], best: dict[str, float]) -> str:
    r = info["scenes"].get(scene, {})
    if not info["metrics"]:
        parts = ['<span class="na">display-referred: no HDR metrics</span>']
    else:
        parts = []
        for c in [c for c in cols if c in info["metrics"]][:CAPTION_METRICS]:
            v = r.get(c)
            cls = "m best" if v is not None and best.get(c) == v else "m"
            parts.append(f'<span class="{cls}">{_e(c)} {_e(format_value(v, _digits(c)))}</span>')
    if r.get("seconds") is not None:
        parts.append(f'<span class="m">{_e(format_value(r["seconds"], 2))} s</span>')
    return " · ".join(parts)


def _scene_best(results: dict, scene: str, cols: list[str]) -> dict[str, float]:
    lower = results.get("metadata", {}).get("lower_is_better", ())
    best = {}
    for c in cols:
        vals = [i["scenes"].get(scene, {}).get(c) for i in results["methods"].values() if c in i["metrics"]]
        vals = [v for v in vals if v is not None and math.isfinite(v)]
        if len(vals) >= 2:
            best[c] = max(vals) if higher_is_better(c, lower) else min(vals)
    return best


def render_html(results: dict, thumb_px: int = 180) -> str:
    """``index.html``: metadata, aggregate table, per-scene table and one contact sheet per scene.

    Image paths come from ``results['images']`` (relative to the report folder). Each contact sheet shows the
    input frames as captured, then the ground truth and every method's output tone mapped the same way, each
    output above its error map (fixed scale from ``results['display']``, legend under the ground truth).
    Thumbnails are laid out in columns at least ``thumb_px`` CSS pixels wide. Best values are highlighted.
    """
    meta, display = results["metadata"], results.get("display", {})
    cols = _columns(results)
    marker = "\x00"
    agg_rows = _aggregate_rows(results, cols, marker + "{}")
    scale = display.get("error_scale", 0.1)
    legend = (f'<div class="legend"><div>error |{_e(display.get("error_domain", "mu(pred) - mu(gt)"))}|</div>'
              f'<div class="bar" style="background:{_css_gradient()}"></div>'
              f'<div class="ticks"><span>0</span><span>{_e(format_value(scale / 2, 2))}</span>'
              f"<span>&ge; {_e(format_value(scale, 2))}</span></div></div>")
    n = len(results["scenes"])
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>hdrkit eval: {_e(meta.get('dataset', ''))}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>hdrkit evaluation: {_e(meta.get('dataset', ''))}</h1>",
        f'<p class="meta">{n} scene{"s" if n != 1 else ""} · split {_e(meta.get("split"))} · response '
        f'{_e(meta.get("response"))} · alignment {_e(meta.get("align"))} · hdrkit {_e(meta.get("hdrkit_version"))} · '
        f'{_e(meta.get("date"))} · {_e(meta.get("machine"))}{_e(_load_text(meta))}</p>',
        f'<div class="protocol">{_e(results["protocol"])}</div>',
        "<h2>Mean over scenes</h2>",
        _html_table(["method", "kind"] + cols + ["seconds/scene"], agg_rows, name_cols=2, best_marker=marker),
    ]
    notes = [f"<li><b>{_e(k)}</b>: {_e(i['note'])}</li>" for k, i in results["methods"].items() if i.get("note")]
    if notes:
        parts.append(f'<ul class="notes">{"".join(notes)}</ul>')
    summaries = [f"<li><b>{_e(k)}</b>: {_e(i['summary'])}</li>" for k, i in results["methods"].items() if i.get("summary")]
    if summaries:
        parts.append(f'<details><summary>Method descriptions</summary><ul class="notes">{"".join(summaries)}</ul></details>')
    rows = []
    for scene in results["scenes"]:
        for name, info in results["methods"].items():
            r = info["scenes"].get(scene, {})
            rows.append([scene, name] + [format_value(r.get(c), _digits(c)) for c in cols + ["seconds"]])
    parts += ["<details><summary>Per-scene table</summary>",
              _html_table(["scene", "method"] + cols + ["seconds"], rows, name_cols=2), "</details>",
              "<h2>Contact sheets</h2>",
              f'<p class="muted">Radiance images (ground truth and outputs) are tone mapped the same way: '
              f'{_e(display.get("tonemap", "mu-law"))}. Inputs are shown as captured. Each output sits above its '
              "error map; the best value per scene is highlighted.</p>"]
    images = results.get("images", {})
    for scene in results["scenes"]:
        im = images.get(scene)
        if not im:
            continue
        best = _scene_best(results, scene, cols)
        inputs = "".join(_figure(f["src"], _e(f["caption"])) for f in im["inputs"])
        cells = []
        if im.get("gt"):
            cells.append(f'<div class="pair">{_figure(im["gt"], "<b>ground truth</b>")}{legend}</div>')
        for name, info in results["methods"].items():
            o = im["outputs"].get(name)
            if o is None:
                continue
            cap = f"<b>{_e(name)}</b><br>{_scene_metrics_caption(info, scene, cols, best)}"
            err = _figure(o["error"], "error map") if o.get("error") else ""
            cells.append(f'<div class="pair">{_figure(o["src"], cap)}{err}</div>')
        parts.append(f'<section class="scene" id="{_e(scene)}"><h3>{_e(scene)}</h3>'
                     f'<div class="row-label">inputs</div><div class="strip" style="--w:{thumb_px}px">{inputs}</div>'
                     f'<div class="row-label">ground truth, outputs and error maps</div>'
                     f'<div class="strip" style="--w:{thumb_px}px">{"".join(cells)}</div></section>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
