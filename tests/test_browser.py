"""The app in headless Chromium (Debian's /usr/bin/chromium driven by Playwright), used as a person would: upload a
clip and see every panel filled, switch a modality off, correct the answer twice (one record) and erase it, click
examples faster than the page can load them, use it on a 390 px phone and with the keyboard only, and record from a
fake webcam and a fake microphone that play a real CREMA-D clip. Runs on a tiny model (no trained weights needed).
Screenshots of the main views are saved on the way (see SHOTS)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile
from _server import ROOT, AppServer
from conftest import CHROMIUM, launch_chromium
from media import write_media
from playwright.sync_api import Error as PlaywrightError

from stresslab.corrections.store import FeedbackStore

# Screenshots of each run go to docs/screenshots/last-run/ (git-ignored). The README's docs/screenshots/*.png come
# from the bundled model:  STRESSLAB_TEST_MODEL=models/default STRESSLAB_SCREENSHOTS=docs/screenshots \
#                          .venv/bin/python -m pytest tests/test_browser.py
SHOTS = ROOT / os.environ.get("STRESSLAB_SCREENSHOTS", "docs/screenshots/last-run")
CLIP = ROOT / "data" / "examples" / "1001_DFA_ANG_XX.flv"
WAIT = 120_000  # ms: an analysis on 2 busy cores
# [title, points covered by another element, title's right edge, its panel's right edge] for every chart title
COVERED_TITLES = """() => [...document.querySelectorAll('.js-plotly-plot .gtitle')].map(t => {
    t.scrollIntoView({block: 'center'});
    const r = t.getBoundingClientRect(), plot = t.closest('.js-plotly-plot');
    const y = r.top + r.height / 2, xs = [r.left + 2, (r.left + r.right) / 2, r.right - 2];
    const covered = xs.filter(x => { const e = document.elementFromPoint(x, y); return e && !plot.contains(e); });
    return [t.textContent, covered.length, r.right, plot.getBoundingClientRect().right + 1]; })"""
PLOTS = ("fused-plot", "stress-gauge", "modalities-plot", "fusion-diagram", "attention-plot")
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
        b = launch_chromium(p, media["camera"], media["microphone"])
        yield b
        b.close()


def open_page(browser, server, width: int = 1400, height: int = 1000):
    """A new tab (its own session) on the app; every request it makes is listed in page.requests."""
    context = browser.new_context(viewport={"width": width, "height": height}, permissions=["camera", "microphone"])
    page = context.new_page()
    page.requests = []
    page.on("request", lambda r: page.requests.append(r.url))
    page.set_default_timeout(30_000)
    page.goto(server.url)
    page.wait_for_selector("#analyze-btn")
    return page


@pytest.fixture
def page(browser, server):
    page = open_page(browser, server)
    yield page
    page.context.close()


def status_text(page) -> str:
    """The status line's message (without Gradio's progress overlay)."""
    return page.inner_text("#status .msg")


def wait_for_plots(page) -> None:
    """Every plotly figure drawn (they render after the answer arrives), and no toast over the page."""
    for plot in PLOTS:
        page.wait_for_selector(f"#{plot} .js-plotly-plot .main-svg")
    for close in page.locator(".toast-close").all():
        try:
            close.click(timeout=2000)
        except PlaywrightError:  # it closed itself meanwhile
            pass


def modality_status(page) -> dict[str, str]:
    """{modality: its status cell} from the modality table."""
    rows = page.evaluate("""() => [...document.querySelectorAll('#modality-table tr[data-modality]')]
        .map(r => [...r.querySelectorAll('td')].map(c => c.innerText.trim()))""")
    return {row[0]: row[-1] for row in rows}


def show_all_images(page) -> None:
    """Load the gallery's lazy images, so that a full-page screenshot shows them."""
    page.evaluate("document.querySelectorAll('#faces-gallery img').forEach(i => { i.loading = 'eager'; })")
    page.locator("#faces-gallery").scroll_into_view_if_needed()
    page.wait_for_function("[...document.querySelectorAll('#faces-gallery img')].every(i => i.complete)")
    page.evaluate("window.scrollTo(0, 0)")


def wait_for_answer(page, before: str, expect: str = "Analysed") -> str:
    """Wait until the status line has changed from `before` and the analysis is over; returns the status."""
    page.wait_for_function("""(before) => {
        const t = document.querySelector('#status .msg')?.innerText ?? '';
        return t !== before && !t.includes('Analysing'); }""", arg=before, timeout=WAIT)
    status = status_text(page)
    assert expect in status, status
    return status


def analyse(page, expect: str = "Analysed") -> str:
    """Press Analyse and wait for the answer (pressing again, as a person would, while a new input is loading)."""
    for _ in range(5):
        before = status_text(page)
        page.click("#analyze-btn")
        status = wait_for_answer(page, before, expect="")
        if "still loading" not in status:
            break
        page.wait_for_timeout(1000)
    assert expect in status, status
    return status


def save(page) -> str:
    """Press Save and wait for the receipt; returns it."""
    before = page.evaluate("document.querySelector('#save-status .msg')?.innerText ?? ''")
    page.click("#save-correction")
    page.wait_for_function("(b) => (document.querySelector('#save-status .msg')?.innerText ?? '') !== b", arg=before)
    return page.input_value("#receipt textarea, #receipt input")


def test_upload_every_panel_toggle_correct_twice_and_erase(page, server, media):
    assert "Never use it to judge" in page.inner_text("#notice")
    page.click("#notice-more button, #notice-more .label-wrap")
    assert "AI Act" in page.inner_text("#notice-more") and "deleted when you close it" in page.inner_text(
        "#notice-more")
    analyse(page, "Could not analyse: nothing to analyse")  # a clear refusal in the page, which keeps working

    page.set_input_files("#upload-video input[type=file]", str(media["upload"]))
    page.wait_for_selector("#upload-video video", state="attached")
    page.fill("#text-input textarea, #text-input input", "Don't forget a jacket")
    status = analyse(page)
    assert "your video (6." in status and "three-times" not in status  # no file name in any answer
    wait_for_plots(page)
    page.wait_for_selector("#timeline-plot .js-plotly-plot .main-svg")
    assert "Over time:" in page.inner_text("#timeline-plot") and "100%" in page.inner_text("#timeline-plot")
    assert modality_status(page) == {"face": "used", "voice": "used", "words": "used"}
    assert page.locator("#faces-gallery img").count() >= 4
    assert ":" in page.inner_text("#faces-gallery")  # each frame captioned with what the face branch said
    assert page.input_value("#transcript textarea, #transcript input") == "Don't forget a jacket"
    assert "Best guess" in page.inner_text("#explanation")
    before = page.inner_text("#attention-plot")
    show_all_images(page)
    page.screenshot(path=str(SHOTS / "analysis.png"), full_page=True)

    page.fill("#text-input textarea, #text-input input", "I am furious with you")  # a new input: results stale
    page.wait_for_selector("#stale-note", state="visible")
    assert "previous input" in page.inner_text("#stale-note")
    assert "answer" in analyse(page)  # says whether the answer changed or stayed
    assert not page.is_visible("#stale-note")

    page.click("#toggle-video input")
    page.wait_for_function("document.querySelector('#modality-table').innerText.includes('switched off')")
    assert modality_status(page)["face"] == "not used: switched off"
    assert "without the face" in status_text(page)
    assert page.inner_text("#attention-plot") != before and "not used" in page.inner_text("#attention-plot")
    assert page.locator("#faces-gallery img").count() >= 4  # the faces stay: nothing was re-encoded
    page.click("#toggle-audio input")
    page.wait_for_function("document.querySelector('#status').innerText.includes('and the voice')")
    page.click("#toggle-text input")  # nothing left: refused, and the box is ticked again
    page.wait_for_function("document.querySelector('#status').innerText.includes('switch one on')")
    page.wait_for_function("document.querySelector('#toggle-text input').checked")
    page.click("#all-on")
    page.wait_for_function("document.querySelector('#status').innerText.includes('with every modality')")
    assert all(page.is_checked(f"#toggle-{m} input") for m in ("video", "audio", "text"))

    assert page.input_value("#correct-emotion input") == ""  # starts empty: no agreement by accident
    page.click("#correct-emotion input")
    page.click("ul[role=listbox] li:has-text('fear')")
    page.click("#correct-stress label:has-text('4')")
    page.fill("#correct-note textarea, #correct-note input", "sounds worried <img src=https://example.com/x.png>")
    assert not page.is_checked("#consent-keep input") and not page.is_checked("#consent-share input")
    page.click("#consent-keep input")
    receipt = save(page)
    assert re.fullmatch(r"[0-9a-f]{32}", receipt)
    record = FeedbackStore(server.store).get(receipt)  # read through the format's owner
    assert record.emotion == "fear" and record.stress_rating == 4 and record.note.startswith("sounds worried")
    assert record.consent_keep_media and record.media_kind == "video"
    assert FeedbackStore(server.store).media_path(record).is_file()
    assert "three-times" not in record.to_json_line() and str(server.uploads) not in record.to_json_line()
    page.click("#correct-emotion input")  # second thoughts: the same record is updated
    page.click("ul[role=listbox] li:has-text('sad')")
    page.click("#consent-keep input")
    assert save(page) == receipt and "Updated" in page.inner_text("#save-status .msg")
    assert [r.id for r in FeedbackStore(server.store).records()].count(receipt) == 1
    record = FeedbackStore(server.store).get(receipt)
    assert record.emotion == "sad" and record.media is None and not (server.store / "media" / receipt).exists()
    assert receipt in page.inner_text("#receipt-list")
    page.locator("#correction-panel").first.screenshot(path=str(SHOTS / "correction.png"))

    analyse(page)  # a new analysis: the receipt list stays
    assert receipt in page.inner_text("#receipt-list") and not page.is_visible("#receipt")
    page.click("#erase-panel button:has-text('Erase a saved correction'), #erase-panel .label-wrap")
    page.fill("#erase-id textarea, #erase-id input", receipt.upper())  # any letter case
    page.click("#erase-btn")
    page.wait_for_function("document.querySelector('#erase-status').innerText.includes('Erased')")
    assert "no clip had been kept" in page.inner_text("#erase-status")
    assert not (server.store / "records" / f"{receipt}.jsonl").exists()
    assert receipt not in page.inner_text("#receipt-list")


def test_examples_clicked_faster_than_the_page_loads_them(page):
    page.click("#examples-video button:has-text('sad')")  # no waits between these three clicks
    page.click("#examples-video button:has-text('anger')")
    before = status_text(page)
    page.click("#analyze-btn")
    status = wait_for_answer(page, before, expect="")
    page.wait_for_timeout(3000)  # both loads have arrived now; the last click (anger) is what the player shows
    if "still loading" not in status:  # answered: about what the player showed then, and marked stale since
        assert "the example" in status, status
        if "the example anger" not in status:
            assert page.is_visible("#stale-note")
    assert "the example anger · actor 1001" in analyse(page)  # now: anger, as the player shows
    assert "asked to show anger" in page.inner_text("#headline") and not page.is_visible("#stale-note")


def test_phone_layout(browser, server):
    page = open_page(browser, server, 390, 844)
    try:
        box = page.locator("#analyze-btn").bounding_box()
        assert box["y"] + box["height"] <= 844  # Analyse in the first screen, under a short notice
        page.screenshot(path=str(SHOTS / "phone-first-screen.png"))
        page.click("#examples-video button:has-text('fear')")
        page.wait_for_selector("#upload-video video[src]", state="attached")
        page.fill("#text-input textarea, #text-input input", "Please, not again")
        analyse(page)
        wait_for_plots(page)
        page.wait_for_timeout(500)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no horizontal overflow
        covered = page.evaluate(COVERED_TITLES)
        assert covered and not [t for t in covered if t[1] or t[2] > t[3]], covered  # titles whole, nothing on them
        assert page.locator(".modebar-container:visible").count() == 0
        broken = page.evaluate("""() => [...document.querySelectorAll('#modality-table .num, #headline .num')]
            .filter(e => e.getClientRects().length > 1).map(e => e.innerText)""")
        assert broken == []  # numbers never break across lines
        gallery = page.locator("#faces-gallery").bounding_box()
        thumbs = page.locator("#faces-gallery img")
        assert thumbs.count() >= 4
        for i in range(thumbs.count()):  # every frame shown inside the gallery (no inner scrolling)
            t = thumbs.nth(i).bounding_box()
            assert t and gallery["y"] <= t["y"] and t["y"] + t["height"] <= gallery["y"] + gallery["height"] + 1
        assert not page.is_visible("#timeline-plot")  # a 2 s clip has no timeline: hidden, not empty
        status, headline = (page.locator(s).bounding_box() for s in ("#status", "#headline"))
        form = page.locator("#correction-panel").first.bounding_box()
        assert status["y"] < headline["y"] < form["y"]  # on a phone: the answer right under Analyse, then the form
        show_all_images(page)
        page.screenshot(path=str(SHOTS / "phone.png"), full_page=True)
    finally:
        page.context.close()


def test_keyboard_only_and_the_live_region(page, server):
    page.wait_for_selector("#status[aria-live=polite][role=status]", state="attached")  # set when the page loads
    page.focus("#text-input textarea, #text-input input")
    page.keyboard.type("I can't believe you did that")
    before = status_text(page)
    page.keyboard.press("Enter")  # Enter submits the words
    status = wait_for_answer(page, before)
    assert "Answer:" in page.inner_text("[aria-live=polite]") and "Answer:" in status
    focusable = page.evaluate("""() => [...document.querySelectorAll(
        '.js-plotly-plot a, .js-plotly-plot button, .js-plotly-plot [tabindex]')]
        .filter(e => e.offsetParent !== null && e.tabIndex >= 0).length""")
    assert focusable == 0  # no Plotly toolbar buttons to Tab through
    page.focus("#analyze-btn")
    presses = 0
    while presses < 40 and not page.evaluate("document.activeElement.closest('#save-correction') !== null"):
        page.keyboard.press("Tab")
        presses += 1
    assert presses <= 12, f"{presses} Tab presses from Analyse to Save"
    print(f"Tab presses from Analyse to Save: {presses}")
    foreign = [u for u in page.requests if not u.startswith((server.url, "blob:", "data:"))]
    assert foreign == []  # system fonts: nothing is fetched from anywhere else


def test_uploads_leave_the_server_when_the_page_closes(browser, server, media, tmp_path):
    private = tmp_path / "private_interview_john_doe.mp4"
    private.write_bytes(media["upload"].read_bytes())
    page = open_page(browser, server)
    page.set_input_files("#upload-video input[type=file]", str(private))
    page.wait_for_selector("#upload-video video", state="attached")
    analyse(page)
    page.click("#json-panel button, #json-panel .label-wrap")
    assert "emotion" in page.inner_text("#raw-json")
    assert "john_doe" not in page.inner_text("#raw-json") + status_text(page) + page.inner_text("#results")
    assert list(server.uploads.rglob("*john_doe*")) and list(server.uploads.rglob("face-*.png"))
    page.context.close()  # the visitor leaves: their upload and face images are deleted
    deadline = time.monotonic() + 30
    while (list(server.uploads.rglob("*john_doe*")) or list(server.uploads.rglob("face-*.png"))) and \
            time.monotonic() < deadline:
        time.sleep(0.5)
    assert not list(server.uploads.rglob("*john_doe*")) and not list(server.uploads.rglob("face-*.png"))
    assert "john_doe" not in server.log()


def test_teaching_views(page):
    page.click("#teaching button, #teaching .label-wrap")
    page.wait_for_function("!document.querySelector('#mistakes').innerText.includes('Running')", timeout=WAIT)
    assert "bundled examples" in page.inner_text("#mistakes")
    assert "accuracy" in page.inner_text("#teaching") or "no measured figures" in page.inner_text("#teaching")
    if page.locator("#confusion-plot").count():
        page.wait_for_selector("#confusion-plot .js-plotly-plot .main-svg")
    page.locator("#teaching").screenshot(path=str(SHOTS / "teaching.png"))


def test_example_webcam_and_microphone(page):
    page.click("#examples-video button:has-text('sad')")  # a bundled CREMA-D clip
    page.wait_for_selector("#upload-video video[src]", state="attached")
    assert "the example sad · actor 1001" in analyse(page)  # the original, not the player's mp4 copy
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
    assert "your video" in analyse(page)  # the recording of the fake webcam and microphone
    status = modality_status(page)  # the face and the voice of the fake devices; no words (no Whisper here)
    assert status["face"] == status["voice"] == "used" and status["words"].startswith("not used"), status
    assert "type what was said" in status["words"]
    wait_for_plots(page)
    page.screenshot(path=str(SHOTS / "webcam.png"), full_page=True)

    page.click("button[role=tab]:has-text('Audio')")
    page.locator("#upload-audio button:text-is('Record')").locator("visible=true").click()
    page.wait_for_timeout(3000)
    with page.expect_response(lambda r: "/run/predict" in r.url):  # the recording is up, the video is cleared
        page.locator("#upload-audio button:text-is('Stop')").locator("visible=true").click()
    assert "your audio" in analyse(page)
    status = modality_status(page)
    assert status["voice"] == "used" and status["face"] == "not used: no video in this input", status
