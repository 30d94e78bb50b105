"""The import direction of the layout, checked with ast: data flows one way.

files, labels, clip <- towers/* <- fusion, model <- inputs <- analysis <- cli, app; runtime (threads) <- cli;
corrections/* import no model code (a record writer stays light); training may import stresslab, never the reverse;
app.py and ui/ use only the package's public API (`stresslab` and the names in its __all__, plus
`stresslab.corrections` for the store) and never import training or torch.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "stresslab"

# module (dotted, relative to stresslab) -> the stresslab modules it may import
ALLOWED = {
    "__init__": set(),  # lazy: names resolve through importlib (see _EXPORTS)
    "files": set(),
    "labels": set(),
    "clip": {"files"},
    "media": {"clip"},
    "towers": set(),
    # torch-free preprocessing; the torch networks (towers.*_net) are re-exported lazily (module __getattr__)
    "towers.video": {"towers.video_net"},
    "towers.audio": {"towers.audio_net", "towers.audio_dsp"},
    "towers.audio_dsp": set(),  # numpy only: librosa's feature functions without librosa's import cost
    "towers.text": {"towers.text_net"},
    "towers.asr": set(),
    "towers.video_net": {"towers.video"},  # the torch networks, apart from the torch-free preprocessing
    "towers.audio_net": {"towers.audio"},
    "towers.text_net": {"towers.text"},
    "config": {"labels", "towers.audio", "towers.text", "towers.video"},
    "fusion": {"labels"},
    "evidence": set(),  # numpy only: the fused answer bounded by the modalities' own answers
    "model": {"config", "towers.audio_net", "towers.text_net", "towers.video_net", "fusion"},
    "runtime": {"config", "model", "runtime.base", "runtime.onnx_backend", "runtime.torch_backend"},
    "runtime.base": set(),
    "runtime.torch_backend": {"model", "runtime.base"},
    "runtime.onnx_backend": {"config", "labels", "runtime", "runtime.base"},
    "runtime.export": {"labels", "model"},
    "runtime.cli": {"model", "runtime.export"},
    "inputs": {"clip", "labels", "runtime.base", "towers.audio", "towers.video"},
    "analysis": {"clip", "evidence", "inputs", "labels", "runtime", "runtime.torch_backend", "towers.asr",
                 "towers.video"},
    "live": {"analysis", "clip", "inputs", "labels", "towers.audio", "towers.video"},  # live windows -> Analyzer
    "corrections": set(),
    "corrections.record": {"labels"},
    "corrections.store": {"clip", "files", "corrections.dataset", "corrections.record"},  # clip: probe() a kept clip
    "corrections.dataset": {"corrections.record", "corrections.store"},  # store: for type hints only
    "corrections.hub_sync": {"files", "corrections.dataset", "corrections.record", "corrections.store"},
    "cli_common": set(),  # what the command groups share: one-line usage errors, a group run on its own
    "corrections.cli": {"__init__", "cli_common", "corrections.record", "corrections.store", "corrections.hub_sync",
                        "files", "labels"},
    "collections": set(),  # annotation collections (issue #16): model code only inside prelabel's functions
    "collections.collection": {"files", "corrections.store"},
    "collections.annotations": {"corrections.store", "labels"},
    "collections.queue": {"collections.annotations"},
    "collections.agreement": {"collections.annotations", "labels"},
    "collections.prelabel": {"analysis", "files", "runtime", "collections.collection"},
    "collections.export": {"collections.agreement", "collections.annotations", "collections.collection",
                           "collections.prelabel"},
    "collections.workspace": {"collections.agreement", "collections.annotations", "collections.collection",
                              "collections.prelabel", "collections.queue"},
    "collections.cli": {"__init__", "cli_common", "files", "labels", "collections.agreement", "collections.annotations",
                        "collections.collection", "collections.export", "collections.prelabel",
                        "collections.queue"},
    "cli": {"__init__", "analysis", "clip", "collections.cli", "corrections.cli", "files", "labels", "runtime",
            "runtime.cli"},
}


def _resolve(path: Path, level: int, module: str | None) -> str:
    """`from ..x import y` in stresslab/a/b.py -> 'x' (dotted, relative to stresslab)."""
    package = list(path.relative_to(PKG).parent.parts)  # the folder a file (or an __init__.py) belongs to
    base = package[: len(package) - (level - 1)]
    return ".".join([*base, *(module.split(".") if module else [])])


def imports(path: Path) -> set[str]:
    """Every module a file imports; stresslab ones as 'stresslab.<dotted>' (relative imports resolved)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                target = _resolve(path, node.level, node.module)
                for a in node.names:  # `from . import x`: a submodule if one is named so
                    sub = f"{target}.{a.name}" if target else a.name
                    is_module = (PKG / sub.replace(".", "/")).with_suffix(".py").exists() or (
                        PKG / sub.replace(".", "/")).is_dir()
                    found.add("stresslab." + (sub if is_module else (target or "__init__")))
            else:
                found.add(node.module)
    return found


def _name(path: Path) -> str:
    rel = path.relative_to(PKG).with_suffix("")
    return ".".join(rel.parts[:-1]) if rel.name == "__init__" and rel.parts[:-1] else ".".join(rel.parts)


def test_library_modules_import_only_downstream():
    for path in sorted(PKG.rglob("*.py")):
        name = _name(path)
        assert name in ALLOWED, f"{path.relative_to(ROOT)} is new: add it to ALLOWED with its place in the flow"
        used = {m.removeprefix("stresslab.") for m in imports(path) if m.startswith("stresslab.")}
        assert used <= ALLOWED[name], f"stresslab/{name} imports {used - ALLOWED[name]}"
        assert not any(m.split(".")[0] in ("training", "app", "ui", "tests", "bench") for m in imports(path)), name


def test_corrections_import_no_model_code():
    for path in (PKG / "corrections").rglob("*.py"):
        assert not any(m.split(".")[0] in ("torch", "transformers") for m in imports(path)), path


def test_training_never_imported_by_library_app_or_bench_tests():
    for path in (ROOT / "training").rglob("*.py"):
        assert not any(m.split(".")[0] in ("app", "ui", "tests") for m in imports(path)), path
    for path in (ROOT / "bench").rglob("*.py"):
        assert not any(m.split(".")[0] in ("app", "tests", "conftest", "_server", "media") for m in imports(path)), path
        assert "sys.path" not in path.read_text(), f"{path} reaches into another folder through sys.path"


def test_app_uses_only_the_public_api():
    import stresslab

    public = set(stresslab.__all__)
    for path in [ROOT / "app.py", *sorted((ROOT / "ui").rglob("*.py"))]:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    root = a.name.split(".")[0]
                    assert root not in ("training", "torch", "transformers"), f"{path.name} imports {a.name}"
                    if root == "stresslab":
                        assert a.name == "stresslab", f"{path.name}: import {a.name} reaches past the public API"
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                root = node.module.split(".")[0]
                assert root not in ("training", "torch", "transformers"), f"{path.name} imports {node.module}"
                if node.module == "stresslab":
                    names = {a.name for a in node.names}
                    assert names <= public, f"{path.name} imports non-public {names - public} from stresslab"
                elif root == "stresslab":
                    raise AssertionError(f"{path.name}: from {node.module} import ... reaches past the public API")
        # attribute access stresslab.X must name a public X
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "stresslab":
                assert node.attr in public | {"__version__"}, f"{path.name} uses stresslab.{node.attr}"


def test_analysis_cli_and_onnx_runtime_import_without_torch():
    """What the lean install (stresslab[onnx]) runs imports no torch, transformers or model.py."""
    from conftest import run_python

    code = ("import sys; sys.modules['torch'] = None; sys.modules['transformers'] = None\n"
            "import stresslab.analysis, stresslab.cli, stresslab.runtime.onnx_backend, stresslab.live\n"
            "import stresslab.config, stresslab.towers.video, stresslab.towers.audio, stresslab.towers.text\n"
            "import stresslab.corrections.store, stresslab.collections.cli\n"
            "assert 'stresslab.model' not in sys.modules\n")
    run_python(code, cwd=ROOT, timeout=300)
