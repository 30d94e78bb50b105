"""Plotly figures, tables and plain-words text for the app, built from the Analysis JSON (docs/result-schema.md).

Every builder takes the dict that `Analysis.to_dict()` returns (what the app shows and what the API returns), so a
figure can be rebuilt from a saved result. face_frames() also needs the decoded frames to draw the boxes on.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from stresslab import MODALITIES
from stresslab.labels import STRESS_LEVELS

COLOURS = {"anger": "#d62728", "disgust": "#8c564b", "fear": "#9467bd", "happy": "#2ca02c", "neutral": "#7f7f7f",
           "sad": "#1f77b4"}
MODALITY_NAMES = {"video": "face (video)", "audio": "voice (audio)", "text": "words (text)"}
SHORT_NAMES = {"video": "face", "audio": "voice", "text": "words"}
MODALITY_COLOURS = {"video": "#636efa", "audio": "#ef553b", "text": "#00cc96"}
LEVEL_COLOURS = ("#c7e9c0", "#fdd0a2", "#fcbba1")  # low, moderate, high


def _layout(fig: go.Figure, title: str, height: int = 280) -> go.Figure:
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=40, b=10), template="plotly_white")
    return fig


def _empty(title: str, message: str, height: int = 200) -> go.Figure:
    """A figure that says why there is nothing to draw, without empty axes."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, font=dict(size=14), x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, title, height)


def _on(r: dict, m: str) -> bool:
    return r["modalities"][m]["present"] and r["modalities"][m]["enabled"]


def fused_bar(r: dict) -> go.Figure:
    """The fused distribution over the six emotions."""
    names = list(r["probabilities"])
    p = r["probabilities"]
    fig = go.Figure(go.Bar(x=names, y=[p[n] for n in names], marker_color=[COLOURS.get(n, "#444") for n in names],
                           text=[f"{p[n]:.0%}" for n in names], textposition="outside"))
    fig.update_yaxes(range=[0, 1.15], tickformat=".0%")
    return _layout(fig, f"Fused answer: {r['emotion']}")


def modalities_bar(r: dict) -> go.Figure:
    """Each present modality's own distribution side by side with the fused one; the legend gives its weight."""
    names = list(r["probabilities"])
    fig = go.Figure()
    for m, info in r["modalities"].items():
        if info["probabilities"] is None:
            continue
        state = f"weight {info['weight']:.2f}" if info["enabled"] else "switched off"
        fig.add_bar(name=f"{MODALITY_NAMES.get(m, m)} · {state}", x=names,
                    y=[info["probabilities"][n] for n in names], marker_color=MODALITY_COLOURS.get(m),
                    opacity=1.0 if info["enabled"] else 0.35)
    fig.add_bar(name="fused", x=names, y=[r["probabilities"][n] for n in names], marker_color="black", opacity=0.6)
    fig.update_layout(barmode="group", legend=dict(orientation="h", y=-0.2))
    fig.update_yaxes(range=[0, 1], tickformat=".0%")
    return _layout(fig, "What each modality says on its own", 330)


def weights_bar(r: dict) -> go.Figure:
    """The attention the fusion gave each modality (0 for missing or switched-off ones)."""
    ms = list(r["modalities"])
    w = [r["modalities"][m]["weight"] for m in ms]
    fig = go.Figure(go.Bar(x=w, y=[MODALITY_NAMES.get(m, m) for m in ms], orientation="h",
                           text=[f"{x:.0%}" if _on(r, m) else "not used" for x, m in zip(w, ms, strict=True)],
                           textposition="outside", cliponaxis=False,
                           marker_color=[MODALITY_COLOURS.get(m) for m in ms]))
    fig.update_xaxes(range=[0, 1.15], tickformat=".0%", tickvals=[0, 0.25, 0.5, 0.75, 1])
    return _layout(fig, "Attention: how much the fusion trusted each", 240)


def ablation_bar(r: dict) -> go.Figure:
    """How far the fused answer moves without each modality (total variation distance, 0..1)."""
    abl = r["ablations"]
    title = "Ablation: the answer without each modality"
    if not abl:
        return _empty(title, "needs two or more modalities in use", 240)
    ms = list(abl)
    fig = go.Figure(go.Bar(
        x=[f"without the {SHORT_NAMES.get(m, m)}" for m in ms], y=[abl[m]["shift"] for m in ms],
        text=[f"→ {abl[m]['emotion']}" + (" (changes)" if abl[m]["label_changed"] else "") for m in ms],
        textposition="outside", marker_color=["#e45756" if abl[m]["label_changed"] else "#ab63fa" for m in ms]))
    fig.update_yaxes(range=[0, max(0.2, max(abl[m]["shift"] for m in ms) * 1.4)], title="how far it moved")
    return _layout(fig, title, 240)


def stress_gauge(r: dict) -> go.Figure:
    """The stress score (0-100) on a gauge banded by the low / moderate / high levels."""
    s = r["stress"]
    bounds = [0.0] + [min(1.0, b) for b, _ in STRESS_LEVELS]
    steps = [{"range": [lo * 100, hi * 100], "color": c}
             for lo, hi, c in zip(bounds[:-1], bounds[1:], LEVEL_COLOURS, strict=True)]
    fig = go.Figure(go.Indicator(
        mode="gauge+number", value=round(s["score"] * 100), number={"suffix": " / 100"},
        title={"text": f"stress: <b>{s['level']}</b>"},
        gauge={"axis": {"range": [0, 100]}, "bar": {"color": "#222"}, "steps": steps}))
    return _layout(fig, "", 250)


def timeline(r: dict) -> go.Figure:
    """Per-window emotion probabilities and stress over time (clips longer than about 4.5 s)."""
    t = r["timeline"]
    if not t:
        return _empty("Over time", "the clip is one window long (under about 4.5 s): no timeline")
    mid = [(w["start"] + w["end"]) / 2 for w in t]
    fig = go.Figure()
    for e in r["probabilities"]:
        fig.add_scatter(x=mid, y=[w["probabilities"][e] for w in t], name=e, mode="lines+markers",
                        line=dict(color=COLOURS.get(e)))
    fig.add_scatter(x=mid, y=[w["stress"] for w in t], name="stress", mode="lines+markers",
                    line=dict(dash="dash", color="black"))
    fig.update_xaxes(title="seconds (window middle)")
    fig.update_yaxes(range=[0, 1])
    return _layout(fig, "Over time (one point per 3 s window)", 300)


def modality_table(r: dict) -> list[list[str]]:
    """Rows of [modality, its own answer, attention weight, status] for a Dataframe."""
    rows = []
    for m, info in r["modalities"].items():
        own = f"{info['emotion']} ({info['probabilities'][info['emotion']]:.0%})" if info["probabilities"] else "—"
        status = "used" if _on(r, m) else f"not used: {info['reason']}"
        rows.append([MODALITY_NAMES.get(m, m), own, f"{info['weight']:.2f}", status])
    return rows


def explanation(r: dict) -> str:
    """A few plain sentences for people who are not ML researchers."""
    s = r["stress"]
    how = "a stress model trained on people's ratings" if s["method"].startswith("learned") else \
        "a fixed rule: unpleasant and agitated emotions count as stress"
    lines = [f"**Best guess: _{r['emotion']}_**, with {r['confidence']:.0%} of the model's confidence "
             f"(the six bars add up to 100%). The stress shown is **{s['level']}** ({s['score'] * 100:.0f} out of "
             f"100), worked out from the emotions by {how}."]
    used = [m for m in MODALITIES if m in r["modalities"] and _on(r, m)]
    if len(used) > 1:
        top = max(used, key=lambda m: r["modalities"][m]["weight"])
        lines.append(f"It combined {', '.join(MODALITY_NAMES[m] for m in used)} and relied most on the "
                     f"**{MODALITY_NAMES[top]}** ({r['modalities'][top]['weight']:.0%} of its attention).")
        disagree = [m for m in used if r["modalities"][m]["emotion"] != r["emotion"]]
        for m in disagree:
            lines.append(f"On its own, the {MODALITY_NAMES[m]} says _{r['modalities'][m]['emotion']}_.")
    elif used:
        lines.append(f"It only had the {MODALITY_NAMES[used[0]]} to go on.")
    for m, info in r["modalities"].items():
        if not _on(r, m):
            lines.append(f"The {MODALITY_NAMES.get(m, m)} was not used: {info['reason']}.")
    for m, a in r["ablations"].items():
        if a["label_changed"]:
            lines.append(f"Without the {MODALITY_NAMES.get(m, m)} the answer would be _{a['emotion']}_ instead.")
    if r["timeline"]:
        seq = [w["emotion"] for w in r["timeline"]]
        changes = [e for i, e in enumerate(seq) if i == 0 or e != seq[i - 1]]
        lines.append("Over time it reads " + " → ".join(f"_{e}_" for e in changes) + ".")
    lines.append("This is a guess about the emotion *shown*, learned from actors, not a reading of what anyone "
                 "feels inside.")
    return "\n\n".join(lines)


def headline(r: dict) -> str:
    """The answer in one line of Markdown."""
    s = r["stress"]
    return f"## {r['emotion']} · {r['confidence']:.0%}\nstress **{s['level']}** ({s['score'] * 100:.0f} / 100)"


def face_frames(frames: np.ndarray | None, times: np.ndarray | None, faces: list[dict],
                limit: int = 8) -> list[tuple[np.ndarray, str]]:
    """Up to `limit` evenly spaced frames with their face box drawn, as (image, caption) pairs for a gallery.

    frames: (T, H, W, 3) uint8 RGB and times: (T,) seconds, as `stresslab.load_clip` decodes them; faces: the
    Analysis dict's `faces` ([{time, box: [x, y, w, h]}]) on the same frames.
    """
    from PIL import Image, ImageDraw

    if frames is None or times is None or not faces:
        return []
    by_time = {round(float(t), 3): i for i, t in enumerate(times)}
    picks = [faces[int(k)] for k in np.linspace(0, len(faces) - 1, min(limit, len(faces)))]
    out = []
    for f in picks:
        i = by_time.get(f["time"])
        if i is None:
            continue
        image = Image.fromarray(frames[i])
        x, y, w, h = f["box"]
        ImageDraw.Draw(image).rectangle([x, y, x + w, y + h], outline=(255, 215, 0), width=3)
        out.append((np.asarray(image), f"{f['time']:.2f} s"))
    return out
