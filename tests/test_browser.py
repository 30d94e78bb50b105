"""The app in headless Chromium (Debian's /usr/bin/chromium driven by Playwright), used as a person would: upload a
clip and see every panel filled, switch a modality off, correct the answer and erase the correction, and record from
a fake webcam and a fake microphone that play a real CREMA-D clip. Runs on a tiny model (no trained weights needed).
Screenshots of the main views are saved on the way (see SHOTS)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urljoin

import av
import numpy as np
import pytest
import soundfile
from _server import ROOT, AppServer
from media import write_media

from stresslab.corrections.store import FeedbackStore

CHROMIUM = Path("/usr/bin/chromium")
# Screenshots of each run go to docs/screenshots/last-run/ (git-ignored). The README's docs/screenshots/*.png come
# from the bundled model:  STRESSLAB_TEST_MODEL=models/default STRESSLAB_SCREENSHOTS=docs/screenshots \
#                          .venv/bin/python -m pytest tests/test_browser.py
SHOTS = ROOT / os.environ.get("STRESSLAB_SCREENSHOTS", "docs/screenshots/last-run")
CLIP = ROOT / "data" / "examples" / "1001_DFA_ANG_XX.flv"
WAIT = 120_000  # ms: an analysis on 2 busy cores
PLOTS = ("fused-plot", "stress-gauge", "modalities-plot", "attention-plot", "ablation-plot", "timeline-plot")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing (apt-get install chromium)")


def decode_full_rate(path: Path) -> tuple[np.ndarray, float, np.ndarray]:
    """Every frame (T, H, W, 3) RGB, its frame rate, and the 16 kHz mono audio of a media file."""
    from stresslab import load_clip

    with av.open(str(path)) as src:
        stream = src.streams.video[0]
        fps = float(stream.average_rate)
        frames = np.stack([f.to_ndarray(format="rgb24") for f in src.decode(stream)])
    return frames, fps, load_clip(path).audio


def make_media(folder: Path) -> dict[str, Path]:
    """From the real clip: a 3x longer mp4 to upload (long enough for a timeline), a .y4m camera feed and a .wav
    microphone feed."""
    frames, fps, audio = decode_full_rate(CLIP)
    upload = write_media(folder / "three-times.mp4", np.concatenate([frames] * 3), fps, np.tile(audio, 3))
    camera = folder / "camera.y4m"
    with av.open(str(camera), "w", format="yuv4mpegpipe") as out:
        stream = out.add_stream("rawvideo", rate=round(fps))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    microphone = folder / "microphone.wav"
    soundfile.write(microphone, np.tile(audio, 4), 16_000, subtype="PCM_16")
    return {"upload": upload, "camera": camera, "microphone": microphone}


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    return make_media(tmp_path_factory.mktemp("media"))


@pytest.fixture(scope="module")
def server(tiny_model_dir, tmp_path_factory):
    model = os.environ.get("STRESSLAB_TEST_MODEL") or tiny_model_dir  # a tiny untrained model unless asked
    SHOTS.mkdir(parents=True, exist_ok=True)
    s = AppServer(Path(model).resolve(), tmp_path_factory.mktemp("browser") / "store")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def browser(media):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream", f"--use-file-for-fake-video-capture={media['camera']}",
            f"--use-file-for-fake-audio-capture={media['microphone']}"])
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, permissions=["camera", "microphone"])
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(server.url)
    page.wait_for_selector("#analyze-btn")
    yield page
    context.close()


def status_text(page) -> str:
    """The status line's own text (without Gradio's progress overlay)."""
    return page.inner_text("#status [data-testid=markdown]")


def wait_for_plots(page) -> None:
    """Every plotly figure drawn (they render after the answer arrives), and no toast over the page."""
    for plot in PLOTS:
        page.wait_for_selector(f"#{plot} .js-plotly-plot .main-svg")
    for close in page.locator(".toast-close").all():
        close.click()


def modality_status(page) -> dict[str, str]:
    """{modality: its status cell} from the modality table."""
    rows = page.evaluate("""() => [...document.querySelectorAll('#modality-table [role=row].virtual-row')]
        .map(r => [...r.querySelectorAll('[role=gridcell]')].map(c => c.innerText.trim()))""")
    return {row[0].split()[0]: row[-1] for row in rows if row}


def analyse(page, expect: str = "analysed") -> str:
    """Press Analyse and wait until the status line has changed and the run is over; returns the status."""
    before = status_text(page)
    page.click("#analyze-btn")
    page.wait_for_function("""(before) => {
        const el = document.querySelector('#status');
        const idle = el.querySelector('[data-testid=status-tracker]')?.classList.contains('hide') ?? true;
        return idle && el.querySelector('[data-testid=markdown]').innerText !== before; }""", arg=before,
                           timeout=WAIT)
    status = status_text(page)
    assert expect in status, status
    return status


def test_upload_every_panel_toggle_correct_and_erase(page, server, media):
    assert "AI Act" in page.inner_text("#notice") and "acted" in page.inner_text("#notice")
    card = page.locator("#notice a", has_text="model card").get_attribute("href")
    assert page.request.get(urljoin(server.url, card)).ok  # the model card is served
    analyse(page, "Could not analyse: nothing to analyse")  # a clear refusal in the page, which keeps working

    page.set_input_files("#upload-video input[type=file]", str(media["upload"]))
    page.wait_for_selector("#upload-video video", state="attached")
    page.fill("#text-input textarea", "Don't forget a jacket")
    analyse(page, "analysed three-times.mp4 (video, 6.")
    wait_for_plots(page)
    assert "Over time (one point" in page.inner_text("#timeline-plot")  # 6.7 s: two windows
    assert modality_status(page) == {"face": "used", "voice": "used", "words": "used"}
    assert page.locator("#faces-gallery img").count() >= 4
    assert "Don't forget a jacket" in page.inner_text("#transcript")
    assert "Best guess" in page.inner_text("#explanation")
    before = page.inner_text("#attention-plot")
    page.screenshot(path=str(SHOTS / "analysis.png"), full_page=True)

    page.click("#toggle-video input")
    page.wait_for_function("document.querySelector('#modality-table').innerText.includes('switched off')")
    assert modality_status(page)["face"] == "not used: switched off"
    assert "without the face (video)" in status_text(page)
    assert page.inner_text("#attention-plot") != before and "not used" in page.inner_text("#attention-plot")
    assert page.locator("#faces-gallery img").count() >= 4  # the faces stay: nothing was re-encoded
    wait_for_plots(page)
    page.screenshot(path=str(SHOTS / "without-video.png"), full_page=True)
    page.click("#toggle-audio input")
    page.wait_for_function("document.querySelector('#status').innerText.includes('and the voice')")
    page.click("#toggle-text input")  # nothing left: refused, and the box is ticked again
    page.wait_for_function("document.querySelector('#status').innerText.includes('switch one on')")
    page.wait_for_function("document.querySelector('#toggle-text input').checked")
    page.click("#toggle-audio input")
    page.wait_for_function("document.querySelector('#status').innerText.trim().endsWith('without the face (video)')")

    page.click("#correct-emotion input")
    page.click("ul[role=listbox] li:has-text('fear')")
    page.click("#correct-stress label:has-text('4')")
    page.fill("#correct-note textarea", "sounds worried")
    assert not page.is_checked("#consent-keep input") and not page.is_checked("#consent-share input")
    page.click("#consent-keep input")
    page.click("#save-correction")
    page.wait_for_function("document.querySelector('#receipt').innerText.includes('receipt')")
    receipt = re.search(r"\b[0-9a-f]{32}\b", page.inner_text("#receipt")).group(0)
    assert (server.store / "records" / f"{receipt}.jsonl").is_file()
    record = FeedbackStore(server.store).get(receipt)  # read through the format's owner
    assert record.emotion == "fear" and record.stress_rating == 4 and record.note == "sounds worried"
    assert record.consent_keep_media and not record.consent_share and record.media_kind == "video"
    assert record.model_output["modalities"]["video"]["enabled"] is False  # the answer as shown
    assert FeedbackStore(server.store).media_path(record).is_file()
    page.locator("#correction-panel").first.screenshot(path=str(SHOTS / "correction.png"))

    page.click("#erase-panel button:has-text('Erase a saved correction')")
    page.fill("#erase-id textarea, #erase-id input", receipt)
    page.click("#erase-btn")
    page.wait_for_function("document.querySelector('#erase-status').innerText.includes('Erased')")
    assert not (server.store / "records" / f"{receipt}.jsonl").exists()
    assert not (server.store / "media" / receipt).exists()


def test_example_webcam_and_microphone(page):
    page.click("#examples-video button:has-text('sad')")  # a bundled CREMA-D clip
    page.wait_for_selector("#upload-video video[src]", state="attached")
    analyse(page, "analysed 1001_DFA_SAD_XX.flv (video")  # the original, not the player's mp4 copy
    status = modality_status(page)
    assert status["face"] == status["voice"] == "used", status

    page.click("#upload-video button[aria-label='Capture from camera']")
    page.get_by_role("button", name=re.compile("access webcam", re.I)).click()
    record = page.locator("#upload-video button[aria-label='start recording']")  # "Record", then "Stop"
    record.click()
    page.wait_for_timeout(3000)
    assert record.inner_text().strip() == "Stop"
    with page.expect_response(lambda r: "/run/predict" in r.url):  # the recording is up, the other inputs cleared
        record.click()
    assert "1001_DFA" not in analyse(page, "(video, ")  # the recording of the fake webcam and microphone
    status = modality_status(page)  # the face and the voice of the fake devices; no words (no Whisper here)
    assert status["face"] == status["voice"] == "used" and status["words"].startswith("not used"), status
    wait_for_plots(page)
    page.screenshot(path=str(SHOTS / "webcam.png"), full_page=True)

    page.click("button[role=tab]:has-text('Audio')")
    page.locator("#upload-audio button:text-is('Record')").locator("visible=true").click()
    page.wait_for_timeout(3000)
    with page.expect_response(lambda r: "/run/predict" in r.url):  # the recording is up, the video is cleared
        page.locator("#upload-audio button:text-is('Stop')").locator("visible=true").click()
    analyse(page, "(audio, ")
    status = modality_status(page)
    assert status["voice"] == "used" and status["face"] == "not used: no video in this input", status
