"""Package a training run's network: safetensors weights inside ``hdrkit/models/weights`` and their sha256 in code.

Usage::

    python scripts/export_weights.py runs/ahdrnet/checkpoint.pt [--dtype fp32|bf16|fp16]

writes ``hdrkit/models/weights/<model>.safetensors`` (the model named in the checkpoint) and records its digest
in ``hdrkit/models/weights.py`` (``WEIGHTS``). The model card ``<model>.md`` beside it is written by hand
(architecture, data and licence, steps, wall time, machine, validation metrics, known weaknesses).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hdrkit.models.weights import WEIGHTS_DIR  # noqa: E402
from hdrkit.train import export_weights  # noqa: E402


def record_digest(file: str, digest: str) -> None:
    """Set ``WEIGHTS[file] = digest`` in ``hdrkit/models/weights.py``."""
    path = ROOT / "hdrkit" / "models" / "weights.py"
    text = path.read_text()
    start = text.index("WEIGHTS: dict[str, str] = {")
    end = text.index("}", start)
    entries = dict(re.findall(r'"([^"]+)": "([0-9a-f]{64})"', text[start:end]))
    entries[file] = digest
    body = "".join(f'    "{k}": "{v}",\n' for k, v in sorted(entries.items()))
    path.write_text(text[:start] + "WEIGHTS: dict[str, str] = {\n" + body + text[end:])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default="fp32")
    args = ap.parse_args()
    model = torch.load(args.checkpoint, map_location="cpu", weights_only=True)["config"]["model"]
    file = f"{model}.safetensors"
    digest = export_weights(args.checkpoint, WEIGHTS_DIR / file, dtype=None if args.dtype == "fp32" else args.dtype)
    record_digest(file, digest)
    size = (WEIGHTS_DIR / file).stat().st_size
    print(f"{args.checkpoint} -> {WEIGHTS_DIR / file} ({size / 2**20:.2f} MiB, sha256 {digest})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
