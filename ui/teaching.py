"""Teaching views: the bundled examples' known labels, where the model goes wrong on them and which modality misled
it (computed by running the loaded model over data/examples at start-up), its measured figures (the model folder's
eval/*.json that training.evaluate wrote), and a diagram of the fusion with one clip's weights."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import plotly.graph_objects as go

from ui.page import esc
from ui.plots import MODALITY_COLOURS, MODALITY_NAMES, layout

# CREMA-D file names: ACTOR_SENTENCE_EMOTION_LEVEL (data/examples/README.md)
CREMAD_CODES = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}


def known_label(path: str | Path | None) -> str | None:
    """The emotion a bundled CREMA-D clip was acted with, from its file name; None for anything else."""
    parts = Path(path).stem.split("_") if path else []
    return CREMAD_CODES.get(parts[2]) if len(parts) > 2 else None


def example_name(path: Path) -> str:
    """'anger · actor 1001' for a CREMA-D file name, else the file name."""
    label = known_label(path)
    return f"{label} · actor {path.stem.split('_')[0]}" if label else path.name


@dataclass
class Mistake:
    """A bundled example the model gets wrong: what it said and which modality pulled it there."""

    name: str
    known: str
    said: str
    why: str


def why_wrong(r: dict, known: str) -> str:
    """Which modality misled the fused answer, from the modalities' own answers and the ablations."""
    wrong = r["emotion"]
    fixes = [m for m, a in r["ablations"].items() if a["emotion"] == known]
    if fixes:
        m = fixes[0]
        return f"the {MODALITY_NAMES[m]} said {r['modalities'][m]['emotion']}: without it the answer is {known}"
    pulled = [m for m in r["used"] if r["modalities"][m]["emotion"] == wrong]
    if pulled:
        m = max(pulled, key=lambda m: r["modalities"][m]["weight"])
        return f"the {MODALITY_NAMES[m]} said {wrong} and had {r['modalities'][m]['weight']:.0%} of the attention"
    if len(r["used"]) == 1:
        return f"it only had the {MODALITY_NAMES[r['used'][0]]}, which got it wrong"
    return "no modality said it on its own: the mix of them did"


def mistakes(analyze, paths: list[Path]) -> tuple[list[Mistake], int]:
    """Run `analyze(path) -> result dict` over the bundled examples; returns (the wrong ones, how many ran)."""
    out, n = [], 0
    for p in paths:
        known = known_label(p)
        if known is None:
            continue
        r = analyze(p)
        n += 1
        if r["emotion"] != known:
            out.append(Mistake(example_name(p) + (" (video)" if p.suffix == ".flv" else " (voice)"), known,
                               r["emotion"], why_wrong(r, known)))
    return out, n


def mistakes_html(found: list[Mistake], n: int) -> str:
    """The mistakes as an HTML table (or a sentence when there are none)."""
    if not n:
        return "<p>No bundled examples to test the model on.</p>"
    if not found:
        return f"<p>The model gets all {n} bundled examples right.</p>"
    rows = "".join(f"<tr><td>{esc(m.name)}</td><td>{esc(m.known)}</td><td>{esc(m.said)}</td><td>{esc(m.why)}</td>"
                   "</tr>" for m in found)
    return (f"<p>The loaded model gets <strong>{len(found)} of the {n}</strong> bundled examples wrong "
            "(computed when the app started):</p><table><thead><tr><th>example</th><th>acted</th><th>it said</th>"
            f"<th>what misled it</th></tr></thead><tbody>{rows}</tbody></table>")


def measured(model_dir: Path | None) -> tuple[str, go.Figure | None]:
    """The model's measured figures (an HTML table) and a confusion matrix, from model_dir/eval/*.json."""
    sets = []
    for p in sorted((model_dir / "eval").glob("*.json")) if model_dir else []:
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(d, dict) and {"accuracy", "n", "confusion"} <= set(d):
            sets.append((p.stem, d))
    if not sets:
        return "<p>This model ships no measured figures (no eval/ folder).</p>", None
    rows = "".join(f"<tr><td>{esc(name)}</td><td>{esc(d.get('modality', ''))}</td><td class='num'>{d['n']}</td>"
                   f"<td class='num'>{d['accuracy']:.0%}</td><td class='num'>{d.get('uar', float('nan')):.0%}</td>"
                   "</tr>" for name, d in sets)
    table = ("<table><thead><tr><th>test set</th><th>part</th><th>clips</th><th>accuracy</th><th>UAR</th></tr></thead>"
             f"<tbody>{rows}</tbody></table><p>UAR: the mean of the six per-emotion accuracies. Small sets (a few "
             "clips) are noisy, and a set the model was trained on scores high and says little: the model card says "
             "which sets were held out.</p>")
    name, d = max(sets, key=lambda s: (s[1].get("modality") == "fused", s[1]["n"]))
    labels = list(d.get("recall") or ["anger", "disgust", "fear", "happy", "neutral", "sad"])
    fig = go.Figure(go.Heatmap(z=d["confusion"], x=labels, y=labels, colorscale="Blues", showscale=False,
                               text=d["confusion"], texttemplate="%{text}", hovertemplate="acted %{y}, said %{x}: "
                               "%{z}<extra></extra>"))
    fig.update_xaxes(title="it said", side="bottom")
    fig.update_yaxes(title="acted", autorange="reversed")
    return table, layout(fig, f"Confusion on {name} ({d['n']} clips)", 340)


def fusion_diagram(r: dict) -> go.Figure:
    """Towers -> attention -> fused head, with this clip's attention weights on the arrows."""
    fig = go.Figure()
    ys = {"video": 0.85, "audio": 0.5, "text": 0.15}
    for m, y in ys.items():
        info = r["modalities"][m]
        used = m in r["used"]
        w = info["weight"] if used else 0.0
        own = f"{info['emotion']}" if info["emotion"] else "absent"
        fig.add_annotation(x=0.12, y=y, text=f"<b>{MODALITY_NAMES[m]}</b><br>{own}", showarrow=False,
                           bgcolor=MODALITY_COLOURS[m] if used else "#ddd", font=dict(color="white" if used
                                                                                        else "#555"),
                           borderpad=6, width=90)
        fig.add_annotation(x=0.5, y=0.5, ax=0.22, ay=y, xref="x", yref="y", axref="x", ayref="y", text="",
                           showarrow=True, arrowhead=2, arrowwidth=1 + 10 * w,
                           arrowcolor=MODALITY_COLOURS[m] if used else "#ccc")
        fig.add_annotation(x=0.33, y=(y + 0.5) / 2 + 0.06, text=f"{w:.0%}", showarrow=False, font=dict(size=13))
    fig.add_annotation(x=0.56, y=0.5, text="<b>attention</b>", showarrow=False, bgcolor="#eee", borderpad=8)
    fig.add_annotation(x=0.85, y=0.5, ax=0.64, ay=0.5, xref="x", yref="y", axref="x", ayref="y", text="",
                       showarrow=True, arrowhead=2, arrowwidth=3)
    fig.add_annotation(x=0.9, y=0.5, text=f"<b>fused</b><br>{r['emotion']} {r['confidence']:.0%}", showarrow=False,
                       bgcolor="#222", font=dict(color="white"), borderpad=8)
    fig.update_xaxes(visible=False, range=[0, 1])
    fig.update_yaxes(visible=False, range=[0, 1])
    return layout(fig, "How it combined them", 260)
