"""Time alignment: each timeline window says which modalities were present in it and what each said there, carries
the words spoken in it (Whisper's timed segments), and the timeline figure draws one lane per modality under the
fused lines on the same time axis."""

import dataclasses
import json

import numpy as np
import pytest
from conftest import CREMAD

import stresslab
from stresslab import MODALITIES, Clip, load_clip
from stresslab.analysis import softmax, words_by_window
from stresslab.towers.asr import Transcript

FLV = CREMAD / "1001_DFA_FEA_XX.flv"
SAID = [(0.2, 2.1, "I told you"), (2.6, 4.4, "it was late"), (7.0, 7.8, "again"), (10.9, 12.5, "enough")]


class FakeWhisper:
    """Stands in for the speech recogniser: the same timed segments whatever the audio."""

    available = True

    def transcribe(self, audio: np.ndarray, language: str | None = None) -> Transcript:
        return Transcript(" ".join(t for *_, t in SAID), "en", list(SAID))


def test_words_go_to_every_window_they_overlap():
    windows = [(0.0, 3.0), (3.0, 6.0), (6.0, 9.0), (9.0, 11.5)]
    segments = [{"start": s, "end": e, "text": t} for s, e, t in SAID]
    segments += [{"start": 6.0, "end": 6.0, "text": "oh"}, {"start": 8.0, "end": 8.5, "text": ""}]
    assert words_by_window(segments, windows) == [
        "I told you it was late",  # crosses 3.0 s: in both windows
        "it was late",
        "again oh",  # the point segment at 6.0 s starts the third window; an empty one is left out
        "enough",  # timed past the clip's end: the last window keeps it
    ]
    assert words_by_window([], windows) == ["", "", "", ""]
    assert words_by_window(segments, [(0.0, 0.1)]) == [" ".join(t for *_, t in SAID) + " oh"]


@pytest.fixture(scope="module")
def long_clip() -> Clip:
    """CREMA-D's clip five times over (~11.4 s, four windows), no face in 3-6 s and silence in 6-9 s."""
    base = load_clip(FLV)
    reps = 5
    frames = np.concatenate([base.frames] * reps)
    times = np.concatenate([base.frame_times + i * base.duration for i in range(reps)]).astype(np.float32)
    frames[(times >= 3.0) & (times < 6.0)] = 90  # grey: no face to find
    audio = np.tile(base.audio, reps)
    audio[6 * 16_000:9 * 16_000] = 0.0
    return Clip(frames=frames, frame_times=times, audio=audio, duration=base.duration * reps, kind="arrays")


def test_each_window_says_what_each_modality_saw_there_and_the_words(tiny_model, long_clip, monkeypatch):
    temperatures = {"video": 2.0, "audio": 0.5, "text": 3.0}
    monkeypatch.setattr(tiny_model.config, "temperatures", temperatures, raising=False)
    monkeypatch.setattr(stresslab.analysis, "get_transcriber", lambda name=None: FakeWhisper())
    analyzer = stresslab.Analyzer(tiny_model)
    r = analyzer.analyze(long_clip)
    d = json.loads(json.dumps(r.to_dict()))
    t = d["timeline"]
    assert [(w["start"], w["end"]) for w in t] == [tuple(w) for w in d["clip"]["windows"]] and len(t) == 4
    seen = {m: [w["modalities"][m] is not None for w in t] for m in MODALITIES}
    assert seen == {"video": [True, False, True, True], "audio": [True, True, False, True], "text": [True] * 4}
    assert seen["video"] == list(r.encoded.present[1:, 0]) and seen["audio"] == list(r.encoded.present[1:, 1])
    for k, w in enumerate(t, start=1):  # each lane is that modality's own head on that window, at its temperature
        for m in MODALITIES:
            if w["modalities"][m] is None:
                assert w["weights"][m] == 0
                continue
            p = softmax(analyzer.backend.head(m, r.encoded.emb[m][k:k + 1])[0], temperatures[m])
            assert w["modalities"][m] == {"emotion": tiny_model.config.emotions[int(p.argmax())],
                                          "confidence": pytest.approx(float(p.max()), abs=1e-4)}
    assert [w["words"] for w in t] == ["I told you it was late", "it was late", "again", "enough"]
    assert d["transcript"]["segments"][0] == {"start": 0.2, "end": 2.1, "text": "I told you"}

    # switching a modality off keeps what it saw in each window (the lanes fade in the app), words stay too
    off = analyzer.fuse(r.encoded, enabled={"text": False}).to_dict()
    assert [w["modalities"]["text"] for w in off["timeline"]] == [w["modalities"]["text"] for w in t]
    assert all(w["weights"]["text"] == 0 for w in off["timeline"])
    assert [w["words"] for w in off["timeline"]] == [w["words"] for w in t]

    # typed words have no timestamps: no words per window; a transcript with no segments neither
    typed = analyzer.analyze(long_clip, text="I told you it was late").to_dict()
    assert [w["words"] for w in typed["timeline"]] == [None] * 4
    assert all(w["modalities"]["text"] for w in typed["timeline"])
    untimed = analyzer.fuse(dataclasses.replace(r.encoded, segments=[])).to_dict()
    assert [w["words"] for w in untimed["timeline"]] == [None] * 4


def test_the_timeline_draws_a_lane_per_modality_on_the_same_axis(tiny_model, long_clip, monkeypatch):
    from ui import plots

    monkeypatch.setattr(stresslab.analysis, "get_transcriber", lambda name=None: FakeWhisper())
    analyzer = stresslab.Analyzer(tiny_model)
    r = analyzer.analyze(long_clip)
    d = r.to_dict()
    d["timeline"][1]["words"] = "<b onmouseover=x>it</b> was & late"  # visitor words: shown, never rendered
    fig = plots.timeline(d)
    bars = {b.name: b for b in fig.data if b.type == "bar"}
    assert set(bars) == {"face", "voice", "words"} and all(b.yaxis == "y2" for b in bars.values())
    assert fig.layout.xaxis2.matches == "x" or fig.layout.xaxis.matches == "x2"  # one time axis
    for m, name in plots.MODALITY_NAMES.items():
        here = [w for w in d["timeline"] if w["modalities"][m]]
        b = bars[name]
        assert list(b.base) == [w["start"] for w in here]
        assert list(b.x) == pytest.approx([w["end"] - w["start"] for w in here])
        assert list(b.marker.color) == [plots.COLOURS[w["modalities"][m]["emotion"]] for w in here]
        assert all(f"{w['start']:.1f}-{w['end']:.1f} s: {w['modalities'][m]['emotion']}" in h
                   for w, h in zip(here, b.customdata, strict=True))
    assert list(bars["face"].base) == [0.0, 6.0, 9.0] and list(bars["voice"].base) == [0.0, 3.0, 9.0]
    hover = list(bars["words"].customdata)
    assert "said here: I told you it was late" in hover[0]
    assert "&lt;b onmouseover=x&gt;it&lt;/b&gt; was &amp; late" in hover[1] and "<b " not in hover[1]
    assert fig.layout.xaxis.range == fig.layout.xaxis2.range == (0, d["timeline"][-1]["end"])
    # the fused lines are unchanged above the lanes
    lines = [s for s in fig.data if s.type == "scatter"]
    assert len(lines) == len(d["probabilities"]) + 1 and all(s.yaxis == "y" for s in lines)

    off = plots.timeline(analyzer.fuse(r.encoded, enabled={"audio": False}).to_dict())
    voice = next(b for b in off.data if b.name == "voice")
    assert voice.opacity < 0.5 and all("switched off" in h for h in voice.customdata)

