"""app.py's named API endpoints through gradio_client, against `python app.py` on a free loopback port with a tiny
model: real CREMA-D clips (video with sound, voice only), text only, and bad files, each of which must give a clear
error while the server keeps answering."""

from __future__ import annotations

import pytest
from _server import ROOT, AppServer
from gradio_client import Client, handle_file

EXAMPLES = ROOT / "data" / "examples"
ACCEPTED = "give a video"  # every refusal of a file says what is accepted


@pytest.fixture(scope="module")
def server(tiny_model_dir, tmp_path_factory):
    s = AppServer(tiny_model_dir, tmp_path_factory.mktemp("app") / "store")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def client(server) -> Client:
    return Client(server.url, verbose=False)


def test_video_clip_gives_the_cli_schema(client):
    r = client.predict(handle_file(str(EXAMPLES / "1001_DFA_ANG_XX.flv")), "", api_name="/analyze")
    assert r["schema_version"] == 1 and r["clip"]["kind"] == "video" and r["model"]["name"] == "tiny-test"
    assert {"emotion", "confidence", "probabilities", "stress", "modalities", "ablations", "timeline", "transcript",
            "faces", "clip", "model", "timings"} <= set(r)
    assert r["modalities"]["video"]["present"] and r["modalities"]["audio"]["present"]
    assert r["modalities"]["text"]["reason"]  # no words typed and no Whisper: says why
    assert abs(sum(r["probabilities"].values()) - 1) < 1e-3 and r["emotion"] == max(r["probabilities"],
                                                                                      key=r["probabilities"].get)
    assert len(r["faces"]) >= 8 and set(r["ablations"]) == {"video", "audio"}
    assert r["timings"]["decode"] > 0 and r["timings"]["total"] >= r["timings"]["decode"]


def test_audio_only_and_text_only(client):
    r = client.predict(handle_file(str(EXAMPLES / "1002_DFA_SAD_XX.mp3")), "Don't forget a jacket",
                       api_name="/analyze")
    assert r["clip"]["kind"] == "audio" and r["modalities"]["video"]["reason"] == "no video in this input"
    assert r["modalities"]["audio"]["present"] and r["transcript"] == {"text": "Don't forget a jacket",
                                                                       "source": "typed"}
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
    bad = tmp_path / name
    bad.write_bytes(content)
    with pytest.raises(Exception, match=expected) as caught:
        client.predict(handle_file(str(bad)), "", api_name="/analyze")
    message = str(caught.value)
    assert ACCEPTED in message or "empty" in message
    assert "Traceback" not in message and 'File "' not in message
    assert server.alive()
    assert client.predict(None, "still here?", api_name="/analyze")["emotion"]


def test_nothing_given(client):
    with pytest.raises(Exception, match="nothing to analyse"):
        client.predict(None, "", api_name="/analyze")
    with pytest.raises(Exception, match="nothing to analyse"):
        client.predict("   ", api_name="/analyze_text")
