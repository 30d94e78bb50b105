"""The Live section's figures as plain HTML and inline SVG, redrawn every second or so by a timer.

Plotly is what the rest of the page uses, but redrawing three Plotly figures while a stream runs held the browser's
main thread long enough to halve the live rate (bench/live.py in Chromium on 2 cores: 3.3 updates/s and 509 ms lag
with Plotly redraws every 2 s, 6.4/s and 257 ms without them). These are a few kB of markup the browser lays out in
a millisecond, built from the same live answer (stresslab.LiveSession.update(): Analysis.to_dict() + "timeline").

    html = figures(answer, seconds=60)   # fused bars, stress meter, the last `seconds` of answers as lines
"""

from __future__ import annotations

import html
import math

from ui.plots import COLOURS, LEVEL_COLOURS, _level_bounds

W, H, PAD_L, PAD_B = 560, 190, 34, 22  # the timeline's SVG box (user units; it scales to the column's width)


def bars(r: dict) -> str:
    """The fused probability of each emotion as a labelled horizontal bar."""
    rows = []
    for e, p in sorted(r["probabilities"].items(), key=lambda kv: -kv[1]):
        rows.append(f"<div class='lf-row' data-emotion='{e}'><span class='lf-name'>{e}</span>"
                    f"<span class='lf-bar'><span style='width:{p * 100:.1f}%;background:{COLOURS.get(e, '#888')}'>"
                    f"</span></span><span class='lf-pct'>{p:.0%}</span></div>")
    return f"<div class='lf-bars' aria-label='fused probabilities'>{''.join(rows)}</div>"


def meter(r: dict) -> str:
    """The stress score on a bar banded by the low / moderate / high levels, with a marker at the score."""
    s = r["stress"]
    bounds = [0.0, *_level_bounds()]
    bands = "".join(f"<span style='left:{lo * 100:.1f}%;width:{(hi - lo) * 100:.1f}%;background:{c}'></span>"
                    for lo, hi, c in zip(bounds[:-1], bounds[1:], LEVEL_COLOURS, strict=True))
    return (f"<div class='lf-stress' aria-label='stress {s['score'] * 100:.0f} of 100, {html.escape(s['level'])}'>"
            f"<div>stress: <b>{html.escape(s['level'])}</b> {s['score'] * 100:.0f}/100</div>"
            f"<div class='lf-meter'>{bands}<i style='left:{s['score'] * 100:.1f}%'></i></div></div>")


def timeline(points: list[dict], seconds: float) -> str:
    """The answers of the last `seconds` (points: {"time", "probabilities", "stress"}) as one line per emotion and a
    dashed stress line, on a time axis that scrolls with the stream."""
    if not points:
        return "<p class='lf-empty'>The timeline starts with the first answer.</p>"
    end = max(points[-1]["time"], seconds)
    start = end - seconds
    shown = [p for p in points if p["time"] >= start]

    def x(t: float) -> float:
        return PAD_L + (t - start) / seconds * (W - PAD_L - 6)

    def y(v: float) -> float:
        return 6 + (1 - v) * (H - PAD_B - 6)

    def line(values: list[float], colour: str, dash: str = "") -> str:
        pts = " ".join(f"{x(p['time']):.1f},{y(v):.1f}" for p, v in zip(shown, values, strict=True))
        return f"<polyline points='{pts}' fill='none' stroke='{colour}' stroke-width='1.8'{dash}/>"

    grid = "".join(f"<line x1='{PAD_L}' x2='{W - 6}' y1='{y(v):.1f}' y2='{y(v):.1f}' stroke='#e5e5e5'/>"
                   f"<text x='{PAD_L - 4}' y='{y(v) + 4:.1f}' text-anchor='end'>{v:.0%}</text>" for v in (0, .5, 1))
    step = 10 if seconds > 30 else 5
    ticks = "".join(f"<text x='{x(t):.1f}' y='{H - 6}' text-anchor='middle'>{t:.0f} s</text>"
                    for t in range(max(0, math.ceil(start / step)) * step, int(end) + 1, step))
    lines = "".join(line([p["probabilities"].get(e, 0.0) for p in shown], c) for e, c in COLOURS.items())
    lines += line([p["stress"] for p in shown], "#111", " stroke-dasharray='5 3'")
    top = max(shown[-1]["probabilities"], key=shown[-1]["probabilities"].get) if shown[-1]["probabilities"] else "-"
    legend = "".join(f"<span><i style='background:{c}'></i>{e}</span>" for e, c in COLOURS.items())
    return (f"<svg class='lf-timeline' viewBox='0 0 {W} {H}' role='img' data-points='{len(shown)}' "
            f"aria-label='the last {seconds:.0f} s: {len(shown)} answers, now {top}'>{grid}{ticks}{lines}</svg>"
            f"<div class='lf-legend'>{legend}<span><i class='lf-dash'></i>stress</span></div>")


def figures(r: dict, seconds: float) -> str:
    """Everything the timer redraws, as one HTML block (bars and meter once there is an answer)."""
    now = f"<div class='lf-now'>{bars(r)}{meter(r)}</div>" if r.get("emotion") else ""
    return (f"<div id='live-figures-now' data-points='{len(r['timeline'])}'>{now}"
            f"<div class='lf-title'>Live, the last {seconds:.0f} s</div>{timeline(r['timeline'], seconds)}</div>")


CSS = """
#live-figures .lf-now { display: flex; gap: 24px; flex-wrap: wrap; align-items: flex-start; margin-bottom: 8px; }
#live-figures .lf-bars { flex: 1 1 260px; }
#live-figures .lf-row { display: flex; align-items: center; gap: 6px; font-size: 13px; line-height: 20px; }
#live-figures .lf-name { width: 58px; }
#live-figures .lf-bar { flex: 1; height: 10px; background: #f1f1f1; border-radius: 3px; overflow: hidden; }
#live-figures .lf-bar span { display: block; height: 100%; }
#live-figures .lf-pct { width: 36px; text-align: right; font-variant-numeric: tabular-nums; }
#live-figures .lf-stress { flex: 1 1 220px; font-size: 14px; }
#live-figures .lf-meter { position: relative; height: 14px; margin-top: 6px; border-radius: 3px; overflow: hidden; }
#live-figures .lf-meter span { position: absolute; top: 0; bottom: 0; }
#live-figures .lf-meter i { position: absolute; top: 0; bottom: 0; width: 3px; margin-left: -1px; background: #222; }
#live-figures .lf-title { font-weight: 600; margin: 4px 0; }
#live-figures .lf-timeline { width: 100%; height: auto; font: 10px system-ui, sans-serif; fill: #555; }
#live-figures .lf-legend { display: flex; flex-wrap: wrap; gap: 10px; font-size: 12px; }
#live-figures .lf-legend i { display: inline-block; width: 14px; height: 3px; margin-right: 4px;
  vertical-align: middle; }
#live-figures .lf-legend i.lf-dash { background: repeating-linear-gradient(90deg, #111 0 5px, transparent 5px 8px); }
"""
