"""The page's words, styles and small HTML pieces, built from the Analysis JSON (docs/result-schema.md).

Anything a visitor typed (words, a note, a receipt) is shown as text: it goes through html.escape and never
through Markdown, so a typed <img> is not fetched and a typed <form> does not survive.
"""

from __future__ import annotations

import errno
import html
from pathlib import Path

import gradio as gr

from ui import live_figures
from ui.plots import MODALITY_NAMES

SYSTEM_FONTS = ("system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif")
MONO_FONTS = ("ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace")
VERB = {"video": "was", "audio": "was", "text": "were"}  # the face was, the words were
NOT_SURE = "not sure"

NOTICE = ("**Emotion *shown*, learned from actors; stress is a rule on top.** Often wrong. "
          "**Never use it to judge, screen or monitor anyone.**")
NOTICE_MORE = """The emotion a face, a voice and words *express*, as learned from **acted** recordings (actors
performing six emotions), not what anyone feels inside. Stress is derived from those emotions by a fixed rule, not
measured. It is often wrong: on unacted speech, other languages and accents, faces turned away, poor light, and for
groups little present in the training data. Read the [model card]({card}) for its data, accuracy and limits.

**Do not use it to judge, screen or monitor people.** Inferring emotions at work or in education is prohibited in
the EU (AI Act, art. 5(1)(f)); it must not decide anything about anyone (hiring, grading, policing, health).

{retention}"""

CONSENT_INTRO = """Your correction helps build a real, non-acted data set for research. **What is saved:** the
labels you choose, your note, the words and the answer shown above, on this server's disk{where}. **Nothing else**
unless you tick a box below. Saved corrections are kept until you erase them with your receipt (no expiry), and are
published, when shared, under CC BY 4.0 for research."""
KEEP_LABEL = ("keep my clip: the video, recording or photo analysed above is stored with this correction "
              "(until you erase it)")
SHARE_LABEL = ("share publicly: the correction (labels, note, words, the answer) goes into an open research data "
               "set, with the clip too only if 'keep my clip' is ticked")
CHOOSE = "choose…"

CSS = """
.modebar-container, .modebar { display: none !important; }
#status { min-height: 2.5em; }
.num, .nowrap { white-space: nowrap; }
#modality-table table, #mistakes table, #measured table { width: 100%; border-collapse: collapse; margin: 0 !important;
  table-layout: auto; }
#modality-table td, #modality-table th, #mistakes td, #mistakes th, #measured td, #measured th { padding: 4px 6px;
  border: none; border-bottom: 1px solid #ddd; text-align: left; }
#results.stale .plot-container, #results.stale #headline, #results.stale #explanation { opacity: 0.35; }
#stale-note { color: #8a4b00; font-weight: 600; }
#faces-gallery .grid-wrap { max-height: none !important; height: auto !important; overflow: visible !important; }
#faces-gallery .grid-container { grid-template-columns: repeat(auto-fill, minmax(110px, 1fr)) !important; }
#faces-gallery .thumbnail-item { height: auto !important; }
#faces-gallery .caption-label { position: static !important; white-space: normal !important; max-width: none !important;
  background: none !important; }
#faces-gallery .thumbnail-item { display: flex; flex-direction: column; }
.receipt-list code { user-select: all; }
html, body, gradio-app { overflow-x: hidden; }
#title h1 { margin-bottom: 0; }
@media (max-width: 640px) {  /* a phone: the answer right under Analyse, then the form, then the examples */
  #main-row { flex-direction: column !important; flex-wrap: nowrap !important; }
  #left-col { display: contents !important; }
  #main-row > * { width: 100%; }
  #results { order: 2; }
  #correction-panel, #receipt-list { order: 3; }
  #examples-video, #examples-audio { order: 4; }
  #title h1 { font-size: 1.4em !important; }
  #title p, #notice p { margin: 0.2em 0 !important; font-size: 0.95em; }
  #upload-video, #upload-audio, #upload-image { min-height: 0 !important; }
  .gradio-container { padding: 4px !important; }
}
""" + live_figures.CSS

# Runs once when the page loads: the status line becomes a polite live region (screen readers announce each answer).
JS = """() => {
  const mark = () => {
    const el = document.querySelector('#status');
    if (!el) { setTimeout(mark, 200); return; }
    el.setAttribute('role', 'status');
    el.setAttribute('aria-live', 'polite');
    el.setAttribute('aria-atomic', 'true');
  };
  mark();
}"""


def theme() -> gr.themes.Base:
    """Gradio's default look with system fonts only: no font file is requested from anywhere."""
    return gr.themes.Default(font=list(SYSTEM_FONTS), font_mono=list(MONO_FONTS))


def esc(text: object) -> str:
    """Text made safe to put inside HTML."""
    return html.escape(str(text), quote=True)


def status(message: str, strong: str = "") -> str:
    """The status line (the page's live region): an optional bold lead-in, then plain text."""
    lead = f"<strong>{esc(strong)}</strong> " if strong else ""
    return f"<p class='msg'>{lead}{esc(message)}</p>"


def reason(m: str, why: str | None) -> str:
    """Why a modality was not used, in the visitor's terms (no setting names)."""
    why = why or "not in this input"
    if m == "text" and ("recogni" in why or "STRESSLAB_WHISPER" in why or why.startswith("no words")):
        return "type what was said to include the words"
    return why


def answer(r: dict) -> str:
    """'anger 64%', or 'not sure: anger 41% or sad 38%' when the model marks its answer uncertain."""
    if r.get("uncertain") and r.get("top2"):
        (a, pa), (b, pb) = r["top2"]
        return f"{NOT_SURE}: {a} {pa:.0%} or {b} {pb:.0%}"
    return f"{r['emotion']} {r['confidence']:.0%}"


def headline(r: dict, known: str | None = None) -> str:
    """The answer in one block of HTML; `known`: the label a bundled example was acted with."""
    s = r["stress"]
    lines = [f"<h2 style='margin:0'>{esc(answer(r))}</h2>",
             f"<p>stress <strong>{esc(s['level'])}</strong> <span class='num'>({s['score'] * 100:.0f} / 100)</span>"
             "</p>"]
    if known:
        mark = "✓ right" if known == r["emotion"] else "✗ wrong"
        lines.append(f"<p>the actor was asked to show <strong>{esc(known)}</strong>: {mark}</p>")
    return "".join(lines)


def said(r: dict) -> str:
    """One sentence for the live region: what the model answered."""
    return f"Answer: {answer(r)}; stress {r['stress']['level']} ({r['stress']['score'] * 100:.0f} of 100)."


def change(before: dict | None, after: dict) -> str:
    """How the answer moved since the previous analysis on this page."""
    if not before:
        return ""
    if before["emotion"] != after["emotion"]:
        return f" The answer changed from {answer(before)} to {answer(after)}."
    return f" The answer stayed {after['emotion']} ({before['confidence']:.0%} → {after['confidence']:.0%})."


def modality_table(r: dict) -> str:
    """Each modality's own answer, its attention weight and whether it was used, as an HTML table."""
    rows = ["<table><thead><tr><th>modality</th><th>own answer</th><th>attention</th><th>status</th></tr>"
            "</thead><tbody>"]
    for m, info in r["modalities"].items():
        p = info["probabilities"]
        own = f"<span class='num'>{esc(info['emotion'])} {p[info['emotion']]:.0%}</span>" if p else "—"
        state = "used" if m in r["used"] else f"not used: {esc(reason(m, info['reason']))}"
        rows.append(f"<tr data-modality='{m}'><td>{MODALITY_NAMES[m]}</td><td>{own}</td>"
                    f"<td class='num'>{info['weight']:.0%}</td><td>{state}</td></tr>")
    return "".join(rows) + "</tbody></table>"


def explanation(r: dict) -> str:
    """A few plain sentences for people who are not ML researchers (Markdown; no visitor text in it)."""
    s = r["stress"]
    how = "a stress model trained on people's ratings" if s["method"].startswith("learned") else \
        "a fixed rule: unpleasant and agitated emotions count as stress"
    lines = [f"**Best guess: _{r['emotion']}_**, with {r['confidence']:.0%} of the model's confidence "
             f"(the six bars add up to 100%). The stress shown is **{s['level']}** ({s['score'] * 100:.0f} out of "
             f"100), worked out from the emotions by {how}."]
    used = r["used"]
    if len(used) > 1:
        top = max(used, key=lambda m: r["modalities"][m]["weight"])
        lines.append(f"It combined the {' and the '.join(MODALITY_NAMES[m] for m in used)} and relied most on the "
                     f"**{MODALITY_NAMES[top]}** ({r['modalities'][top]['weight']:.0%} of its attention).")
        for m in used:
            if r["modalities"][m]["emotion"] != r["emotion"]:
                lines.append(f"On its own, the {MODALITY_NAMES[m]} says _{r['modalities'][m]['emotion']}_.")
    elif used:
        lines.append(f"It only had the {MODALITY_NAMES[used[0]]} to go on.")
    for m, info in r["modalities"].items():
        if m not in used:
            lines.append(f"The {MODALITY_NAMES[m]} {VERB[m]} not used: {reason(m, info['reason'])}.")
    for m, a in r["ablations"].items():
        if a["label_changed"]:
            lines.append(f"Without the {MODALITY_NAMES[m]} the answer would be _{a['emotion']}_ instead.")
    if r["timeline"]:
        seq = [w["emotion"] for w in r["timeline"]]
        moves = [e for i, e in enumerate(seq) if i == 0 or e != seq[i - 1]]
        lines.append("Over time it reads " + " → ".join(f"_{e}_" for e in moves) + ".")
    lines.append("This is a guess about the emotion *shown*, learned from actors, not a reading of what anyone "
                 "feels inside.")
    return "\n\n".join(lines)


def transcript(r: dict) -> tuple[str, str]:
    """The words used as plain text for a Textbox (never rendered), and its label: one "0.0-2.4 s: words" line per
    timed segment, on the timeline's clock, when the speech recogniser gave times; else the text as it came."""
    words = r["transcript"]
    segments = words.get("segments") or []
    if segments:
        return ("\n".join(f"{g['start']:.1f}-{g['end']:.1f} s: {g['text']}" for g in segments),
                f"the words used ({words['source']}), by time")
    return words["text"] or "", f"the words used ({words['source'] or 'none'})"


def receipts(ids: list[str]) -> str:
    """Every receipt this page saved, newest first, as selectable text."""
    if not ids:
        return ""
    items = "".join(f"<li><code>{esc(i)}</code></li>" for i in reversed(ids))
    return f"<div class='receipt-list'><p>Receipts saved from this page (newest first):</p><ul>{items}</ul></div>"


def public(result: dict) -> dict:
    """An analysis as the page and the API return it: no server path (a local model folder by its name only)."""
    source = result.get("model", {}).get("source")
    if isinstance(source, str) and (Path(source).is_absolute() or Path(source).exists()):
        result["model"]["source"] = Path(source).name
    return result


def clip_message(e: Exception, media: str | None) -> str:
    """A ClipError's message on one line, the upload named "the file" (never by its name or folder)."""
    text = " ".join(str(e).split())
    if media:
        name = Path(media).name
        lead, sep, rest = text.partition(": ")
        text = text.replace(name, "the file")
        if sep and lead not in ("nothing to analyse", "the file") and not lead.startswith("every"):
            text = f"the file: {rest}"
    return text


def save_failure(e: Exception) -> str:
    """Why a save failed, in one line with no path or errno (the log has the details)."""
    if isinstance(e, OSError):
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            return "the server's disk is full. Please try again later."
        return "the server could not write it. Please try again later."
    if isinstance(e, ValueError):
        return " ".join(str(e).split()).split(" (")[0]
    return "something went wrong on the server. Please try again later."
