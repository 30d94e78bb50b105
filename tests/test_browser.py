"""The app in headless Chromium (Debian's /usr/bin/chromium driven by Playwright), as a person uses it: upload a
clip, record from a fake webcam and a fake microphone fed from a real CREMA-D clip, switch a modality off, save a
correction. Screenshots of the main views go to docs/screenshots/."""

import re
import time
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile
from _server import ROOT, AppServer

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "docs" / "screenshots"
CLIP = ROOT / "data" / "examples" / "1001_DFA_HAP_XX.flv"
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (make setup)")


def fake_devices(folder: Path) -> tuple[Path, Path]:
    """A .y4m camera feed and a .wav microphone feed made from the real clip."""
    from stresslab import load_clip

    y4m, wav = folder / "camera.y4m", folder / "microphone.wav"
    with av.open(str(CLIP)) as src, av.open(str(y4m), "w", format="yuv4mpegpipe") as out:
        stream = out.add_stream("rawvideo", rate=30)
        stream.width, stream.height, stream.pix_fmt = 480, 360, "yuv420p"
        for frame in src.decode(video=0):
            for packet in stream.encode(frame.reformat(format="yuv420p")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    audio = load_clip(CLIP).audio
    soundfile.write(wav, np.tile(audio, 3), 16000)
    return y4m, wav


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = AppServer(ROOT / "models" / "default", tmp_path_factory.mktemp("browser") / "store")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    y4m, wav = fake_devices(tmp_path_factory.mktemp("devices"))
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream", f"--use-file-for-fake-video-capture={y4m}",
            f"--use-file-for-fake-audio-capture={wav}"])
        yield b
        b.close()


def open_app(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 1600}, permissions=["camera", "microphone"])
    page = context.new_page()
    page.goto(server.url)
    page.wait_for_selector("#analyze-btn")
    return page


def analysed(page) -> str:
    page.click("#analyze-btn")
    page.wait_for_function("document.querySelector('#status')?.innerText.includes('analysed')", timeout=120_000)
    return page.inner_text("#headline")


def test_upload_fills_every_panel_and_toggles_and_corrects(browser, server):
    page = open_app(browser, server)
    page.click("#upload-video button[aria-label='Upload file']")
    page.set_input_files("#upload-video input[type=file]", str(CLIP))
    page.fill("#text-input textarea", "Don't forget a jacket")
    time.sleep(1)
    headline = analysed(page)
    assert "stress" in headline
    for panel in ("fused-plot", "stress-gauge", "modalities-plot", "weights-plot", "ablation-plot", "timeline-plot"):
        page.wait_for_selector(f"#{panel} .js-plotly-plot", timeout=30_000)
    table = page.inner_text("#modality-table")
    assert table.count("used") == 3
    assert page.locator("#faces-gallery img").count() >= 4
    assert "Don't forget a jacket" in page.inner_text("#transcript")
    assert "best guess" in page.inner_text("#explanation")
    time.sleep(1.5)
    page.screenshot(path=str(SHOTS / "analysis.png"), full_page=True)

    before = page.inner_text("#modalities-plot")
    page.click("#toggle-video input")
    page.wait_for_function("document.querySelector('#modality-table').innerText.includes('switched off')",
                           timeout=60_000)
    assert page.inner_text("#modalities-plot") != before  # the fused answer moved
    page.screenshot(path=str(SHOTS / "without-video.png"), full_page=True)

    page.click("#correct-emotion input")
    page.click("ul[role=listbox] li:has-text('happy')")
    page.click("#consent-keep input")
    page.click("#save-correction")
    page.wait_for_function("document.querySelector('#receipt').innerText.includes('receipt')", timeout=60_000)
    assert re.search(r"\b[0-9a-f]{32}\b", page.inner_text("#receipt"))
    page.screenshot(path=str(SHOTS / "correction.png"), full_page=True)


def test_record_from_webcam(browser, server):
    page = open_app(browser, server)
    page.click("#upload-video button:has-text('Click to Access Webcam')")
    page.click("#upload-video button[aria-label='start recording']")
    time.sleep(3)
    page.click("#upload-video button:has-text('Stop')")
    page.wait_for_selector("#upload-video video[src*='webm'], #upload-video video[src*='mp4']", timeout=30_000)
    analysed(page)
    table = page.inner_text("#modality-table")
    assert "face (video)" in table and table.count("used") == 2  # face and voice from the fake devices


def test_record_from_microphone(browser, server):
    page = open_app(browser, server)
    page.click("button[role=tab]:has-text('Audio')")
    page.locator("#upload-audio button:has-text('Record')").first.click()
    time.sleep(3)
    page.locator("#upload-audio button:has-text('Stop')").locator("visible=true").first.click()
    page.wait_for_selector("#upload-audio audio[src^='blob:'], #upload-audio audio[src*='gradio_api']",
                           state="attached", timeout=30_000)
    time.sleep(1)
    analysed(page)
    table = page.inner_text("#modality-table")
    assert table.count("used") == 1 and "no video in this input" in table
    page.screenshot(path=str(SHOTS / "microphone.png"), full_page=True)
