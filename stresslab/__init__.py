"""StressLab: which emotion a clip shows, how stressed the person seems, and why.

    import stresslab
    result = stresslab.analyze("clip.mp4")            # bundled default model, offline
    print(result.emotion, result.stress["level"])
    json_doc = result.to_dict()                       # the schema shared by the CLI, the app and the HTTP API
"""

from .analyze import Analysis, AnalysisSettings, Encoded, NothingToAnalyze, analyze, encode, fuse
from .clip import Clip, ClipError, ClipLimits, load_clip
from .fusion import MODALITIES
from .labels import EMOTIONS, stress_from_probs, stress_level
from .model import ModelConfig, StressModel, load_model

__version__ = "0.1.0"

__all__ = [
    "EMOTIONS", "MODALITIES", "Analysis", "AnalysisSettings", "Clip", "ClipError", "ClipLimits", "Encoded",
    "ModelConfig", "NothingToAnalyze", "StressModel", "analyze", "encode", "fuse", "load_clip", "load_model",
    "stress_from_probs", "stress_level", "__version__",
]
