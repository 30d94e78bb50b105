"""Agreement between annotators and with the model: Krippendorff's alpha (the `krippendorff` package; nominal for
the emotion, ordinal for stress 1-5), per collection and per annotator, the confusion between annotators, the
majority and soft labels per clip, and the model's agreement with the majority.

Values: the emotion answer is one of the six emotions or "none" (none of these); "can't tell" counts as no value
(missing), like a stress that was not rated. Alpha is None where it is undefined (fewer than two values paired in
one clip, or no variation at all).
Per annotator: `alpha_without` is the collection's emotion alpha with that annotator's labels left out (it rises
above the collection's when the annotator disagrees with the others), `agrees_with_others` the fraction of their
labels equal to the other annotators' majority on the same clip (clips where the others have one).
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Mapping

import numpy as np

from ..labels import EMOTIONS
from .annotations import CANT_TELL, NO_EMOTION, AnnotationRecord

CLASSES = (*EMOTIONS, NO_EMOTION)  # the nominal values; soft labels are distributions over these
MODALITY_FIELDS = {"video": "face_emotion", "audio": "voice_emotion", "text": "words_emotion"}


def _value(r: AnnotationRecord, what: str) -> float:
    if what == "stress":
        return float(r.stress_rating) if r.stress_rating else math.nan
    if what == "emotion":
        return math.nan if r.answer == CANT_TELL else float(CLASSES.index(r.answer))
    value = getattr(r, what)  # a per-modality field
    return float(CLASSES.index(value)) if value else math.nan


def reliability(records: list[AnnotationRecord], what: str = "emotion") -> tuple[list[str], list[str], np.ndarray]:
    """(annotators, clip ids, (A, C) values with NaN for missing): the matrix Krippendorff's alpha reads."""
    annotators = sorted({r.annotator for r in records})
    clips = sorted({r.clip_id for r in records})
    data = np.full((len(annotators), len(clips)), np.nan)
    a_ix, c_ix = {a: i for i, a in enumerate(annotators)}, {c: i for i, c in enumerate(clips)}
    for r in records:
        data[a_ix[r.annotator], c_ix[r.clip_id]] = _value(r, what)
    return annotators, clips, data


def alpha(records: list[AnnotationRecord], what: str = "emotion") -> float | None:
    """Krippendorff's alpha: nominal for "emotion" (and the per-modality fields), ordinal for "stress"."""
    import krippendorff

    _, _, data = reliability(records, what)
    if data.size == 0 or not (np.sum(~np.isnan(data), axis=0) >= 2).any():
        return None
    level = "ordinal" if what == "stress" else "nominal"
    domain = [1.0, 2.0, 3.0, 4.0, 5.0] if what == "stress" else [float(i) for i in range(len(CLASSES))]
    try:
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            value = krippendorff.alpha(reliability_data=data, value_domain=domain, level_of_measurement=level)
    except ValueError:
        return None
    return None if value is None or not math.isfinite(value) else float(value)


def majority(answers: list[str]) -> str | None:
    """The most frequent answer (can't-tell left out); None when there is none or a tie."""
    counted = Counter(a for a in answers if a != CANT_TELL).most_common()
    if not counted or (len(counted) > 1 and counted[0][1] == counted[1][1]):
        return None
    return counted[0][0]


def soft_label(answers: list[str]) -> list[float]:
    """The share of each of CLASSES among the answers (can't-tell left out); all zeros without answers."""
    counted = Counter(a for a in answers if a != CANT_TELL)
    n = sum(counted.values())
    return [counted[c] / n if n else 0.0 for c in CLASSES]


def by_clip(records: list[AnnotationRecord]) -> dict[str, list[AnnotationRecord]]:
    out: dict[str, list[AnnotationRecord]] = {}
    for r in records:
        out.setdefault(r.clip_id, []).append(r)
    return out


def confusion(records: list[AnnotationRecord]) -> list[list[int]]:
    """(7, 7) counts over CLASSES: for every clip, every ordered pair of two different annotators' answers (the
    coincidence matrix; symmetric). Can't-tell answers are left out."""
    m = np.zeros((len(CLASSES), len(CLASSES)), dtype=int)
    for labels in by_clip(records).values():
        answers = [CLASSES.index(r.answer) for r in labels if r.answer != CANT_TELL]
        for i, a in enumerate(answers):
            for j, b in enumerate(answers):
                if i != j:
                    m[a, b] += 1
    return m.tolist()


def per_annotator(records: list[AnnotationRecord]) -> dict[str, dict]:
    """annotator -> {"labels", "alpha_without", "agrees_with_others", "compared"}."""
    clips = by_clip(records)
    out = {}
    for name in sorted({r.annotator for r in records}):
        mine = [r for r in records if r.annotator == name]
        hits = compared = 0
        for r in mine:
            others = majority([o.answer for o in clips[r.clip_id] if o.annotator != name])
            if others is not None and r.answer != CANT_TELL:
                compared += 1
                hits += r.answer == others
        out[name] = {"labels": len(mine), "alpha_without": alpha([r for r in records if r.annotator != name]),
                     "agrees_with_others": hits / compared if compared else None, "compared": compared}
    return out


def model_vs_majority(records: list[AnnotationRecord], prelabels: Mapping[str, Mapping]) -> dict:
    """How often the model's fused answer (and each modality's own answer) equals the annotators' majority, over the
    clips that have a majority emotion and a stored prelabel. {"fused": {"agree", "n", "rate"}, "video": ...}."""
    tallies = {k: [0, 0] for k in ("fused", *MODALITY_FIELDS)}
    for clip_id, labels in by_clip(records).items():
        top = majority([r.answer for r in labels])
        pre = prelabels.get(clip_id)
        if top is None or not pre:
            continue
        answers = {"fused": pre.get("emotion"), **{m: (pre.get("modalities") or {}).get(m) for m in MODALITY_FIELDS}}
        for key, answer in answers.items():
            if answer:
                tallies[key][1] += 1
                tallies[key][0] += answer == top
    return {k: {"agree": a, "n": n, "rate": a / n if n else None} for k, (a, n) in tallies.items()}


def summary(records: list[AnnotationRecord], prelabels: Mapping[str, Mapping], total_clips: int, k: int) -> dict:
    """Everything the stats panel, `collections stats` and the export's card show."""
    clips = by_clip(records)
    majorities = {c: majority([r.answer for r in labels]) for c, labels in clips.items()}
    return {
        "clips": total_clips, "labels_per_clip": k, "labels": len(records),
        "annotators": len({r.annotator for r in records}),
        "clips_with_k_labels": sum(1 for labels in clips.values() if len({r.annotator for r in labels}) >= k),
        "clips_with_majority": sum(1 for m in majorities.values() if m is not None),
        "alpha_emotion": alpha(records, "emotion"), "alpha_stress": alpha(records, "stress"),
        "alpha_per_modality": {m: alpha(records, f) for m, f in MODALITY_FIELDS.items()},
        "per_annotator": per_annotator(records), "classes": list(CLASSES), "confusion": confusion(records),
        "model_vs_majority": model_vs_majority(records, prelabels),
    }


def format_summary(s: dict) -> str:
    """The summary as a few plain lines (the CLI's and the stats panel's text)."""
    def f(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    lines = [f"{s['clips']} clips, {s['labels']} labels by {s['annotators']} annotator(s); "
             f"{s['clips_with_k_labels']} clips have {s['labels_per_clip']} labels",
             f"Krippendorff's alpha: emotion (nominal) {f(s['alpha_emotion'])}, stress (ordinal) "
             f"{f(s['alpha_stress'])}"]
    for name, a in s["per_annotator"].items():
        agree = "n/a" if a["agrees_with_others"] is None else f"{a['agrees_with_others']:.0%} of {a['compared']}"
        lines.append(f"  {name}: {a['labels']} labels, agrees with the others' majority {agree}, "
                     f"alpha without them {f(a['alpha_without'])}")
    m = s["model_vs_majority"]
    parts = [f"{k} {v['agree']}/{v['n']}" for k, v in m.items() if v["n"]]
    lines.append("model vs the majority: " + (", ".join(parts) if parts else "no pre-labelled clip has a majority"))
    return "\n".join(lines)
