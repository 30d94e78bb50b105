"""The page's components and their places (app.py wires the events): inputs, Analyse, the status line and the
correction form on the left, so that a keyboard goes from Analyse to Save in a few Tab presses and a phone shows
Analyse in the first screen; the answer and its reasons on the right; teaching, erasing and the model card below."""

import os
from pathlib import Path
from types import SimpleNamespace

import gradio as gr

import stresslab
from ui import page, retention, teaching
from ui.plots import MODALITY_NAMES

RATINGS = [("1 calm", 1), ("2", 2), ("3", 3), ("4", 4), ("5 very stressed", 5)]
NONE_OF_THESE = "none of these"


def _where(app) -> str:
    """Where saved corrections go, in words."""
    targets = getattr(app.sync, "targets", None) or []
    private = [r for r, is_private in targets if is_private]
    public = [r for r, is_private in targets if not is_private]
    where = f", copied to the private Hugging Face data set {private[0]}" if private else ""
    if public:
        where += f"; shared ones also to the public data set {public[0]}"
    return where


def _card(app) -> str:
    """The model card's text without its YAML front matter (or where to find it)."""
    if app.card_file is None:
        return f"The model card is at {app.card_url}." if app.card_url else "This model has no model card."
    text = Path(app.card_file).read_text(encoding="utf-8")
    return text.split("---", 2)[-1] if text.startswith("---") else text


def _picker(app, c: SimpleNamespace, suffix: str, which: str) -> None:
    """Buttons that load a bundled CREMA-D clip into an input (gr.Examples would convert every flv at start-up)."""
    paths = [p for p in app.examples if p.suffix == suffix]
    if not paths:
        return
    label = f"or try an example: {'video' if which == 'video' else 'voice only'} (CREMA-D, ODbL, see data/examples)"
    picker = gr.Dataset(components=["text"], samples=[[teaching.example_name(p)] for p in paths], type="index",
                        label=label, samples_per_page=6, elem_id=f"examples-{which}")
    c.pickers.append((picker, paths))


def layout(app) -> tuple[gr.Blocks, SimpleNamespace]:
    """Build the page for `app` (ui needs: examples, card_url/card_file, sync, mistakes, analyzer, state_expired);
    returns the Blocks and a namespace of its components."""
    c = SimpleNamespace(pickers=[], concurrency=int(os.environ.get("STRESSLAB_CONCURRENCY", 1)))
    limits = stresslab.ClipLimits()
    card = app.card_url or "#model-card"
    with gr.Blocks(title="StressLab", analytics_enabled=False, delete_cache=(600, 3600)) as demo:
        c.session = gr.State(None, time_to_live=3600, delete_callback=app.state_expired)
        c.receipts = gr.State([])
        c.loaded = gr.Number(0, visible=False, elem_id="loaded", precision=0)
        gr.Markdown("# StressLab\nWhich emotion a clip shows, how stressed the person seems, and **why**.",
                    elem_id="title")
        gr.Markdown(page.NOTICE, elem_id="notice")
        with gr.Accordion("more: what it measures; your data", open=False, elem_id="notice-more"):
            gr.Markdown(page.NOTICE_MORE.format(card=card, retention=retention.RETENTION))
        with gr.Row(equal_height=False, elem_id="main-row"):
            with gr.Column(scale=1, min_width=300, elem_id="left-col"):
                with gr.Tabs(elem_id="inputs") as c.tabs:
                    with gr.Tab("Video", id="video", elem_id="tab-video"):
                        video = gr.Video(sources=["upload", "webcam"], include_audio=True, elem_id="upload-video",
                                         label=f"a video with sound, up to {limits.max_seconds:.0f} s", height=300)
                    with gr.Tab("Audio", id="audio", elem_id="tab-audio"):
                        audio = gr.Audio(sources=["microphone", "upload"], type="filepath", elem_id="upload-audio",
                                         label=f"a voice, up to {limits.max_seconds:.0f} s")
                    with gr.Tab("Face image", id="image", elem_id="tab-image"):
                        image = gr.Image(type="filepath", label="a photo of a face", elem_id="upload-image",
                                         height=240)
                c.media = {"video": video, "audio": audio, "image": image}
                c.text = gr.Textbox(label="words: type what was said to include them (optional; Enter analyses)",
                                    lines=1, max_lines=4, elem_id="text-input",
                                    placeholder="e.g. I can't believe you did that")
                c.button = gr.Button("Analyse", variant="primary", elem_id="analyze-btn")
                c.status = gr.HTML(page.status("Give a clip, or type a sentence, and press Analyse."),
                                   elem_id="status")
                with gr.Group(visible=False, elem_id="correction-panel") as c.correction:
                    gr.Markdown("### Was it wrong? Correct it\n" + page.CONSENT_INTRO.format(where=_where(app)),
                                padding=True)
                    c.emotion = gr.Dropdown([*stresslab.EMOTIONS, NONE_OF_THESE], value=None,
                                            label="the emotion it really shows", info=page.CHOOSE,
                                            elem_id="correct-emotion")
                    c.rating = gr.Radio(RATINGS, label="stress shown, 1 (calm) to 5 (very stressed)", value=None,
                                        elem_id="correct-stress")
                    c.note = gr.Textbox(label="note (optional)", elem_id="correct-note", lines=1)
                    c.keep = gr.Checkbox(False, label=page.KEEP_LABEL, elem_id="consent-keep")
                    c.share = gr.Checkbox(False, label=page.SHARE_LABEL, elem_id="consent-share")
                    c.save = gr.Button("Save correction", elem_id="save-correction")
                    c.save_status = gr.HTML(elem_id="save-status", padding=True)
                    c.receipt = gr.Textbox(label="your receipt (copy it to erase later)", visible=False,
                                           interactive=False, buttons=["copy"], elem_id="receipt")
                c.receipt_list = gr.HTML(elem_id="receipt-list")
                _picker(app, c, ".flv", "video")
                _picker(app, c, ".mp3", "audio")
            with gr.Column(scale=2, elem_id="results") as c.results:
                c.stale = gr.HTML(visible=False, elem_id="stale-note")
                c.headline = gr.HTML(elem_id="headline")
                with gr.Row():
                    c.fused = gr.Plot(elem_id="fused-plot", show_label=False, min_width=300)
                    c.gauge = gr.Plot(elem_id="stress-gauge", show_label=False, min_width=300)
                c.explanation = gr.Markdown(elem_id="explanation")
                c.table = gr.HTML(elem_id="modality-table")
                gr.Markdown("**Switch a modality off** to see how the answer changes (reruns the fusion only):")
                with gr.Row():
                    c.toggles = {m: gr.Checkbox(True, label=f"use the {MODALITY_NAMES[m]}", elem_id=f"toggle-{m}")
                                 for m in stresslab.MODALITIES}
                    c.all_on = gr.Button("all modalities back on", size="sm", elem_id="all-on")
                c.per_modality = gr.Plot(elem_id="modalities-plot", show_label=False)
                c.diagram = gr.Plot(elem_id="fusion-diagram", show_label=False)
                with gr.Row():
                    c.weights = gr.Plot(elem_id="attention-plot", show_label=False, min_width=300)
                    c.ablation = gr.Plot(elem_id="ablation-plot", show_label=False, min_width=300)
                c.timeline = gr.Plot(elem_id="timeline-plot", show_label=False)
                c.words = gr.Textbox(label="the words used", interactive=False, visible=False,
                                     elem_id="transcript")  # under the timeline: the same clock
                c.gallery = gr.Gallery(label="faces seen, and what the face alone said", columns=4, height="auto",
                                       elem_id="faces-gallery", allow_preview=False, visible=False,
                                       object_fit="contain", interactive=False, buttons=[])
                with gr.Accordion("the result as JSON (the API's answer)", open=False, elem_id="json-panel"):
                    c.raw = gr.JSON(elem_id="raw-json")
        with gr.Accordion("For teaching: how good the model is, and where it goes wrong", open=False,
                          elem_id="teaching") as c.teaching:
            c.mistakes = gr.HTML("<p>Running the model over the bundled examples…</p>", elem_id="mistakes")
            table, confusion = teaching.measured(app.card_file.parent if app.card_file else None)
            gr.HTML(table, elem_id="measured")
            if confusion is not None:
                gr.Plot(confusion, elem_id="confusion-plot", show_label=False)
        with gr.Accordion("Erase a saved correction", open=False, elem_id="erase-panel"):
            c.erase_id = gr.Textbox(label="receipt (any letter case)", placeholder="the 32-character receipt",
                                    elem_id="erase-id", lines=1)
            c.erase_button = gr.Button("Erase", elem_id="erase-btn")
            c.erase_status = gr.HTML(elem_id="erase-status")
        with gr.Accordion("Model card", open=False, elem_id="model-card"):
            gr.Markdown(_card(app))
        c.api_media = gr.File(label="media", visible=False)
        c.api_text, c.api_out = gr.Textbox(label="text", visible=False), gr.JSON(label="analysis", visible=False)
        c.api_button = gr.Button(visible=False)
    return demo, c
