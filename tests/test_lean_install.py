"""The lean install really has no torch and still analyses a real clip: a fresh virtual environment with
`pip install ".[onnx]"` (the core + onnxruntime), then `stresslab analyze` on an exported tiny model.
Slow (a pip install from the package index, cached after the first run); CI runs it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CREMAD

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.mark.skipif(not CREMAD.is_dir(), reason="needs ../shared/data (a real CREMA-D clip)")
def test_lean_install_has_no_torch_and_analyses_a_clip(tiny_model, tmp_path):
    pytest.importorskip("onnxruntime")
    from stresslab.runtime.export import export

    model = export(tiny_model, tmp_path / "exported", int8=True)
    venv = tmp_path / "lean"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    p = subprocess.run([*pip, f"{ROOT}[onnx]"], capture_output=True, text=True, timeout=1200)
    if p.returncode != 0 and "No matching distribution" in p.stderr + p.stdout:
        pytest.skip("the package index is not reachable from here")
    assert p.returncode == 0, p.stderr[-3000:]
    py = str(venv / "bin" / "python")
    no_torch = subprocess.run([py, "-c", "import torch"], capture_output=True, text=True)
    assert no_torch.returncode != 0 and "No module named 'torch'" in no_torch.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRESSLAB_")}
    p = subprocess.run([str(venv / "bin" / "stresslab"), "analyze", str(CREMAD / "1001_DFA_ANG_XX.flv"),
                        "--text", "Don't forget a jacket", "--json", "--model", str(model)],
                       capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    d = json.loads(p.stdout)
    assert d["model"]["runtime"] == "onnx" and d["model"]["precision"] == "int8"
    assert d["used"] == ["video", "audio", "text"] and len(d["faces"]) >= 8
