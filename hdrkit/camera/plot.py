"""Plot recovered camera response curves (needs the optional ``matplotlib``: ``pip install hdrkit[plot]``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hdrkit.camera.response import Response
from hdrkit.errors import HdrkitError
from hdrkit.io.atomic import atomic_path

__all__ = ["plot_response"]

#: Code samples drawn per curve.
PLOT_SAMPLES = 1024

_COLOURS = ("tab:red", "tab:green", "tab:blue")


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        raise HdrkitError("plotting needs matplotlib: pip install hdrkit[plot]") from None
    return plt


def plot_response(response: Response, path: str | Path, truth: Response | None = None, title: str | None = None) -> Path:
    """Write a PNG of the inverse response ``f^-1`` per channel (code on x, irradiance on y).

    Args:
        response: the recovered response (any :class:`~hdrkit.camera.response.Response`).
        path: output ``.png`` path, written atomically (a temporary file renamed over it).
        truth: optional ground-truth response drawn dashed, with the RMS difference in the legend.
        title: optional plot title (default: the response's repr).

    Returns:
        The written path.
    """
    out = Path(path)
    if out.suffix.lower() != ".png":
        raise HdrkitError(f"{out}: plot_response writes PNG; use a .png file name")
    plt = _pyplot()
    z = np.linspace(0, 1, PLOT_SAMPLES)
    rec = response.table(PLOT_SAMPLES).numpy()
    ref = truth.table(PLOT_SAMPLES).numpy() if truth is not None else None
    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    try:
        for c in range(rec.shape[0]):
            label = "RGB"[c]
            if ref is not None:
                label += f" (RMS {np.sqrt(np.mean((rec[c] - ref[c]) ** 2)):.4f})"
                ax.plot(z, ref[c], "--", color=_COLOURS[c], linewidth=1, alpha=0.7)
            ax.plot(z, rec[c], color=_COLOURS[c], linewidth=1.5, label=label)
        ax.set_xlabel("code value z")
        ax.set_ylabel("normalized irradiance $f^{-1}(z)$")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8, title="dashed: truth" if ref is not None else None, title_fontsize=8)
        ax.set_title(title if title is not None else repr(response), fontsize=9)
        fig.tight_layout()
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
    return out
