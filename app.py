"""StressLab's Gradio app (a Hugging Face Space). Page wiring only: the analysis is stresslab.Analyzer's, the record
stresslab's, the words, figures, teaching views and upload lifetimes ui/'s.

Settings are environment variables:
  STRESSLAB_MODEL         model folder or Hub id (default: the bundled models/default)
  STRESSLAB_WHISPER       a local Whisper checkpoint for transcripts (default: none, typed words only)
  STRESSLAB_MAX_SECONDS   longest clip accepted (default 120)
  STRESSLAB_THREADS       torch threads (default: the cores, at most 4)
  STRESSLAB_CONCURRENCY   analyses run at once (default 1: one analysis uses every core)
  STRESSLAB_QUEUE         requests waiting at most (default 32; more get "queue is full")
  STRESSLAB_FEEDBACK_DIR  the correction store (default ./feedback_store)
  STRESSLAB_FEEDBACK_REPO + HF_TOKEN (+ STRESSLAB_FEEDBACK_PUBLIC_REPO): push corrections to the Hub in the background
  GRADIO_TEMP_DIR         uploads while their page is open (default: <tmp>/stresslab-app-PORT, emptied at start)
  GRADIO_SERVER_PORT      port (default 7860); GRADIO_SERVER_NAME: address (Gradio's default, 127.0.0.1)

API (gradio_client):
    from gradio_client import Client, handle_file
    Client("http://127.0.0.1:7860/").predict(handle_file("clip.mp4"), "", api_name="/analyze")
returns the JSON dict of `stresslab analyze --json` (docs/result-schema.md) without the clip's path or name;
/analyze_text takes words only.
"""

import logging
import os
import threading
import time
import traceback
from pathlib import Path
from types import SimpleNamespace

import gradio as gr

import stresslab
from ui import live, page, plots, retention, teaching
from ui.collections import tab as collections_tab
from ui.inputs import LoadedInputs
from ui.layout import layout

log = logging.getLogger("stresslab.app")
ROOT = Path(__file__).resolve().parent
EXAMPLES = ROOT / "data" / "examples"
NONE_OF_THESE = "none of these"


class App:
    """Everything the page's handlers share: the analyzer, the store, Hub sync, the teaching data, each session's
    files and loaded input. build() makes the page; handlers return {component: value} maps."""

    def __init__(self, analyzer: stresslab.Analyzer, store: stresslab.FeedbackStore, sync=None,
                 files: retention.SessionFiles | None = None, examples: Path = EXAMPLES, teach: bool = False):
        self.analyzer, self.store, self.sync = analyzer, store, sync
        self.examples = sorted(p for p in examples.glob("*") if p.suffix in (".flv", ".mp3"))
        self.bundled = {p.stem: p for p in self.examples}
        self.files = files or retention.SessionFiles(retention.cache_folder(), keep=set(self.examples))
        self.loaded = LoadedInputs()  # the guard against answering about another clip (ui/inputs.py)
        self.card_url, self.card_file = analyzer.model_card()
        self.mistakes: tuple[list[teaching.Mistake], int] = ([], 0)
        self._teaching = threading.Thread(target=self._find_mistakes, daemon=True, name="teaching")
        if teach:  # in the background: the page is served meanwhile (main() starts it once the server is up)
            self._teaching.start()
        self.c = SimpleNamespace()  # the page's components, filled by build()

    def _find_mistakes(self) -> None:
        t0 = time.perf_counter()
        try:
            self.mistakes = teaching.mistakes(self._example_result, self.examples)
        except Exception as e:  # the teaching view says so; the app keeps serving
            log.warning("teaching: the bundled examples could not be analysed: %s", type(e).__name__)
        log.info("teaching: %d bundled examples analysed in %.1f s", self.mistakes[1], time.perf_counter() - t0)

    def teaching_html(self) -> str:
        """The mistakes table, once the background run over the bundled examples is done."""
        if self._teaching.is_alive():
            self._teaching.join(timeout=120)
        return teaching.mistakes_html(*self.mistakes)

    # --- inputs -------------------------------------------------------------------------------------------------
    def media_changed(self, which: str, value: str | None, request: gr.Request) -> dict:
        """An input got a new file (upload, recording, example) or was cleared: the others are cleared, the results
        marked stale, and the server's idea of what the player shows is updated."""
        sid = request.session_hash
        self.files.add(sid, value)
        loaded, c = self.loaded.get(sid), self.c
        if value is None:
            if loaded.source != which:
                return {c.loaded: gr.skip()}
            version = self.loaded.set(sid, None, None)
            return {c.loaded: version, **self._stale("the input was cleared")}
        if Path(value).stem in self.bundled:  # the player shows a clicked example (its mp4 copy): set on click
            return {c.loaded: loaded.version}
        if value == loaded.media and which == loaded.source:  # the page now shows what was loaded: no change
            return {c.loaded: loaded.version}
        media = value
        version = self.loaded.set(sid, media, which)
        others = [comp for name, comp in c.media.items() if name != which]
        return {**{comp: None for comp in others}, c.loaded: version, **self._stale("a new input is loaded")}

    def pick_example(self, path: Path, clicked: float | None, request: gr.Request) -> dict:
        """A bundled example clicked: load it into its input (the original file is what gets analysed). Clicks are
        loaded one at a time in the order they arrive; `clicked` (when the click was made, if known) makes a click
        older than one already loaded change nothing."""
        which = "video" if path.suffix == ".flv" else "audio"
        version = self.loaded.set(request.session_hash, str(path), which, clicked=clicked)
        if version is None:
            return {self.c.loaded: gr.skip()}
        return {self.c.media[which]: str(path), self.c.loaded: version, self.c.tabs: gr.Tabs(selected=which),
                **self._stale("a new input is loaded")}

    def _stale(self, why: str) -> dict:
        note = f"The results below are for the previous input ({why}): press Analyse."
        return {self.c.stale: gr.update(value=page.status(note), visible=True),
                self.c.results: gr.update(elem_classes=["stale"])}

    def starting(self) -> dict:
        """Shown at once when Analyse is pressed, before the analysis is queued."""
        return {self.c.status: page.status("Analysing…"), **self._stale("analysing the new one")}

    # --- analysis -----------------------------------------------------------------------------------------------
    def analyse(self, video, audio, image, text, client_version, session, request: gr.Request,
                progress: gr.Progress = gr.Progress()) -> dict:  # noqa: B008 (Gradio's way to ask for progress)
        """Decode, run the towers once (kept in the session for the toggles), fuse, and show every view."""
        sid, c, previous = request.session_hash, self.c, (session or {}).get("result")
        loaded = self.loaded.get(sid)
        if loaded.version != client_version:  # an input is loading that the page does not show yet (no race)
            return {c.status: page.status(f"A new input is still loading ({time.strftime('%H:%M:%S')}): press "
                                          "Analyse again once it shows."),
                    **self._stale("a new input is loading")}
        media = video or audio or image or None
        if media and Path(media).stem in self.bundled:  # Gradio's mp4 copy of a bundled example: the original
            media = str(self.bundled[Path(media).stem])
        try:
            progress(0.05, desc="decoding the clip")
            t0 = time.perf_counter()
            clip = stresslab.load_clip(media, text=text or None)
            decoded = time.perf_counter() - t0
            progress(0.2, desc="finding the face, listening to the voice, reading the words")
            encoded = self.analyzer.encode(clip)
            encoded.timings = {"decode": decoded, **encoded.timings}
            progress(0.9, desc="fusing")
            analysis = self.analyzer.fuse(encoded)
            analysis.timings["total"] = round(time.perf_counter() - t0, 5)
            result = page.public(analysis.to_dict(private=True))
        except Exception as e:
            message = self.message(e, media)
            gr.Warning(message)
            return {c.status: page.status(message, "Could not analyse:"), c.correction: gr.update(visible=False),
                    **self._stale("it could not be analysed")}
        known = teaching.known_label(media) if media and Path(media).stem in self.bundled else None
        session = {"id": sid, "encoded": encoded, "media": media, "result": result, "known": known, "record": None}
        what = ("the example " + teaching.example_name(Path(media)) if known else
                f"your {clip.kind} ({clip.duration:.1f} s)" if media else "the typed words")
        said = page.said(result) + page.change(previous, result)
        out = {**self.views(result, known), c.session: session, c.status: page.status(
            f"{said} Analysed {what} in {result['timings']['total']:.1f} s."),
            c.stale: gr.update(visible=False), c.results: gr.update(elem_classes=[]),
            c.gallery: self.gallery(sid, clip, result), c.correction: gr.update(visible=True),
            c.emotion: None, c.rating: None, c.note: "", c.keep: False, c.share: False,
            c.save_status: "", c.receipt: gr.update(visible=False, value="")}
        for j, m in enumerate(stresslab.MODALITIES):  # a missing modality cannot be switched on
            present = bool(encoded.present[0, j])
            out[c.toggles[m]] = gr.update(value=present, interactive=present)
        if self.loaded.get(sid).version != loaded.version:  # a new input arrived meanwhile
            out.update(self._stale("a new input arrived while analysing"))
        return out

    def views(self, r: dict, known: str | None = None) -> dict:
        """The value of every result component for one analysis dict (not the face gallery)."""
        c = self.c
        words, label = page.transcript(r)
        return {c.headline: page.headline(r, known), c.fused: plots.fused_bar(r), c.gauge: plots.stress_gauge(r),
                c.explanation: page.explanation(r), c.table: page.modality_table(r),
                c.per_modality: plots.modalities_bar(r), c.weights: plots.weights_bar(r),
                c.ablation: gr.update(value=plots.ablation_bar(r), visible=bool(r["ablations"])),
                c.timeline: gr.update(value=plots.timeline(r), visible=bool(r["timeline"])),
                c.diagram: teaching.fusion_diagram(r),
                c.words: gr.update(value=words, visible=bool(words), label=label),
                c.raw: r}

    def gallery(self, sid: str, clip: stresslab.Clip, r: dict) -> dict:
        frames = plots.face_frames(clip.frames, clip.frame_times, r["faces"], self.files.private_dir(sid)) \
            if r["faces"] and clip.frames is not None else []
        return gr.update(value=frames, visible=bool(frames))

    def fuse_again(self, video_on: bool, audio_on: bool, text_on: bool, session: dict | None) -> dict:
        """Rerun the fusion only, with the unticked modalities switched off: no decoding, no towers."""
        c = self.c
        if not session:
            return {c.status: page.status("Analyse a clip first.")}
        enabled = {"video": video_on, "audio": audio_on, "text": text_on}
        try:
            result = page.public(self.analyzer.fuse(session["encoded"], enabled=enabled).to_dict(private=True))
        except Exception as e:
            message = self.message(e, None)
            gr.Warning(message)
            shown = session["result"]["modalities"]  # put the boxes back as they were for the answer shown
            return {c.status: page.status(message, "Not fused again:"),
                    **{c.toggles[m]: shown[m]["enabled"] and shown[m]["present"] for m in stresslab.MODALITIES}}
        off = [plots.MODALITY_NAMES[m] for m, on in enabled.items() if not on and result["modalities"][m]["present"]]
        said = page.said(result) + page.change(session["result"], result)
        how = f"Fused again without the {' and the '.join(off)}." if off else "Fused again with every modality."
        return {**self.views(result, session["known"]), c.session: {**session, "result": result},
                c.status: page.status(f"{how} {said}")}

    def all_on(self, session: dict | None) -> dict:
        """Every modality the clip has, back on."""
        if not session:
            return {self.c.status: page.status("Analyse a clip first.")}
        out = self.fuse_again(True, True, True, session)
        present = session["result"]["modalities"]
        return {**out, **{self.c.toggles[m]: present[m]["present"] for m in stresslab.MODALITIES}}

    def message(self, e: Exception, media: str | None) -> str:
        """A clear one-line message naming no file or folder; unexpected errors are logged (scrubbed), not shown."""
        if isinstance(e, stresslab.ClipError):
            return page.clip_message(e, media)
        log.error("analysis failed: %s", retention.scrub("".join(traceback.format_exception(e)), media,
                                                          self.files.folder))
        return f"the analysis failed unexpectedly ({type(e).__name__}); try another clip. The error was logged."

    def _example_result(self, path: Path) -> dict:
        return self.analyzer.analyze(str(path)).to_dict(private=True)

    # --- corrections --------------------------------------------------------------------------------------------
    def save(self, session: dict | None, emotion: str | None, rating: int | None, note: str | None, keep: bool,
             share: bool, receipts: list[str]) -> dict:
        """Save the correction (a second save of the same analysis updates its record) and show the receipt."""
        c = self.c
        if not session:
            return {c.save_status: page.status("Analyse a clip first, then correct it.")}
        if not emotion:
            return {c.save_status: page.status("Choose the emotion it really shows (or none of these) first.")}
        try:
            record = stresslab.correction_record(
                session["result"], None if emotion == NONE_OF_THESE else emotion,
                stress_rating=int(rating) if rating else None, note=note or "", keep_media=bool(keep),
                share=bool(share), media_path=session["media"] if keep else None, app_version=stresslab.__version__)
            previous = session.get("record")
            if previous and self.store.get(previous) is None:  # erased since: this save makes a new record
                previous = None
            if previous:
                record = self.store.replace(previous, record, media_path=session["media"] if keep else None)
            else:
                record = self.store.add(record, media_path=session["media"] if keep else None)
        except Exception as e:  # one line for the visitor; the details (scrubbed of the upload's path) in the log
            why = retention.scrub(f"{type(e).__name__}: {e}", session["media"], self.files.folder)
            log.warning("correction not saved: %s", why)
            return {c.save_status: page.status(page.save_failure(e), "Not saved:")}
        if self.sync is not None:
            self.sync.nudge()
        receipts = [*[r for r in receipts if r != record.id], record.id]
        kept = "with your clip" if record.media else "without any clip"
        shared = ", to be shared publicly" if record.consent_share else ""
        verb = "Updated" if previous else "Saved"
        return {c.save_status: page.status(f"{verb}, {kept}{shared}. Keep the receipt: with it you can erase this "
                                           "correction at any time (below)."),
                c.receipt: gr.update(value=record.id, visible=True), c.receipts: receipts,
                c.receipt_list: page.receipts(receipts), c.session: {**session, "record": record.id}}

    def erase(self, typed: str | None, receipts: list[str]) -> dict:
        """Erase a saved correction (and its clip) by its receipt, typed in any letter case."""
        c = self.c
        try:
            rid = (typed or "").strip().strip("`").strip().lower()  # a receipt in any letter case
            record = self.store.get(rid)
            done = self.store.erase(rid)
        except ValueError:
            return {c.erase_status: page.status("That is not a receipt: a receipt has 32 characters, digits and the "
                                                "letters a to f.")}
        except OSError as e:
            log.warning("erase failed: %s", type(e).__name__)
            return {c.erase_status: page.status("the server could not erase it. Please try again later.",
                                                "Not erased:")}
        if done and self.sync is not None:
            self.sync.nudge()
        if not done:
            message = "No correction with that receipt (already erased?)."
        elif record is not None and record.media:
            message = "Erased the correction and the clip kept with it."
        else:
            message = "Erased the correction (no clip had been kept with it)."
        receipts = [r for r in receipts if r != rid]
        return {c.erase_status: page.status(message), c.receipts: receipts, c.receipt_list: page.receipts(receipts)}

    # --- API and sessions ---------------------------------------------------------------------------------------
    def analyze_api(self, media: str | None, text: str | None, request: gr.Request) -> dict:
        """/analyze: a media file (or none) and typed words -> the analysis JSON (no path or file name in it)."""
        self.files.add(request.session_hash if request else None, media)
        try:
            return page.public(self.analyzer.analyze(media or None, text=text or None).to_dict(private=True))
        except Exception as e:
            raise gr.Error(self.message(e, media), print_exception=False) from None
        finally:
            if request is not None:  # an API call's upload is needed only for this call
                self.files.end(request.session_hash)

    def analyze_text_api(self, text: str) -> dict:
        """/analyze_text: words only -> the analysis JSON."""
        try:
            return page.public(self.analyzer.analyze(None, text=text or None).to_dict(private=True))
        except Exception as e:
            raise gr.Error(self.message(e, None), print_exception=False) from None

    def end_session(self, request: gr.Request) -> None:
        """The visitor's page closed: delete their uploads and face images."""
        sid = request.session_hash
        n = self.files.end(sid)
        self.loaded.drop(sid)
        log.info("a session ended: %d files deleted", n)

    def state_expired(self, session: dict | None) -> None:
        """gr.State's delete_callback: the session's state expired (or the session ended)."""
        if session and session.get("id"):
            self.files.end(session["id"])

    # --- the page -----------------------------------------------------------------------------------------------
    def _on_media(self, which: str):
        def changed(value: str | None, request: gr.Request) -> dict:
            return self.media_changed(which, value, request)
        return changed

    def _on_pick(self, paths: list[Path]):
        def picked(index: int, request: gr.Request) -> dict:
            return self.pick_example(paths[index], None, request)
        return picked

    def build(self) -> gr.Blocks:
        """The page (ui/layout.py) and its events."""
        demo, c = layout(self)
        self.c = c
        private = {"api_visibility": "private"}
        with demo:
            for which, comp in c.media.items():
                comp.change(self._on_media(which), comp, [*c.media.values(), c.loaded, c.stale, c.results],
                            queue=False, **private)
            for picker, paths in c.pickers:  # every click sent, loaded one at a time in order: the last one wins
                picker.click(self._on_pick(paths), picker, [*c.media.values(), c.loaded, c.tabs, c.stale, c.results],
                             trigger_mode="multiple", concurrency_id="load", concurrency_limit=1, **private)
            c.text.change(lambda: self._stale("the words changed"), None, [c.stale, c.results], queue=False, **private)
            results = [c.headline, c.fused, c.gauge, c.explanation, c.table, c.per_modality, c.weights, c.ablation,
                       c.timeline, c.diagram, c.words, c.raw, c.gallery, c.session, c.status, c.stale, c.results,
                       c.correction, c.emotion, c.rating, c.note, c.keep, c.share, c.save_status, c.receipt,
                       *c.toggles.values()]
            inputs = [*c.media.values(), c.text, c.loaded, c.session]
            for trigger in (c.button.click, c.text.submit):
                trigger(self.starting, None, [c.status, c.stale, c.results], queue=False, **private).then(
                    self.analyse, inputs, results, concurrency_id="analysis", concurrency_limit=c.concurrency,
                    **private)
            for t in c.toggles.values():
                t.input(self.fuse_again, [*c.toggles.values(), c.session], results, trigger_mode="always_last",
                        **private)
            c.all_on.click(self.all_on, c.session, results, **private)
            saved = [c.save_status, c.receipt, c.receipts, c.receipt_list, c.session]
            c.save.click(self.save, [c.session, c.emotion, c.rating, c.note, c.keep, c.share, c.receipts], saved,
                         **private)
            for trigger in (c.erase_button.click, c.erase_id.submit):
                trigger(self.erase, [c.erase_id, c.receipts], [c.erase_status, c.receipts, c.receipt_list], **private)
            c.teaching.expand(self.teaching_html, None, c.mistakes, **private)
            demo.unload(self.end_session)
            live.LiveTab(self).build(demo, c)  # the Live section (ui/live.py): webcam + microphone streams
            collections_tab(self.store.root, accordion=True)  # "Label a collection" (ui/collections.py, issue #16)
            # API-only endpoints: gradio_client.Client(url).predict(..., api_name="/analyze")
            c.api_button.click(self.analyze_api, [c.api_media, c.api_text], c.api_out, api_name="analyze",
                               concurrency_id="analysis")
            gr.api(self.analyze_text_api, api_name="analyze_text", concurrency_id="analysis")
        return demo


def main() -> None:
    """Load the model (once), empty the upload folder, build the page and serve it until stopped."""
    logging.basicConfig(format="%(asctime)s %(name)s %(levelname)s: %(message)s", level=logging.INFO)
    folder = retention.cache_folder()
    os.environ["GRADIO_TEMP_DIR"] = str(folder)  # Gradio's upload folder: this app's own, so it may be emptied
    folder.mkdir(parents=True, exist_ok=True)
    log.info("upload folder: %d leftovers deleted", retention.sweep(folder))
    retention.delete_on_shutdown(folder)
    stresslab.configure_threads()
    analyzer = stresslab.Analyzer(os.environ.get("STRESSLAB_MODEL") or None)
    log.info("model %s loaded and warmed up in %.1f s", analyzer.config.name, analyzer.warm_up())
    store = stresslab.FeedbackStore.open(Path(os.environ.get("STRESSLAB_FEEDBACK_DIR") or ROOT / "feedback_store"))
    try:
        sync = stresslab.HubSync.from_env(store)
    except Exception as e:  # a sync that cannot start must not take the app down: corrections stay local
        log.warning("corrections stay local, Hub sync did not start: %s", type(e).__name__)
        sync = None
    app = App(analyzer, store, sync)
    demo = app.build()
    demo.queue(default_concurrency_limit=2, max_size=int(os.environ.get("STRESSLAB_QUEUE", 32)))
    try:
        demo.launch(server_port=int(os.environ.get("GRADIO_SERVER_PORT", 7860)), show_error=False, ssr_mode=False,
                    max_file_size=stresslab.ClipLimits().max_bytes, theme=page.theme(), css=page.CSS, js=page.JS,
                    prevent_thread_lock=True, _frontend=False)  # no self-check: its 3 s HEAD fails on busy hosts
        app._teaching.start()
        demo.block_thread()
    finally:
        retention.sweep(folder)


if __name__ == "__main__":
    main()
