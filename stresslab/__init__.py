"""StressLab: which emotion a clip shows, how stressed the person seems, and why.

    import stresslab
    result = stresslab.analyze("clip.mp4")            # bundled default model, offline
    analyzer = stresslab.Analyzer("models/default")   # owns model, face detector, speech recogniser, settings
    print(result.emotion, result.stress["level"])
    json_doc = result.to_dict()                       # the schema shared by the CLI, the app and the HTTP API

Names load lazily (PEP 562), so `import stresslab.corrections` in a writer process does not pull in torch.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "Analysis": "analysis", "AnalysisSettings": "analysis", "Analyzer": "analysis", "Encoded": "analysis",
    "NothingToAnalyze": "analysis", "analyze": "analysis", "encode": "analysis", "fuse": "analysis",
    "TowerInputs": "inputs", "tower_inputs": "inputs", "configure_threads": "runtime",
    "LiveSession": "live", "LiveSettings": "live",
    "Clip": "clip", "ClipError": "clip", "ClipLimits": "clip", "load_clip": "clip",
    "save_clip": "media", "write_media": "media",
    "MODALITIES": "labels",
    "EMOTIONS": "labels", "stress_from_probs": "labels", "stress_level": "labels",
    "ModelConfig": "config", "StressModel": "model", "load_model": "runtime",
    "Workspace": "collections.workspace",
    "CorrectionRecord": "corrections.store", "FeedbackStore": "corrections.store", "HubSync": "corrections.hub_sync",
    "correction_record": "corrections.record",
}
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'stresslab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
