"""The app's /analyze API through gradio_client against app.py started on a local port (a tiny model)."""

import pytest
from _server import ROOT, AppServer
from gradio_client import Client, handle_file

EXAMPLES = ROOT / "data" / "examples"


@pytest.fixture(scope="module")
def server(tiny_model_dir, tmp_path_factory):
    s = AppServer(tiny_model_dir, tmp_path_factory.mktemp("app") / "store")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def client(server):
    return Client(server.url, verbose=False)


def test_examples_and_subsets(client):
    r = client.predict(handle_file(str(EXAMPLES / "1001_DFA_ANG_XX.flv")), "", api_name="/analyze")
    assert r["schema_version"] == 1 and r["modalities"]["video"]["present"] and r["modalities"]["audio"]["present"]
    assert abs(sum(r["probabilities"].values()) - 1) < 1e-3 and len(r["faces"]) >= 8
    r = client.predict(handle_file(str(EXAMPLES / "1002_DFA_SAD_XX.mp3")), "", api_name="/analyze")
    assert r["clip"]["kind"] == "audio" and not r["modalities"]["video"]["present"]
    r = client.predict(None, "I can't stop shaking, something terrible is coming", api_name="/analyze")
    assert r["modalities"]["text"]["weight"] == 1 and r["transcript"]["source"] == "typed"


@pytest.mark.parametrize("name,content,expected", [
    ("empty.wav", b"", "empty"),
    ("broken.mp4", b"\x00not a video" * 50, "corrupt"),
    ("notes.txt", b"hello", "unsupported file type"),
])
def test_bad_files_get_a_clear_error_and_the_server_keeps_serving(client, server, tmp_path, name, content, expected):
    bad = tmp_path / name
    bad.write_bytes(content)
    with pytest.raises(Exception, match=expected):
        client.predict(handle_file(str(bad)), "", api_name="/analyze")
    assert server.alive()
    r = client.predict(None, "still here", api_name="/analyze")
    assert r["emotion"]


def test_nothing_given(client):
    with pytest.raises(Exception, match="nothing to analyse"):
        client.predict(None, "", api_name="/analyze")
