"""The Live section's HTML/SVG figures (ui/live_figures.py): what they draw from a live answer."""

import re

import pytest

pytest.importorskip("gradio")

from stresslab import EMOTIONS  # noqa: E402
from ui import live_figures  # noqa: E402


def answer(times: list[float]) -> dict:
    """A live answer's shape (stresslab.LiveSession.update()): fused probabilities, stress, the timeline."""
    probs = {e: 0.05 for e in EMOTIONS} | {"anger": 0.75}
    points = [{"time": t, "probabilities": probs, "stress": 0.6, "emotion": "anger"} for t in times]
    return {"emotion": "anger", "probabilities": probs, "stress": {"score": 0.6, "level": "high"}, "timeline": points}


def test_bars_are_sorted_and_as_wide_as_the_probability():
    html = live_figures.bars(answer([0.0]))
    assert re.findall(r"data-emotion='(\w+)'", html)[0] == "anger"
    assert "width:75.0%" in html and html.count("lf-row") == len(EMOTIONS)


def test_the_meter_marks_the_score_among_the_level_bands():
    html = live_figures.meter(answer([0.0]))
    assert "left:60.0%" in html and "high" in html and html.count("<span style=") == 3


def test_the_timeline_keeps_only_the_last_seconds_and_scrolls():
    r = answer([i * 0.5 for i in range(200)])  # 0 .. 99.5 s
    svg = live_figures.timeline(r["timeline"], 60)
    assert "data-points='121'" in svg  # 39.5 .. 99.5 s
    assert svg.count("<polyline") == len(EMOTIONS) + 1  # one line per emotion, and stress
    xs = [float(v.split(",")[0]) for v in re.search(r"points='([^']*)'", svg).group(1).split()]
    assert xs == sorted(xs) and xs[0] >= live_figures.PAD_L and xs[-1] <= live_figures.W
    assert ">30 s<" not in svg and ">40 s<" in svg and ">90 s<" in svg  # the axis moved on


def test_no_answer_yet_says_so_and_draws_no_bars():
    html = live_figures.figures({"emotion": None, "probabilities": {}, "stress": None, "timeline": []}, 60)
    assert "starts with the first answer" in html and "lf-bars" not in html
