"""The import direction of design.md, checked with ast: data flows one way.

labels, clip <- video, audio, text, asr <- fusion, model <- analyze <- cli, app; feedback <- app, cli;
training may import stresslab, never the reverse; app never imports training and uses the public API only.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# module -> the stresslab modules it may import
ALLOWED = {
    "labels": set(),
    "clip": set(),
    "video": set(),
    "audio": set(),
    "text": set(),
    "asr": set(),
    "fusion": set(),
    "model": {"audio", "fusion", "labels", "text", "video"},
    "analysis": {"asr", "audio", "clip", "fusion", "labels", "model", "video"},
    "feedback": {"labels", "hub_sync"},
    "hub_sync": {"feedback", "labels"},
    "cli": {"analysis", "clip", "fusion", "model", "cli_corrections", "__init__"},
    "cli_corrections": {"feedback", "hub_sync", "labels", "__init__"},
    "ui_plots": {"labels", "fusion"},
    "__init__": set(),  # lazy: names resolve through importlib (see _EXPORTS)
}


def imports(path: Path) -> set[str]:
    """Top-level names of every module imported by a file (relative imports resolved within stresslab)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level and node.module:
                found.add(f"stresslab.{node.module}")
            elif node.level:  # from . import x: a submodule if a file is named so, else a name from __init__
                for a in node.names:
                    is_module = (ROOT / "stresslab" / f"{a.name}.py").exists()
                    found.add(f"stresslab.{a.name if is_module else '__init__'}")
            else:
                found.add(node.module)
    return found


def test_library_modules_import_only_downstream():
    for path in sorted((ROOT / "stresslab").glob("*.py")):
        name = path.stem
        assert name in ALLOWED, f"stresslab/{path.name} is new: add it to ALLOWED with its place in the flow"
        used = {m.split(".")[1] for m in imports(path) if m.startswith("stresslab.")}
        assert used <= ALLOWED[name], f"stresslab/{name} imports {used - ALLOWED[name]}"
        assert not any(m.split(".")[0] in ("training", "app", "tests", "bench") for m in imports(path)), name


def test_training_and_app_directions():
    for path in (ROOT / "training").rglob("*.py"):
        assert not any(m.split(".")[0] in ("app", "tests") for m in imports(path)), path
    app = ROOT / "app.py"
    if app.exists():
        used = imports(app)
        assert not any(m.split(".")[0] == "training" for m in used)
        assert not any(m.split(".")[0] in ("torch", "transformers") for m in used), "app.py holds no model code"
