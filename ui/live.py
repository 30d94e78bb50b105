"""The Live section: webcam and microphone streamed from the browser (Gradio's streaming gr.Image and gr.Audio),
answered several times a second by a stresslab.LiveSession per browser tab, and the last seconds handed to the
ordinary analysis (every panel, the ablations and the correction form) as a video.

Limits (environment variables): STRESSLAB_LIVE_STREAMS live streams at once (default 2; more wait in the queue),
STRESSLAB_LIVE_SECONDS longest stream (default 300 s). Live events run in their own concurrency groups ("live",
"live-audio"), apart from "analysis", so a stream never holds up an upload's analysis.

    tab = LiveTab(app)      # app: the page's App (analyzer, files, its components c)
    with demo:
        tab.build(demo, c)  # inside the page's Blocks, after its layout; app.py does this
"""

from __future__ import annotations

import html
import logging
import os
import threading
import time
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import av
import gradio as gr
import numpy as np

import stresslab
from ui import live_figures, plots

log = logging.getLogger("stresslab.live")
FRAME_EVERY = 0.15  # s between webcam frames sent by the page (one is skipped while the previous is answered)
AUDIO_EVERY = 0.5  # s of microphone audio per chunk
FIGURES_EVERY = 1.0  # s between redraws of the figures (ui/live_figures.py), by a timer; the answer: every frame
STOP_GRACE = 1.5  # s after Stop during which frames still in flight are ignored
IDLE = 900.0  # s without a frame or a chunk after which a tab's session is dropped (a tab that closed unseen)
# The camera at 320x240 (Gradio asks for 1920x1440): the face finder works at 320 px anyway, and each frame is then
# a ~15 kB JPEG to encode, send and decode instead of ~300 kB.
WEBCAM = gr.WebcamOptions(mirror=True, constraints={"video": {"width": {"ideal": 320}, "height": {"ideal": 240}}})


def click_js(start: bool) -> str:
    """JS that presses the camera's and the microphone's own record (start=True, after granting the camera) or
    stop buttons."""
    want = "/^(record|start)/i" if start else "/^stop/i"
    return f"""async () => {{
  const find = (id, re) => [...(document.getElementById(id)?.querySelectorAll('button') || [])].find(
    x => re.test(x.innerText.trim()) || re.test(x.getAttribute('aria-label') || ''));
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  if ({str(start).lower()}) {{ const access = find('live-camera', /access/i); if (access) access.click(); }}
  for (const id of ['live-camera', 'live-mic']) {{
    for (let i = 0; i < 50; i++) {{ const b = find(id, {want}); if (b) {{ b.click(); break; }} await sleep(100); }}
  }}
  return []; }}"""


ANALYSE = """() => { document.getElementById('results')?.scrollIntoView();
  setTimeout(() => document.getElementById('analyze-btn')?.click(), 300); return []; }"""


def answer_html(r: dict, received: float, answered: float) -> str:
    """The answer as a small HTML block (redrawn with every frame): the fused answer, stress, each modality's own
    answer, its attention and its window. data-* attributes carry the timing (wall clock) for the benchmarks."""
    live = r.get("live", {})
    head = (f"<b>{html.escape(r['emotion'])}</b> {r['confidence']:.0%}" + (" (not sure)" if r["uncertain"] else "")
            + f" · stress <b>{html.escape(r['stress']['level'])}</b> {r['stress']['score'] * 100:.0f}/100"
            if r["emotion"] else "waiting for a face, speech or words…")
    rows = []
    for m, info in r["modalities"].items():
        name = plots.MODALITY_NAMES.get(m, m)
        if m in r["used"]:
            span = info.get("window") or [0, 0]
            said = (f"{html.escape(info['emotion'] or '')} · attention {info['weight']:.0%} · "
                    f"{span[0]:.1f}–{span[1]:.1f} s")
        else:
            said = html.escape(info["reason"] or "not used")
        rows.append(f"<tr data-modality='{m}' data-used='{str(m in r['used']).lower()}'><td>{name}</td>"
                    f"<td>{said}</td></tr>")
    return (f"<div id='live-now' data-update='{live.get('updates', 0)}' data-received='{received:.4f}' "
            f"data-answered='{answered:.4f}' data-points='{len(r['timeline'])}'>"
            f"<p class='live-headline'>{head}</p><table>{''.join(rows)}</table>"
            f"<p class='live-clock'>{live.get('now', 0):.1f} s since the stream started</p></div>")


def write_video(clip: stresslab.Clip, path: Path) -> Path:
    """A Clip (frames at their times, 16 kHz audio) -> an mp4 (H.264 at 4 fps + AAC) that load_clip reads back."""
    with av.open(str(path), "w") as out:
        fps = Fraction(4)
        vs = out.add_stream("libx264", rate=fps) if clip.frames is not None else None
        if vs is not None:
            vs.height, vs.width = clip.frames.shape[1] // 2 * 2, clip.frames.shape[2] // 2 * 2
            vs.pix_fmt, vs.time_base = "yuv420p", Fraction(1, 1000)
        aus = out.add_stream("aac", rate=16_000, layout="mono") if clip.audio is not None else None
        if vs is not None:
            for f, t in zip(clip.frames, clip.frame_times, strict=True):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(f[: vs.height, : vs.width]), format="rgb24")
                frame.pts, frame.time_base = round(float(t) * 1000), Fraction(1, 1000)
                out.mux(vs.encode(frame))
            out.mux(vs.encode())
        if aus is not None:
            fmt = aus.codec_context.codec.audio_formats[0].name
            size = aus.codec_context.frame_size or 1024
            for i in range(0, len(clip.audio), size):
                frame = av.AudioFrame.from_ndarray(clip.audio[None, i: i + size].astype(np.float32), format=fmt,
                                                   layout="mono")
                frame.sample_rate, frame.pts = 16_000, i
                out.mux(aus.encode(frame))
            out.mux(aus.encode())
    return path


class LiveTab:
    """One LiveSession per browser tab (by Gradio's session hash), fed by the page's streams."""

    def __init__(self, app, settings: stresslab.LiveSettings | None = None):
        self.app, self.analyzer = app, app.analyzer
        self.settings = settings or stresslab.LiveSettings()
        self.sessions: dict[str, SimpleNamespace] = {}
        self._lock = threading.Lock()
        self.streams = int(os.environ.get("STRESSLAB_LIVE_STREAMS", 2))
        self.time_limit = float(os.environ.get("STRESSLAB_LIVE_SECONDS", 300))

    # --- sessions ----------------------------------------------------------------------------------------------
    def _session(self, sid: str, start: bool = True, restart: bool = False) -> SimpleNamespace | None:
        """The tab's session; start: make one if there is none; restart: replace a stopped one (frames arriving
        well after Stop mean the camera was started again; audio never restarts a session)."""
        with self._lock:
            now = time.monotonic()
            for other in [k for k, v in self.sessions.items() if k != sid and now - v.touched > IDLE]:
                del self.sessions[other]
            s = self.sessions.get(sid)
            if s is not None and s.live.stopped and time.monotonic() - s.stopped_at > STOP_GRACE and restart:
                s = None
            if s is None and start:
                s = self.sessions[sid] = SimpleNamespace(live=stresslab.LiveSession(self.analyzer, self.settings),
                                                         origin=time.monotonic(), audio_next=None, latest=None,
                                                         drawn=None, stopped_at=0.0, touched=now)
            if s is not None:
                s.touched = now
            return s

    def start(self, request: gr.Request) -> dict:
        with self._lock:
            self.sessions.pop(request.session_hash, None)
        self._session(request.session_hash)
        return {self.c.status: "Live: streaming. Look into the camera and speak; the answer follows you.",
                self.c.timer: gr.Timer(active=True)}

    def stop(self, request: gr.Request) -> dict:
        s = self._session(request.session_hash, start=False)
        if s is not None:
            s.live.stop()
            s.stopped_at = time.monotonic()
        return {self.c.status: "Stopped. Analyse the last seconds as a clip, or start again.",
                self.c.timer: gr.Timer(active=False), self.c.raw: getattr(s, "latest", None)}

    def end(self, request: gr.Request) -> None:
        """The tab closed: its stream and session go (Gradio cancels the stream events themselves)."""
        with self._lock:
            ended = self.sessions.pop(request.session_hash, None)
            if ended is not None:
                log.info("a live session ended with its tab (%d still open)", len(self.sessions))

    # --- streams -----------------------------------------------------------------------------------------------
    def frame(self, image: np.ndarray | None, request: gr.Request):
        """A webcam frame -> the answer now, as HTML (the figures are redrawn by the timer: redraw())."""
        received = time.time()
        s = self._session(request.session_hash, restart=True)
        if image is None or (s.live.stopped and time.monotonic() - s.stopped_at <= STOP_GRACE):
            return gr.skip()
        s.live.add_frame(np.asarray(image)[..., :3], time.monotonic() - s.origin)
        s.latest = s.live.update()
        return answer_html(s.latest, received, time.time())

    def redraw(self, request: gr.Request):
        """The timer's tick: the figures for the latest answer, when there is a new one."""
        s = self._session(request.session_hash, start=False)
        r = getattr(s, "latest", None)
        if r is None or r is getattr(s, "drawn", None):
            return gr.skip()
        s.drawn = r
        return live_figures.figures(r, self.settings.timeline_seconds)

    def audio(self, chunk: tuple | None, request: gr.Request) -> None:
        """A microphone chunk (rate, samples) -> the session's audio, placed on the stream's clock."""
        s = self._session(request.session_hash)
        if chunk is None or chunk[1] is None or np.size(chunk[1]) == 0 or s.live.stopped:
            return
        wave = stresslab.load_clip((int(chunk[0]), np.asarray(chunk[1]))).audio
        now = time.monotonic() - s.origin
        t0 = now - wave.size / 16_000
        if s.audio_next is not None and abs(t0 - s.audio_next) < 0.3:
            t0 = s.audio_next  # contiguous with the previous chunk: keep the audio gapless
        s.audio_next = t0 + wave.size / 16_000
        s.live.add_audio(wave, t0)

    def words(self, text: str, request: gr.Request) -> None:
        s = self._session(request.session_hash)
        s.live.set_text(text or None)

    def export(self, seconds: float, request: gr.Request) -> dict:
        """The last `seconds` as a video in the tab's private folder, loaded into the page's video input."""
        c, app = self.c, self.app
        s = self._session(request.session_hash, start=False)
        if s is None:
            return {c.status: "Start the live stream first: there is nothing to analyse yet."}
        try:
            clip = s.live.clip(float(seconds))
        except ValueError as e:
            return {c.status: str(e)}
        folder = app.files.private_dir(request.session_hash)
        path = write_video(clip, folder / f"live-last-{float(seconds):.0f}s-{int(time.time())}.mp4")
        app.files.add(request.session_hash, path)
        if clip.text:
            return {c.page.media["video"]: str(path), c.page.tabs: gr.Tabs(selected="video"),
                    c.page.text: clip.text, c.status: f"The last {clip.duration:.1f} s are being analysed above."}
        return {c.page.media["video"]: str(path), c.page.tabs: gr.Tabs(selected="video"),
                c.status: f"The last {clip.duration:.1f} s are being analysed above."}

    # --- the page ----------------------------------------------------------------------------------------------
    def build(self, demo: gr.Blocks, page: SimpleNamespace) -> SimpleNamespace:
        """The Live section and its events, inside the current Blocks; `page` holds the page's components
        (media, tabs, text: where the last seconds are handed over for the ordinary analysis)."""
        c = self.c = SimpleNamespace(page=page)
        with gr.Accordion("Live: webcam and microphone, answered as you speak", open=False, elem_id="live"):
            gr.Markdown("Press **Start** (the page asks for the camera and microphone), look into the camera and "
                        "speak. The answer follows the last second of your face, the last seconds of your voice "
                        "and the words you type; a modality with nothing recent is left out. Nothing is stored; "
                        "**Analyse the last seconds** hands them to the full analysis above.")
            with gr.Row(equal_height=False):
                with gr.Column(scale=1, min_width=300):
                    c.camera = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="camera",
                                        elem_id="live-camera", height=260, webcam_options=WEBCAM)
                    c.mic = gr.Audio(sources=["microphone"], streaming=True, type="numpy", label="microphone",
                                     elem_id="live-mic")
                    c.text = gr.Textbox(label="words: type what you say to include them", lines=1,
                                        elem_id="live-text")
                    with gr.Row():
                        c.start = gr.Button("Start", variant="primary", elem_id="live-start")
                        c.stop = gr.Button("Stop", elem_id="live-stop")
                    c.seconds = gr.Slider(3, self.settings.keep_seconds, value=10, step=1,
                                          label="seconds to analyse", elem_id="live-seconds")
                    c.send = gr.Button("Analyse the last seconds", elem_id="live-analyse")
                    c.status = gr.Markdown("Not streaming.", elem_id="live-status")
                with gr.Column(scale=2):
                    c.answer = gr.HTML(elem_id="live-answer")
                    c.figures = gr.HTML(elem_id="live-figures")
                    with gr.Accordion("the last live answer as JSON (shown after Stop)", open=False):
                        c.raw = gr.JSON(elem_id="live-json")
        c.timer = gr.Timer(FIGURES_EVERY, active=False)
        c.timer.tick(self.redraw, None, c.figures,
                     concurrency_id="live-figures", concurrency_limit=self.streams, show_progress="hidden",
                     api_visibility="private")
        c.camera.stream(self.frame, c.camera, c.answer, stream_every=FRAME_EVERY, time_limit=self.time_limit,
                        concurrency_limit=self.streams, concurrency_id="live", show_progress="hidden",
                        api_visibility="private")
        c.mic.stream(self.audio, c.mic, None, stream_every=AUDIO_EVERY, time_limit=self.time_limit,
                     concurrency_limit=self.streams, concurrency_id="live-audio", show_progress="hidden",
                     api_visibility="private")
        c.text.input(self.words, c.text, None, queue=False, api_visibility="private")
        c.start.click(self.start, None, [c.status, c.timer], queue=False, api_visibility="private").then(
            None, None, None, js=click_js(True))
        c.stop.click(self.stop, None, [c.status, c.timer, c.raw], queue=False, api_visibility="private").then(
            None, None, None, js=click_js(False))
        c.send.click(self.stop, None, [c.status, c.timer, c.raw], queue=False, api_visibility="private").then(
            None, None, None, js=click_js(False)).then(
            self.export, c.seconds, [page.media["video"], page.tabs, page.text, c.status], queue=False,
            api_visibility="private").then(None, None, None, js=ANALYSE)
        demo.unload(self.end)
        return c
