"""Live mode figures: updates per second, lag from frame capture to answer (median), CPU share of one stream.

    .venv/bin/python -m bench.live [--seconds 20] [--threads 1] [--no-browser] [--no-readme]
Two measurements, both on the real CREMA-D example clips played as a camera and a microphone:
  library  a LiveSession fed in real time (a frame every 0.2 s, 0.5 s audio chunks, as the page sends them), an
           update after each frame; lag = update returned - frame handed over; CPU = this process's CPU seconds per
           second of stream. Then the same frames unpaced: the most updates per second one stream can give.
  browser  app.py with the bundled model in headless Chromium whose fake webcam and microphone play the clip; the
           page's capture times (canvas.toDataURL, which Gradio calls for each streamed frame) and the times each
           new answer appears (a MutationObserver) are recorded in the page; lag = answer shown - capture of the
           frame it answers; CPU = the app process's CPU seconds per second of stream. An upload analysed through
           the /analyze API before and during the stream shows whether live starves uploads.
The machine's load average is recorded beside the figures: on a shared machine they are upper bounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from bench.common import ROOT, machine, source_clips, update_readme, write_json

INIT = """
window.__caps = []; window.__seen = [];
const toDataURL = HTMLCanvasElement.prototype.toDataURL;
HTMLCanvasElement.prototype.toDataURL = function (...a) { window.__caps.push(Date.now() / 1000);
  return toDataURL.apply(this, a); };
new MutationObserver(() => { const d = document.querySelector('#live-now'); const s = window.__seen;
  if (d && +d.dataset.received > 0 && (!s.length || s[s.length - 1].update !== d.dataset.update))
    s.push({update: d.dataset.update, shown: Date.now() / 1000, received: +d.dataset.received,
            answered: +d.dataset.answered}); })
  .observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
"""


def real_stream() -> tuple[list[np.ndarray], float, np.ndarray]:
    """Every frame of the real example clips, one after another, their frame rate, and their 16 kHz audio."""
    from stresslab import load_clip

    frames, audio, fps = [], [], 30.0
    for path in source_clips():
        with av.open(str(path)) as src:
            fps = float(src.streams.video[0].average_rate)
            frames += [f.to_ndarray(format="rgb24") for f in src.decode(video=0)]
        audio.append(load_clip(path).audio)
    return frames, fps, np.concatenate(audio)


def library(seconds: float, threads: int) -> dict:
    import stresslab

    stresslab.configure_threads(threads)
    frames, fps, audio = real_stream()
    analyzer = stresslab.Analyzer()
    analyzer.warm_up()
    live = stresslab.LiveSession(analyzer, stresslab.LiveSettings(transcribe=False))
    lags, t0, c0 = [], time.perf_counter(), time.process_time()
    next_frame, next_audio, sent = 0.0, 0.5, 0
    while (now := time.perf_counter() - t0) < seconds:
        if now >= next_audio:  # the last 0.5 s of sound, as a streamed chunk
            i = int((next_audio - 0.5) * 16000) % max(1, len(audio) - 8000)
            live.add_audio(audio[i: i + 8000], next_audio - 0.5)
            next_audio += 0.5
        if now >= next_frame:
            captured = time.perf_counter()
            live.add_frame(frames[int(now * fps) % len(frames)], now)
            r = live.update()
            lags.append(time.perf_counter() - captured)
            sent += 1
            next_frame = max(next_frame + 0.2, time.perf_counter() - t0)  # a page skips frames while one is pending
        time.sleep(max(0.0, min(next_frame, next_audio) - (time.perf_counter() - t0)))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    paced = {"updates_per_s": round(sent / wall, 2), "lag_median_s": round(statistics.median(lags), 4),
             "lag_p90_s": round(float(np.percentile(lags, 90)), 4), "cpu_cores": round(cpu / wall, 3),
             "used_last": r["used"]}
    t, n = time.perf_counter(), 0
    while time.perf_counter() - t < min(10.0, seconds):  # unpaced: as fast as one stream can go
        live.add_frame(frames[n % len(frames)], seconds + 0.2 * n)
        live.update()
        n += 1
    paced["max_updates_per_s"] = round(n / (time.perf_counter() - t), 2)
    return paced


def camera_and_microphone(folder: Path) -> tuple[Path, Path]:
    """The first example clip as a .y4m camera feed and a .wav microphone feed (Chromium plays both in a loop)."""
    import soundfile

    frames, fps, audio = real_stream()
    clip_frames = frames[: int(fps * 2.5)]
    camera = folder / "camera.y4m"
    with av.open(str(camera), "w", format="yuv4mpegpipe") as out:
        stream = out.add_stream("rawvideo", rate=round(fps))
        stream.width, stream.height, stream.pix_fmt = clip_frames[0].shape[1], clip_frames[0].shape[0], "yuv420p"
        for f in clip_frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p")))
        out.mux(stream.encode())
    microphone = folder / "microphone.wav"
    soundfile.write(microphone, audio, 16_000, subtype="PCM_16")
    return camera, microphone


def browser(seconds: float, threads: int) -> dict:
    import psutil
    from playwright.sync_api import sync_playwright

    from bench.appserver import AppServer

    folder = Path(tempfile.mkdtemp(prefix="bench-live-"))
    camera, microphone = camera_and_microphone(folder)
    os.environ.update({"HF_HUB_OFFLINE": "1", "STRESSLAB_THREADS": str(threads)})
    server = AppServer(Path(os.environ.get("STRESSLAB_MODEL") or ROOT / "models" / "default"), folder / "store")
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
                "--no-sandbox", "--disable-gpu", "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream", f"--use-file-for-fake-video-capture={camera}",
                f"--use-file-for-fake-audio-capture={microphone}"])
            context = b.new_context(viewport={"width": 1400, "height": 1000}, permissions=["camera", "microphone"])
            context.add_init_script(INIT)
            page = context.new_page()
            page.goto(server.url)
            from gradio_client import Client

            client = Client(server.url, verbose=False, httpx_kwargs={"timeout": 300})
            alone = analyse_upload(client)
            page.click("#live button")
            page.click("#live-start")
            page.wait_for_function("() => window.__seen.length > 2", timeout=120_000)
            proc = psutil.Process(server.proc.pid)
            cpu0, t0 = sum(proc.cpu_times()[:2]), time.time()
            time.sleep(seconds)
            cpu, wall = sum(proc.cpu_times()[:2]) - cpu0, time.time() - t0
            seen, caps = page.evaluate("window.__seen"), page.evaluate("window.__caps")
            during = analyse_upload(client)
            b.close()
    finally:
        server.stop()
    seen = [s for s in seen if s["shown"] >= t0]
    lags = [s["shown"] - max([c for c in caps if c <= s["received"]], default=s["received"]) for s in seen]
    return {"updates_per_s": round(len(seen) / wall, 2), "lag_median_s": round(statistics.median(lags), 4),
            "lag_p90_s": round(float(np.percentile(lags, 90)), 4),
            "server_s_median": round(statistics.median(s["answered"] - s["received"] for s in seen), 4),
            "frames_captured_per_s": round(len([c for c in caps if c >= t0]) / wall, 2),
            "cpu_cores": round(cpu / wall, 3), "upload_analysis_alone_s": alone,
            "upload_analysis_during_stream_s": during}


def analyse_upload(client) -> float:
    """Seconds for the /analyze API to answer for the first example clip (an upload, through the queue)."""
    from gradio_client import handle_file

    t = time.perf_counter()
    client.predict(handle_file(str(source_clips()[0])), "", api_name="/analyze")
    return round(time.perf_counter() - t, 3)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (STRESSLAB_THREADS) for the stream")
    p.add_argument("--no-browser", action="store_true")
    p.add_argument("--no-readme", action="store_true")
    args = p.parse_args()
    load = os.getloadavg()[0]
    data = {"machine": machine(), "load_average_1min": round(load, 2), "threads": args.threads,
            "library": library(args.seconds, args.threads)}
    if not args.no_browser:
        data["browser"] = browser(args.seconds, args.threads)
    data["load_average_1min_after"] = round(os.getloadavg()[0], 2)
    write_json("live", data)
    rows = [f"| {where} | {d['updates_per_s']} | {d['lag_median_s'] * 1000:.0f} ms | {d['cpu_cores'] * 100:.0f}% "
            f"of a core |" for where, d in (("LiveSession, paced like the page", data["library"]),
                                              ("the page in Chromium", data.get("browser"))) if d]
    table = ("| one live stream | updates/s | lag, capture to answer (median) | CPU |\n| --- | --- | --- | --- |\n"
             + "\n".join(rows) + f"\n\nMost updates/s one stream can give (unpaced): "
             f"{data['library']['max_updates_per_s']}; load average while measured: {load:.1f} on "
             f"{os.cpu_count()} cores."
             + (f" An upload's analysis took {data['browser']['upload_analysis_alone_s']:.1f} s alone and "
                f"{data['browser']['upload_analysis_during_stream_s']:.1f} s during a live stream."
                if "browser" in data else ""))
    print(table)
    if not args.no_readme:
        update_readme("live", table)


if __name__ == "__main__":
    main()
