"""Live mode: window alignment (overlapping and non-overlapping windows, a modality dropping out and coming back,
silence), a real CREMA-D clip streamed through a LiveSession in timestamp order, and the last seconds analysed as
an ordinary clip after the stream stops. A tiny untrained model: the answers' values are arbitrary, their windows
are not."""

from __future__ import annotations

import av
import numpy as np
import pytest
from conftest import CREMAD

from stresslab.analysis import AnalysisSettings, Analyzer
from stresslab.clip import load_clip
from stresslab.live import LiveSession, LiveSettings, align, overlaps

FLV = CREMAD / "1001_DFA_ANG_XX.flv"
SR = 16_000


@pytest.fixture(scope="module")
def analyzer(tiny_model_dir):
    return Analyzer(tiny_model_dir, AnalysisSettings(transcribe=False))


@pytest.fixture(scope="module")
def real():
    """Every frame of a real clip (T, H, W, 3), their times, and its 16 kHz audio."""
    with av.open(str(FLV)) as src:
        stream = src.streams.video[0]
        decoded = [(float(f.time), f.to_ndarray(format="rgb24")) for f in src.decode(stream)]
    return np.stack([f for _, f in decoded]), np.array([t for t, _ in decoded]), load_clip(FLV).audio


def session(analyzer, **changes) -> LiveSession:
    return LiveSession(analyzer, LiveSettings(transcribe=False, **changes))


def feed(live: LiveSession, frames, times, audio, t0: float = 0.0, chunk: float = 0.25, every: float = 0.2):
    """Frames and audio chunks in timestamp order from t0, an update() every `every` s; returns the updates."""
    events = [(t0 + t, "frame", f) for t, f in zip(times, frames, strict=True)] if frames is not None else []
    if audio is not None:
        n = round(chunk * SR)
        events += [(t0 + i / SR, "audio", audio[i: i + n]) for i in range(0, len(audio), n)]
    events.sort(key=lambda e: e[0])
    out, next_update = [], t0 + every
    for t, kind, x in events:
        if kind == "frame":
            live.add_frame(x, t)
        else:
            live.add_audio(x, t)
        if t >= next_update:
            out.append(live.update())
            next_update += every
    return out


# --- alignment ---------------------------------------------------------------------------------------------------
def test_overlapping_windows_are_fused_together():
    used, moment = align({"video": (9.0, 10.0), "audio": (7.5, 9.8), "text": (6.0, 10.0)})
    assert used == ["video", "audio", "text"] and moment == (9.0, 9.8)


def test_non_overlapping_windows_are_not_fused():
    # the words belong to an utterance that ended before the face window: face + voice are fused, words are not
    used, moment = align({"video": (14.5, 15.5), "audio": (12.0, 15.4), "text": (10.0, 14.0)}, slack=0.25)
    assert used == ["video", "audio"] and moment == (14.5, 15.4)
    # nothing overlaps: the latest window alone
    used, moment = align({"video": (20.0, 21.0), "audio": (10.0, 12.0), "text": None})
    assert used == ["video"] and moment == (20.0, 21.0)
    # within the slack counts as overlapping
    assert align({"video": (5.0, 5.0), "audio": (5.2, 6.0)}, slack=0.25)[0] == ["video", "audio"]
    assert align({"video": (5.0, 5.0), "audio": (5.3, 6.0)}, slack=0.25)[0] == ["audio"]
    assert align({}) == ([], None)
    assert overlaps((0, 1), (1, 2)) and not overlaps((0, 1), (1.1, 2))


# --- a session -----------------------------------------------------------------------------------------------------
def test_silence_is_skipped_and_counts_as_missing(analyzer, real):
    frames, times, audio = real
    live = session(analyzer)
    quiet = np.zeros(3 * SR, np.float32)
    feed(live, None, None, quiet)
    r = live.update()
    assert r["emotion"] is None and r["used"] == []
    assert r["modalities"]["audio"]["reason"].startswith("no speech")
    # speech after 3 s of silence: the voice window holds speech only, never the silence before it
    feed(live, None, None, audio, t0=3.0)
    r = live.update()
    assert r["used"] == ["audio"]
    start, end = r["live"]["windows"]["audio"]
    assert start >= 3.0 and end <= 3.0 + len(audio) / SR + 1e-6
    assert end - start <= LiveSettings().voice_lookback
    speech = sum(b[1] - b[0] for b in live.blocks if b[2] and start - 1e-6 <= b[0] < end)
    assert LiveSettings().min_voice_seconds <= speech <= LiveSettings().voice_seconds + 0.11
    # then silence again: once the last speech is older than stale["audio"], the voice is missing (no stale evidence)
    after = 3.0 + len(audio) / SR
    feed(live, None, None, np.zeros(2 * SR, np.float32), t0=after)
    r = live.update()
    assert "audio" not in r["used"] and r["emotion"] is None
    assert "ago" in r["modalities"]["audio"]["reason"]


def test_a_modality_drops_out_and_comes_back(analyzer, real):
    frames, times, audio = real
    live = session(analyzer)
    n = len(frames)
    step = float(np.median(np.diff(times)))
    # face and voice together, then the camera shows no face (grey frames) for 1.5 s, then the face again
    feed(live, frames, times, audio)
    r = live.update()
    assert r["used"] == ["video", "audio"]
    t = times[-1] + step
    grey = np.full_like(frames[0], 128)
    blank = [t + k * step for k in range(int(1.5 / step))]
    for k, tk in enumerate(blank):
        live.add_frame(grey, tk)
        if k % 6 == 0:
            r = live.update()
    r = live.update()
    assert "video" not in r["used"] and r["modalities"]["video"]["reason"].startswith("no face")
    assert r["modalities"]["video"]["window"] is None and r["live"]["windows"]["video"] is None
    back = blank[-1] + step
    updates = feed(live, frames[: n // 2], times[: n // 2] - times[0], None, t0=back)
    assert updates[-1]["used"][0] == "video"
    assert updates[-1]["live"]["windows"]["video"][0] >= back - 1e-6  # only frames from after the gap


def test_typed_words_join_the_current_moment(analyzer, real):
    frames, times, audio = real
    live = session(analyzer)
    feed(live, frames, times, audio)
    live.set_text("I am so angry right now")
    r = live.update()
    assert r["used"] == ["video", "audio", "text"]
    assert r["transcript"] == {"text": "I am so angry right now", "source": "typed", "segments": []}
    assert set(r["ablations"]) == {"video", "audio", "text"}
    live.set_text("")
    assert "text" not in live.update()["used"]


def test_a_real_clip_streamed_in_timestamp_order(analyzer, real):
    frames, times, audio = real
    live = session(analyzer)
    seconds = 3 * (times[-1] + float(np.median(np.diff(times))))
    updates = []
    for k in range(3):  # the clip three times in a row: a 7 s stream
        t0 = k * seconds / 3
        updates += feed(live, frames, times, audio, t0=t0)
    assert len(updates) >= 25
    answered = [u for u in updates if u["emotion"] is not None]
    assert len(answered) >= 0.8 * len(updates)
    slack = live.settings.slack
    for u in answered:  # every answer fuses windows that overlap in time, and none that is stale
        spans = [u["live"]["windows"][m] for m in u["used"]]
        assert all(overlaps(a, b, slack) for a in spans for b in spans)
        for m in u["used"]:
            assert spans[u["used"].index(m)][1] >= u["live"]["now"] - live.settings.stale[m] - 1e-6
            assert u["modalities"][m]["window"] == u["live"]["windows"][m]
        assert set(u) >= {"schema_version", "emotion", "probabilities", "stress", "modalities", "ablations",
                          "timeline", "transcript", "faces", "used", "top2", "uncertain"}
    both = [u for u in answered if u["used"] == ["video", "audio"]]
    assert len(both) >= 0.5 * len(answered)
    # the timeline grows, scrolls by time, and each point says which windows it fused
    lengths = [len(u["timeline"]) for u in updates]
    assert lengths[-1] > lengths[len(lengths) // 2] > 0
    points = updates[-1]["timeline"]
    assert all(a["time"] < b["time"] for a, b in zip(points, points[1:], strict=False))
    assert all(p["start"] <= p["end"] for p in points)


def test_the_timeline_keeps_only_the_last_seconds(analyzer, real):
    frames, times, audio = real
    live = session(analyzer, timeline_seconds=3.0, keep_seconds=4.0)
    seconds = times[-1] + float(np.median(np.diff(times)))
    for k in range(3):
        feed(live, frames, times, audio, t0=k * seconds)
    r = live.update()
    assert r["timeline"] and r["timeline"][0]["time"] >= r["live"]["now"] - 3.0 - 1e-6
    assert live.kept_frames[0][0] >= live.now - 4.0 - 1e-6


def test_after_stop_the_last_seconds_are_an_ordinary_clip(analyzer, real):
    frames, times, audio = real
    live = session(analyzer)
    seconds = times[-1] + float(np.median(np.diff(times)))
    for k in range(2):
        feed(live, frames, times, audio, t0=k * seconds)
    live.set_text("I am so angry")
    live.stop()
    assert live.update()["live"]["stopped"]
    clip = live.clip(3.0)
    assert abs(clip.duration - 3.0) < 1e-3 and clip.kind == "video" and clip.text == "I am so angry"
    assert clip.audio.shape == (3 * SR,) and np.abs(clip.audio).max() > 0.01
    assert clip.frame_times[0] >= 0 and clip.frame_times[-1] <= 3.0 + 1e-6
    assert 10 <= len(clip.frames) <= 3 * LiveSettings().keep_fps + 1
    assert max(clip.frames.shape[1:3]) <= LiveSettings().keep_side
    r = analyzer.analyze(clip).to_dict()
    assert r["used"] == ["video", "audio", "text"] and r["clip"]["duration"] == 3.0
    assert r["transcript"]["source"] == "typed"
    # the audio sits where it was recorded: the clip's audio is the stream's last 3 s, by timestamp
    stream = np.zeros(round(live.now * SR) + 1, np.float32)
    for k in range(2):
        i = round(k * seconds * SR)
        stream[i: i + len(audio)] = audio[: len(stream) - i]
    np.testing.assert_allclose(clip.audio[SR // 2: -SR // 2],
                               stream[round((live.now - 3) * SR):][: 3 * SR][SR // 2: -SR // 2], atol=1e-6)
    with pytest.raises(ValueError, match="nothing was recorded"):
        session(analyzer).clip(5)


def test_whisper_hears_the_last_utterance_in_the_background(tiny_model_dir, real, tmp_path, monkeypatch):
    """A tiny random Whisper (whisper's checkpoint layout, a local file) runs on each utterance once it ends, off
    the stream's thread; its words take the utterance's span and times, and go stale like any window."""
    pytest.importorskip("whisper")
    from test_asr import tiny_checkpoint

    from stresslab.analysis import get_transcriber
    from stresslab.towers.asr import Transcript

    data, _ = tiny_checkpoint(tmp_path)
    (tmp_path / "whisper.pt").write_bytes(data)
    monkeypatch.setenv("STRESSLAB_WHISPER", str(tmp_path / "whisper.pt"))
    get_transcriber.cache_clear()
    try:
        frames, times, audio = real
        live = LiveSession(Analyzer(tiny_model_dir), LiveSettings())
        live._asr_ready.result(timeout=60)
        spoken = len(audio) / SR
        feed(live, frames, times, audio)
        feed(live, None, None, np.zeros(SR, np.float32), t0=spoken)  # 1 s of silence ends the utterance
        live.update()
        assert live._asr_job is not None  # sent to Whisper, in the background
        utterance = live._asr_job[0]
        assert 0.0 <= utterance[0] < utterance[1] <= spoken + 1e-6
        live._asr_job[1].result(timeout=120)  # the real (random) model ran; its words are arbitrary
        live.update()
        assert live._asr_job is None and utterance in live._asr_done
        # what the recogniser says becomes the words of that utterance, at the utterance's times
        monkeypatch.setattr(type(live.analyzer.transcriber), "transcribe",
                            lambda self, wave, **k: Transcript("I am angry", "en", [(0.1, 0.9, "I am angry")]))
        feed(live, frames, times, audio, t0=spoken + 1.0)
        feed(live, None, None, np.zeros(SR, np.float32), t0=2 * spoken + 1.0)
        live.update()
        if live._asr_job is not None:  # sent during the feed or just now; the stand-in answers at once
            live._asr_job[1].result(timeout=30)
        r = live.update()
        span = live.heard["span"]
        assert spoken + 1.0 - 1e-6 <= span[0] < span[1] <= 2 * spoken + 1.0 + 1e-6  # the second utterance
        assert r["transcript"]["source"] == "whisper" and r["transcript"]["text"] == "I am angry"
        assert r["transcript"]["segments"] == [{"start": round(span[0] + 0.1, 3), "end": round(span[0] + 0.9, 3),
                                                "text": "I am angry"}]
        assert "text" in r["used"] and r["modalities"]["text"]["window"] == [round(v, 3) for v in span]
        # typed words override the transcript
        live.set_text("no, I am calm")
        assert live.update()["transcript"]["source"] == "typed"
        live.set_text(None)
        # 3 s later, with nothing new said, the words are stale: missing, not carried along
        feed(live, None, None, np.zeros(4 * SR, np.float32), t0=2 * spoken + 2.0)
        r = live.update()
        assert "text" not in r["used"] and "ago" in r["modalities"]["text"]["reason"]
    finally:
        get_transcriber.cache_clear()


def test_the_page_hands_the_last_seconds_over_as_a_video_that_reads_back(analyzer, real, tmp_path):
    """ui/live.py writes the stopped stream's last seconds as an mp4; load_clip reads it back like an upload."""
    from ui.live import answer_html, write_video

    frames, times, audio = real
    live = session(analyzer)
    updates = feed(live, frames, times, audio)
    assert "data-update" in answer_html(updates[-1], 1.0, 1.1)
    live.stop()
    clip = live.clip(2.0)
    back = load_clip(write_video(clip, tmp_path / "last.mp4"))
    assert back.kind == "video" and back.audio is not None and back.frames is not None
    assert abs(back.duration - clip.duration) < 0.3
    assert abs(np.abs(back.audio).mean() - np.abs(clip.audio).mean()) < 0.2 * np.abs(clip.audio).mean()
    r = analyzer.analyze(back).to_dict()
    assert r["used"] == ["video", "audio"]
