"""training.model_card: every figure of the card comes from the run's files (config, state, log, eval JSONs)."""

import json
import shutil

from training.model_card import card


def _report(n: int, uar: float) -> dict:
    return {"n": n, "accuracy": uar + 0.01, "uar": uar, "macro_f1": uar - 0.01, "ece": 0.05}


def test_card_reads_calibration_cv_matrix_and_provenance(tiny_model_dir, tmp_path):
    model, run, evals = tmp_path / "model", tmp_path / "run", tmp_path / "eval"
    shutil.copytree(tiny_model_dir, model)
    config = json.loads((model / "config.json").read_text())
    config["temperatures"], config["not_sure_below"] = {"audio": 1.7, "fused": 0.9}, 0.41
    config["audio"].update(speech_detector="relative", target_loudness_db=-23.0, utterance_norm=True)
    (model / "config.json").write_text(json.dumps(config))
    run.mkdir()
    (run / "state.json").write_text(json.dumps({"done": ["video", "audio"], "seconds": {"audio": 600.0},
                                                "carried_over": {"video": "the previous default"}}))
    log = [{"stage": "config", "audio.corpora": "['emodb', 'ravdess', 'cremad']"},
           {"stage": "audio", "refit_epochs": 17},
           {"stage": "calibrate", "modality": "audio", "temperature": 1.7, "n": 140, "ece_before": 0.21,
            "ece_after": 0.04}]
    (run / "log.jsonl").write_text("\n".join(json.dumps(r) for r in log) + "\n")
    evals.mkdir()
    (evals / "emodb-test-audio.json").write_text(json.dumps(_report(92, 0.7345)))
    (evals / "ravdess-cv-audio.json").write_text(json.dumps({
        "corpus": "ravdess", "uar": 0.6123, "uar_pooled": 0.6011, "accuracy_pooled": 0.6,
        "folds": [{"speakers": ["01", "07", "19"], "n": 132, "uar": 0.55, "accuracy": 0.56},
                  {"speakers": ["02", "08", "20"], "n": 132, "uar": 0.67, "accuracy": 0.66}]}))
    (evals / "crosscorpus-audio-linear.json").write_text(json.dumps({
        "without emodb": {"trained_on": ["cremad", "ravdess"], "n_train": 804, "test": _report(350, 0.2037)}}))
    text = card(model, run, evals)
    assert "| EmoDB, test speakers 03 + 08 (never seen in training or selection) | 92 | 0.745 | 0.735 |" \
        in text.replace("audio tower | ", "")
    assert "`not_sure_below` = 0.41" in text and "| audio | 1.70 | 140 | 0.210 | 0.040 |" in text
    assert "**UAR 0.612** mean over folds, 0.601 pooled (folds: 01+07+19: 0.55, 02+08+20: 0.67)" in text
    assert "| CREMA-D sample, English + RAVDESS, English | EmoDB, German (all speakers) | 350 | 0.214 | 0.204 |" \
        in text
    assert "the video tower was carried over unchanged from the previous default" in text
    assert "RAVDESS speech" in text and "CC BY-NC-SA 4.0" in text and "datasets: [CREMA-D, EmoDB, GoEmotions, " \
        "FER2013, RAVDESS]" in text
    assert "chose the epoch count (17)" in text and "loudness normalised to -23 dBFS" in text
    assert "non-commercial research and demonstration only" in text
    # a recipe that gives the voice its epoch count (audio.select = false) says so, not that 09 + 10 chose it
    (evals / "emodb-val-audio.json").write_text(json.dumps(_report(69, 1.0)))
    log[1] = {"stage": "audio", "refit_epochs": 35, "selected": False}
    (run / "log.jsonl").write_text("\n".join(json.dumps(r) for r in log) + "\n")
    text = card(model, run, evals)
    assert "speakers 09-14 for training, for the recipe's fixed 35 epochs" in text and "chose the epoch" not in text
    assert "validation speakers 09 + 10 (trained on) | 69 |" in text


def test_card_describes_the_plain_face_cnn_block_by_block(tiny_model_dir, tmp_path):
    model, run = tmp_path / "model", tmp_path / "run"
    shutil.copytree(tiny_model_dir, model)
    run.mkdir()
    (run / "state.json").write_text(json.dumps({"done": ["video"]}))
    config = json.loads((model / "config.json").read_text())
    config["video"].update(arch="plain", widths=[32, 64], convs=None)
    (model / "config.json").write_text(json.dumps(config))
    assert "a plain CNN (per width of [32, 64]: two 3x3 convolutions with BatchNorm" in card(model, run, tmp_path)
    config["video"]["convs"] = [1, 2]
    (model / "config.json").write_text(json.dumps(config))
    assert "a plain CNN (blocks of widths [32, 64] with [1, 2] 3x3 convolutions, each with BatchNorm and ReLU, a 2x2 " \
        "max-pool" in card(model, run, tmp_path)
