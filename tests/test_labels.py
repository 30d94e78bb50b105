import numpy as np
import pytest

from stresslab.labels import (
    CORPUS_LABELS,
    EMOTIONS,
    emotion_id,
    map_corpus_label,
    stress_from_probs,
    stress_level,
    valence_arousal,
)


def onehot(name: str) -> np.ndarray:
    p = np.zeros(len(EMOTIONS))
    p[EMOTIONS.index(name)] = 1
    return p


def test_six_emotions_and_ids():
    assert EMOTIONS == ("anger", "disgust", "fear", "happy", "neutral", "sad")
    assert [emotion_id(e) for e in EMOTIONS] == list(range(6))
    with pytest.raises(ValueError, match="expected one of"):
        emotion_id("surprise")


def test_corpus_maps_cover_six_and_drop_the_rest():
    for corpus, mapping in CORPUS_LABELS.items():
        assert set(mapping.values()) == set(EMOTIONS), corpus
    assert map_corpus_label("emodb", "L") is None  # boredom
    assert map_corpus_label("goemotions", "surprise") is None
    assert map_corpus_label("fer2013", "surprise") is None
    assert map_corpus_label("goemotions", "joy") == "happy"
    with pytest.raises(ValueError, match="unknown corpus"):
        map_corpus_label("iemocap", "ang")


def test_stress_mapping_orders_emotions_as_documented():
    s = {e: stress_from_probs(onehot(e)) for e in EMOTIONS}
    assert s["anger"] == pytest.approx(0.72) and s["fear"] == pytest.approx(0.7225)
    assert s["happy"] < s["neutral"] < s["sad"] < s["disgust"] < s["anger"]
    assert stress_level(s["anger"]) == "high" and stress_level(s["disgust"]) == "moderate"
    assert stress_level(s["happy"]) == "low" and stress_level(s["neutral"]) == "low"
    uniform = np.full(6, 1 / 6)
    assert 0 <= stress_from_probs(uniform) <= 1
    assert valence_arousal(onehot("happy")) == (0.8, 0.5)
    with pytest.raises(ValueError, match="expected 6"):
        valence_arousal([0.5, 0.5])
