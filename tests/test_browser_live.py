"""The Live section in headless Chromium: a fake webcam and a fake microphone play a real CREMA-D clip; the stream
starts, the answers update several times and the timeline grows, the stream stops, and the last seconds are
analysed as an ordinary clip (every panel and the correction form). Runs on a tiny model, offline."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from _server import ROOT, AppServer
from conftest import CHROMIUM, launch_chromium
from test_browser import make_media

SHOTS = ROOT / os.environ.get("STRESSLAB_SCREENSHOTS", "docs/screenshots/last-run")
WAIT = 120_000  # ms: an analysis on 2 busy cores
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing (apt-get install chromium)")
NOW = """() => { const d = document.querySelector('#live-now'); if (!d) return null;
  return {update: +d.dataset.update, points: +d.dataset.points, text: d.innerText,
          used: [...d.querySelectorAll('tr[data-used=true]')].map(r => r.dataset.modality)}; }"""


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    return make_media(tmp_path_factory.mktemp("live-media"))


@pytest.fixture(scope="module")
def server(tiny_model_dir, tmp_path_factory):
    model = os.environ.get("STRESSLAB_TEST_MODEL") or tiny_model_dir
    SHOTS.mkdir(parents=True, exist_ok=True)
    old = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"  # no Whisper download attempt: typed words only
    try:
        s = AppServer(Path(model).resolve(), tmp_path_factory.mktemp("browser-live") / "store")
    finally:
        os.environ.pop("HF_HUB_OFFLINE") if old is None else os.environ.__setitem__("HF_HUB_OFFLINE", old)
    yield s
    s.stop()


@pytest.fixture
def page(server, media):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p, media["camera"], media["microphone"])
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, permissions=["camera", "microphone"])
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(server.url)
        page.wait_for_selector("#analyze-btn")
        yield page
        browser.close()


def wait_for(page, check, timeout: float = 90.0, every: float = 0.25):
    """Poll check(page) until it returns something truthy; fail after timeout seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = check(page)
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s; the answer was {page.evaluate(NOW)}")


def test_live_stream_updates_stops_and_analyses_the_last_seconds(page, server):
    page.click("#live button")  # open the Live section
    page.wait_for_selector("#live-start", state="visible")
    page.click("#live-start")
    first = wait_for(page, lambda p: p.evaluate(NOW))
    # the answer updates several times and the timeline grows
    answers = [first]

    def updated(p):
        now = p.evaluate(NOW)
        if now["update"] != answers[-1]["update"]:
            answers.append(now)
        return len(answers) >= 6

    wait_for(page, updated, timeout=120)
    assert [a["update"] for a in answers] == sorted({a["update"] for a in answers})
    assert answers[-1]["points"] > first["points"] and "video" in answers[-1]["used"]

    # the voice joins once the fake microphone's speech has been heard (its window overlaps the face's)
    def with_voice(p):
        now = p.evaluate(NOW)
        return now if {"video", "audio"} <= set(now["used"]) else None

    both = wait_for(page, with_voice, timeout=60)
    assert "attention" in both["text"]
    page.wait_for_selector("#live-figures svg.lf-timeline polyline", timeout=WAIT)  # redrawn each second
    page.wait_for_selector("#live-figures .lf-meter i", timeout=WAIT)
    grown = int(page.get_attribute("#live-figures svg.lf-timeline", "data-points"))
    page.wait_for_function(f"() => +document.querySelector('#live-figures svg.lf-timeline').dataset.points > {grown}",
                           timeout=WAIT)
    page.locator("#live").screenshot(path=str(SHOTS / "live.png"))
    # stop: the camera's own button offers to record again, and the answers stop
    page.click("#live-stop")
    page.wait_for_function("() => document.querySelector('#live-status').innerText.includes('Stopped')")
    page.wait_for_function("""() => [...document.querySelectorAll('#live-camera button')]
        .some(b => /^record/i.test(b.innerText.trim()))""", timeout=30_000)
    time.sleep(2)
    frozen = page.evaluate(NOW)["update"]
    time.sleep(2)
    assert page.evaluate(NOW)["update"] == frozen
    # the last 5 seconds go to the ordinary analysis: every panel, the ablations and the correction form
    page.fill("#live-seconds input[type=number]", "5")
    page.press("#live-seconds input[type=number]", "Enter")
    page.click("#live-analyse")
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('Analysed')",
                           timeout=WAIT)
    status = page.inner_text("#status")
    assert "your video" in status, status
    table = page.inner_text("#modality-table")
    assert "face" in table and "voice" in table, table
    for plot in ("fused-plot", "stress-gauge", "modalities-plot", "attention-plot", "ablation-plot"):
        page.wait_for_selector(f"#{plot} .js-plotly-plot .main-svg")
    assert page.is_visible("#correction-panel")
    assert "live-last-5s" in page.evaluate("() => document.querySelector('#upload-video video')?.src || ''")
    # closing the tab ends its live session on the server
    page.close()
    end = time.monotonic() + 60
    while "a live session ended with its tab (0 still open)" not in server.log() and time.monotonic() < end:
        time.sleep(0.5)
    assert "a live session ended with its tab (0 still open)" in server.log()
