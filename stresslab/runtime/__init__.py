"""How the model runs: a Backend (torch, or onnxruntime for an exported folder) behind one numpy interface, and
the thread count, set once, deliberately (STRESSLAB_THREADS).

Analysis, the CLI and the app speak only to a Backend (runtime/base.py), so they never import torch themselves:
an exported folder analyses with onnxruntime alone. Training keeps the torch StressModel.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

from .base import Backend, Scores

__all__ = ["Backend", "Scores", "configure_threads", "threads", "sync_torch_threads", "load_backend", "load_model",
           "is_onnx_folder"]
_THREADS: int | None = None
_TORCH_THREADS: int | None = None  # what sync_torch_threads last gave torch


def configure_threads(n: int | None = None) -> int:
    """Set the compute threads to n (default: STRESSLAB_THREADS, else the cores, at most 4); returns n.
    onnxruntime sessions read threads() when they are created. torch is set at once when it is already imported,
    else by sync_torch_threads() when a torch model is loaded: importing torch here cost an ONNX-only process
    (the CLI, the app) seconds for nothing."""
    global _THREADS
    n = n or int(os.environ.get("STRESSLAB_THREADS", min(4, os.cpu_count() or 1)))
    if n < 1:
        raise ValueError(f"STRESSLAB_THREADS must be a positive integer, got {n}")
    _THREADS = n
    sync_torch_threads()
    return n


def sync_torch_threads() -> None:
    """Give torch the count configure_threads set, if both have happened (torch imported, configure_threads
    called) and torch does not have it yet; otherwise nothing. Called where stresslab starts using torch."""
    global _TORCH_THREADS
    set_threads = getattr(sys.modules.get("torch"), "set_num_threads", None)  # None too while another thread imports it
    if _THREADS is None or set_threads is None or _TORCH_THREADS == _THREADS:
        return
    set_threads(_THREADS)
    _TORCH_THREADS = _THREADS


def threads() -> int:
    """The thread count configure_threads set (or would set)."""
    return _THREADS or int(os.environ.get("STRESSLAB_THREADS", min(4, os.cpu_count() or 1)))


def is_onnx_folder(path: str | Path) -> bool:
    """True for a folder written by `stresslab export` (it holds onnx/manifest.json)."""
    return (Path(path) / "onnx" / "manifest.json").is_file()


def load_backend(name: str | Path | None = None, runtime: str | None = None) -> Backend:
    """The model at `name` (folder or Hub id; default: the bundled one) behind a Backend.

    runtime: "torch", "onnx" or None (STRESSLAB_RUNTIME, else chosen from the folder: an exported folder runs on
    onnxruntime, a torch checkpoint on torch)."""
    from ..config import default_model_name

    name = str(name) if name is not None else default_model_name()
    runtime = runtime or os.environ.get("STRESSLAB_RUNTIME") or None
    if runtime not in (None, "torch", "onnx"):
        raise ValueError(f"runtime must be 'torch' or 'onnx', not {runtime!r}")
    if runtime == "onnx" or (runtime is None and is_onnx_folder(name)):
        return _onnx(name)
    from ..model import load_model as load_torch
    from .torch_backend import TorchBackend

    model = load_torch(name)
    sync_torch_threads()
    return TorchBackend(model)


def load_model(name: str | Path | None = None, runtime: str | None = None):
    """What `name` holds, ready to analyse: a torch StressModel for a checkpoint folder or Hub id, an OnnxBackend
    for a folder written by `stresslab export` (or with runtime="onnx"). Both go to Analyzer / analyze as they are.
    Loaded once per process."""
    from ..config import default_model_name

    name = str(name) if name is not None else default_model_name()
    runtime = runtime or os.environ.get("STRESSLAB_RUNTIME") or None
    if runtime == "onnx" or (runtime is None and is_onnx_folder(name)):
        return _onnx(name)
    from ..model import load_model as load_torch

    model = load_torch(name)
    sync_torch_threads()
    return model


@functools.lru_cache(maxsize=4)
def _onnx(name: str) -> Backend:
    from .onnx_backend import OnnxBackend

    return OnnxBackend.load(name)
