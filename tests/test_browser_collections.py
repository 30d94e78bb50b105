"""The "Label a collection" tab in headless Chromium (Debian's /usr/bin/chromium through Playwright): two annotators
in two browser contexts label the same real clips (CREMA-D video, EmoDB and RAVDESS audio) with keyboard shortcuts
only. The queue never gives one annotator a clip twice, a skipped clip comes back last, blind hides the model's
pre-label, and the agreement the page shows equals a hand computation of Krippendorff's alpha."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from _server import ROOT, free_port
from conftest import CHROMIUM, CREMAD, EMODB, SHARED, launch_chromium
from test_collections import hand_alpha_nominal

from stresslab.collections import cli
from stresslab.collections.annotations import AnnotationStore
from stresslab.collections.collection import Collection
from stresslab.collections.prelabel import prelabel

KEYS = {"anger": "1", "disgust": "2", "fear": "3", "happy": "4", "neutral": "5", "sad": "6", "none": "0",
        "cant_tell": "c"}
pytestmark = [pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing"),
              pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is absent (the real clips)"),
              pytest.mark.slow]


@pytest.fixture(scope="module")
def store(tmp_path_factory, tiny_model_dir) -> Path:
    root = tmp_path_factory.mktemp("collections")
    clips = root / "clips"
    clips.mkdir()
    for p in [CREMAD / "1001_DFA_ANG_XX.flv", CREMAD / "1001_DFA_HAP_XX.flv", EMODB / "wav" / "03a01Wa.wav",
              SHARED / "ravdess-speech" / "Actor_01" / "03-01-04-01-01-01-01.flac"]:
        shutil.copy(p, clips / p.name)
    assert cli.main(["create", "talks", "--from", str(clips), "--consent", "public corpora (test)",
                     "--labels-per-clip", "2", "--store", str(root / "store")]) == 0
    assert prelabel(Collection.load(root / "store", "talks"), model=str(tiny_model_dir))["done"] == 4
    return root / "store"


@pytest.fixture(scope="module")
def server(store):
    port = free_port()
    log = open(store.parent / "ui.log", "w")
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    env.pop("SPACE_ID", None)
    proc = subprocess.Popen([sys.executable, "-m", "ui.collections", "--store", str(store), "--port", str(port)],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    end = time.monotonic() + 120
    while True:
        assert proc.poll() is None, (store.parent / "ui.log").read_text()[-3000:]
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            assert time.monotonic() < end, "the labelling page did not come up"
            time.sleep(0.5)
    yield url
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch_chromium(p)
        yield b
        b.close()


def text(page, elem_id: str) -> str:
    return page.inner_text(f"#{elem_id}")


def open_as(browser, url: str, name: str, blind: bool = False):
    context = browser.new_context(viewport={"width": 1300, "height": 1400})
    page = context.new_page()
    page.set_default_timeout(150_000)
    page.goto(url)
    page.wait_for_selector("#coll-emotion")
    if blind:
        page.check("#coll-blind input")
    page.fill("#coll-annotator textarea", name)
    page.press("#coll-annotator textarea", "Enter")  # the name box's submit serves the first clip
    page.wait_for_function("() => /Clip/.test(document.querySelector('#coll-clip').innerText)")
    idle(page)
    page.click("#coll-progress")  # focus leaves the name box: the shortcuts apply
    return context, page


def current_clip(page) -> str:
    match = re.search(r"Clip\s+(\S+)", text(page, "coll-clip"))
    return match.group(1) if match else ""


def idle(page) -> None:
    """Wait until no event of the page is running (every Gradio status tracker hidden)."""
    page.wait_for_function("""() => [...document.querySelectorAll('[data-testid=status-tracker]')]
        .every(t => t.classList.contains('hide') || t.offsetParent === null)""")


def label_by_keyboard(page, answer: str, stress: int) -> str:
    """Press the shortcut keys for one clip and Enter; returns the clip id saved."""
    idle(page)
    cid = current_clip(page)
    page.keyboard.press(KEYS[answer])
    page.keyboard.press(f"Shift+Digit{stress}")
    page.wait_for_function("""([answer, stress]) => {
        const e = document.querySelector(`#coll-emotion input[value="${answer}"]`);
        const s = document.querySelector(`#coll-stress input[value="${stress}"]`);
        return e && e.checked && s && s.checked; }""", arg=[answer, str(stress)], timeout=20_000)
    page.keyboard.press("Enter")
    page.wait_for_function("(cid) => document.querySelector('#coll-status').innerText.includes('Saved ' + cid)",
                           arg=cid)
    return cid


def test_two_annotators_label_by_keyboard_and_see_the_hand_computed_agreement(browser, server, store):
    answers = {  # per annotator, by clip id: the emotion and stress they give
        "ana": {"03-01-04-01-01-01-01": ("sad", 2), "03a01Wa": ("anger", 5), "1001_DFA_ANG_XX": ("anger", 4),
                "1001_DFA_HAP_XX": ("happy", 1)},
        "ben": {"03-01-04-01-01-01-01": ("sad", 3), "03a01Wa": ("fear", 4), "1001_DFA_ANG_XX": ("anger", 4),
                "1001_DFA_HAP_XX": ("cant_tell", 2)},
    }
    ana_ctx, ana = open_as(browser, server, "ana")
    ben_ctx, ben = open_as(browser, server, "ben", blind=True)
    try:
        assert "Model:" in text(ana, "coll-model") and "face:" in text(ana, "coll-model")
        assert "hidden" in text(ben, "coll-model") and "Model:" not in text(ben, "coll-model")
        seen = {"ana": [], "ben": []}
        first = current_clip(ana)
        ana.keyboard.press("s")  # skip: another clip now, this one comes back last
        ana.wait_for_function("(cid) => !document.querySelector('#coll-clip').innerText.includes(cid)", arg=first)
        idle(ana)
        assert current_clip(ana) != first
        for page, who, n in ((ana, "ana", 2), (ben, "ben", 4), (ana, "ana", 2)):
            for _ in range(n):
                cid = current_clip(page)
                assert cid and cid not in seen[who], f"{who} was served {cid} again"
                try:
                    seen[who].append(label_by_keyboard(page, *answers[who][cid]))
                except Exception:
                    page.screenshot(path=str(store.parent / "failure.png"), full_page=True)
                    raise AssertionError(f"{who} {cid} {seen} " + str(page.evaluate("""() => [
                        [...document.querySelectorAll('#coll-emotion input')].map(i => i.value + i.checked),
                        [...document.querySelectorAll('#coll-stress input')].map(i => i.value + i.checked),
                        document.activeElement.outerHTML.slice(0, 200)]"""))) from None
        assert seen["ana"][-1] == first  # the skipped clip came back once the others were done
        for page, who in ((ana, "ana"), (ben, "ben")):
            assert sorted(seen[who]) == sorted(answers[who])
            page.wait_for_function("() => document.querySelector('#coll-clip').innerText.includes('Nothing left')")
            assert f"{who}: 4 labelled" in text(page, "coll-progress")
        ana.click("#coll-refresh")
        ana.wait_for_function("() => document.querySelector('#coll-stats').innerText.includes('8 labels')")
        stats = text(ana, "coll-stats")
        assert "Confusion between annotators" in stats
        assert "4 of 4 clips have 2 labels" in text(ana, "coll-progress")
        receipt = re.search(r"Receipt: ([0-9a-f]{32})", text(ben, "coll-status")).group(1)  # ben's last label
        ben.get_by_text("Erase a label").click()  # open the accordion
        ben.fill("#coll-erase-id textarea", receipt.upper())
        ben.click("#coll-erase")
        ben.wait_for_function("(r) => document.querySelector('#coll-erased').innerText.includes('Erased ' + r)",
                              arg=receipt)
        ben.wait_for_function("() => document.querySelector('#coll-stats').innerText.includes('7 labels')")
    finally:
        ana_ctx.close()
        ben_ctx.close()
    units = {c: [answers[w][c][0] for w in answers if answers[w][c][0] != "cant_tell"] for c in answers["ana"]}
    shown = float(re.search(r"emotion \(nominal\) (-?[0-9.]+)", stats).group(1))
    assert shown == pytest.approx(hand_alpha_nominal(units), abs=0.0005)
    records = AnnotationStore(store / "collections" / "talks").records()
    assert receipt not in {r.id for r in records}  # erased by receipt, from the page
    erased_clip = seen["ben"][-1]
    assert sorted((r.annotator, r.clip_id, r.answer, r.stress_rating, r.blind) for r in records) == sorted(
        (w, c, a, s, w == "ben") for w, table in answers.items() for c, (a, s) in table.items()
        if (w, c) != ("ben", erased_clip))
