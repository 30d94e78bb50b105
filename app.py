"""StressLab's Gradio app (a Hugging Face Space): give a clip, see the answer and why, switch modalities off,
correct it.

Thin wiring over the stresslab public API: no model code here. Settings are environment variables:
  STRESSLAB_MODEL         model folder or Hub id (default: the bundled models/default)
  STRESSLAB_WHISPER       a local Whisper checkpoint for transcripts (default: none, typed words only)
  STRESSLAB_MAX_SECONDS   longest clip accepted (default 120)
  STRESSLAB_THREADS       torch threads (default: the cores, at most 4)
  STRESSLAB_CONCURRENCY   analyses run at once (default 1: one analysis uses every core)
  STRESSLAB_FEEDBACK_DIR  the correction store (default ./feedback_store)
  STRESSLAB_FEEDBACK_REPO + HF_TOKEN (+ STRESSLAB_FEEDBACK_PUBLIC_REPO): push corrections to the Hub in the background
  GRADIO_SERVER_PORT      port (default 7860); GRADIO_SERVER_NAME: address (Gradio's default, 127.0.0.1)

API (gradio_client):
    from gradio_client import Client, handle_file
    Client("http://127.0.0.1:7860/").predict(handle_file("clip.mp4"), "", api_name="/analyze")
returns the JSON dict of `stresslab analyze --json` (docs/result-schema.md); /analyze_text takes words only.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import gradio as gr
import numpy as np

import stresslab
from stresslab.labels import CORPUS_LABELS
from ui import plots

logging.basicConfig(format="%(asctime)s %(name)s %(levelname)s: %(message)s")
log = logging.getLogger("stresslab.app")
log.setLevel(logging.INFO)
ROOT = Path(__file__).resolve().parent
EXAMPLES = ROOT / "data" / "examples"
FEEDBACK_DIR = Path(os.environ.get("STRESSLAB_FEEDBACK_DIR") or ROOT / "feedback_store")
CONCURRENCY = int(os.environ.get("STRESSLAB_CONCURRENCY", 1))
LIMITS = stresslab.ClipLimits()  # STRESSLAB_MAX_SECONDS, STRESSLAB_MAX_MB
NONE_OF_THESE = "none of these"
CREMAD = CORPUS_LABELS["cremad"]  # file-name code -> emotion, for the example labels
RATINGS = [("1 calm", 1), ("2", 2), ("3", 3), ("4", 4), ("5 very stressed", 5)]


# --- start-up: load once per process, warm up -------------------------------------------------------------------
def warm_up(model: stresslab.StressModel) -> float:
    """One tiny analysis of a synthetic clip (grey frames, a voiced tone, a few words), so that librosa's first-call
    compilation, the face detector, the towers (and Whisper when configured) are ready before the first visitor.
    Returns the seconds it took."""
    t0 = time.perf_counter()
    tone = (0.3 * np.sin(2 * np.pi * 180 * np.arange(16_000) / 16_000)).astype(np.float32)
    frames = np.full((4, 96, 128, 3), 128, np.uint8)
    clip = stresslab.Clip(frames=frames, frame_times=np.arange(4, dtype=np.float32) / 4, audio=tone, duration=1.0,
                          kind="arrays")
    stresslab.analyze(clip, model=model)  # transcribes the tone when Whisper is configured: loads it
    stresslab.analyze(None, text="warming up", model=model)
    return time.perf_counter() - t0


def model_card_link(model: stresslab.StressModel) -> tuple[str, Path | None]:
    """Where the model card of the loaded model can be read: (URL, local README.md or None)."""
    source = str(getattr(model, "source", "") or "")
    card = Path(source) / "README.md" if source and Path(source).is_dir() else None
    if card is None or not card.is_file():
        return (f"https://huggingface.co/{source}" if source else "https://huggingface.co/models"), None
    space = os.environ.get("SPACE_ID")  # set on Hugging Face Spaces
    if space and card.resolve().is_relative_to(ROOT):
        return f"https://huggingface.co/spaces/{space}/blob/main/{card.resolve().relative_to(ROOT)}", card
    return f"/gradio_api/file={card.resolve()}", card


def start_sync(store: stresslab.FeedbackStore) -> stresslab.HubSync | None:
    """Background Hub sync of corrections when HF_TOKEN and STRESSLAB_FEEDBACK_REPO are set; never blocks start-up."""
    try:
        return stresslab.HubSync.from_env(store)
    except Exception as e:  # a sync that cannot start must not take the app down: corrections stay local
        log.warning("corrections stay local, Hub sync did not start: %s", type(e).__name__)
        return None


stresslab.configure_threads()
MODEL = stresslab.load_model()
log.info("model %s (%s) loaded and warmed up in %.1f s", MODEL.config.name, MODEL.source, warm_up(MODEL))
CARD_URL, CARD_FILE = model_card_link(MODEL)
STORE = stresslab.FeedbackStore(FEEDBACK_DIR)
SYNC = start_sync(STORE)

NOTICE = f"""
**What this measures, and what not.** The emotion a face, a voice and words *express*, as learned from **acted**
recordings (actors performing six emotions), not what anyone feels inside. Stress is derived from those emotions
by a fixed rule, not measured. It is often wrong: on unacted speech, other languages and accents, faces turned
away, poor light, and for groups little present in the training data. Read the [model card]({CARD_URL}) for its
data, accuracy and limits.
**Do not use it to judge, screen or monitor people.** Inferring emotions at work or in education is prohibited in
the EU (AI Act, art. 5(1)(f)); it must not decide anything about anyone (hiring, grading, policing, health).
"""


# --- handlers -----------------------------------------------------------------------------------------------------
def _views(result: dict, frames: np.ndarray | None = None, times: np.ndarray | None = None,
           faces: bool = True) -> list:
    """The value of every result component for one analysis dict (the face gallery only when `faces`)."""
    words = result["transcript"]
    transcript = f"**Words** ({words['source']}): {words['text']}" if words["text"] else "**Words:** none"
    gallery = plots.face_frames(frames, times, result["faces"]) if faces else gr.skip()
    return [plots.headline(result), plots.fused_bar(result), plots.stress_gauge(result), plots.explanation(result),
            plots.modality_table(result), plots.modalities_bar(result), plots.weights_bar(result),
            plots.ablation_bar(result), plots.timeline(result), gallery, transcript, result]


def _skip(n: int) -> list:
    """n "leave it as it is" updates (distinct objects: Gradio consumes an update dict when it applies it)."""
    return [gr.skip() for _ in range(n)]


def _cleared_views() -> list:
    return ["", None, None, "", None, None, None, None, None, [], "", None]


def analyze_clip(video: str | None, audio: str | None, image: str | None, text: str | None, picked: str | None,
                 progress: gr.Progress = gr.Progress()) -> list:  # noqa: B008 (Gradio's way to ask for progress)
    """Decode the clip, run the towers once (kept in the session for the toggles), fuse, and show every view.
    `picked`: the bundled example last clicked; the player shows Gradio's mp4 copy of it, the original is analysed."""
    if video and picked and Path(video).stem == Path(picked).stem:
        video = picked
    media = video or audio or image or None
    try:
        progress(0.05, desc="decoding the clip")
        t0 = time.perf_counter()
        clip = stresslab.load_clip(media, text=text or None)
        decoded = time.perf_counter() - t0
        progress(0.2, desc="finding the face, listening to the voice, reading the words")
        encoded = stresslab.encode(clip, MODEL)
        encoded.timings = {"decode": decoded, **encoded.timings}
        progress(0.9, desc="fusing")
        analysis = stresslab.fuse(MODEL, encoded)
        analysis.timings["total"] = round(time.perf_counter() - t0, 5)
        result = analysis.to_dict()
    except Exception as e:
        message = _message(e)
        gr.Warning(message)
        no = [gr.update(value=True, interactive=True) for _ in stresslab.MODALITIES]  # new dicts: Gradio pops keys
        return [*_cleared_views(), None, *no, f"**Could not analyse:** {message}", gr.update(visible=False),
                *_skip(6)]
    session = {"encoded": encoded, "media": media, "result": result}
    present = [bool(encoded.present[0, j]) for j in range(len(stresslab.MODALITIES))]
    toggles = [gr.update(value=p, interactive=p) for p in present]  # a missing modality cannot be switched on
    what = f"{Path(media).name} ({clip.kind}, {clip.duration:.1f} s)" if media else "the typed words"
    status = (f"analysed {what} in {result['timings']['total']:.1f} s. Switch a modality off to see its effect, "
              "or correct the answer below.")
    correction = [gr.update(visible=True), result["emotion"], None, "", False, False, ""]
    return [*_views(result, clip.frames, clip.frame_times), session, *toggles, status, *correction]


def fuse_again(video_on: bool, audio_on: bool, text_on: bool, session: dict | None) -> list:
    """Rerun the fusion only, with the unticked modalities switched off: no decoding, no towers."""
    if not session:
        return [*_skip(13), "analyse a clip first", *_skip(3)]
    enabled = {"video": video_on, "audio": audio_on, "text": text_on}
    try:
        result = stresslab.fuse(MODEL, session["encoded"], enabled=enabled).to_dict()
    except Exception as e:
        message = _message(e)
        gr.Warning(message)
        shown = session["result"]["modalities"]  # put the boxes back as they were for the answer shown
        return [*_skip(13), f"**Not fused again:** {message}", *[shown[m]["enabled"] and shown[m]["present"]
                                                                 for m in stresslab.MODALITIES]]
    off = [plots.MODALITY_NAMES[m] for m, on in enabled.items() if not on and result["modalities"][m]["present"]]
    status = f"fused again without the {' and the '.join(off)}" if off else "fused again with every modality"
    return [*_views(result, faces=False), {**session, "result": result}, status, *_skip(3)]


def _message(e: Exception) -> str:
    """A clear one-line message for the page; unexpected errors are logged with their trace, never shown."""
    if isinstance(e, stresslab.ClipError):
        return str(e)
    log.exception("analysis failed")
    return f"the analysis failed unexpectedly ({type(e).__name__}); try another clip. The error was logged."


def analyze_api(media: str | None, text: str | None) -> dict:
    """The /analyze endpoint: a media file (or none) and typed words -> the analysis JSON (docs/result-schema.md)."""
    try:
        return stresslab.analyze(media or None, text=text or None, model=MODEL).to_dict()
    except Exception as e:
        raise gr.Error(_message(e), print_exception=False) from None


def analyze_text_api(text: str) -> dict:
    """The /analyze_text endpoint: words only -> the analysis JSON."""
    return analyze_api(None, text)


def save_correction(session: dict | None, emotion: str | None, rating: int | None, note: str | None,
                    keep: bool, share: bool) -> str:
    """Save the correction through the FeedbackStore and return the receipt (or why it was not saved)."""
    if not session:
        return "Analyse a clip first, then correct it."
    if not emotion:
        return "Choose the right emotion (or *none of these*) first."
    media = session["media"] if keep else None
    try:
        record = STORE.add(
            emotion=None if emotion == NONE_OF_THESE else emotion, stress_rating=int(rating) if rating else None,
            note=(note or "").strip(), transcript=session["result"]["transcript"]["text"],
            model_output=session["result"], consent_keep_media=bool(keep and media), consent_share=bool(share),
            app_version=stresslab.__version__, model_version=str(session["result"]["model"]["version"]),
            media_path=media)
    except (ValueError, OSError) as e:
        log.warning("correction not saved: %s", e)
        return f"**Not saved:** {e}"
    if SYNC is not None:
        SYNC.nudge()
    kept = "with your clip" if record.media else "without any clip"
    return (f"Saved, {kept}{' (may be shared publicly)' if record.consent_share else ''}. Your receipt: "
            f"`{record.id}`. Keep it: with it you can erase this correction at any time (below).")


def erase_correction(receipt: str | None) -> str:
    """Erase a saved correction (and its clip) by its receipt id."""
    try:
        done = STORE.erase((receipt or "").strip().strip("`"))
    except ValueError as e:
        return str(e)
    if done and SYNC is not None:
        SYNC.nudge()
    return "Erased, with its clip." if done else "No correction with that receipt (already erased?)."


def _only_one_media(value: str | None) -> list:
    """A new clip in one input clears the others, so it is clear which one is analysed."""
    return [gr.skip(), gr.skip()] if value is None else [None, None]


# --- layout -------------------------------------------------------------------------------------------------------
def _example_name(path: Path) -> str:
    """'anger · actor 1001' for a CREMA-D file name (ACTOR_SENTENCE_EMOTION_LEVEL), else the file name."""
    parts = path.stem.split("_")
    return f"{CREMAD[parts[2]]} · actor {parts[0]}" if len(parts) > 2 and parts[2] in CREMAD else path.name


def _examples(suffix: str, component: gr.components.Component, picked: gr.State, elem_id: str) -> None:
    """Buttons that load a bundled CREMA-D clip into `component` and remember it in `picked`. (gr.Examples would
    convert every flv to a browser-playable mp4 at start-up for its previews; this converts the one picked.)"""
    paths = sorted(EXAMPLES.glob(f"*{suffix}"))
    if not paths:
        return
    names = [_example_name(p) for p in paths]
    label = f"CREMA-D examples ({'video' if suffix == '.flv' else 'voice only'}; ODbL, see data/examples)"
    picker = gr.Dataset(components=["text"], samples=[[n] for n in names], type="index", label=label,
                        samples_per_page=6, elem_id=elem_id)
    picker.click(lambda i: (str(paths[i]), str(paths[i])), picker, [component, picked], api_visibility="private")


def build() -> gr.Blocks:
    """The page: inputs on the left, the answer and its reasons on the right, corrections below."""
    # delete_cache: uploads and recordings (people's faces and voices) leave Gradio's cache after an hour
    with gr.Blocks(title="StressLab", analytics_enabled=False, delete_cache=(1800, 3600)) as demo:
        session = gr.State(None)
        picked = gr.State(None)  # the bundled example last clicked
        gr.Markdown("# StressLab\nWhich emotion a clip shows, how stressed the person seems, and **why**.")
        gr.Markdown(NOTICE, elem_id="notice")
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                with gr.Tab("Video", elem_id="tab-video"):
                    video = gr.Video(sources=["upload", "webcam"], include_audio=True, elem_id="upload-video",
                                     label=f"a video with sound, up to {LIMITS.max_seconds:.0f} s: upload one or "
                                     "record with the webcam")
                    _examples(".flv", video, picked, "examples-video")
                with gr.Tab("Audio", elem_id="tab-audio"):
                    audio = gr.Audio(sources=["microphone", "upload"], type="filepath", elem_id="upload-audio",
                                     label=f"a voice, up to {LIMITS.max_seconds:.0f} s: record or upload")
                    _examples(".mp3", audio, picked, "examples-audio")
                with gr.Tab("Face image", elem_id="tab-image"):
                    image = gr.Image(type="filepath", label="a photo of a face", elem_id="upload-image")
                text = gr.Textbox(label="words (optional; typed words replace any transcript)", lines=2,
                                  elem_id="text-input", placeholder="e.g. I can't believe you did that")
                button = gr.Button("Analyse", variant="primary", elem_id="analyze-btn")
                status = gr.Markdown("Give a clip, or type a sentence, and press **Analyse**.", elem_id="status")
            with gr.Column(scale=2):
                headline = gr.Markdown(elem_id="headline")
                with gr.Row():
                    fused = gr.Plot(elem_id="fused-plot", show_label=False, min_width=320)
                    gauge = gr.Plot(elem_id="stress-gauge", show_label=False, min_width=320)
                explanation = gr.Markdown(elem_id="explanation")
                table = gr.Dataframe(headers=["modality", "its own answer", "attention", "status"], wrap=True,
                                     column_widths=["20%", "20%", "12%", "48%"], elem_id="modality-table",
                                     interactive=False, label="each modality on its own")
                gr.Markdown("**Switch a modality off** to see how the answer changes (reruns the fusion only):")
                with gr.Row():
                    toggles = [gr.Checkbox(True, label=f"use the {plots.MODALITY_NAMES[m]}", elem_id=f"toggle-{m}")
                               for m in stresslab.MODALITIES]
                per_modality = gr.Plot(elem_id="modalities-plot", show_label=False)
                with gr.Row():
                    weights = gr.Plot(elem_id="attention-plot", show_label=False, min_width=320)
                    ablation = gr.Plot(elem_id="ablation-plot", show_label=False, min_width=320)
                timeline = gr.Plot(elem_id="timeline-plot", show_label=False)
                faces = gr.Gallery(label="the face the video branch saw (box drawn)", columns=4, height="auto",
                                   elem_id="faces-gallery", allow_preview=True)
                transcript = gr.Markdown(elem_id="transcript")
                with gr.Accordion("the result as JSON (the API's answer)", open=False):
                    raw = gr.JSON(elem_id="raw-json")
        with gr.Group(visible=False, elem_id="correction-panel") as correction_panel:
            gr.Markdown("### Was it wrong? Correct it\nYour correction helps build a real, non-acted data set. "
                        "Only the labels and the answer shown above are kept unless you tick *keep my clip*.",
                        padding=True)
            with gr.Row():
                emotion = gr.Dropdown([*stresslab.EMOTIONS, NONE_OF_THESE], label="the emotion it really shows",
                                      elem_id="correct-emotion")
                rating = gr.Radio(RATINGS, label="stress shown, 1 (calm) to 5 (very stressed)", value=None,
                                  elem_id="correct-stress")
            note = gr.Textbox(label="note (optional)", elem_id="correct-note")
            with gr.Row():
                keep = gr.Checkbox(False, label="keep my clip (the video or audio file) with this correction",
                                   elem_id="consent-keep")
                share = gr.Checkbox(False, label="share it publicly (in an open data set for research)",
                                    elem_id="consent-share")
            save = gr.Button("Save correction", elem_id="save-correction")
            receipt = gr.Markdown(elem_id="receipt", padding=True)
        with gr.Accordion("Erase a saved correction", open=False, elem_id="erase-panel"):
            with gr.Row():
                erase_id = gr.Textbox(label="receipt", placeholder="the 32-character receipt", elem_id="erase-id")
                erase = gr.Button("Erase", elem_id="erase-btn")
            erased = gr.Markdown(elem_id="erase-status")
        with gr.Accordion("Model card", open=False, elem_id="model-card"):
            gr.Markdown(_card_text())

        views = [headline, fused, gauge, explanation, table, per_modality, weights, ablation, timeline, faces,
                 transcript, raw]
        corrections = [correction_panel, emotion, rating, note, keep, share, receipt]
        media = [video, audio, image]
        for comp in media:
            comp.change(_only_one_media, comp, [c for c in media if c is not comp], queue=False,
                        api_visibility="private")
        button.click(analyze_clip, [*media, text, picked], [*views, session, *toggles, status, *corrections],
                     concurrency_id="analysis", concurrency_limit=CONCURRENCY, api_visibility="private")
        text.submit(analyze_clip, [*media, text, picked], [*views, session, *toggles, status, *corrections],
                    concurrency_id="analysis", api_visibility="private")
        for t in toggles:
            t.input(fuse_again, [*toggles, session], [*views, session, status, *toggles], trigger_mode="always_last",
                    api_visibility="private")
        save.click(save_correction, [session, emotion, rating, note, keep, share], receipt, api_visibility="private")
        erase.click(erase_correction, erase_id, erased, api_visibility="private")

        # API-only endpoints (no visible component): gradio_client.Client(url).predict(..., api_name="/analyze")
        api_media = gr.File(label="media", visible=False)
        api_text, api_out = gr.Textbox(label="text", visible=False), gr.JSON(label="analysis", visible=False)
        gr.Button(visible=False).click(analyze_api, [api_media, api_text], api_out, api_name="analyze",
                                       concurrency_id="analysis")
        gr.api(analyze_text_api, api_name="analyze_text", concurrency_id="analysis")
    return demo


def _card_text() -> str:
    """The model card's text without its YAML front matter (or where to find it)."""
    if CARD_FILE is None:
        return f"The model card is at {CARD_URL}."
    text = CARD_FILE.read_text(encoding="utf-8")
    if text.startswith("---"):
        text = text.split("---", 2)[-1]
    return text


demo = build()
demo.queue(default_concurrency_limit=2, max_size=32)

if __name__ == "__main__":
    demo.launch(server_port=int(os.environ.get("GRADIO_SERVER_PORT", 7860)), show_error=False, ssr_mode=False,
                max_file_size=LIMITS.max_bytes, allowed_paths=[str(CARD_FILE)] if CARD_FILE else None)
