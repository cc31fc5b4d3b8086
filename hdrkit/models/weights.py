"""Packaged network weights: safetensors files inside the package, checked by sha256, loaded without pickle.

``WEIGHTS`` records the sha256 of every shipped file; a file that does not match (corrupt, truncated,
replaced) is refused with one line naming it. Loading into a model names missing, unexpected and
mis-shaped tensors in one line. A state dict over ``MAX_FILE_BYTES`` is written as ``NAME.safetensors`` plus
shards ``NAME.shard2.safetensors``, ... whose names and sha256 the first file's metadata records (so the
first file's digest covers them all); ``load_weights`` reads and checks them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from hdrkit.errors import HdrkitError

__all__ = ["MAX_FILE_BYTES", "WEIGHTS", "WEIGHTS_DIR", "load_weights", "save_weights", "sha256_file", "weights_path"]

WEIGHTS_DIR = Path(__file__).with_name("weights")

MAX_FILE_BYTES = 19 * 2**20
"""Largest tensor data of one weights file: packaged files must stay under 20 MiB, larger state dicts shard."""

WEIGHTS: dict[str, str] = {
    "ahdrnet.safetensors": "71c83fa89117aa0bc424a20fdbbfd0a7e8f5ba4cd7548d8eafd9190780a3196e",
    "deghost_refine.safetensors": "aca495dd24999fb55cd493686fdeb942a5526e8bb1c080ef3426bc20408463e1",
    "kalantari2017_we.safetensors": "b72d49a6948953b1b879226dc2a5082ec01efca81f7d2bb89747e651589229e6",
}
"""File name in ``WEIGHTS_DIR`` -> sha256 of the shipped file (written by ``scripts/export_weights.py``)."""


def weights_path(name: str) -> Path:
    return WEIGHTS_DIR / name


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_weights(model: torch.nn.Module, path: str | Path, metadata: dict | None = None, dtype: torch.dtype | None = None) -> str:
    """Write ``model``'s state dict as safetensors (atomically); returns the file's sha256.

    Over ``MAX_FILE_BYTES`` of tensor data, the tensors after the first ``MAX_FILE_BYTES`` go to shards beside
    ``path`` (written first), whose names and digests ``path``'s metadata records under ``shards``.
    """
    from safetensors.torch import save_file

    from hdrkit.io.atomic import atomic_path

    state = {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).detach().cpu().contiguous()
             for k, v in model.state_dict().items()}
    meta = {k: (v if isinstance(v, str) else json.dumps(v)) for k, v in (metadata or {}).items()}
    path = Path(path)
    groups, size = [{}], 0
    for k, v in state.items():
        n = v.numel() * v.element_size()
        if groups[-1] and size + n > MAX_FILE_BYTES:
            groups.append({})
            size = 0
        groups[-1][k] = v
        size += n
    shards = {}
    for i, group in enumerate(groups[1:], start=2):
        shard = path.with_name(f"{path.name.removesuffix('.safetensors')}.shard{i}.safetensors")
        with atomic_path(shard) as tmp:
            save_file(group, str(tmp))
        shards[shard.name] = sha256_file(shard)
    if shards:
        meta["shards"] = json.dumps(shards)
    with atomic_path(path) as tmp:
        save_file(groups[0], str(tmp), metadata=meta)
    return sha256_file(path)


def _read(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise HdrkitError(f"{path}: not a readable safetensors weights file ({first}); "
                          "the file may be truncated or corrupt: reinstall hdrkit or re-export it") from None


def _read_shards(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of the shards that ``path``'s metadata lists, each checked against its recorded sha256."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        shards = json.loads((f.metadata() or {}).get("shards", "{}"))
    state = {}
    for name, digest in shards.items():
        shard = path.with_name(name)
        if not shard.is_file():
            raise HdrkitError(f"{shard}: weights shard of {path.name} not found; reinstall hdrkit or re-export it")
        if sha256_file(shard) != digest:
            raise HdrkitError(f"{shard}: sha256 does not match the digest recorded in {path.name}; "
                              "the shard is corrupt, truncated or replaced: reinstall hdrkit or re-export it")
        state.update(_read(shard))
    return state


def load_weights(model: torch.nn.Module, path: str | Path, sha256: str | None = None) -> torch.nn.Module:
    """Load a safetensors file into ``model`` (strict); returns the model.

    Args:
        path: the weights file.
        sha256: the expected digest (packaged files pass theirs from ``WEIGHTS``); None skips the check.
    """
    path = Path(path)
    if not path.is_file():
        raise HdrkitError(f"{path}: weights file not found")
    if sha256 is not None:
        got = sha256_file(path)
        if got != sha256:
            raise HdrkitError(f"{path}: sha256 {got[:12]}... does not match the recorded {sha256[:12]}...; "
                              "the file is corrupt, truncated or replaced: reinstall hdrkit")
    state = _read(path)
    state.update(_read_shards(path))
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k} {tuple(state[k].shape)} != {tuple(own[k].shape)}" for k in own
              if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)):
            if items:
                more = f" (+{len(items) - 3} more)" if len(items) > 3 else ""
                parts.append(f"{label}: {', '.join(items[:3])}{more}")
        raise HdrkitError(f"{path}: weights do not fit {type(model).__name__}: {'; '.join(parts)}")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
    return model
