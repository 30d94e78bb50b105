"""The six emotions, per-corpus label maps, and the emotion -> valence/arousal -> stress mapping.

Stress is not labelled in any corpus we have. Until corrections carry stress ratings and a learned stress head
exists, stress is derived from the emotion distribution through the circumplex model of affect (Russell 1980):
each emotion gets a (valence, arousal) point in [-1, 1]^2, the distribution gives the expected point, and stress
is high when arousal is high and valence is negative:

    stress = (arousal + 1) / 2 * (1 - valence) / 2        in [0, 1]   (see stress_from_probs)

which puts a certain anger or fear at 0.72 (high), disgust 0.55 (moderate), sadness 0.26, neutral 0.20 and
happiness 0.08 (low), and a uniform (undecided) distribution at 0.42 (moderate).

The coordinates are the mean positions reported for these categories in the circumplex literature
(Russell 1980; Posner et al. 2005), rounded to one decimal.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

EMOTIONS: tuple[str, ...] = ("anger", "disgust", "fear", "happy", "neutral", "sad")
MODALITIES: tuple[str, ...] = ("video", "audio", "text")  # the order of every per-modality array
EMOTION_TO_ID: dict[str, int] = {name: i for i, name in enumerate(EMOTIONS)}

# Each corpus' own label -> one of EMOTIONS. A label missing here has no counterpart and is dropped, never guessed.
CORPUS_LABELS: dict[str, dict[str, str]] = {
    # CREMA-D file name field 3
    "cremad": {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"},
    # EmoDB file name letter 6 (German initials); L (Langeweile, boredom) is dropped
    "emodb": {"W": "anger", "E": "disgust", "A": "fear", "F": "happy", "N": "neutral", "T": "sad"},
    # GoEmotions Ekman grouping (labels.txt); surprise is dropped
    "goemotions": {"anger": "anger", "disgust": "disgust", "fear": "fear", "joy": "happy",
                   "neutral": "neutral", "sadness": "sad"},
    # FER2013 class folders; surprise is dropped
    "fer2013": {"angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happy",
                "neutral": "neutral", "sad": "sad"},
    # RAVDESS file name field 3; 02 (calm) and 08 (surprised) are dropped
    "ravdess": {"01": "neutral", "03": "happy", "04": "sad", "05": "anger", "06": "fear", "07": "disgust"},
}

# (valence, arousal) per emotion, each in [-1, 1].
VALENCE_AROUSAL: dict[str, tuple[float, float]] = {
    "anger": (-0.6, 0.8),
    "disgust": (-0.7, 0.3),
    "fear": (-0.7, 0.7),
    "happy": (0.8, 0.5),
    "neutral": (0.0, -0.2),
    "sad": (-0.7, -0.4),
}

STRESS_LEVELS: tuple[tuple[float, str], ...] = ((0.33, "low"), (0.6, "moderate"), (1.01, "high"))


def emotion_id(name: str) -> int:
    """Index of an emotion name in EMOTIONS; raises ValueError naming the accepted names."""
    try:
        return EMOTION_TO_ID[name]
    except KeyError:
        raise ValueError(f"unknown emotion {name!r}; expected one of {', '.join(EMOTIONS)}") from None


def map_corpus_label(corpus: str, label: str) -> str | None:
    """A corpus' own label mapped onto EMOTIONS, or None when it has no counterpart (dropped)."""
    if corpus not in CORPUS_LABELS:
        raise ValueError(f"unknown corpus {corpus!r}; expected one of {', '.join(CORPUS_LABELS)}")
    return CORPUS_LABELS[corpus].get(label)


def valence_arousal(probs: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Expected (valence, arousal) of a distribution over EMOTIONS. probs: (6,) summing to 1."""
    p = np.asarray(probs, dtype=np.float64)
    if p.shape != (len(EMOTIONS),):
        raise ValueError(f"expected {len(EMOTIONS)} probabilities, got shape {p.shape}")
    va = np.array([VALENCE_AROUSAL[e] for e in EMOTIONS])
    valence, arousal = p @ va
    return float(valence), float(arousal)


def stress_level(score: float) -> str:
    """'low', 'moderate' or 'high' for a stress score in [0, 1]."""
    for bound, name in STRESS_LEVELS:
        if score < bound:
            return name
    return STRESS_LEVELS[-1][1]


def stress_from_probs(probs: Sequence[float] | np.ndarray) -> float:
    """Stress in [0, 1] from a distribution over EMOTIONS: high arousal with negative valence is stress.

    arousal01 = (a + 1) / 2 and negativity = (1 - v) / 2 are both in [0, 1], and so is their product.
    """
    valence, arousal = valence_arousal(probs)
    return float((arousal + 1) / 2 * (1 - valence) / 2)
