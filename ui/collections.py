"""The "Label a collection" tab: one clip at a time, the model's stored answer per modality (or hidden: blind),
the annotator's emotion, optional per-modality emotions, stress 1-5 and a note; keyboard shortcuts; progress and
the agreement panel. Reads and writes through stresslab.Workspace (no model is run here: `stresslab collections
prelabel` stores the model's answers beforehand).

    tab(store_dir)      inside the app's gr.Blocks: adds the tab and its events
    python -m ui.collections --store DIR [--port N]     the tab alone (tests, a labelling-only server)

Annotators are named by the name they type, or by their Hugging Face login when the app runs as a Space (a login
button appears when SPACE_ID is set; the Space needs `hf_oauth: true` in its README metadata).
"""

import argparse
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import gradio as gr

import stresslab

EMOTION_KEYS = ["1", "2", "3", "4", "5", "6", "0", "C"]
CHOICES = [(f"{a if a not in ('none', 'cant_tell') else {'none': 'none of these', 'cant_tell': 'cannot tell'}[a]}"
            f" ({k})", a) for a, k in zip(stresslab.Workspace.answers, EMOTION_KEYS, strict=True)]
MODALITY_EMOTIONS = [("-", "")] + [(e, e) for e in stresslab.EMOTIONS]
SHORTCUTS = ("Keys: <b>1-6</b> emotion, <b>0</b> none of these, <b>C</b> cannot tell, <b>Shift+1-5</b> stress, "
             "<b>S</b> skip, <b>Enter</b> save")
# One document-level listener (attached once), active only while the tab is shown, the focus is on the page's body or
# inside the tab, and not while typing in a text box.
KEYS_JS = """
if (!window.__stresslabCollectionKeys) {
  window.__stresslabCollectionKeys = true;
  document.addEventListener('keydown', (e) => {
    const emotion = document.getElementById('coll-emotion');
    if (!emotion || emotion.offsetParent === null || e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target, home = document.getElementById('tab-collections') || document.body;
    const onBody = !t || t === document.body;
    if (!onBody && !home.contains(t)) return;  // focus elsewhere on the page: its keys are its own
    const typing = t && (t.tagName === 'TEXTAREA'
                         || (t.tagName === 'INPUT' && !['radio', 'checkbox'].includes(t.type)));
    const radios = (id) => document.querySelectorAll('#' + id + ' input[type=radio]');
    const click = (el) => { if (el) { el.click(); e.preventDefault(); } };
    if (e.key === 'Enter') {
      if (typing) return;  // the name box's submit starts, the note's submit saves (their own events)
      if (!onBody && t.tagName !== 'INPUT') return;  // a focused button keeps its own Enter
      click(document.getElementById('coll-save'));
      return;
    }
    if (typing) return;
    const digit = /^Digit([0-9])$/.exec(e.code);
    if (digit && e.shiftKey) { const n = +digit[1]; if (n >= 1 && n <= 5) click(radios('coll-stress')[n - 1]); return; }
    if (digit) { const n = +digit[1]; if (n >= 1 && n <= 6) click(radios('coll-emotion')[n - 1]);
                 else if (n === 0) click(radios('coll-emotion')[6]); return; }
    const k = e.key.toLowerCase();
    if (k === 'c') click(radios('coll-emotion')[7]);
    else if (k === 's') click(document.getElementById('coll-skip'));
  });
}
"""
_SERVED = Path(tempfile.gettempdir()) / f"stresslab-collections-{os.getpid()}"
_SYNCS: dict[str, object] = {}  # collection folder -> its started HubSync (one per process)


def annotation_sync(ws) -> object | None:
    """The background Hub sync of a collection's annotations, started on first use: with HF_TOKEN and
    STRESSLAB_COLLECTIONS_REPO=owner/prefix, the collection NAME goes to the private dataset repo owner/prefix-NAME
    (the correction store's HubSync: exactly once, erasures propagated, retried through outages). None otherwise."""
    token, prefix = os.environ.get("HF_TOKEN"), os.environ.get("STRESSLAB_COLLECTIONS_REPO")
    if not token or not prefix:
        return None
    key = str(ws.annotations.root)
    if key not in _SYNCS:
        sync = stresslab.HubSync(ws.annotations.store, f"{prefix}-{ws.name}", token,
                                 endpoint=os.environ.get("HF_ENDPOINT") or None)
        sync.start()
        _SYNCS[key] = sync
    return _SYNCS[key]


def _serve(path: Path) -> str:
    """A copy of the clip in this process's temporary folder (Gradio serves files from there); copies older than
    an hour go."""
    _SERVED.mkdir(exist_ok=True)
    cutoff = time.time() - 3600
    for old in _SERVED.iterdir():
        if old.stat().st_mtime < cutoff:
            shutil.rmtree(old, ignore_errors=True)
    dest = _SERVED / uuid.uuid4().hex / path.name
    dest.parent.mkdir()
    shutil.copy(path, dest)
    return str(dest)


def _who(typed: str, profile: gr.OAuthProfile | None) -> str:
    return (profile.username if profile is not None else (typed or "")).strip()


def _model_md(pre: dict | None, blind: bool) -> str:
    if blind:
        return "*The model's answer is hidden (blind).*"
    if not pre:
        return "*No pre-label stored for this clip (`stresslab collections prelabel NAME` computes them).*"
    head = f"**Model: {pre['emotion']}** ({pre['confidence']:.0%})"
    if pre.get("uncertain") and len(pre.get("top2") or []) == 2:
        (a, pa), (b, pb) = pre["top2"]
        head = f"**Model: not sure, {a} ({pa:.0%}) or {b} ({pb:.0%})**"
    names = {"video": "face", "audio": "voice", "text": "words"}
    parts = [f"{names.get(m, m)}: {e or 'missing'}" for m, e in (pre.get("modalities") or {}).items()]
    stress = f" · stress {pre['stress']:.2f}" if isinstance(pre.get("stress"), (int, float)) else ""
    return f"{head} · {' · '.join(parts)}{stress}"


def _progress_md(ws, annotator: str) -> str:
    p = ws.progress(annotator or None)
    own = f" · **{annotator}**: {p.mine} labelled" if annotator else ""
    k = ws.collection.labels_per_clip
    return f"Progress: {p.labelled} of {p.total} clips have {k} labels ({p.labels} labels){own}"


def _stats_md(store: Path, name: str) -> str:
    if not name:
        return ""
    ws = stresslab.Workspace(store, name)
    s = ws.stats()
    per = "\n".join(f"| {a} | {v['labels']} |" for a, v in s["per_annotator"].items())
    if not per:
        return "No labels yet."
    names = {"none": "none of these"}
    head = " | ".join(names.get(c, c) for c in s["classes"])
    rows = "\n".join(f"| **{names.get(c, c)}** | " + " | ".join(str(n) for n in row) + " |"
                     for c, row in zip(s["classes"], s["confusion"], strict=True))
    confusion = (f"Confusion between annotators (pairs of labels given to the same clip):\n\n| | {head} |\n"
                 f"|---|{'---|' * len(s['classes'])}\n{rows}")
    return (f"```\n{ws.stats_text(s)}\n```\n\n| annotator | labels |\n| --- | --- |\n{per}\n\n{confusion}")


def tab(store_dir: str | Path, accordion: bool = False) -> None:
    """Add the "Label a collection" tab (inside a gr.Blocks context; accordion=True: a closed accordion instead,
    for a page without tabs) for the collections of the store at store_dir."""
    store = Path(store_dir)
    names = stresslab.Workspace.names(store)
    title = "Label a collection"
    holder = (gr.Accordion(title, open=False, elem_id="tab-collections") if accordion
              else gr.Tab(title, id="collections", elem_id="tab-collections"))
    with holder:
        gr.HTML(SHORTCUTS, js_on_load=KEYS_JS, elem_id="coll-keys")
        with gr.Row():
            name = gr.Dropdown(names, value=names[0] if names else None, label="Collection", elem_id="coll-name")
            annotator = gr.Textbox(label="Your name (annotator)", elem_id="coll-annotator", max_length=100)
            if os.environ.get("SPACE_ID"):
                gr.LoginButton()
            blind = gr.Checkbox(label="Blind: hide the model's answer", elem_id="coll-blind")
            start = gr.Button("Start / next clip", elem_id="coll-start")
        clip_id, skipped = gr.State(""), gr.State([])
        header = gr.Markdown(elem_id="coll-clip")
        with gr.Row():
            video = gr.Video(label="Clip", visible=False, elem_id="coll-video", interactive=False)
            audio = gr.Audio(label="Clip", visible=False, elem_id="coll-audio", interactive=False, type="filepath")
            image = gr.Image(label="Clip", visible=False, elem_id="coll-image", interactive=False, type="filepath")
        transcript = gr.Textbox(label="Transcript", interactive=False, elem_id="coll-transcript")
        model = gr.Markdown(elem_id="coll-model")
        emotion = gr.Radio(CHOICES, label="Emotion", elem_id="coll-emotion")
        with gr.Accordion("What each modality shows (optional)", open=False):
            with gr.Row():
                face = gr.Dropdown(MODALITY_EMOTIONS, value="", label="Face", elem_id="coll-face")
                voice = gr.Dropdown(MODALITY_EMOTIONS, value="", label="Voice", elem_id="coll-voice")
                words = gr.Dropdown(MODALITY_EMOTIONS, value="", label="Words", elem_id="coll-words")
        stress = gr.Radio(["1", "2", "3", "4", "5"], label="Stress: 1 calm .. 5 very stressed", elem_id="coll-stress")
        note = gr.Textbox(label="Note (optional)", elem_id="coll-note", max_length=2000)
        with gr.Row():
            save = gr.Button("Save (Enter)", variant="primary", elem_id="coll-save")
            skip = gr.Button("Skip (S)", elem_id="coll-skip")
        status = gr.Markdown(elem_id="coll-status")
        progress = gr.Markdown(elem_id="coll-progress")
        with gr.Accordion("Erase a label", open=False):
            with gr.Row():
                erase_id = gr.Textbox(label="Receipt id (shown when the label was saved)", elem_id="coll-erase-id",
                                      max_length=80)
                erase = gr.Button("Erase", elem_id="coll-erase", size="sm")
            erased = gr.Markdown(elem_id="coll-erased")
        with gr.Accordion("Agreement", open=True):
            stats = gr.Markdown(elem_id="coll-stats")
            refresh = gr.Button("Refresh", size="sm", elem_id="coll-refresh")

    shown = [clip_id, header, video, audio, image, transcript, model, emotion, face, voice, words, stress, note,
             progress]

    def load(collection: str, typed: str, hide: bool, skip_ids: list[str], profile: gr.OAuthProfile | None):
        who = _who(typed, profile)

        def empty(message: str, progress_line: str) -> list:  # no clip: the form cleared, the players hidden
            return ["", message, *[gr.update(value=None, visible=False)] * 3, "", "", None, "", "", "", None, "",
                    progress_line]

        if not collection:
            return empty("No collection yet: `stresslab collections create`.", "")
        ws = stresslab.Workspace(store, collection)
        if not who:
            return empty("Type your name to start.", _progress_md(ws, ""))
        cid = ws.next_clip(who, skip_ids)
        if cid is None:
            return empty(f"Nothing left for {who} in {collection}: thank you!", _progress_md(ws, who))
        c = ws.clip(cid)
        media = [gr.update(value=_serve(c.path) if c.kind == k else None, visible=c.kind == k)
                 for k in ("video", "audio", "image")]
        pre = ws.prelabel(cid)
        return [cid, f"### Clip `{cid}`", *media, (pre or {}).get("transcript", ""), _model_md(pre, hide),
                None, "", "", "", None, "", _progress_md(ws, who)]

    def save_label(collection, typed, hide, skip_ids, cid, answer, level, text, f, v, w,
                   profile: gr.OAuthProfile | None):
        who = _who(typed, profile)
        if not cid or not who:
            return [gr.update()] * len(shown) + ["Start first: type your name and press Start.", gr.update()]
        if not answer:
            return [gr.update()] * len(shown) + ["Choose an emotion first (keys 1-6, 0, C).", gr.update()]
        ws = stresslab.Workspace(store, collection)
        try:
            r = ws.save(cid, who, answer, stress=int(level) if level else None, note=text or "", face=f or None,
                        voice=v or None, words=w or None, blind=bool(hide), app_version=f"app {stresslab.__version__}")
        except ValueError as e:
            return [gr.update()] * len(shown) + [f"Not saved: {e}", gr.update()]
        try:
            sync = annotation_sync(ws)
        except Exception:  # a sync that cannot start must not lose the label, which is saved locally already
            sync = None
        if sync is not None:
            sync.nudge()
        done = load(collection, typed, hide, skip_ids, profile)
        return [*done, f"Saved `{cid}` as {answer}. Receipt: `{r.id}`", _stats_md(store, collection)]

    def skip_clip(collection, typed, hide, skip_ids, cid, profile: gr.OAuthProfile | None):
        skip_ids = [*skip_ids, cid] if cid else skip_ids
        return [skip_ids, *load(collection, typed, hide, skip_ids, profile), f"Skipped `{cid}`." if cid else ""]

    def reblind(collection, cid, hide):
        return _model_md(stresslab.Workspace(store, collection).prelabel(cid), hide) if collection and cid else ""

    def erase_label(collection: str, receipt: str):
        if not collection or not (receipt or "").strip():
            return "Paste the receipt id of the label to erase.", gr.update()
        try:
            gone = stresslab.Workspace(store, collection).erase(receipt)
        except ValueError as e:
            return f"Not erased: {e}", gr.update()
        rid = receipt.strip().strip("`").lower()
        sync = annotation_sync(stresslab.Workspace(store, collection)) if gone else None
        if sync is not None:
            sync.nudge()  # the Hub copy goes too
        message = f"Erased `{rid}`." if gone else f"No label `{rid}` in {collection}."
        return message, _stats_md(store, collection)

    private = {"api_visibility": "private"}
    base = [name, annotator, blind, skipped]
    start.click(load, base, shown, **private).then(lambda n: _stats_md(store, n), name, stats, **private)
    annotator.submit(load, base, shown, **private)
    name.change(lambda: [], None, skipped, **private).then(load, base, shown, **private).then(
        lambda n: _stats_md(store, n), name, stats, **private)
    for trigger in (save.click, note.submit):
        trigger(save_label, [*base, clip_id, emotion, stress, note, face, voice, words], [*shown, status, stats],
                **private)
    skip.click(skip_clip, [*base, clip_id], [skipped, *shown, status], **private)
    blind.change(reblind, [name, clip_id, blind], model, **private)
    refresh.click(lambda n: _stats_md(store, n), name, stats, **private)
    for trigger in (erase.click, erase_id.submit):
        trigger(erase_label, [name, erase_id], [erased, stats], **private)


def main() -> None:
    p = argparse.ArgumentParser(description="the collection labelling tab alone")
    p.add_argument("--store", default=os.environ.get("STRESSLAB_FEEDBACK_DIR") or "feedback_store")
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7861)))
    args = p.parse_args()
    with gr.Blocks(title="StressLab: label a collection") as demo:
        tab(args.store)
    demo.queue(default_concurrency_limit=4).launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                                                   server_port=args.port, ssr_mode=False, show_error=False)


if __name__ == "__main__":
    main()
