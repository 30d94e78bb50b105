"""Start app.py on a free loopback port in a subprocess, with a tiny model and a private correction store."""

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
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    def __init__(self, model_dir: Path, store: Path, timeout: float = 180):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        env = {**os.environ, "STRESSLAB_MODEL": str(model_dir), "STRESSLAB_FEEDBACK_DIR": str(store),
               "GRADIO_SERVER_PORT": str(self.port), "GRADIO_SERVER_NAME": "127.0.0.1", "STRESSLAB_THREADS": "1",
               "GRADIO_ANALYTICS_ENABLED": "False"}
        env.pop("HF_TOKEN", None)
        env.pop("STRESSLAB_WHISPER", None)
        self.log = open(store.parent / f"app-{self.port}.log", "w")
        self.proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app.py exited: {(store.parent / f'app-{self.port}.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(self.url, timeout=2)
                return
            except OSError:
                time.sleep(0.5)
        raise TimeoutError("app.py did not start")

    def alive(self) -> bool:
        try:
            return urllib.request.urlopen(self.url, timeout=5).status == 200
        except OSError:
            return False

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
