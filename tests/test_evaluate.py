"""training.evaluate: its figures against hand-computed values, its JSON schema on a prepared CREMA-D folder with a
tiny model, the table of evaluation sets run through it, and the bundled default checkpoint scoring the shared
CREMA-D clips through the product's path. Tests that read ../shared/data skip, with the reason, where it is absent."""

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import CREMAD, SHARED

from stresslab.labels import EMOTIONS
from training.eval_sets import BY_NAME, EVAL_SETS, run
from training.evaluate import _by, age_group, main, select_records
from training.metrics import classification_report
from training.prepare import prepare

DEFAULT = Path(__file__).resolve().parents[1] / "models" / "default"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"needs the shared corpora in {SHARED}")
CODES = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}


def test_six_class_confusion_by_hand():
    # true:  anger x2, fear x2, sad x1 ; predicted: anger, happy, fear, fear, anger
    y_true = np.array([0, 0, 2, 2, 5])
    y_pred = np.array([0, 3, 2, 2, 0])
    r = classification_report(y_true, y_pred)
    assert r["accuracy"] == pytest.approx(3 / 5)
    # recall over the classes that occur (anger 1/2, fear 2/2, sad 0/1): UAR = 0.5
    assert r["uar"] == pytest.approx((0.5 + 1 + 0) / 3)
    # F1 over classes true or predicted: anger P=1/2 R=1/2 -> 1/2; fear 1; happy (predicted, never true) 0; sad 0
    assert r["macro_f1"] == pytest.approx((0.5 + 1 + 0 + 0) / 4)
    assert r["recall"] == {"anger": 0.5, "disgust": None, "fear": 1.0, "happy": None, "neutral": None, "sad": 0.0}
    m = np.array(r["confusion"])
    assert m.shape == (6, 6) and m[0, 3] == 1 and m[5, 0] == 1 and m.trace() == 3


def test_per_speaker_and_group_by_hand():
    records = [{"speaker": "a", "extra": {"age": "25"}}, {"speaker": "a", "extra": {"age": "61"}},
               {"speaker": "b", "extra": {"age": "33"}}, {"speaker": None, "extra": {}}]
    y_true, y_pred = np.array([0, 1, 1, 2]), np.array([0, 0, 1, 2])
    by = _by(records, y_true, y_pred, lambda r: r["speaker"])
    assert by == {"a": {"n": 2, "accuracy": 0.5, "uar": 0.5}, "b": {"n": 1, "accuracy": 1.0, "uar": 1.0}}
    ages = _by(records, y_true, y_pred, lambda r: age_group(r["extra"]["age"]) if r["extra"].get("age") else None)
    assert ages == {"30-49": {"n": 1, "accuracy": 1.0, "uar": 1.0}, "50+": {"n": 1, "accuracy": 0.0, "uar": 0.0},
                    "<30": {"n": 1, "accuracy": 1.0, "uar": 1.0}}


@pytest.fixture(scope="module")
def cremad_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "cremad"
    prepare("cremad", CREMAD, out, link=True)
    return out


def _run(capsys, *args) -> dict:
    assert main(list(args)) == 0
    return json.loads(capsys.readouterr().out)


@needs_shared
def test_cli_json_schema_on_cremad(tiny_model_dir, cremad_folder, capsys):
    fused = _run(capsys, "--model", str(tiny_model_dir), "--data", str(cremad_folder), "--json")
    keys = {"modality", "n", "accuracy", "uar", "macro_f1", "recall", "confusion", "ece", "skipped", "per_speaker",
            "per_group", "ablation", "data", "split", "model"}
    assert keys <= set(fused) and fused["modality"] == "fused"
    assert fused["n"] == 12 and fused["skipped"] == 0 and np.array(fused["confusion"]).sum() == 12
    assert set(fused["recall"]) == set(EMOTIONS) and 0 <= fused["ece"] <= 1
    assert set(fused["per_speaker"]) == {"1001", "1002"}
    assert {"sex", "age", "race", "ethnicity"} <= set(fused["per_group"])
    # 1001 clips have face + voice + words (3 ablations each), 1002 clips voice + words (2 each)
    assert {k: v["n"] for k, v in fused["ablation"].items()} == {"without_video": 6, "without_audio": 12,
                                                                 "without_text": 12}
    video = _run(capsys, "--model", str(tiny_model_dir), "--data", str(cremad_folder), "--modality", "video",
                 "--json")
    assert video["n"] == 6 and video["skipped"] == 6 and "ablation" not in video  # the mp3 clips have no face
    audio = _run(capsys, "--model", str(tiny_model_dir), "--data", str(cremad_folder), "--modality", "audio",
                 "--speakers", "cremad", "--split", "val", "--json")
    assert audio["n"] == 6 and set(audio["per_speaker"]) == {"1002"}  # DEFAULT_SPLITS: 1002 is CREMA-D's val


@needs_shared
def test_select_records_speaker_split(cremad_folder):
    assert {r["speaker"] for r in select_records(str(cremad_folder), "val", "cremad")} == {"1002"}
    assert len(select_records(str(cremad_folder), None, None)) == 12


@needs_shared
def test_eval_sets_write_what_evaluate_prints(tiny_model_dir, cremad_folder, capsys, tmp_path):
    """A set of the table (the one the training script, the model card and bench.accuracy read) gives the same
    document as training.evaluate called with the set's arguments."""
    assert len(BY_NAME) == len(EVAL_SETS) and all(s.corpus in ("emodb", "fer2013", "goemotions", "cremad")
                                                  for s in EVAL_SETS)
    s = BY_NAME["cremad-audio"]
    docs = run(tiny_model_dir, tmp_path / "eval", cremad_folder.parent, [s.name], progress=False)
    written = json.loads((tmp_path / "eval" / "cremad-audio.json").read_text())
    direct = _run(capsys, "--model", str(tiny_model_dir), *s.evaluate_args(cremad_folder.parent), "--json")
    assert written == direct == docs[s.name] and written["n"] == 12 and written["modality"] == "audio"
    assert BY_NAME["emodb-test-audio"].evaluate_args("d") == ["--data", "d/emodb", "--modality", "audio",
                                                              "--speakers", "emodb", "--split", "test"]
    with pytest.raises(ValueError, match="unknown evaluation sets"):
        run(tiny_model_dir, tmp_path / "eval", cremad_folder.parent, ["nope"])


@pytest.mark.skipif(not (DEFAULT / "model.safetensors").exists(), reason="the default model is not trained yet")
@needs_shared
def test_default_model_scores_the_shared_cremad_clips(capsys, record_property):
    from stresslab import analyze
    from stresslab.model import StressModel

    model = StressModel.from_pretrained(DEFAULT)
    clips = sorted(CREMAD.glob("*.flv")) + sorted(CREMAD.glob("*.mp3"))
    assert len(clips) == 12
    hits = 0
    for path in clips:
        result = analyze(path, text="Don't forget a jacket.", model=model)
        probs = result.probabilities
        assert set(probs) == set(EMOTIONS) and sum(probs.values()) == pytest.approx(1, abs=1e-3)
        assert 0 <= result.stress["score"] <= 1
        assert result.modalities["audio"]["present"] and result.modalities["text"]["present"]
        assert result.modalities["video"]["present"] == (path.suffix == ".flv")
        hits += result.emotion == CODES[path.stem.split("_")[2]]
    record_property("cremad_fused_accuracy", hits / len(clips))  # reported (junit), not asserted
    assert capsys.readouterr() == ("", "")
