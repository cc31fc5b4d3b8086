import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """``$HDRKIT_DATA`` or ``../shared/data`` beside the repository, if present."""
    env = os.environ.get("HDRKIT_DATA")
    for cand in ([Path(env)] if env else []) + [ROOT.parent / "shared" / "data"]:
        if cand.is_dir():
            return cand
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = shared_data_dir()
    if d is None:
        pytest.skip("shared HDR data not found: set HDRKIT_DATA or place it at ../shared/data")
    return d


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
