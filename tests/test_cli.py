"""`stresslab analyze` as a user runs it: one JSON document, readable tables, exit 2 + one error line per bad input."""

import json
import os
import random
import subprocess
import sys

from conftest import CREMAD, EMODB
from media import huge_png

FLV = str(CREMAD / "1001_DFA_ANG_XX.flv")
MP3 = str(CREMAD / "1002_DFA_SAD_XX.mp3")


def run(*args, env_extra=None):
    env = {**os.environ, "STRESSLAB_THREADS": "1", **(env_extra or {})}
    env.pop("STRESSLAB_WHISPER", None)
    return subprocess.run([sys.executable, "-m", "stresslab.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_json_batch_with_bad_inputs(tiny_model_dir, tmp_path):
    empty = tmp_path / "empty.wav"
    empty.touch()
    corrupt = tmp_path / "broken.mp4"
    corrupt.write_bytes(b"\x00garbage" * 100)
    silent = tmp_path / "silent.wav"
    import numpy as np
    import soundfile

    soundfile.write(silent, np.zeros(16000, np.float32), 16000)
    p = run("analyze", FLV, str(empty), MP3, str(corrupt), str(silent), str(tmp_path / "missing.mp3"),
            "--json", "--model", str(tiny_model_dir))
    assert p.returncode == 2
    docs = json.loads(p.stdout)  # exactly one JSON document
    assert [("error" in d) for d in docs] == [False, True, False, True, True, True]
    assert docs[0]["modalities"]["video"]["present"] and docs[2]["clip"]["kind"] == "audio"
    errors = p.stderr.strip().splitlines()
    assert len(errors) == 4 and all(line.startswith("error: ") for line in errors)
    assert "Traceback" not in p.stderr
    assert "empty" in errors[0] and "corrupt" in errors[1] and "silent" in errors[2] and "no such file" in errors[3]


def test_single_json_and_text_only(tiny_model_dir):
    p = run("analyze", MP3, "--json", "--model", str(tiny_model_dir))
    assert p.returncode == 0 and isinstance(json.loads(p.stdout), dict)
    p = run("analyze", "--text", "I hate waiting", "--json", "--model", str(tiny_model_dir))
    d = json.loads(p.stdout)
    assert p.returncode == 0 and d["transcript"] == {"text": "I hate waiting", "source": "typed", "segments": []}


def test_readable_table(tiny_model_dir):
    p = run("analyze", FLV, "--text", "Don't forget a jacket", "--model", str(tiny_model_dir))
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "stress" in out and "video" in out and "without audio" in out and "words (typed)" in out


def test_usage_errors(tmp_path):
    assert run("analyze").returncode == 2
    p = run("analyze", FLV, "--model", str(tmp_path / "no-model"))
    assert p.returncode == 2 and p.stderr.startswith("error: cannot load the model")


def test_a_bomb_image_is_one_error_line_and_the_batch_goes_on(tiny_model_dir, tmp_path):
    bomb = huge_png(tmp_path / "bomb20k.png")  # 20000 x 20000, 389 KB
    speech = next((EMODB / "wav").glob("*.wav"))
    odd = tmp_path / "two\nlines.png"
    odd.write_bytes(random.Random(0).randbytes(3000))
    p = run("analyze", str(bomb), str(speech), str(odd), "--json", "--model", str(tiny_model_dir))
    assert p.returncode == 2
    docs = json.loads(p.stdout)
    assert "error" in docs[0] and docs[1]["clip"]["kind"] == "audio" and "error" in docs[2]
    errors = p.stderr.strip().splitlines()
    assert len(errors) == 2 and all(line.startswith("error: ") for line in errors), p.stderr
    assert "20000x20000 is over the" in errors[0] and "two\\nlines.png" in errors[1]
    assert "Warning" not in p.stderr and "Traceback" not in p.stderr


def test_not_sure_in_the_table_and_the_json(tmp_path):
    """A model whose validated threshold is above what it is confident of says "not sure" with its top two."""
    from conftest import build_tiny_model

    model = build_tiny_model(tmp_path / "unsure", not_sure_below=0.99)  # an untrained model is never that sure
    p = run("analyze", "--text", "I hate waiting", "--json", "--model", str(model))
    d = json.loads(p.stdout)
    assert p.returncode == 0 and d["uncertain"] is True and d["confidence"] < 0.99
    (first, p1), (second, p2) = d["top2"]
    assert first == d["emotion"] and second != first and p1 >= p2
    p = run("analyze", "--text", "I hate waiting", "--model", str(model))
    assert p.returncode == 0 and f"not sure: {first} ({p1:.0%}) or {second} ({p2:.0%})" in p.stdout
