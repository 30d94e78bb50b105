"""analyze() end to end on the real CREMA-D clips with a tiny local model: every modality subset, ablations by
fusion only, the timeline, stress, the JSON schema, ASR through a tiny local Whisper, and no-usable-input errors."""

import json

import numpy as np
import pytest
import torch
from conftest import CREMAD, FER

import stresslab
from stresslab import MODALITIES, Clip, NothingToAnalyze, analyze, encode, fuse, load_clip
from stresslab.analysis import AnalysisSettings, get_transcriber, plan_windows

FLV = CREMAD / "1001_DFA_FEA_XX.flv"
MP3 = CREMAD / "1002_DFA_HAP_XX.mp3"


def check_result(r, present: set[str]):
    d = r.to_dict()
    json.dumps(d)  # serialisable
    assert sum(d["probabilities"].values()) == pytest.approx(1, abs=1e-3)
    assert d["emotion"] in stresslab.EMOTIONS and 0 <= d["stress"]["score"] <= 1
    weights = {m: d["modalities"][m]["weight"] for m in MODALITIES}
    assert sum(weights.values()) == pytest.approx(1, abs=1e-3)
    for m in MODALITIES:
        info = d["modalities"][m]
        assert info["present"] == (m in present)
        if m in present:
            assert sum(info["probabilities"].values()) == pytest.approx(1, abs=1e-3) and info["reason"] is None
        else:
            assert weights[m] == 0 and info["reason"] and info["probabilities"] is None
    expected_ablations = set(present) if len(present) > 1 else set()
    assert set(d["ablations"]) == expected_ablations
    for a in d["ablations"].values():
        assert 0 <= a["shift"] <= 1 and sum(a["probabilities"].values()) == pytest.approx(1, abs=1e-3)
    return d


@pytest.mark.parametrize("source,text,present", [
    (FLV, None, {"video", "audio"}),
    (FLV, "Don't forget a jacket", {"video", "audio", "text"}),
    (MP3, None, {"audio"}),
    (MP3, "I can't believe it", {"audio", "text"}),
    (None, "I am so scared of tomorrow", {"text"}),
])
def test_modality_subsets(tiny_model, source, text, present):
    d = check_result(analyze(source, text=text, model=tiny_model), present)
    assert d["transcript"]["source"] == ("typed" if text else None)
    if "video" in present:
        assert len(d["faces"]) >= 8 and all(len(f["box"]) == 4 for f in d["faces"])
    assert {"fusion", "ablations", "stress", "total"} <= set(d["timings"])


def test_video_only_and_image_and_text_subsets(tiny_model):
    clip = load_clip(FLV)
    clip.audio = None
    check_result(analyze(clip, model=tiny_model), {"video"})
    clip = load_clip(FLV, text="hello")
    clip.audio = None
    check_result(analyze(clip, model=tiny_model), {"video", "text"})
    face = next((FER / "val" / "angry").glob("*.jpg"))
    check_result(analyze(face, model=tiny_model), {"video"})


def test_ablations_rerun_fusion_only(tiny_model, monkeypatch):
    calls = {"video": 0, "audio": 0, "text": 0}
    for m, attr in (("video", "embed_frames"), ("audio", "forward"), ("text", "forward")):
        tower = getattr(tiny_model, m)
        original = getattr(tower, attr)

        def counted(*a, _m=m, _f=original, **k):
            calls[_m] += 1
            return _f(*a, **k)

        monkeypatch.setattr(tower, attr, counted)
    r = analyze(FLV, text="words", model=tiny_model)
    assert calls == {"video": 1, "audio": 1, "text": 1}
    assert set(r.ablations) == set(MODALITIES)
    # the ablation equals a fusion rerun with that modality switched off
    off = fuse(tiny_model, r.encoded, enabled={"audio": False})
    assert off.probabilities == pytest.approx(r.ablations["audio"]["probabilities"], abs=1e-4)
    assert off.modalities["audio"]["weight"] == 0 and off.modalities["audio"]["reason"] == "switched off"
    assert calls == {"video": 1, "audio": 1, "text": 1}
    with pytest.raises(NothingToAnalyze, match="switched off"):
        fuse(tiny_model, r.encoded, enabled={m: False for m in MODALITIES})


def test_timeline_for_a_long_clip(tiny_model):
    base = load_clip(FLV)
    reps = 5  # ~11 s
    frames = np.concatenate([base.frames] * reps)
    times = np.concatenate([base.frame_times + i * base.duration for i in range(reps)]).astype(np.float32)
    clip = Clip(frames=frames, frame_times=times, audio=np.tile(base.audio, reps), duration=base.duration * reps,
                kind="arrays")
    r = analyze(clip, model=tiny_model)
    d = check_result(r, {"video", "audio"})
    assert len(d["timeline"]) == len(plan_windows(clip.duration, AnalysisSettings())) == 4
    for w in d["timeline"]:
        assert w["end"] > w["start"] and sum(w["weights"].values()) == pytest.approx(1, abs=1e-3)
    assert d["timeline"][-1]["end"] == pytest.approx(clip.duration, abs=1e-2)


def test_windows_cover_the_whole_clip_within_a_fixed_budget():
    s = AnalysisSettings(window_seconds=3, max_windows=10)
    assert plan_windows(2.0, s) == [(0.0, 2.0)]
    assert len(plan_windows(29.0, s)) == 10
    for duration in (11.0, 29.0, 67.0, 600.0):
        w = plan_windows(duration, s)
        assert len(w) <= 10 and w[0][0] == 0 and w[-1][1] == pytest.approx(duration)
        assert all(a[1] == pytest.approx(b[0]) for a, b in zip(w, w[1:], strict=False)), "no gaps between windows"
        assert all(e - s_ >= 3 - 1e-6 for s_, e in w[:-1]) and w[-1][1] - w[-1][0] >= 1.5  # a short tail joins
    assert plan_windows(67.0, s)[0] == (0.0, pytest.approx(6.7))


def test_a_long_clip_is_covered_with_the_same_face_budget(tiny_model, monkeypatch):
    """67 s: ten 6.7 s windows, each with faces; faces searched in at most 12 frames a window (as for 30 s)."""
    base = load_clip(FLV)
    reps = 31  # ~67 s
    clip = Clip(frames=np.concatenate([base.frames] * reps),
                frame_times=np.concatenate([base.frame_times + i * base.duration for i in range(reps)]).astype(
                    np.float32),
                audio=np.tile(base.audio, reps), duration=base.duration * reps, kind="arrays")
    analyzer = stresslab.Analyzer(tiny_model)
    calls = []
    original = analyzer.detector.detect
    monkeypatch.setattr(analyzer.detector, "detect", lambda f, near=None: calls.append(1) or original(f, near))
    d = analyzer.analyze(clip).to_dict()
    assert len(d["timeline"]) == 10
    assert d["timeline"][0]["start"] == 0 and d["timeline"][-1]["end"] == pytest.approx(clip.duration, abs=1e-2)
    assert len(calls) <= 10 * 12
    assert {round(f["time"] // 6.7) for f in d["faces"]} >= set(range(9)), "faces from every part of the clip"


def test_analyze_leaves_the_callers_clip_alone(tiny_model):
    clip = load_clip(FLV, text="original words")
    frames = clip.frames.copy()
    r = analyze(clip, text="other words", model=tiny_model)
    assert r.encoded.transcript == "other words"
    assert clip.text == "original words" and np.array_equal(clip.frames, frames)


def test_json_says_what_was_used_hides_the_source_when_private_and_names_each_face(tiny_model):
    r = analyze(FLV, text="words", model=tiny_model)
    d, private = r.to_dict(), r.to_dict(private=True)
    assert d["clip"]["source"] == str(FLV) and "source" not in private["clip"]
    assert FLV.name not in json.dumps(private)
    assert d["used"] == ["video", "audio", "text"]
    off = fuse(tiny_model, r.encoded, enabled={"video": False}).to_dict()
    assert off["used"] == ["audio", "text"]
    for f in d["faces"]:
        assert f["emotion"] in stresslab.EMOTIONS and 0 < f["confidence"] <= 1
    # the per-frame answer is the video head on that frame's embedding
    inputs = stresslab.Analyzer(tiny_model).inputs(load_clip(FLV))
    with torch.no_grad():
        crop = torch.from_numpy(inputs.crops[:1])
        first = tiny_model.heads["video"](tiny_model.video.embed_frames(crop)).argmax(-1).item()
    assert d["faces"][0]["emotion"] == tiny_model.config.emotions[first]


def test_not_sure_below_the_models_threshold(tiny_model, monkeypatch):
    r = analyze(MP3, text="words", model=tiny_model)
    conf = r.probabilities[r.emotion]
    d = r.to_dict()
    assert d["uncertain"] is False and d["top2"][0] == [r.emotion, conf]
    assert d["top2"][1][1] <= conf and d["top2"][1][0] != r.emotion
    monkeypatch.setattr(tiny_model.config, "not_sure_below", conf + 0.01, raising=False)
    assert fuse(tiny_model, r.encoded).to_dict()["uncertain"] is True
    monkeypatch.setattr(tiny_model.config, "not_sure_below", conf - 0.01, raising=False)
    assert fuse(tiny_model, r.encoded).to_dict()["uncertain"] is False


def test_tower_inputs_are_the_analysis_inputs(tiny_model):
    """The public Clip -> tower-inputs step (training uses it) gives what the analysis embeds."""
    clip = load_clip(FLV)
    inputs = stresslab.tower_inputs(clip, tiny_model.config)
    assert inputs.crops.shape[0] == len(inputs.faces) == len(inputs.crop_times) >= 8
    assert inputs.audio_rows == [1] and inputs.audio_feats[0].shape[1] == tiny_model.config.audio.n_features
    enc = encode(clip, tiny_model)
    with torch.no_grad():
        video = tiny_model.video.embed_frames(torch.from_numpy(inputs.crops)).mean(0).numpy()
    assert np.allclose(enc.emb["video"][0], video, atol=1e-5)


def test_nothing_usable(tiny_model):
    silent = load_clip((16000, np.zeros(32000, np.float32)))
    with pytest.raises(NothingToAnalyze, match="audio: silent"):
        analyze(silent, model=tiny_model)
    blank = load_clip(np.full((8, 240, 320, 3), 90, np.uint8), fps=4)
    with pytest.raises(NothingToAnalyze, match="video: no face found in"):
        analyze(blank, model=tiny_model)
    # a faceless video with speech still gets an answer, and says why video is missing
    clip = load_clip(MP3)
    clip.frames, clip.frame_times = np.full((4, 240, 320, 3), 90, np.uint8), np.arange(4, dtype=np.float32) / 4
    d = check_result(analyze(clip, model=tiny_model), {"audio"})
    assert d["modalities"]["video"]["reason"].startswith("no face found")


def test_whisper_transcript_from_a_local_file(tiny_model, tmp_path, monkeypatch):
    """A tiny random Whisper saved in whisper's own checkpoint layout: the real load + transcribe path runs."""
    whisper = pytest.importorskip("whisper")
    dims = whisper.model.ModelDimensions(n_mels=80, n_audio_ctx=1500, n_audio_state=16, n_audio_head=2,
                                         n_audio_layer=1, n_vocab=51865, n_text_ctx=448, n_text_state=16,
                                         n_text_head=2, n_text_layer=1)
    torch.manual_seed(0)
    net = whisper.model.Whisper(dims)
    path = tmp_path / "tiny-whisper.pt"
    torch.save({"dims": dims.__dict__, "model_state_dict": net.state_dict()}, path)
    monkeypatch.setenv("STRESSLAB_WHISPER", str(path))
    get_transcriber.cache_clear()
    try:
        asr = get_transcriber()
        assert asr.available
        out = asr.transcribe(load_clip(MP3).audio, language="en")
        assert isinstance(out.text, str) and out.language == "en"  # random weights: the words are arbitrary
        r = analyze(MP3, model=tiny_model)
        assert "asr" in r.timings
        # what the recogniser says becomes the text modality; nothing recognised leaves it out with the reason
        for said, present in (("I am fine", True), ("", False)):
            monkeypatch.setattr(type(asr), "transcribe",
                                lambda self, audio, _t=said, **k: type(out)(_t, "en", [(0.0, 1.2, _t)] if _t else []))
            d = analyze(MP3, model=tiny_model).to_dict()
            assert d["modalities"]["text"]["present"] is present
            if present:
                assert d["transcript"] == {"text": "I am fine", "source": "whisper",
                                           "segments": [{"start": 0.0, "end": 1.2, "text": "I am fine"}]}
            else:
                assert d["modalities"]["text"]["reason"] == "no words recognised in the speech"
    finally:
        get_transcriber.cache_clear()


def test_no_whisper_says_why(tiny_model, monkeypatch):
    monkeypatch.delenv("STRESSLAB_WHISPER", raising=False)
    get_transcriber.cache_clear()
    r = analyze(MP3, model=tiny_model)
    assert "type what was said" in r.modalities["text"]["reason"]


def test_encode_once_fuse_many(tiny_model):
    enc = encode(load_clip(FLV, text="hi"), tiny_model)
    assert enc.present.shape == (2, 3) and bool(enc.present[0].all())
    a, b = fuse(tiny_model, enc), fuse(tiny_model, enc)
    assert a.probabilities == b.probabilities


def test_warm_up_runs_every_tower_whatever_the_speech_rule(tiny_model, monkeypatch):
    """The app warms up on a synthetic clip; it must count as speech under both speech rules (it once did not,
    and the app stopped at start)."""
    for rule in ("level", "relative"):
        monkeypatch.setattr(tiny_model.config.audio, "speech_detector", rule)
        analyzer = stresslab.Analyzer(tiny_model)
        calls = []
        original = analyzer.backend.embed_audio
        monkeypatch.setattr(analyzer.backend, "embed_audio",
                            lambda *a, _c=calls, _f=original, **k: _c.append(1) or _f(*a, **k))
        assert analyzer.warm_up() > 0 and calls, rule
