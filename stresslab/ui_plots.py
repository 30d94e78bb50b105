"""Plotly figures and plain-words text for the app, built from the Analysis JSON (docs/result-schema.md) only."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

COLOURS = {"anger": "#d62728", "disgust": "#8c564b", "fear": "#9467bd", "happy": "#2ca02c", "neutral": "#7f7f7f",
           "sad": "#1f77b4"}
MODALITY_NAMES = {"video": "face (video)", "audio": "voice (audio)", "text": "words (text)"}


def _layout(fig: go.Figure, title: str, height: int = 280) -> go.Figure:
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=40, b=10), template="plotly_white")
    return fig


def fused_bar(r: dict) -> go.Figure:
    """The fused distribution over the six emotions."""
    names = list(r["probabilities"])
    fig = go.Figure(go.Bar(x=names, y=[r["probabilities"][n] for n in names], marker_color=[COLOURS[n] for n in names],
                           text=[f"{r['probabilities'][n]:.0%}" for n in names], textposition="outside"))
    fig.update_yaxes(range=[0, 1.1], tickformat=".0%")
    return _layout(fig, f"Fused answer: {r['emotion']}")


def modalities_bar(r: dict) -> go.Figure:
    """Each modality's own distribution side by side, and the attention weight it got, in the legend."""
    fig = go.Figure()
    names = list(r["probabilities"])
    for m, info in r["modalities"].items():
        if info["probabilities"] is None:
            continue
        state = f"weight {info['weight']:.2f}" if info["enabled"] else "off"
        label = f"{MODALITY_NAMES[m]} · {state}"
        fig.add_bar(name=label, x=names, y=[info["probabilities"][n] for n in names])
    fig.add_bar(name="fused", x=names, y=[r["probabilities"][n] for n in names], marker_color="black", opacity=0.5)
    fig.update_layout(barmode="group", legend=dict(orientation="h", y=-0.25))
    fig.update_yaxes(range=[0, 1], tickformat=".0%")
    return _layout(fig, "What each modality says on its own", 320)


def weights_bar(r: dict) -> go.Figure:
    ms = list(r["modalities"])
    w = [r["modalities"][m]["weight"] for m in ms]
    fig = go.Figure(go.Bar(x=w, y=[MODALITY_NAMES[m] for m in ms], orientation="h", text=[f"{x:.0%}" for x in w],
                           textposition="auto", marker_color=["#636efa", "#ef553b", "#00cc96"]))
    fig.update_xaxes(range=[0, 1], tickformat=".0%")
    return _layout(fig, "How much the fusion trusted each modality", 220)


def ablation_bar(r: dict) -> go.Figure:
    """How far the fused answer moves without each modality (total variation distance, 0..1)."""
    abl = r["ablations"]
    fig = go.Figure()
    if abl:
        ms = list(abl)
        fig.add_bar(x=[f"without {MODALITY_NAMES[m]}" for m in ms], y=[abl[m]["shift"] for m in ms],
                    text=[f"→ {abl[m]['emotion']}" + (" (changes)" if abl[m]["label_changed"] else "") for m in ms],
                    textposition="outside", marker_color="#ab63fa")
        fig.update_yaxes(range=[0, max(0.2, max(abl[m]["shift"] for m in ms) * 1.4)])
    else:
        fig.add_annotation(text="ablations need two or more modalities", showarrow=False)
    return _layout(fig, "What changes when one modality is dropped", 260)


def stress_gauge(r: dict) -> go.Figure:
    s = r["stress"]
    fig = go.Figure(go.Indicator(
        mode="gauge+number", value=round(s["score"] * 100), number={"suffix": " / 100"},
        title={"text": f"stress: {s['level']}"},
        gauge={"axis": {"range": [0, 100]}, "bar": {"color": "#222"},
               "steps": [{"range": [0, 33], "color": "#c7e9c0"}, {"range": [33, 60], "color": "#fdd0a2"},
                         {"range": [60, 100], "color": "#fcbba1"}]}))
    return _layout(fig, "", 240)


def timeline(r: dict) -> go.Figure:
    fig = go.Figure()
    t = r["timeline"]
    if not t:
        fig.add_annotation(text="the clip is one window long: no timeline", showarrow=False)
        return _layout(fig, "Over time", 240)
    mid = [(w["start"] + w["end"]) / 2 for w in t]
    for e in r["probabilities"]:
        fig.add_scatter(x=mid, y=[w["probabilities"][e] for w in t], name=e, mode="lines+markers",
                        line=dict(color=COLOURS[e]))
    fig.add_scatter(x=mid, y=[w["stress"] for w in t], name="stress", mode="lines", line=dict(dash="dash",
                                                                                             color="black"))
    fig.update_xaxes(title="seconds")
    fig.update_yaxes(range=[0, 1])
    return _layout(fig, "Over time (one point per window)", 300)


def face_frames(frames: np.ndarray | None, times: np.ndarray | None, faces: list[dict], limit: int = 8) -> list:
    """Frames with the face box drawn, as (image, caption) pairs for a gallery."""
    if frames is None or not faces:
        return []
    by_time = {round(float(t), 3): i for i, t in enumerate(times)}
    step = max(1, len(faces) // limit)
    out = []
    for f in faces[::step][:limit]:
        i = by_time.get(f["time"])
        if i is None:
            continue
        img = frames[i].copy()
        x, y, w, h = f["box"]
        for t in range(3):
            img[max(0, y + t), x: x + w] = img[min(img.shape[0] - 1, y + h - t), x: x + w] = (255, 215, 0)
            img[y: y + h, max(0, x + t)] = img[y: y + h, min(img.shape[1] - 1, x + w - t)] = (255, 215, 0)
        out.append((img, f"{f['time']:.2f} s"))
    return out


def explanation(r: dict) -> str:
    """A few plain sentences for people who are not ML researchers."""
    present = [m for m, i in r["modalities"].items() if i["present"] and i["enabled"]]
    how = "a stress head trained on ratings" if r["stress"]["method"].startswith("learned") else "a fixed mapping"
    lines = [f"**The model's best guess is _{r['emotion']}_** ({r['confidence']:.0%} of its confidence). "
             f"It estimates the stress shown as **{r['stress']['level']}** ({r['stress']['score']:.2f} on a 0-1 "
             f"scale), worked out from how negative and how aroused the emotions look ({how})."]
    if present:
        top = max(present, key=lambda m: r["modalities"][m]["weight"])
        lines.append(f"It listened most to the **{MODALITY_NAMES[top]}** "
                     f"({r['modalities'][top]['weight']:.0%} of the attention).")
    for m, info in r["modalities"].items():
        if not info["present"] or not info["enabled"]:
            lines.append(f"The {MODALITY_NAMES[m]} was not used: {info['reason']}.")
    moved = [(m, a) for m, a in r["ablations"].items() if a["label_changed"]]
    for m, a in moved:
        lines.append(f"Without the {MODALITY_NAMES[m]} the answer would be _{a['emotion']}_ instead.")
    lines.append("These are guesses about *expressed* emotion learned from actors, not a reading of anyone's mind.")
    return "\n\n".join(lines)


def modality_table(r: dict) -> list[list]:
    rows = []
    for m, info in r["modalities"].items():
        if info["probabilities"] is not None:
            own = f"{info['emotion']} ({info['probabilities'][info['emotion']]:.0%})"
        else:
            own = "—"
        status = "used" if info["present"] and info["enabled"] else info["reason"]
        rows.append([MODALITY_NAMES[m], own, f"{info['weight']:.2f}", status])
    return rows
