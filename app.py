"""StressLab's Gradio app (a Hugging Face Space): upload or record a clip, see the answer and why, correct it.

Thin wiring over the stresslab API: no model code here. Settings by environment variables (README.md):
STRESSLAB_MODEL, STRESSLAB_WHISPER, STRESSLAB_MAX_SECONDS, STRESSLAB_FEEDBACK_DIR, STRESSLAB_FEEDBACK_REPO,
STRESSLAB_FEEDBACK_PUBLIC_REPO, HF_TOKEN, STRESSLAB_THREADS, GRADIO_SERVER_PORT.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import gradio as gr
import numpy as np

import app_plots as plots
import stresslab
from stresslab.cli import configure_threads

ROOT = Path(__file__).resolve().parent
EXAMPLES = sorted((ROOT / "data" / "examples").glob("*.flv")) + sorted((ROOT / "data" / "examples").glob("*.mp3"))
MODEL_CARD = "https://huggingface.co/spaces/stresslab/stresslab/blob/main/models/default/README.md"
CHOICES = [*stresslab.EMOTIONS, "none of these"]
log = logging.getLogger("stresslab.app")

NOTICE = """
**What this measures.** The emotion a clip *expresses*, as learned from acted recordings (faces, voices and
sentences performed by actors), not what anyone feels inside. Stress is derived from the emotions shown.
Read the [model card](models/default/README.md) for its data, accuracy and limits. **Do not use it to judge people:**
emotion recognition at work and in education is prohibited in the EU (AI Act, art. 5(1)(f)).
"""


def _setup():
    configure_threads()
    model = stresslab.load_model()
    # warm-up on a synthetic clip: librosa's JIT, the face detector and the towers are ready before the first user
    tone = (0.3 * np.sin(2 * np.pi * 180 * np.arange(16000) / 16000)).astype(np.float32)
    stresslab.analyze(stresslab.load_clip((16000, tone), text="warming up"), model=model)
    store = stresslab.FeedbackStore(os.environ.get("STRESSLAB_FEEDBACK_DIR", ROOT / "feedback_store"))
    return model, store, stresslab.HubSync.from_env(store)


MODEL, STORE, SYNC = _setup()


def _media(video, audio, image) -> str | None:
    return video or audio or image or None


def _views(result: dict, clip) -> tuple:
    """Every output component's value for one analysis dict."""
    frames = getattr(clip, "frames", None)
    times = getattr(clip, "frame_times", None)
    transcript = result["transcript"]["text"] or "(no words)"
    src = result["transcript"]["source"]
    head = (f"## {result['emotion']} · {result['confidence']:.0%}\n"
            f"stress **{result['stress']['level']}** ({result['stress']['score']:.2f})")
    return (head, plots.fused_bar(result), plots.stress_gauge(result), plots.modality_table(result),
            plots.modalities_bar(result), plots.weights_bar(result), plots.ablation_bar(result),
            plots.timeline(result), plots.face_frames(frames, times, result["faces"]),
            f"{transcript}" + (f"  _(from {src})_" if src else ""), plots.explanation(result), result)


def analyze_clip(video, audio, image, text, progress=gr.Progress()):  # noqa: B008 (Gradio's idiom)
    """Decode, encode (towers once), fuse; keeps the encoded clip in the session for the toggles."""
    media = _media(video, audio, image)
    try:
        progress(0.1, desc="decoding")
        clip = stresslab.load_clip(media, text=text or None)
        progress(0.3, desc="faces, voice and words")
        encoded = stresslab.encode(clip, MODEL)
        progress(0.9, desc="fusion")
        result = stresslab.fuse(MODEL, encoded).to_dict()
    except stresslab.ClipError as e:
        raise gr.Error(str(e), print_exception=False) from None
    except Exception as e:  # never a stack trace in the page; the server keeps serving
        log.exception("analysis failed")
        raise gr.Error(f"the analysis failed: {type(e).__name__}. Try another clip.", print_exception=False) from None
    session = {"encoded": encoded, "media": media, "result": result}
    toggles = [gr.update(value=True, interactive=bool(encoded.present[0, j])) for j in range(3)]
    return (*_views(result, clip), session, *toggles, "analysed: correct it below if it is wrong")


def refuse(video_on, audio_on, text_on, session):
    """Fusion-only rerun with modalities switched off: no decoding, no encoders."""
    if not session:
        raise gr.Error("analyse a clip first", print_exception=False)
    enabled = {"video": video_on, "audio": audio_on, "text": text_on}
    try:
        result = stresslab.fuse(MODEL, session["encoded"], enabled=enabled).to_dict()
    except stresslab.NothingToAnalyze as e:
        raise gr.Error(str(e), print_exception=False) from None
    views = _views(result, None)
    return (*views[:8], gr.update(), *views[9:], {**session, "result": result})  # the face gallery stays


def analyze_api(media: str | None, text: str = "") -> dict:
    """The /analyze API: a media file (or none) and typed text -> the analysis JSON (docs/result-schema.md)."""
    try:
        return stresslab.analyze(media or None, text=text or None, model=MODEL).to_dict()
    except stresslab.ClipError as e:
        raise gr.Error(str(e), print_exception=False) from None


def save_correction(session, emotion, stress, note, keep, share):
    if not session:
        raise gr.Error("analyse a clip first, then correct it", print_exception=False)
    try:
        record = STORE.add(
            emotion=None if emotion in (None, "none of these") else emotion,
            stress_rating=int(stress) if stress else None,
            note=note or "", transcript=session["result"]["transcript"]["text"], model_output=session["result"],
            consent_keep_media=bool(keep), consent_share=bool(share), app_version=stresslab.__version__,
            model_version=str(session["result"]["model"]["version"]), media_path=session["media"] if keep else None)
    except (ValueError, OSError) as e:
        raise gr.Error(f"not saved: {e}", print_exception=False) from None
    if SYNC is not None:
        SYNC.nudge()
    return f"Saved. Your receipt: `{record.id}` (keep it to erase this record later)."


def erase_correction(receipt):
    try:
        done = STORE.erase((receipt or "").strip().strip("`"))
    except ValueError as e:
        raise gr.Error(str(e), print_exception=False) from None
    return "Erased, with its media." if done else "No record with that receipt."


def build() -> gr.Blocks:
    with gr.Blocks(title="StressLab") as demo:
        session = gr.State(None)
        gr.Markdown("# StressLab\nWhich emotion a clip shows, how stressed the person seems, and **why**.")
        gr.Markdown(NOTICE, elem_id="notice")
        with gr.Row():
            with gr.Column(scale=1):
                with gr.Tab("Video"):
                    video = gr.Video(sources=["webcam", "upload"], include_audio=True, label="video (webcam or file)",
                                     elem_id="upload-video")
                with gr.Tab("Audio"):
                    audio = gr.Audio(sources=["microphone", "upload"], type="filepath", label="voice",
                                     elem_id="upload-audio")
                with gr.Tab("Face image"):
                    image = gr.Image(type="filepath", label="a face", elem_id="upload-image")
                text = gr.Textbox(label="words (optional: typed words override the transcript)", elem_id="text-input")
                button = gr.Button("Analyse", variant="primary", elem_id="analyze-btn")
                status = gr.Markdown("", elem_id="status")
                if EXAMPLES:
                    gr.Examples([[str(p)] for p in EXAMPLES if p.suffix == ".flv"], inputs=[video],
                                label="CREMA-D examples (ODbL; see data/examples/README.md)")
                    gr.Examples([[str(p)] for p in EXAMPLES if p.suffix == ".mp3"], inputs=[audio], label="voice only")
            with gr.Column(scale=2):
                headline = gr.Markdown(elem_id="headline")
                with gr.Row():
                    fused = gr.Plot(elem_id="fused-plot", show_label=False)
                    gauge = gr.Plot(elem_id="stress-gauge", show_label=False)
                table = gr.Dataframe(headers=["modality", "its own answer", "attention weight", "status"],
                                     elem_id="modality-table", interactive=False)
                with gr.Row():
                    toggles = [gr.Checkbox(True, label=f"use {plots.MODALITY_NAMES[m]}", elem_id=f"toggle-{m}")
                               for m in stresslab.MODALITIES]
                explanation = gr.Markdown(elem_id="explanation")
                per_modality = gr.Plot(elem_id="modalities-plot", show_label=False)
                with gr.Row():
                    weights = gr.Plot(elem_id="weights-plot", show_label=False)
                    ablation = gr.Plot(elem_id="ablation-plot", show_label=False)
                timeline = gr.Plot(elem_id="timeline-plot", show_label=False)
                faces = gr.Gallery(label="faces the video branch used", columns=4, height=220, elem_id="faces-gallery")
                transcript = gr.Markdown(elem_id="transcript")
                with gr.Accordion("the result as JSON", open=False):
                    raw = gr.JSON(elem_id="raw-json")
        with gr.Accordion("Was it wrong? Correct it (helps build a real, non-acted data set)", open=True):
            with gr.Row():
                emotion = gr.Dropdown(CHOICES, label="the right emotion", elem_id="correct-emotion")
                stress = gr.Slider(1, 5, step=1, value=3, label="stress shown (1 calm - 5 very stressed)",
                                   elem_id="correct-stress")
                note = gr.Textbox(label="note (optional)", elem_id="correct-note")
            with gr.Row():
                keep = gr.Checkbox(False, label="keep my clip (otherwise only the labels and the result are kept)",
                                   elem_id="consent-keep")
                share = gr.Checkbox(False, label="it may be shared in a public data set", elem_id="consent-share")
            save = gr.Button("Save correction", elem_id="save-correction")
            receipt = gr.Markdown(elem_id="receipt")
            with gr.Row():
                erase_id = gr.Textbox(label="erase a record by its receipt", elem_id="erase-id")
                erase = gr.Button("Erase", elem_id="erase-btn")
                erased = gr.Markdown(elem_id="erase-status")

        views = [headline, fused, gauge, table, per_modality, weights, ablation, timeline, faces, transcript,
                 explanation, raw]
        button.click(analyze_clip, [video, audio, image, text], [*views, session, *toggles, status],
                     api_visibility="private")
        for t in toggles:
            t.input(refuse, [*toggles, session], [*views, session], api_visibility="private")
        save.click(save_correction, [session, emotion, stress, note, keep, share], receipt, api_visibility="private")
        erase.click(erase_correction, erase_id, erased, api_visibility="private")
        api_media, api_text, api_out = gr.File(visible=False), gr.Textbox(visible=False), gr.JSON(visible=False)
        api_button = gr.Button(visible=False)
        api_button.click(analyze_api, [api_media, api_text], api_out, api_name="analyze")
    return demo


demo = build()
demo.queue(default_concurrency_limit=int(os.environ.get("STRESSLAB_CONCURRENCY", 2)), max_size=32)

if __name__ == "__main__":
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"),
                server_port=int(os.environ.get("GRADIO_SERVER_PORT", 7860)), show_error=False,
                allowed_paths=[str(ROOT / "data" / "examples")])
