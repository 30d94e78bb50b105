"""Start app.py in a subprocess on a free loopback port, with a given model and a private correction store.
Shared by the benchmarks and the tests (tests import it from here; bench never imports tests)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """`python app.py` on 127.0.0.1:<free port>; offline (no Hub sync, no Whisper, no analytics)."""

    def __init__(self, model_dir: Path, store: Path, timeout: float = 240):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.store = store
        self.uploads = store.parent / "uploads"  # the app's upload folder (GRADIO_TEMP_DIR)
        self.log_path = store.parent / f"app-{self.port}.log"
        env = {**os.environ, "STRESSLAB_MODEL": str(model_dir), "STRESSLAB_FEEDBACK_DIR": str(store),
               "GRADIO_SERVER_PORT": str(self.port), "GRADIO_TEMP_DIR": str(self.uploads),
               "GRADIO_SERVER_NAME": "127.0.0.1", "STRESSLAB_THREADS": "1",
               "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
        for name in ("HF_TOKEN", "STRESSLAB_FEEDBACK_REPO", "STRESSLAB_FEEDBACK_PUBLIC_REPO", "STRESSLAB_WHISPER"):
            env.pop(name, None)
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"app.py exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            if self.alive(timeout=2):
                return
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"app.py did not answer within {timeout:.0f} s:\n{self.log()[-3000:]}")

    def alive(self, timeout: float = 10) -> bool:
        """Whether the page is served."""
        try:
            with urllib.request.urlopen(self.url, timeout=timeout) as r:
                return r.status == 200
        except OSError:
            return False

    def log(self) -> str:
        """What the app printed so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """Terminate the app with SIGTERM (kill it after 20 s)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
