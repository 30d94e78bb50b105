"""App cold start to first answer, and peak resident memory of the app process.

    .venv/bin/python -m bench.app_start [--runs 3]
Starts app.py as a fresh process on a free loopback port, times until the page answers and until the first
/analyze call returns (an example clip), samples the process tree's RSS every 50 ms throughout, then stops it.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import psutil

from bench.common import ROOT, machine, update_readme, write_json


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_run() -> dict:
    from gradio_client import Client, handle_file

    port = _port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "STRESSLAB_FEEDBACK_DIR": tempfile.mkdtemp(), "STRESSLAB_THREADS": "2", "GRADIO_ANALYTICS_ENABLED": "False"}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    peak, stop = [0], threading.Event()

    def sample():
        p = psutil.Process(proc.pid)
        while not stop.is_set():
            try:
                rss = p.memory_info().rss + sum(c.memory_info().rss for c in p.children(recursive=True))
                peak[0] = max(peak[0], rss)
            except psutil.Error:
                pass
            time.sleep(0.05)

    threading.Thread(target=sample, daemon=True).start()
    url = f"http://127.0.0.1:{port}/"
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)
            break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("app.py exited") from None
            time.sleep(0.1)
    ready = time.perf_counter() - t0
    client = Client(url, verbose=False)
    t1 = time.perf_counter()
    client.predict(handle_file(str(ROOT / "data" / "examples" / "1001_DFA_ANG_XX.flv")), "", api_name="/analyze")
    first = time.perf_counter() - t1
    answered = time.perf_counter() - t0
    time.sleep(0.3)
    stop.set()
    proc.terminate()
    proc.wait(timeout=30)
    return {"ready_s": ready, "first_call_s": first, "start_to_first_answer_s": answered,
            "peak_rss_mb": peak[0] / 2**20}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    runs = [one_run() for _ in range(args.runs)]
    med = {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]}
    write_json("app_start", {"machine": machine(), "runs": runs, "median": med})
    table = (f"| app (bundled default) | median of {args.runs} cold starts |\n| --- | --- |\n"
             + f"| process start to page served | {med['ready_s']:.1f} s |\n"
             + f"| first /analyze call (2.2 s example clip) | {med['first_call_s']:.2f} s |\n"
             + f"| process start to first answer | {med['start_to_first_answer_s']:.1f} s |\n"
             + f"| peak resident memory (process tree) | {med['peak_rss_mb']:.0f} MB |")
    update_readme("app", table)
    print(table)


if __name__ == "__main__":
    main()
