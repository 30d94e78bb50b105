"""training.crosscorpus end to end on a real subset: EmoDB and RAVDESS clips, train without X, test on X."""

import numpy as np
from conftest import EMODB, SHARED

from stresslab.towers.audio import AudioConfig
from training.crosscorpus import clip_features, fit_cnn, fit_linear, markdown, matrix, speaker_cv, statistics

EMODB_EMOTIONS = {"W": "anger", "E": "disgust", "A": "fear", "F": "happy", "N": "neutral", "T": "sad"}
RAVDESS_EMOTIONS = {"01": "neutral", "03": "happy", "04": "sad", "05": "anger", "06": "fear", "07": "disgust"}


def _records() -> list[dict]:
    """Speakers 03 (an EmoDB test speaker) and 11 of EmoDB, actors 01 and 02 of RAVDESS, read from file names."""
    recs = []
    for p in sorted((EMODB / "wav").glob("*.wav")):
        if p.name[:2] in ("03", "11") and p.name[5] in EMODB_EMOTIONS:
            recs.append({"audio": str(p), "emotion": EMODB_EMOTIONS[p.name[5]], "speaker": p.name[:2],
                         "corpus": "emodb"})
    for actor in ("01", "02"):
        for p in sorted((SHARED / "ravdess-speech" / f"Actor_{actor}").glob("*.flac")):
            code = p.stem.split("-")
            if code[2] in RAVDESS_EMOTIONS and code[4] == "01" and code[5] == "01":  # one take of one sentence
                recs.append({"audio": str(p), "emotion": RAVDESS_EMOTIONS[code[2]], "speaker": actor,
                             "corpus": "ravdess"})
    return recs


def test_cross_corpus_matrix_on_real_clips():
    recs = _records()
    n_emodb_train = sum(r["corpus"] == "emodb" and r["speaker"] == "11" for r in recs)
    n_emodb_test = sum(r["corpus"] == "emodb" and r["speaker"] == "03" for r in recs)
    n_ravdess = sum(r["corpus"] == "ravdess" for r in recs)
    assert n_emodb_train > 10 and n_emodb_test > 10 and n_ravdess == 2 * 11  # neutral has one intensity
    feats = clip_features(recs, AudioConfig(utterance_norm=True, target_loudness_db=-23.0))
    assert len(feats) == len(recs) and statistics(feats).shape == (len(recs), 4 * feats[0].shape[1] + 1)
    seen: list[int] = []

    def fit(f, y):
        seen.append(len(f))
        return fit_linear(f, y)

    result = matrix(recs, feats, fit, ["emodb", "ravdess"])
    without_emodb, without_ravdess = result["without emodb"], result["without ravdess"]
    assert without_emodb["trained_on"] == ["ravdess"] and without_ravdess["trained_on"] == ["emodb"]
    # EmoDB's test speaker 03 never trains anything: only speaker 11 stands for EmoDB when RAVDESS is held out
    assert seen == [n_ravdess, n_emodb_train] and without_ravdess["n_train"] == n_emodb_train
    assert without_emodb["test"]["n"] == n_emodb_train + n_emodb_test
    assert without_emodb["test_speakers"]["n"] == n_emodb_test and "test_speakers" not in without_ravdess
    for row in result.values():
        assert 0.0 <= row["test"]["uar"] <= 1.0 and 0.0 <= row["test"]["ece"] <= 1.0
    table = markdown(result)
    assert "| ravdess | emodb (all speakers) |" in table and "| emodb | ravdess (all speakers) |" in table


def test_the_shipped_architecture_trains_and_predicts():
    recs = [r for r in _records() if r["corpus"] == "ravdess"]
    feats = clip_features(recs, AudioConfig())
    y = np.array([["anger", "disgust", "fear", "happy", "neutral", "sad"].index(r["emotion"]) for r in recs])
    predict = fit_cnn(feats, y, AudioConfig(channels=16), epochs=2, batch=8)
    p = predict(feats[:5])
    assert p.shape == (5, 6) and np.allclose(p.sum(1), 1.0, atol=1e-5)


def test_speaker_cross_validation_holds_each_actor_out_in_turn():
    recs = _records()
    feats = clip_features(recs, AudioConfig(utterance_norm=True, target_loudness_db=-23.0))
    n_emodb_train = sum(r["corpus"] == "emodb" and r["speaker"] == "11" for r in recs)
    seen: list[int] = []

    def fit(f, y):
        seen.append(len(f))
        return fit_linear(f, y)

    cv = speaker_cv(recs, feats, fit, "ravdess", folds=2)
    # each fold: the other actor's 11 clips + EmoDB speaker 11 (test speaker 03 never trains)
    assert seen == [11 + n_emodb_train] * 2
    assert [f["speakers"] for f in cv["folds"]] == [["01"], ["02"]] and [f["n"] for f in cv["folds"]] == [11, 11]
    assert cv["uar"] == np.mean([f["uar"] for f in cv["folds"]]) and 0.0 <= cv["uar_pooled"] <= 1.0
