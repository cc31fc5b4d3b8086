"""Thread-level parallelism for work that releases the GIL (OpenCV, numpy, torch, image decoders)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import torch

__all__ = ["parallel_map"]


def parallel_map(fn, items: list) -> list:
    """``[fn(x) for x in items]`` on up to ``torch.get_num_threads()`` threads; the order of the results is kept
    and the first exception is raised."""
    workers = min(len(items), max(1, torch.get_num_threads()))
    if workers <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))
