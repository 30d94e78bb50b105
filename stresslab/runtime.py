"""How this process computes: the torch thread count, set once, deliberately (STRESSLAB_THREADS)."""

from __future__ import annotations

import os


def configure_threads(n: int | None = None) -> int:
    """Set torch's intra-op threads to n (default: STRESSLAB_THREADS, else the cores, at most 4); returns n."""
    import torch

    n = n or int(os.environ.get("STRESSLAB_THREADS", min(4, os.cpu_count() or 1)))
    if n < 1:
        raise ValueError(f"STRESSLAB_THREADS must be a positive integer, got {n}")
    torch.set_num_threads(n)
    return n
