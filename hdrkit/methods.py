"""The one registry of every method: classical merges, exposure fusion, learned networks, single-image.

Every method is called the same way, whatever its kind::

    run_method(name, ldr, exposure_times, reference, response=..., bits=...) -> (B, 3, H, W)

- ``ldr`` (B, N, 3, H, W): display-referred RGB codes in [0, 1], globally aligned to the reference.
- ``exposure_times`` (B, N): linear, normalized here once so that the shortest is 1.
- ``reference`` (B,) long (an int is broadcast): the frame whose geometry and content the output keeps.
- ``response``: the camera response the frames were made with (classical merges linearize with it;
  networks trained on gamma 2.2 ignore it); ``bits``: their code depth (classical noise models).
- returns radiance in units of the shortest exposure (``output == 'radiance'``) or display-referred codes
  in [0, 1] (``output == 'display'``, exposure fusion).

A single-image method given a bracket sees only each item's reference frame. The CLI, the pipeline, the
evaluation and training resolve names only here (``get_method``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from hdrkit.errors import HdrkitError

__all__ = ["METHODS", "MethodCard", "Runner", "get_method", "register", "run_method", "KINDS"]

KINDS = ("merge", "fusion", "single")

Runner = Callable[..., torch.Tensor]
"""``runner(ldr, exposure_times, reference (B,), response=None, bits=None) -> (B, 3, H, W)``."""


@dataclass(frozen=True)
class MethodCard:
    """What one method is, and how to build its runner.

    name: the registry key. kind: ``'merge'`` (radiance from a bracket), ``'fusion'`` (display image
    from a bracket) or ``'single'`` (radiance from one frame). output: ``'radiance'`` or ``'display'``.
    frames: ``(min, max)`` frames it accepts, ``max`` None for any number. paper: citation. summary: one
    line. learned: a trained network. weights: the packaged weights file name, if any.
    build: ``build(**options) -> Runner``; options of learned methods: ``device``, ``dtype``,
    ``max_memory``, ``weights`` (a path overriding the packaged file).
    """

    name: str
    kind: str
    output: str
    frames: tuple[int, int | None]
    paper: str
    summary: str
    build: Callable[..., Runner] = field(repr=False, compare=False)
    learned: bool = False
    weights: str | None = None

    @property
    def weights_available(self) -> bool:
        if self.weights is None:
            return False
        from hdrkit.models.weights import weights_path

        return weights_path(self.weights).is_file()

    @property
    def frames_text(self) -> str:
        lo, hi = self.frames
        return f"any N >= {lo}" if hi is None else (str(lo) if lo == hi else f"{lo}..{hi}")

    def check_frames(self, n: int) -> None:
        lo, hi = self.frames
        if self.kind == "single":
            return
        if n < lo or (hi is not None and n > hi):
            want = f"exactly {lo}" if lo == hi else (f"at least {lo}" if hi is None else f"{lo} to {hi}")
            raise HdrkitError(f"method {self.name!r} takes {want} frames, got {n}; "
                              "`hdrkit methods` lists what each method accepts")


METHODS: dict[str, MethodCard] = {}
"""Every registered method by name, in registration order."""


def register(card: MethodCard) -> MethodCard:
    if card.kind not in KINDS:
        raise ValueError(f"unknown kind {card.kind!r}")
    METHODS[card.name] = card
    return card


def get_method(name: str) -> MethodCard:
    """The card of ``name``; a one-line error listing the known names otherwise."""
    _ensure_learned()
    if name not in METHODS:
        raise HdrkitError(f"unknown method {name!r}: choose from {', '.join(METHODS)} (`hdrkit methods` describes them)")
    return METHODS[name]


def normalize_inputs(ldr, exposure_times, reference):
    """Check and normalize the canonical inputs: ``(ldr, times (B, N) shortest = 1, reference (B,) long)``."""
    from hdrkit.camera.exposure import normalize_times
    from hdrkit.models.base import check_bracket

    ldr, t, ref = check_bracket(ldr, exposure_times, reference, min_frames=1)
    if not torch.isfinite(t).all() or (t <= 0).any():
        raise HdrkitError("exposure times must be positive and finite")
    return ldr, normalize_times(t), ref


def run_method(name: str, ldr: torch.Tensor, exposure_times, reference, *, response=None, bits: int | None = None,
               **options) -> torch.Tensor:
    """Build ``name``'s runner with ``options`` and apply it (see the module docstring)."""
    card = get_method(name)
    card.check_frames(ldr.shape[1] if isinstance(ldr, torch.Tensor) and ldr.ndim == 5 else -1)
    return apply(card, card.build(**options), ldr, exposure_times, reference, response=response, bits=bits)


def apply(card: MethodCard, runner: Runner, ldr, exposure_times, reference, *, response=None, bits=None) -> torch.Tensor:
    """Apply a built runner under the registry's checks (frame count, canonical inputs)."""
    card.check_frames(ldr.shape[1] if isinstance(ldr, torch.Tensor) and ldr.ndim == 5 else -1)
    ldr, t, ref = normalize_inputs(ldr, exposure_times, reference)
    if card.kind == "single" and ldr.shape[1] > 1:
        bi = torch.arange(ldr.shape[0], device=ldr.device)
        ldr, t, ref = ldr[bi, ref][:, None], t[bi, ref][:, None], torch.zeros_like(ref)
    return runner(ldr, t, ref, response=response, bits=bits)


# classical methods -----------------------------------------------------------------------------

def _per_reference(fn):
    """Adapt ``fn(ldr, times, reference=int, ...)`` to a (B,) reference (one call per distinct value)."""

    def run(ldr, t, ref, **kw):
        if bool((ref == ref[0]).all()):
            return fn(ldr, t, reference=int(ref[0]), **kw)
        return torch.cat([fn(ldr[i : i + 1], t[i : i + 1], reference=int(ref[i]), **kw) for i in range(ldr.shape[0])])

    return run


def _check_options(name: str, fn, options: dict, fixed=("ldr", "exposure_times", "response", "reference", "bits")) -> None:
    import inspect

    allowed = [k for k in inspect.signature(fn).parameters if k not in fixed]
    bad = sorted(set(options) - set(allowed))
    if bad:
        raise HdrkitError(f"method {name!r} got unknown option(s) {bad}: allowed {allowed}")


def _classical(fn_name: str):
    def build(**options):
        from hdrkit import merge

        fn = getattr(merge, fn_name)
        _check_options(fn_name, fn, options)
        inner = _per_reference(fn)

        def runner(ldr, t, ref, response=None, bits=None):
            kw = dict(options, response=response)
            if bits is not None:
                kw["bits"] = bits
            return inner(ldr, t, ref, **kw)

        return runner

    return build


def _build_mertens(**options):
    from hdrkit.merge import fuse_mertens2007

    _check_options("mertens", fuse_mertens2007, options)

    def runner(ldr, t, ref, response=None, bits=None):
        return fuse_mertens2007(ldr, **options)

    return runner


def _build_single_linearize(gamma: float = 2.2):
    def runner(ldr, t, ref, response=None, bits=None):
        x = ldr[:, 0].clamp(0, 1)
        lin = response.inverse(x) if response is not None else x**gamma
        return lin / t[:, :1, None, None]

    return runner


def _expansion(fn_name: str):
    """A classical expansion operator of ``hdrkit.expand`` as a single-image runner (``fn(ldr (B, 3, H, W), response)``)."""

    def build(**options):
        from hdrkit import expand

        fn = getattr(expand, fn_name)
        _check_options(fn_name, fn, options)

        def runner(ldr, t, ref, response=None, bits=None):
            return fn(ldr[:, 0], response, **options) / t[:, :1, None, None]

        return runner

    return build


def _learned(model_name: str):
    def build(device=None, dtype: str = "fp32", max_memory: float | None = None, weights: str | Path | None = None,
              tile: int | None = None):
        from hdrkit.models import create_model
        from hdrkit.models.inference import run_model

        model = create_model(model_name, pretrained=weights is None, weights=weights)

        def runner(ldr, t, ref, response=None, bits=None):
            return run_model(model, ldr, t, ref, response=response, device=device, dtype=dtype,
                             max_memory=max_memory, tile=tile)

        return runner

    return build


_GRANADOS = "Granados, Kim, Tompkin, Kautz & Theobalt, Automatic noise modeling for ghost-free HDR reconstruction, SIGGRAPH Asia 2013"
for _card in (
    MethodCard("deghost", "merge", "radiance", (2, None), _GRANADOS + " (simplified)",
               "noise-optimal merge keeping the reference where frames disagree beyond noise", _classical("merge_granados2013")),
    MethodCard("debevec", "merge", "radiance", (2, None), "Debevec & Malik, Recovering high dynamic range radiance maps from photographs, SIGGRAPH 1997",
               "weighted mean of per-frame radiance, noise-optimal weights by default", _classical("merge_debevec1997")),
    MethodCard("robertson", "merge", "radiance", (2, None), "Robertson, Borman & Stevenson, Estimation-theoretic approach to dynamic range enhancement, JEI 2003",
               "maximum-likelihood merge with Gaussian weights", _classical("merge_robertson2003")),
    MethodCard("mertens", "fusion", "display", (2, None), "Mertens, Kautz & Van Reeth, Exposure fusion, Pacific Graphics 2007",
               "exposure fusion: a display-referred image, not radiance", _build_mertens),
    MethodCard("single_linearize", "single", "radiance", (1, 1), "baseline",
               "the reference frame alone, linearized with the response (gamma 2.2 if none) and divided by its exposure",
               _build_single_linearize),
    MethodCard("akyuz2007", "single", "radiance", (1, 1),
               "Akyuz, Fleming, Riecke, Reinhard & Bulthoff, Do HDR displays support LDR content? A psychophysical evaluation, SIGGRAPH 2007",
               "linear expansion of the linearized luminance to a display peak (gamma 1); nothing added above the clip",
               _expansion("expand_akyuz2007")),
    MethodCard("landis2002", "single", "radiance", (1, 1),
               "Landis, Production-ready global illumination, SIGGRAPH 2002 course notes",
               "highlight expansion: luminance near the peak boosted (up to 1.5x) along a power ramp",
               _expansion("expand_landis2002")),
):
    register(_card)

_LEARNED_LOADED = False


def _ensure_learned() -> None:
    """Register the learned networks (imports ``hdrkit.models`` once, on first lookup)."""
    global _LEARNED_LOADED
    if _LEARNED_LOADED:
        return
    _LEARNED_LOADED = True
    from hdrkit.models import LEARNED_CARDS

    for card in LEARNED_CARDS:
        register(card)


def all_methods() -> dict[str, MethodCard]:
    """Every registered method (classical and learned)."""
    _ensure_learned()
    return dict(METHODS)
