"""Atomic output: write to a temporary file beside the target, then rename over it."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from hdrkit.errors import HdrkitError

__all__ = ["atomic_path", "check_output_path"]


def check_output_path(output: str | Path, inputs=()) -> Path:
    """Refuse to write over an input file or into a missing directory."""
    out = Path(output)
    if any(out.resolve() == Path(src).resolve() for src in inputs):
        raise HdrkitError(f"{out}: output path is also an input; choose another output name")
    if not out.parent.exists() and str(out.parent) not in ("", "."):
        raise HdrkitError(f"{out}: directory {out.parent} does not exist")
    return out


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path in the same directory; on success it replaces ``path``.

    On any exception the temporary file is removed, so no partial output is left behind.
    The temporary name keeps the target's suffix so format-sniffing writers work.
    """
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.exists():
        raise HdrkitError(f"{target}: directory {directory} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=directory)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; give the output the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
