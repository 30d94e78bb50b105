"""A StressLab correction store (the app's feedback) -> clip records with the consented media, words and ratings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from stresslab.files import media_kind
from training.clip_folder import Corpus, clip_record


def read_feedback(src: Path) -> Iterator[dict]:
    """A StressLab correction store (records/*.jsonl + media/): records with an emotion or a stress rating."""
    if not (src / "records").is_dir():
        raise ValueError(f"{src} is not a StressLab correction store: expected a folder with records/*.jsonl "
                         "(and media/), or a Hugging Face dataset repo id such as owner/corrections")
    from stresslab.corrections.store import FeedbackStore

    store = FeedbackStore(src)
    for r in store.records():
        if r.emotion is None and r.stress_rating is None:
            continue
        media = store.media_path(r)
        kind = media_kind(media) if media is not None else None
        extra = {"created_utc": r.created_utc, "note": r.note or "", "consent_keep_media": r.consent_keep_media,
                 "consent_share": r.consent_share, "app_version": r.app_version, "model_version": r.model_version,
                 # a JSON string: its shape varies between app versions, and Arrow wants one type a column
                 "model_output": json.dumps(r.model_output or {}, sort_keys=True)}
        yield clip_record(id=f"feedback/{r.id}", video=media if kind == "video" else None,
                          audio=media if kind in ("video", "audio") else None,
                          image=media if kind == "image" else None, text=r.transcript or None, emotion=r.emotion,
                          stress=None if r.stress_rating is None else float(r.stress_rating), corpus="feedback",
                          extra=extra)


FEEDBACK = Corpus(
    read_feedback,
    title="StressLab corrections (the app's feedback store)",
    licence="Collected with StressLab under each record's consent flags (extra.consent_keep_media, "
            "extra.consent_share); media exist only where consent_keep_media was given.",
    attribution="The people who sent the corrections.",
    dropped="records with neither an emotion nor a stress rating",
)
