"""The app: its handlers in-process (an App over a tiny model, no server), and its named API endpoints through
gradio_client against `python app.py` on a free loopback port: real CREMA-D clips, text only, bad files (a clear
error while the server keeps answering), and privacy (no server path or upload name in any answer or record; the
upload folder swept at start, after each API call and on SIGTERM)."""

from __future__ import annotations

import errno
import json
import re
import shutil
from pathlib import Path

import gradio as gr
import pytest
from _server import ROOT, AppServer
from gradio_client import Client, handle_file

import stresslab

EXAMPLES = ROOT / "data" / "examples"
CLIP = EXAMPLES / "1001_DFA_ANG_XX.flv"
ACCEPTED = "give a video"  # every refusal of a file says what is accepted


# --- in-process: the handlers -------------------------------------------------------------------------------------
class Request:  # what Gradio passes as gr.Request: only the session id is used
    def __init__(self, session_hash: str):
        self.session_hash = session_hash


@pytest.fixture(scope="module")
def page(tiny_model, tmp_path_factory):
    import app
    from ui.retention import SessionFiles

    uploads = tmp_path_factory.mktemp("uploads")
    a = app.App(stresslab.Analyzer(tiny_model), stresslab.FeedbackStore.open(tmp_path_factory.mktemp("store")),
                files=SessionFiles(uploads))
    a.build()
    a.uploads = uploads
    return a


def upload(page, name: str, source: Path = CLIP) -> str:
    """A file as Gradio stores an upload: <upload folder>/<hash>/<name>."""
    folder = page.uploads / "0123abcd"
    folder.mkdir(exist_ok=True)
    return str(shutil.copy(source, folder / name))


def text(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


def analyse(page, sid: str, video=None, text=None, version=None) -> dict:
    version = page.loaded.get(sid).version if version is None else version
    return page.analyse(video, None, None, text, version, None, Request(sid))


def test_build_loads_nothing_at_import_and_answers_in_process(page):
    import app

    assert not hasattr(app, "MODEL") and not hasattr(app, "demo")  # importing app.py loads no model
    out = analyse(page, "s0", text="I can't stop shaking, something terrible is coming")
    c = page.c
    assert out[c.raw]["used"] == ["text"] and "Answer:" in out[c.status]
    assert out[c.timeline]["visible"] is False and out[c.gallery]["visible"] is False  # nothing to show: hidden
    assert out[c.emotion] is None  # the correction form starts empty, not on the model's answer


def test_no_server_path_or_upload_name_in_results_records_or_messages(page):
    sid = "s1"
    path = upload(page, "private_interview_john_doe.flv")
    page.media_changed("video", path, Request(sid))
    out = analyse(page, sid, video=path)
    c = page.c
    session = out[c.session]
    text = json.dumps(out[c.raw]) + out[c.status]
    assert "john_doe" not in text and str(page.uploads) not in text and str(ROOT) not in text
    saved = page.save(session, "fear", 4, "", False, False, [])
    record = page.store.get(saved[c.receipt]["value"])
    stored = json.dumps(record.model_output) + record.note
    assert "john_doe" not in stored and "/" not in json.dumps(record.model_output["clip"])
    kept = page.save(saved[c.session], "fear", 4, "", True, False, saved[c.receipts])
    record = page.store.get(kept[c.receipt]["value"])
    assert record.media and record.media.startswith("clip") and "john_doe" not in record.to_json_line()
    bad = upload(page, "secret_name.mp4", EXAMPLES / "README.md")
    page.media_changed("video", bad, Request(sid))
    out = analyse(page, sid, video=bad)
    assert "Could not analyse" in out[c.status] and "secret_name" not in out[c.status]
    assert str(page.uploads) not in out[c.status]


def test_double_save_updates_one_record_and_erase_tells_the_truth(page):
    c, sid = page.c, "s2"
    out = analyse(page, sid, video=str(CLIP))
    first = page.save(out[c.session], "sad", None, "", True, False, [])
    rid = first[c.receipt]["value"]
    assert page.store.get(rid).media  # kept
    second = page.save(first[c.session], "fear", 2, "second thoughts", False, True, first[c.receipts])
    assert second[c.receipt]["value"] == rid and second[c.receipts] == [rid] and "Updated" in second[c.save_status]
    record = page.store.get(rid)
    assert (record.emotion, record.stress_rating, record.media, record.consent_share) == ("fear", 2, None, True)
    assert sum(r.id == rid for r in page.store.records()) == 1 and not (page.store.root / "media" / rid).exists()
    erased = page.erase(f"  `{rid.upper()}` ", second[c.receipts])  # any letter case, pasted with backticks
    assert "no clip had been kept" in erased[c.erase_status] and erased[c.receipts] == []
    assert "No correction" in page.erase(rid, [])[c.erase_status]
    anew = page.save(second[c.session], "fear", None, "", False, False, [])  # saved again after erasing: new
    assert anew[c.receipt]["value"] != rid and page.store.get(anew[c.receipt]["value"]).emotion == "fear"
    page.erase(anew[c.receipt]["value"], [])
    typed = page.erase("<img src=https://example.com/x.png>", [])[c.erase_status]
    assert "<img" not in typed and "not a receipt" in typed
    again = analyse(page, sid, video=str(CLIP))  # a new analysis: a new record, the receipt list survives
    third = page.save(again[c.session], "anger", None, "", True, False, [rid])
    assert third[c.receipt]["value"] != rid and len(third[c.receipts]) == 2
    assert "and the clip kept with it" in page.erase(third[c.receipt]["value"], [])[c.erase_status]


def test_a_failed_save_is_one_line_without_path_or_errno(page, monkeypatch, caplog):
    c = page.c
    out = analyse(page, "s3", text="fine, thanks")

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(page.uploads / "x" / "clip.tmp"))

    monkeypatch.setattr(page.store, "add", full)
    message = text(page.save(out[c.session], "happy", None, "", False, False, [])[c.save_status])
    assert "disk is full" in message and "Errno" not in message and "/" not in message and "\n" not in message
    assert "correction not saved" in caplog.text and str(page.uploads) not in caplog.text


def test_typed_words_are_text_not_html(page):
    c = page.c
    words = "<img src='https://example.com/pixel.png'><form action='https://example.com'><input></form> hi"
    out = analyse(page, "s4", text=words)
    assert out[c.words]["value"] == words  # a Textbox: shown as typed, never rendered
    assert "<img" not in out[c.headline] + out[c.table] + out[c.status] + out[c.explanation]


def test_not_sure_shows_the_two_leading_emotions_on_the_page(page, monkeypatch):
    config = page.analyzer.config
    words = "I don't know what to feel about any of this"
    monkeypatch.setattr(config, "not_sure_below", 1.0)  # every answer is under the threshold
    out = analyse(page, "s-unsure", text=words)
    shown = text(out[page.c.headline])
    assert re.search(r"not sure: \w+ \d+% or \w+ \d+%", shown), shown
    monkeypatch.setattr(config, "not_sure_below", 0.0)
    assert "not sure" not in text(analyse(page, "s-unsure", text=words)[page.c.headline])


def test_timed_words_are_shown_by_time_as_text(page, monkeypatch):
    from stresslab.towers.asr import Transcript

    said = [(0.0, 1.2, "<b>Don't</b> forget"), (1.2, 2.4, "a jacket <img src=x>")]

    class Whisper:
        available = True

        def transcribe(self, audio, language=None):
            return Transcript(" ".join(t for *_, t in said), "en", said)

    monkeypatch.setattr(stresslab.analysis, "get_transcriber", lambda name=None: Whisper())
    out = analyse(page, "s8", video=str(CLIP))
    c = page.c
    assert out[c.raw]["transcript"]["source"] == "whisper"
    assert out[c.words]["value"] == "0.0-1.2 s: <b>Don't</b> forget\n1.2-2.4 s: a jacket <img src=x>"  # a Textbox
    assert out[c.words]["label"] == "the words used (whisper), by time" and out[c.words]["visible"] is True
    assert "<img" not in out[c.headline] + out[c.table] + out[c.status] + out[c.explanation]


def test_an_example_clicked_before_the_page_caught_up_is_never_analysed_as_the_old_one(page):
    c, sid = page.c, "s5"
    sad, anger = EXAMPLES / "1001_DFA_SAD_XX.flv", EXAMPLES / "1001_DFA_ANG_XX.flv"
    shown = page.pick_example(sad, 1000.0, Request(sid))
    now = page.pick_example(anger, 1001.0, Request(sid))  # the page has not received this one yet: it sends sad
    assert page.pick_example(sad, 1000.5, Request(sid)) == {c.loaded: gr.skip()}  # an older click arriving late
    out = page.analyse(shown[c.media["video"]], None, None, "", shown[c.loaded], None, Request(sid))
    assert "still loading" in out[c.status] and c.headline not in out  # refused: the player is about to change
    copy = str(page.uploads / "1001_DFA_ANG_XX.mp4")  # the player's mp4 copy of the example, once it shows
    assert page.media_changed("video", copy, Request(sid)) == {c.loaded: now[c.loaded]}  # no new version
    out = page.analyse(copy, None, None, "", now[c.loaded], None, Request(sid))
    assert "anger · actor 1001" in out[c.status] and "asked to show <strong>anger" in out[c.headline]


def test_session_end_deletes_uploads_and_face_images(page):
    c, sid = page.c, "s6"
    path = upload(page, "to_forget.flv")
    page.media_changed("video", path, Request(sid))
    out = analyse(page, sid, video=path)
    faces = [Path(f) for f, _ in out[c.gallery]["value"]]
    assert faces and all(f.is_file() and f.is_relative_to(page.uploads) for f in faces)
    page.end_session(Request(sid))
    assert not Path(path).exists() and not any(f.exists() for f in faces)
    assert all(e.is_file() for e in EXAMPLES.glob("*.flv"))  # the bundled examples are never deleted


def test_teaching_views_are_computed(page):
    from ui import teaching

    found, n = teaching.mistakes(page._example_result, page.examples)
    assert n == 12 and all(m.said != m.known and m.why for m in found)
    table, confusion = teaching.measured(ROOT / "models" / "default")
    assert "accuracy" in table and confusion is not None
    r = analyse(page, "s7", video=str(CLIP), text="hello")[page.c.raw]
    texts = [a.text for a in teaching.fusion_diagram(r).layout.annotations]
    assert any(f"{r['modalities']['audio']['weight']:.0%}" == t for t in texts)


def test_timeline_plots_every_window_over_the_whole_clip_in_percent():
    from ui import plots

    names = ["anger", "disgust", "fear", "happy", "neutral", "sad"]
    bounds = [(i * 6.7, (i + 1) * 6.7) for i in range(10)]  # a 67 s clip: ten windows, end to end
    r = {"probabilities": dict.fromkeys(names, 1 / 6), "timeline": [
        {"start": s, "end": e, "probabilities": dict.fromkeys(names, 1 / 6), "stress": 0.4} for s, e in bounds]}
    fig = plots.timeline(r)
    assert fig.layout.xaxis.range == (0, 67.0) and fig.layout.yaxis.tickformat == ".0%"
    assert len(fig.data[0].x) == 10 and "10 windows of about 6.7 s" in fig.layout.title.text
    assert [(sh.x0, sh.x1) for sh in fig.layout.shapes] == bounds  # each window's extent is drawn


# --- the API, over HTTP -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tiny_model_dir, tmp_path_factory):
    store = tmp_path_factory.mktemp("app") / "store"
    leftover = store.parent / "uploads" / "leftover"  # what a crashed run left in the upload folder
    leftover.mkdir(parents=True)
    (leftover / "old_upload.mp4").write_bytes(b"x")
    s = AppServer(tiny_model_dir, store)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def client(server) -> Client:
    return Client(server.url, verbose=False)


def test_video_clip_gives_the_cli_schema_without_paths(client, server, tmp_path):
    private = tmp_path / "private_interview_john_doe.flv"
    shutil.copy(CLIP, private)
    r = client.predict(handle_file(str(private)), "", api_name="/analyze")
    assert r["schema_version"] >= 2 and r["clip"]["kind"] == "video" and r["model"]["name"] == "tiny-test"
    assert {"emotion", "confidence", "probabilities", "stress", "modalities", "ablations", "timeline", "transcript",
            "faces", "clip", "model", "timings", "used"} <= set(r)
    assert r["modalities"]["video"]["present"] and r["modalities"]["audio"]["present"]
    assert r["modalities"]["text"]["reason"]  # no words typed and no Whisper: says why
    assert abs(sum(r["probabilities"].values()) - 1) < 1e-3
    assert len(r["faces"]) >= 8 and set(r["ablations"]) == {"video", "audio"}
    text = json.dumps(r)
    assert "john_doe" not in text and str(server.uploads) not in text and "/tmp" not in text
    assert not list(server.uploads.rglob("*john_doe*"))  # the API call's upload is gone once answered
    assert "john_doe" not in server.log()


def test_audio_only_and_text_only(client):
    r = client.predict(handle_file(str(EXAMPLES / "1002_DFA_SAD_XX.mp3")), "Don't forget a jacket",
                       api_name="/analyze")
    assert r["clip"]["kind"] == "audio" and r["modalities"]["video"]["reason"] == "no video in this input"
    assert r["modalities"]["audio"]["present"] and r["transcript"]["text"] == "Don't forget a jacket"
    r = client.predict(None, "I can't stop shaking, something terrible is coming", api_name="/analyze")
    assert r["clip"]["kind"] == "text" and r["modalities"]["text"]["weight"] == pytest.approx(1)
    r2 = client.predict("I can't stop shaking, something terrible is coming", api_name="/analyze_text")
    assert r2["probabilities"] == r["probabilities"]


@pytest.mark.parametrize("name,content,expected", [
    ("empty.mp4", b"", "the file is empty"),
    ("garbage.mp4", b"\x00\x01not a video at all" * 64, "corrupt or unsupported file"),
    ("notes.txt", b"hello, this is text", "unsupported file type .txt"),
])
def test_bad_files_give_a_clear_error_and_the_server_keeps_serving(client, server, tmp_path, name, content,
                                                                   expected):
    bad = tmp_path / f"secret_{name}"
    bad.write_bytes(content)
    with pytest.raises(Exception, match=expected) as caught:
        client.predict(handle_file(str(bad)), "", api_name="/analyze")
    message = str(caught.value)
    assert ACCEPTED in message or "empty" in message
    assert "Traceback" not in message and 'File "' not in message and "secret_" not in message
    assert server.alive()
    assert client.predict(None, "still here?", api_name="/analyze")["emotion"]


def test_nothing_given(client):
    with pytest.raises(Exception, match="nothing to analyse"):
        client.predict(None, "", api_name="/analyze")
    with pytest.raises(Exception, match="nothing to analyse"):
        client.predict("   ", api_name="/analyze_text")


def test_upload_folder_swept_at_start_and_emptied_on_sigterm(server):  # last: it stops the server
    assert server.uploads.is_dir() and not (server.uploads / "leftover").exists()
    (server.uploads / "abc").mkdir(exist_ok=True)
    (server.uploads / "abc" / "someones_face.png").write_bytes(b"x")
    server.stop()  # SIGTERM
    assert server.proc.returncode is not None and not any(server.uploads.iterdir())
