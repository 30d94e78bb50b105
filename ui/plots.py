"""Plotly figures, tables and plain-words text for the app, built from the Analysis JSON (docs/result-schema.md).

Every builder takes the dict that `Analysis.to_dict()` returns (what the app shows and what the API returns), so a
figure can be rebuilt from a saved result. face_frames() also needs the decoded frames to draw the boxes on.
Figures are drawn with the modebar hidden by the page's CSS (no toolbar over titles, nothing extra to Tab through).
"""

from __future__ import annotations

import html
import textwrap
import uuid
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

import stresslab

COLOURS = {"anger": "#d62728", "disgust": "#8c564b", "fear": "#9467bd", "happy": "#2ca02c", "neutral": "#7f7f7f",
           "sad": "#1f77b4"}
MODALITY_NAMES = {"video": "face", "audio": "voice", "text": "words"}  # "the face", "without the words"
SHORT_NAMES = MODALITY_NAMES
MODALITY_COLOURS = {"video": "#636efa", "audio": "#ef553b", "text": "#00cc96"}
LEVEL_COLOURS = ("#c7e9c0", "#fdd0a2", "#fcbba1")  # low, moderate, high


def layout(fig: go.Figure, title: str, height: int = 280) -> go.Figure:
    """Title inside the figure's own top margin (nothing drawn over it), left-aligned so a narrow screen keeps it."""
    fig.update_layout(title=dict(text=title, x=0.01, xanchor="left", y=0.98, yanchor="top", font=dict(size=15)),
                      height=height, margin=dict(l=10, r=20, t=48, b=10), template="plotly_white",
                      font=dict(family="system-ui, sans-serif"))
    return fig


def _level_bounds() -> list[float]:
    """The stress score (0..1) where each level ends, found through the public stresslab.stress_level."""
    bounds, previous = [], stresslab.stress_level(0.0)
    for i in range(1, 101):
        level = stresslab.stress_level(i / 100)
        if level != previous:
            bounds.append(i / 100)
            previous = level
    return [*bounds, 1.0]


def _empty(title: str, message: str, height: int = 200) -> go.Figure:
    """A figure that says why there is nothing to draw, without empty axes."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, font=dict(size=14), x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return layout(fig, title, height)


def fused_bar(r: dict) -> go.Figure:
    """The fused distribution over the six emotions."""
    names = list(r["probabilities"])
    p = r["probabilities"]
    fig = go.Figure(go.Bar(x=names, y=[p[n] for n in names], marker_color=[COLOURS.get(n, "#444") for n in names],
                           text=[f"{p[n]:.0%}" for n in names], textposition="outside"))
    fig.update_yaxes(range=[0, 1.15], tickformat=".0%")
    return layout(fig, f"Fused answer: {r['emotion']}")


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
    fig.update_layout(barmode="group", legend=dict(orientation="h", y=-0.15, yanchor="top"))
    fig.update_yaxes(range=[0, 1], tickformat=".0%")
    return layout(fig, "What each modality says on its own", 330)


def weights_bar(r: dict) -> go.Figure:
    """The attention the fusion gave each modality (0 for missing or switched-off ones)."""
    ms = list(r["modalities"])
    w = [r["modalities"][m]["weight"] for m in ms]
    fig = go.Figure(go.Bar(x=w, y=[MODALITY_NAMES.get(m, m) for m in ms], orientation="h",
                           text=[f"{x:.0%}" if m in r["used"] else "not used" for x, m in zip(w, ms, strict=True)],
                           textposition="outside", cliponaxis=False,
                           marker_color=[MODALITY_COLOURS.get(m) for m in ms]))
    fig.update_xaxes(range=[0, 1.2], tickformat=".0%", tickvals=[0, 0.5, 1])
    fig.update_yaxes(automargin=True)
    return layout(fig, "Attention: how much it trusted each", 240)


def ablation_bar(r: dict) -> go.Figure:
    """How far the fused answer moves without each modality (total variation distance, 0..1)."""
    abl = r["ablations"]
    title = "Ablation: without each one"
    if not abl:
        return _empty(title, "needs two or more modalities in use", 240)
    ms = list(abl)
    fig = go.Figure(go.Bar(
        x=[f"without the {SHORT_NAMES.get(m, m)}" for m in ms], y=[abl[m]["shift"] for m in ms],
        text=[f"→ {abl[m]['emotion']}" + (" (changes)" if abl[m]["label_changed"] else "") for m in ms],
        textposition="outside", marker_color=["#e45756" if abl[m]["label_changed"] else "#ab63fa" for m in ms]))
    fig.update_yaxes(range=[0, max(0.2, max(abl[m]["shift"] for m in ms) * 1.4)], title="how far it moved")
    return layout(fig, title, 240)


def stress_gauge(r: dict) -> go.Figure:
    """The stress score (0-100) on a gauge banded by the low / moderate / high levels."""
    s = r["stress"]
    bounds = [0.0, *_level_bounds()]
    steps = [{"range": [lo * 100, hi * 100], "color": c}
             for lo, hi, c in zip(bounds[:-1], bounds[1:], LEVEL_COLOURS, strict=True)]
    fig = go.Figure(go.Indicator(
        mode="gauge+number", value=round(s["score"] * 100), number={"suffix": " / 100"},
        title={"text": f"stress: <b>{s['level']}</b>"},
        gauge={"axis": {"range": [0, 100], "tickvals": [0, 25, 50, 75, 100]}, "bar": {"color": "#222"},
               "steps": steps}, domain={"x": [0.08, 0.92], "y": [0, 0.85]}))
    return layout(fig, "", 250)


def timeline(r: dict) -> go.Figure:
    """Per-window emotion probabilities and stress (all in %) over every window the result lists; under them, on the
    same time axis, one lane per modality with a bar for each window it was present in, coloured by its own answer
    there (entries without per-window "modalities", as the live timeline's, get the lines only)."""
    t = r["timeline"]
    if not t:
        return _empty("Over time", "one window: the clip is too short for a timeline")
    lanes = any(w.get("modalities") for w in t)
    fig = make_subplots(rows=2 if lanes else 1, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        row_heights=[0.7, 0.3] if lanes else None)
    mid = [(w["start"] + w["end"]) / 2 for w in t]
    span = [f"{w['start']:.1f}-{w['end']:.1f} s" for w in t]
    for e in r["probabilities"]:
        fig.add_scatter(x=mid, y=[w["probabilities"][e] for w in t], name=e, mode="lines+markers",
                        line=dict(color=COLOURS.get(e)), customdata=span, hovertemplate="%{customdata}: %{y:.0%}",
                        row=1, col=1)
    fig.add_scatter(x=mid, y=[w["stress"] for w in t], name="stress", mode="lines+markers", customdata=span,
                    line=dict(dash="dash", color="black"), hovertemplate="%{customdata}: stress %{y:.0%}",
                    row=1, col=1)
    for w in t:  # each window's extent along the bottom, so gaps (if any) show
        fig.add_shape(type="line", x0=w["start"], x1=w["end"], y0=-0.04, y1=-0.04, line=dict(color="#999", width=4),
                      row=1, col=1)
    if lanes:
        _lanes(fig, r, t)
    end = max(w["end"] for w in t)
    fig.update_xaxes(range=[0, end])
    fig.update_xaxes(title="seconds", row=2 if lanes else 1, col=1)
    fig.update_yaxes(range=[-0.08, 1.02], tickformat=".0%", tickvals=[0, 0.25, 0.5, 0.75, 1], row=1, col=1)
    fig.update_layout(legend=dict(orientation="h", y=-0.25 if not lanes else -0.12, yanchor="top"))
    length = sum(w["end"] - w["start"] for w in t) / len(t)
    return layout(fig, f"Over time: {len(t)} windows of about {length:.1f} s", 440 if lanes else 330)


def _wrap(text: str, width: int = 60) -> str:
    """Visitor words for a hover label: HTML-escaped (Plotly renders tags in hover text), wrapped with <br>."""
    return "<br>".join(html.escape(line, quote=False) for line in textwrap.wrap(text, width)) or "(nothing said in it)"


def _lanes(fig: go.Figure, r: dict, t: list[dict]) -> None:
    """Row 2 of `fig`: per modality, a bar over each window where it was present, in its own emotion's colour; the
    hover gives the span, that answer and (for the words) what was said in the window."""
    for m in MODALITY_NAMES:
        here = [w for w in t if (w.get("modalities") or {}).get(m)]
        if not here:
            continue
        own = [w["modalities"][m] for w in here]
        off = not r.get("modalities", {}).get(m, {}).get("enabled", True)
        hover = []
        for w, o in zip(here, own, strict=True):
            line = f"{MODALITY_NAMES[m]}, {w['start']:.1f}-{w['end']:.1f} s: {o['emotion']} {o['confidence']:.0%}"
            if m == "text":
                line += " (the whole transcript)"
                if w.get("words") is not None:
                    line += "<br>said here: " + _wrap(w["words"])
            hover.append(line + (" · switched off" if off else ""))
        fig.add_bar(x=[w["end"] - w["start"] for w in here], base=[w["start"] for w in here],
                    y=[MODALITY_NAMES[m]] * len(here), orientation="h", name=MODALITY_NAMES[m], showlegend=False,
                    marker=dict(color=[COLOURS.get(o["emotion"], "#444") for o in own], line=dict(color="white",
                                                                                                   width=1)),
                    opacity=0.35 if off else 0.9, text=[o["emotion"] for o in own], textposition="inside",
                    insidetextanchor="middle", customdata=hover, hovertemplate="%{customdata}<extra></extra>",
                    row=2, col=1)
    names = list(MODALITY_NAMES.values())
    fig.update_yaxes(categoryorder="array", categoryarray=names[::-1], range=[-0.5, len(names) - 0.5], row=2, col=1)
    fig.update_layout(uniformtext=dict(minsize=9, mode="hide"), bargap=0.25, barmode="overlay")


def face_frames(frames: np.ndarray | None, times: np.ndarray | None, faces: list[dict], folder: Path,
                limit: int = 8) -> list[tuple[str, str]]:
    """Up to `limit` evenly spaced frames with their face box drawn, written as PNGs into `folder` (the session's
    own, deleted with it); returns (path, caption) pairs for a gallery, the caption giving what the face branch
    said for that frame.

    frames: (T, H, W, 3) uint8 RGB and times: (T,) seconds, as `stresslab.load_clip` decodes them; faces: the
    Analysis dict's `faces` ([{time, box: [x, y, w, h], emotion?, confidence?}]) on the same frames.
    """
    from PIL import Image, ImageDraw

    if frames is None or times is None or not faces:
        return []
    by_time = {round(float(t), 3): i for i, t in enumerate(times)}
    picks = [faces[int(k)] for k in np.linspace(0, len(faces) - 1, min(limit, len(faces)))]
    out = []
    for n, f in enumerate(picks):
        i = by_time.get(round(float(f["time"]), 3))
        if i is None:
            continue
        image = Image.fromarray(frames[i])
        x, y, w, h = f["box"]
        ImageDraw.Draw(image).rectangle([x, y, x + w, y + h], outline=(255, 215, 0), width=3)
        path = folder / f"face-{uuid.uuid4().hex[:12]}-{n}.png"
        image.save(path)
        said = f": {f['emotion']} {f['confidence']:.0%}" if f.get("emotion") else ""
        out.append((str(path), f"{f['time']:.1f} s{said}"))
    return out
