"""Live mode: webcam frames and microphone audio in, a fused answer for the current moment out, many times a second.

A LiveSession (one per stream) keeps a rolling, time-stamped window per modality:
  face   every frame is searched (tracking the box from frame to frame) and embedded once; the window is the frames
         with a face in the last `face_seconds`, their embeddings averaged (smoothing);
  voice  audio is cut into 100 ms blocks, each judged speech or silence by the audio tower's own rule (AudioConfig.
         speech_detector); the window is the last `voice_seconds` of speech within `voice_lookback`, silence skipped;
  words  typed words, or Whisper's transcript of the last utterance (transcribed in the background once it ends).
Each window carries its time span (seconds on the session's clock). align() fuses only windows that overlap in time,
and a window that ended too long ago (LiveSettings.stale) counts as missing: no stale evidence enters the answer.
update() returns Analysis.to_dict()'s shape for the current moment (through Analyzer.fuse, so heads, attention,
ablations and stress are the ordinary ones) with "timeline" the last `timeline_seconds` of answers and a "live"
block (the windows, the fused moment). clip() turns the last N seconds into an ordinary Clip for Analyzer.analyze.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import combinations

import cv2
import numpy as np

from .analysis import SCHEMA_VERSION, Analyzer, Encoded
from .clip import SAMPLE_RATE, Clip
from .inputs import pad_features, pad_waves
from .labels import MODALITIES
from .towers.audio import audio_features, is_silent, loudness_db, noise_floor_db
from .towers.video import face_crop_array

Span = tuple[float, float]
NAMES = {"video": "face", "audio": "voice", "text": "words"}
_ASR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stresslab-live-asr")  # one Whisper run at a time


@dataclass
class LiveSettings:
    """Window lengths and limits of a live stream (seconds on the stream's clock)."""

    face_seconds: float = 1.0  # face embeddings are averaged over the frames of the last second
    face_fps: float = 10.0  # frames searched for a face per second at most (the rest are only kept for clip())
    voice_seconds: float = 2.5  # the voice window holds this much speech...
    voice_lookback: float = 6.0  # ...found within this many seconds
    min_voice_seconds: float = 0.4  # less speech than this is no voice window
    block_seconds: float = 0.1  # audio is judged speech/silence in blocks this long
    hangover_seconds: float = 0.3  # silence this short after speech still counts as speech (gaps between words)
    utterance_gap: float = 0.6  # silence this long ends an utterance (and sends it to Whisper)
    stale: dict[str, float] = field(default_factory=lambda: {"video": 0.5, "audio": 1.0, "text": 3.0})
    slack: float = 0.25  # windows this close count as overlapping
    timeline_seconds: float = 45.0
    timeline_every: float = 0.25  # at most one timeline point per this many seconds
    keep_seconds: float = 30.0  # how much is kept for clip()
    keep_fps: float = 4.0  # frames kept per second for clip() (load_clip samples video at 4 fps too)
    keep_side: int = 480  # kept frames are down-scaled so their longer side is at most this
    transcribe: bool = True  # Whisper on the last utterance when no words are typed and Whisper is available


@dataclass
class Window:
    """One modality's current window: its span and its (D,) float32 embedding."""

    span: Span
    emb: np.ndarray | None = None
    text: str | None = None


def overlaps(a: Span, b: Span, slack: float = 0.0) -> bool:
    """Whether two (start, end) spans share a moment, allowing a gap of `slack` seconds."""
    return a[0] <= b[1] + slack and b[0] <= a[1] + slack


def align(spans: dict[str, Span | None], slack: float = 0.25) -> tuple[list[str], Span | None]:
    """The largest set of modalities whose windows all share a moment (within slack), the latest such set on a tie:
    -> (modalities in MODALITIES order, the shared moment (start, end)); ([], None) when no window is given."""
    have = [m for m in MODALITIES if spans.get(m) is not None]
    for size in range(len(have), 0, -1):
        found = []
        for combo in combinations(have, size):
            lo, hi = max(spans[m][0] for m in combo), min(spans[m][1] for m in combo)
            if lo <= hi + slack:
                found.append((list(combo), (min(lo, hi), max(lo, hi))))
        if found:
            return max(found, key=lambda c: (c[1][1], c[1][0]))
    return [], None


class LiveSession:
    """One live stream: add_frame / add_audio / set_text feed it, update() answers for the latest moment, clip()
    gives the last seconds as a Clip. Thread-safe (a page's frame and audio events may run at once)."""

    def __init__(self, analyzer: Analyzer, settings: LiveSettings | None = None):
        self.analyzer, self.settings = analyzer, settings or LiveSettings()
        self.backend, self.config = analyzer.backend, analyzer.config
        self._lock = threading.RLock()
        s = self.settings
        self.faces: deque = deque()  # (t, (D,) embedding, box)
        self.kept_frames: deque = deque()  # (t, (H, W, 3) uint8) at keep_fps, for clip()
        self.audio: deque = deque()  # (t0, (n,) float32 16 kHz) chunks, for clip()
        self.blocks: deque = deque()  # (start, end, is_speech, samples) of block_seconds each
        self._pending = np.zeros(0, np.float32)  # samples not yet a whole block
        self._pending_t: float | None = None
        self._box = None
        self._last_face_t = self._next_keep_t = -np.inf
        self._voice_cache: tuple | None = None
        self._text_cache: dict[str, np.ndarray] = {}
        self.typed: tuple[str, float] | None = None  # (words, when typed)
        self.heard: dict | None = None  # {"span", "text", "segments"}: Whisper's words for the last utterance
        self._asr_job: tuple[Span, Future] | None = None
        self._asr_done: set[Span] = set()
        self.timeline: deque = deque()
        self.now = 0.0
        self.start: float | None = None
        self.updates = 0
        self.stopped = False
        self.block_n = round(s.block_seconds * SAMPLE_RATE)
        # the recogniser is made off the stream's thread: deciding whether it can be fetched takes up to ~1 s
        self._asr_ready: Future = _ASR.submit(lambda: analyzer.transcriber) if s.transcribe else Future()

    # --- input -----------------------------------------------------------------------------------------------
    def _clock(self, t: float) -> None:
        self.start = t if self.start is None else min(self.start, t)
        self.now = max(self.now, t)

    def add_frame(self, frame: np.ndarray, t: float) -> bool:
        """An (H, W, 3) uint8 RGB frame captured at t seconds. Returns whether it was searched for a face."""
        if frame is None or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"a frame is an (H, W, 3) uint8 RGB array, got {getattr(frame, 'shape', frame)}")
        with self._lock:
            s = self.settings
            self._clock(t)
            if t >= self._next_keep_t:
                scale = min(1.0, s.keep_side / max(frame.shape[:2]))
                small = cv2.resize(frame, (round(frame.shape[1] * scale) // 2 * 2, round(frame.shape[0] * scale)
                                           // 2 * 2), interpolation=cv2.INTER_AREA) if scale < 1 else frame.copy()
                self.kept_frames.append((t, small))
                self._next_keep_t = t + 1.0 / s.keep_fps - 1e-3
            if t - self._last_face_t < 1.0 / s.face_fps - 1e-3:
                return False
            self._last_face_t = t
            box = self.analyzer.detector.detect(frame, near=self._box)
            self._box = box
            if box is not None:
                crops, _ = face_crop_array(frame[None], [box], self.config.video)
                self.faces.append((t, self.backend.embed_frames(crops)[0], [int(v) for v in box]))
            self._forget()
            return True

    def add_audio(self, samples: np.ndarray, t: float) -> None:
        """(n,) float32 mono 16 kHz samples whose first sample was captured at t seconds."""
        samples = np.asarray(samples, np.float32).reshape(-1)
        with self._lock:
            self._clock(t + samples.size / SAMPLE_RATE)
            if samples.size == 0:
                return
            self.audio.append((t, samples))
            end_pending = (self._pending_t or t) + self._pending.size / SAMPLE_RATE
            if self._pending_t is None or abs(t - end_pending) > self.settings.block_seconds:  # a gap: start afresh
                self._pending, self._pending_t = samples, t
            else:
                self._pending = np.concatenate([self._pending, samples])
            n = self.block_n
            while self._pending.size >= n:
                block, self._pending = self._pending[:n], self._pending[n:]
                start = self._pending_t
                self._pending_t = start + n / SAMPLE_RATE
                self.blocks.append((start, self._pending_t, self._is_speech(block), block))
            self._forget()

    def _is_speech(self, block: np.ndarray) -> bool:
        """The audio tower's speech rule on one block ("relative": against the noise floor of the last 3 s)."""
        cfg = self.config.audio
        if cfg.speech_detector != "relative":
            return not is_silent(block, cfg)
        context = [b[3] for b in list(self.blocks)[-30:]] + [block]
        peak, floor = loudness_db(block, cfg.sample_rate), noise_floor_db(np.concatenate(context), cfg.sample_rate)
        return peak >= cfg.speech_floor_db and peak - floor >= cfg.contrast_db

    def set_text(self, words: str | None, t: float | None = None) -> None:
        """Typed words (None or "" clears them): they override Whisper; their window runs from the utterance going
        on when they were typed (or from then) to now, until they are cleared."""
        with self._lock:
            words = (words or "").strip()
            self.typed = (words, self.now if t is None else t) if words else None

    def _forget(self) -> None:
        s, now = self.settings, self.now
        for buf, horizon in ((self.faces, s.face_seconds + 1), (self.blocks, max(s.voice_lookback, 3.5) + 1),
                             (self.kept_frames, s.keep_seconds), (self.timeline, s.timeline_seconds)):
            while buf and (buf[0]["time"] if isinstance(buf[0], dict) else buf[0][0]) < now - horizon:
                buf.popleft()
        while self.audio and self.audio[0][0] + self.audio[0][1].size / SAMPLE_RATE < now - s.keep_seconds:
            self.audio.popleft()

    # --- windows ---------------------------------------------------------------------------------------------
    def speech_runs(self) -> list[Span]:
        """(start, end) of each run of speech in the kept blocks, short pauses (hangover) bridged."""
        runs: list[list[float]] = []
        for start, end, speech, _ in self.blocks:
            if not speech:
                continue
            if runs and start - runs[-1][1] <= self.settings.hangover_seconds + 1e-6:
                runs[-1][1] = end
            else:
                runs.append([start, end])
        return [(a, b) for a, b in runs]

    def windows(self) -> tuple[dict[str, Window | None], dict[str, str]]:
        """Each modality's current window (None: none) and why a missing one is missing."""
        s, now = self.settings, self.now
        out: dict[str, Window | None] = {m: None for m in MODALITIES}
        why: dict[str, str] = {}
        recent = [f for f in self.faces if f[0] >= now - s.face_seconds]
        if recent:
            out["video"] = Window((recent[0][0], recent[-1][0]), np.stack([f[1] for f in recent]).mean(0))
        else:
            why["video"] = f"no face in the last {s.face_seconds:g} s" if self.kept_frames else "no camera"
        out["audio"], why_audio = self._voice_window()
        if why_audio:
            why["audio"] = why_audio
        out["text"], why_text = self._words_window()
        if why_text:
            why["text"] = why_text
        for m, w in out.items():  # no stale evidence
            if w is not None and w.span[1] < now - s.stale[m]:
                why[m] = f"the last {NAMES[m]} window ended {now - w.span[1]:.1f} s ago"
                out[m] = None
        return out, why

    def _voice_window(self) -> tuple[Window | None, str | None]:
        s = self.settings
        if not self.blocks:
            return None, "no microphone"
        chosen, total = [], 0.0
        for block in reversed(self.blocks):
            if block[0] < self.now - s.voice_lookback or total >= s.voice_seconds - 1e-6:
                break
            if block[2]:
                chosen.append(block)
                total += block[1] - block[0]
        if total < s.min_voice_seconds - 1e-6:
            return None, f"no speech in the last {s.voice_lookback:g} s" if not chosen else "too little speech yet"
        chosen.reverse()
        key = (chosen[0][0], chosen[-1][0], len(chosen))
        if self._voice_cache is None or self._voice_cache[0] != key:
            wave = np.concatenate([b[3] for b in chosen])
            cfg = self.config.audio
            batch, lengths = pad_features([audio_features(wave, cfg)], cfg.n_features)
            waves = pad_waves([wave]) if self.backend.uses_waveform else None
            self._voice_cache = (key, self.backend.embed_audio(batch, lengths, waves)[0])
        return Window((chosen[0][0], chosen[-1][1]), self._voice_cache[1]), None

    def _words_window(self) -> tuple[Window | None, str | None]:
        if self.typed is not None:
            words, at = self.typed  # they cover the utterance going on (or just ended) when typed, and now
            runs = [r for r in self.speech_runs() if r[1] >= at - self.settings.stale["text"]]
            start = min(at, runs[0][0]) if runs else at
            return Window((min(start, self.now), self.now), self._embed_text(words), words), None
        self._poll_asr()
        if self.heard is not None:
            return Window(self.heard["span"], self._embed_text(self.heard["text"]), self.heard["text"]), None
        if not self.settings.transcribe:
            return None, "speech recognition is switched off: type what was said to include the words"
        if not self._asr_ready.done():
            return None, "the speech recogniser is starting"
        asr = self.analyzer.transcriber
        if not asr.can_load:
            return None, asr.unavailable_reason
        return None, "listening for an utterance to transcribe"

    def _embed_text(self, words: str) -> np.ndarray:
        if words not in self._text_cache:
            self._text_cache = {words: self.backend.embed_text([words])[0]}  # only the latest words are kept
        return self._text_cache[words]

    def _poll_asr(self) -> None:
        """Collect a finished transcript; send the last utterance to Whisper once it has ended."""
        if self._asr_job is not None and self._asr_job[1].done():
            span, job = self._asr_job
            self._asr_job = None
            said = job.result() if job.exception() is None else None
            if said is not None and said.text:
                self.heard = {"span": span, "text": said.text, "segments": [
                    {"start": round(span[0] + a, 3), "end": round(span[0] + b, 3), "text": w}
                    for a, b, w in said.segments if w]}
        if self._asr_job is not None or not self.settings.transcribe or not self._asr_ready.done():
            return
        runs = [r for r in self.speech_runs() if r not in self._asr_done]
        if not runs or self.now - runs[-1][1] < self.settings.utterance_gap:
            return  # no utterance, or it is still going on
        asr = self.analyzer.transcriber
        if not asr.can_load:
            return
        span = runs[-1]
        self._asr_done.add(span)
        wave = np.concatenate([b[3] for b in self.blocks if b[0] >= span[0] - 1e-6 and b[1] <= span[1] + 1e-6])
        self._asr_job = (span, _ASR.submit(asr.transcribe, wave))

    # --- answers ---------------------------------------------------------------------------------------------
    def update(self, now: float | None = None) -> dict:
        """The answer for the current moment in Analysis.to_dict()'s shape, plus "live" (windows, the fused
        moment, counters); "timeline" is the last timeline_seconds of answers. `now` defaults to the latest input."""
        t0 = time.perf_counter()
        with self._lock:
            if now is not None:
                self.now = max(self.now, now)
            wins, why = self.windows()
            used, moment = align({m: w.span if w else None for m, w in wins.items()}, self.settings.slack)
            for m in MODALITIES:
                if wins[m] is not None and m not in used:
                    a, b = wins[m].span
                    why[m] = f"its window ({a:.1f}-{b:.1f} s) does not overlap the others'"
            result = self._fuse(wins, used, moment, why)
            self.updates += 1
            result["live"] = {"now": round(self.now, 3), "moment": [round(v, 3) for v in moment] if moment else None,
                              "windows": {m: [round(v, 3) for v in wins[m].span] if wins[m] else None
                                          for m in MODALITIES},
                              "updates": self.updates, "stopped": self.stopped,
                              "seconds": round(time.perf_counter() - t0, 5)}
            return result

    def _fuse(self, wins: dict[str, Window | None], used: list[str], moment: Span | None, why: dict) -> dict:
        d = self.config.embed_dim
        present = np.array([[m in used for m in MODALITIES]])
        emb = {m: (np.asarray(wins[m].emb, np.float32)[None] if m in used else np.zeros((1, d), np.float32))
               for m in MODALITIES}
        words = wins["text"].text if "text" in used else None
        source = None if words is None else "typed" if self.typed else "whisper"
        segments = list(self.heard["segments"]) if source == "whisper" else []
        faces = [{"time": round(f[0], 3), "box": f[2]} for f in self.faces
                 if moment is not None and "video" in used and overlaps((f[0], f[0]), wins["video"].span)]
        reasons = {m: None if m in used else why.get(m, "no window") for m in MODALITIES}
        info = {"kind": "live", "duration": round(self.now - (self.start or 0.0), 3),
                "windows": [[round(v, 3) for v in moment]] if moment else []}
        if not used:
            return self._waiting(reasons, info)
        enc = Encoded(emb, present, [moment], reasons, words, source, segments, faces, info, {})
        result = self.analyzer.fuse(enc).to_dict(private=True)
        for m in MODALITIES:
            result["modalities"][m]["window"] = [round(v, 3) for v in wins[m].span] if m in used else None
        if not self.timeline or self.now - self.timeline[-1]["time"] >= self.settings.timeline_every:
            self.timeline.append({"time": round(self.now, 3), "start": round(moment[0], 3),
                                  "end": round(max(moment[1], moment[0]), 3), "emotion": result["emotion"],
                                  "probabilities": result["probabilities"], "stress": result["stress"]["score"],
                                  "weights": {m: result["modalities"][m]["weight"] for m in MODALITIES},
                                  "used": list(used)})
        self._forget()
        result["timeline"] = list(self.timeline)
        return result

    def _waiting(self, reasons: dict, info: dict) -> dict:
        """No usable window: the same keys with no answer, each modality's reason, and the timeline so far."""
        return {"schema_version": SCHEMA_VERSION, "emotion": None, "confidence": None, "uncertain": True, "top2": [],
                "probabilities": {}, "stress": None, "used": [],
                "modalities": {m: {"present": False, "enabled": True, "reason": reasons[m], "weight": 0.0,
                                   "emotion": None, "probabilities": None, "window": None} for m in MODALITIES},
                "ablations": {}, "timeline": list(self.timeline),
                "transcript": {"text": None, "source": None, "segments": []}, "faces": [], "clip": info,
                "model": {"name": self.config.name, "version": self.config.version}, "timings": {}}

    # --- after the stream ------------------------------------------------------------------------------------
    def stop(self) -> None:
        """The stream ended: nothing more is expected (clip() still works)."""
        with self._lock:
            self.stopped = True

    def clip(self, seconds: float = 10.0) -> Clip:
        """The last `seconds` (at most keep_seconds) as an ordinary Clip: frames at keep_fps, 16 kHz audio placed by
        its timestamps (gaps are silence), the typed words. Raises ValueError when nothing was recorded."""
        with self._lock:
            if not self.kept_frames and not self.audio:
                raise ValueError("nothing was recorded yet: start the stream first")
            end = self.now
            start = max(end - min(seconds, self.settings.keep_seconds), self.start or 0.0)
            frames = [(t, f) for t, f in self.kept_frames if t >= start - 1e-6]
            audio = None
            if self.audio:
                audio = np.zeros(max(1, round((end - start) * SAMPLE_RATE)), np.float32)
                for t0, x in self.audio:
                    i = round((t0 - start) * SAMPLE_RATE)
                    lo, hi = max(0, -i), min(x.size, audio.size - i)
                    if hi > lo:
                        audio[i + lo: i + hi] = x[lo:hi]
            shape = frames[-1][1].shape if frames else None
            frames = [(t, f) for t, f in frames if f.shape == shape]  # one frame size (a camera can change it)
            return Clip(frames=np.stack([f for _, f in frames]) if frames else None,
                        frame_times=np.array([t - start for t, _ in frames], np.float32) if frames else None,
                        audio=audio, text=self.typed[0] if self.typed else None, duration=round(end - start, 3),
                        kind="video" if frames else "audio", notes=["recorded live"])

