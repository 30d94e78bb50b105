"""Every benchmark, one after another, each writing bench/results/*.json and its README table.

    .venv/bin/python -m bench.run        (make bench)
"""

from __future__ import annotations

import subprocess
import sys

from bench.common import ROOT

for module in ("bench.latency", "bench.asr", "bench.app_start", "bench.runtime", "bench.live", "bench.throughput",
               "bench.accuracy"):
    print(f"== {module}", flush=True)
    subprocess.run([sys.executable, "-m", module], cwd=ROOT, check=True)
