"""Speech-to-text on a Space: Whisper fetched on first use from whisper's own URL table (served here by a local HTTP
server on 127.0.0.1 with a tiny, randomly initialised Whisper saved in the real checkpoint layout), and an offline
start that says within a second that the words must be typed."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from conftest import CREMAD, run_python

whisper = pytest.importorskip("whisper")

from stresslab.analysis import Analyzer, get_transcriber  # noqa: E402
from stresslab.clip import load_clip  # noqa: E402
from stresslab.towers import asr  # noqa: E402

MP3 = CREMAD / "1002_DFA_HAP_XX.mp3"


def tiny_checkpoint(folder: Path) -> tuple[bytes, str]:
    """A 1-layer, 16-wide Whisper in whisper's checkpoint layout: (file bytes, their sha256)."""
    dims = whisper.model.ModelDimensions(n_mels=80, n_audio_ctx=1500, n_audio_state=16, n_audio_head=2,
                                         n_audio_layer=1, n_vocab=51865, n_text_ctx=448, n_text_state=16,
                                         n_text_head=2, n_text_layer=1)
    torch.manual_seed(0)
    path = folder / "tiny-whisper.pt"
    torch.save({"dims": dims.__dict__, "model_state_dict": whisper.model.Whisper(dims).state_dict()}, path)
    data = path.read_bytes()
    return data, hashlib.sha256(data).hexdigest()


class Server:
    """Serves {path: bytes} on 127.0.0.1 and counts the GET requests; hang="all" accepts and never answers,
    hang="get" answers HEAD but never sends the file."""

    def __init__(self, files: dict[str, bytes], hang: str | None = None):
        self.files, self.hang, self.requests = files, hang, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_HEAD(self):  # noqa: N802 (the stdlib's names)
                if server.hang == "all":
                    time.sleep(5)
                    return
                self.send_response(200 if server.hang or self.path in server.files else 404)
                self.send_header("Content-Length", str(len(server.files.get(self.path, b""))))
                self.end_headers()

            def do_GET(self):  # noqa: N802
                server.requests.append(self.path)
                if server.hang:
                    time.sleep(5)
                    return
                body = server.files.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def online(tmp_path, monkeypatch):
    """whisper's URL table points "tiny" at the local server; an empty whisper cache; nothing says offline."""
    data, sha = tiny_checkpoint(tmp_path)
    server = Server({f"/{sha}/tiny.pt": data, f"/{'0' * 64}/tiny.pt": data})
    monkeypatch.setitem(whisper._MODELS, "tiny", f"{server.base}/{sha}/tiny.pt")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in ("STRESSLAB_WHISPER", "HF_HUB_OFFLINE", "STRESSLAB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    get_transcriber.cache_clear()
    yield server, sha, tmp_path / "cache" / "whisper" / "tiny.pt"
    get_transcriber.cache_clear()
    server.close()


def test_online_fetches_tiny_on_first_use_into_the_cache(online, tiny_model):
    server, sha, cached = online
    t = time.perf_counter()
    transcriber = asr.Transcriber()  # the default size, "tiny"
    assert time.perf_counter() - t < 1.5 and transcriber.can_load and not cached.exists()  # fetched on first use
    assert transcriber.available
    assert cached.is_file() and hashlib.sha256(cached.read_bytes()).hexdigest() == sha
    assert server.requests == [f"/{sha}/tiny.pt"]
    said = transcriber.transcribe(load_clip(MP3).audio, language="en")
    assert isinstance(said.text, str) and said.language == "en"  # random weights: the words are arbitrary
    again = asr.Transcriber("tiny")
    assert again.path == cached and again.available and len(server.requests) == 1  # the cache, not the network
    # the analysis uses it without anything typed; typed words still override the transcript
    analyzer = Analyzer(tiny_model)
    r = analyzer.analyze(str(MP3))
    assert "asr" in r.timings
    assert r.to_dict()["transcript"]["source"] in ("whisper", None)
    typed = analyzer.analyze(str(MP3), text="I am fine").to_dict()
    assert typed["transcript"] == {"text": "I am fine", "source": "typed", "segments": []}


def test_a_corrupted_download_is_refused(online, monkeypatch):
    server, sha, cached = online
    monkeypatch.setitem(whisper._MODELS, "tiny", f"{server.base}/{'0' * 64}/tiny.pt")  # the sha does not match
    transcriber = asr.Transcriber()
    assert not transcriber.available and "type what was said" in transcriber.unavailable_reason
    assert not cached.exists() and not list(cached.parent.glob("*.part"))


def test_a_local_weights_file_still_works(online, monkeypatch):
    server, sha, cached = online
    data = server.files[f"/{sha}/tiny.pt"]
    local = cached.parent.parent.parent / "mine.pt"
    local.write_bytes(data)
    monkeypatch.setenv("STRESSLAB_WHISPER", str(local))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    transcriber = asr.Transcriber()
    assert transcriber.available and transcriber.path == local and not server.requests


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("how", ["HF_HUB_OFFLINE", "no answer", "refused", "not there"])
def test_offline_says_type_the_words_within_a_second(how, tmp_path, monkeypatch, tiny_model):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    for name in ("STRESSLAB_WHISPER", "HF_HUB_OFFLINE", "STRESSLAB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    if how == "HF_HUB_OFFLINE":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    silent, empty = Server({}, hang="all"), Server({})
    url = {"HF_HUB_OFFLINE": "https://openaipublic.azureedge.net/main/whisper/models/{}/tiny.pt",
           "no answer": silent.base + "/{}/tiny.pt",  # connects, never answers
           "refused": f"http://127.0.0.1:{_unused_port()}/{{}}/tiny.pt",
           "not there": empty.base + "/{}/tiny.pt"}[how].format("a" * 64)
    monkeypatch.setitem(whisper._MODELS, "tiny", url)
    get_transcriber.cache_clear()
    try:
        t = time.perf_counter()
        r = Analyzer(tiny_model).analyze(str(MP3)).to_dict()
        transcriber = get_transcriber()
        reason = r["modalities"]["text"]["reason"]
        assert "type what was said to include the words" in reason and "STRESSLAB" not in reason
        assert not transcriber.can_load and not transcriber.available
        assert time.perf_counter() - t < 1.0 + 3.0  # the decision takes at most ~1 s; the analysis itself the rest
        t = time.perf_counter()
        asr.Transcriber()
        assert time.perf_counter() - t < 1.2
    finally:
        get_transcriber.cache_clear()
        silent.close()
        empty.close()


def test_a_server_that_never_answers_times_out(tmp_path, monkeypatch):
    server = Server({}, hang="get")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    for name in ("STRESSLAB_WHISPER", "HF_HUB_OFFLINE", "STRESSLAB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setitem(whisper._MODELS, "tiny", f"{server.base}/{'a' * 64}/tiny.pt")
    try:
        t = time.perf_counter()
        transcriber = asr.Transcriber(read_timeout=1.0)
        assert transcriber.can_load  # the host answers connections...
        assert not transcriber.available  # ...but never sends the file: the read times out
        assert time.perf_counter() - t < 4.0 and "type what was said" in transcriber.unavailable_reason
    finally:
        server.close()


def test_the_cli_says_type_the_words_offline(tmp_path):
    import subprocess

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "XDG_CACHE_HOME": str(tmp_path)}
    env.pop("STRESSLAB_WHISPER", None)
    out = subprocess.run([sys.executable, "-m", "stresslab.cli", "analyze", str(MP3)], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "type what was said to include the words" in out.stdout


def test_no_whisper_to_be_had_costs_no_torch_import(tmp_path):
    """An ONNX process where no Whisper can be had (offline, nothing cached) learns so without importing whisper,
    which imports torch (seconds and hundreds of MB at the app's start, #15); the URL table is whisper's own."""

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "XDG_CACHE_HOME": str(tmp_path)}
    env.pop("STRESSLAB_WHISPER", None)
    code = ("import json, sys\n"
            "from stresslab.towers import asr\n"
            "t = asr.Transcriber()\n"
            "print(json.dumps([t.can_load, t.unavailable_reason, 'whisper' in sys.modules, 'torch' in sys.modules,\n"
            "                  asr._models()]))\n")
    can_load, reason, whisper_imported, torch_imported, table = json.loads(run_python(code, env, timeout=120))
    assert not can_load and asr.TYPE_THE_WORDS in reason
    assert not whisper_imported and not torch_imported
    assert table == whisper._MODELS and "tiny" in table
