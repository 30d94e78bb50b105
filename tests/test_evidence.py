"""The fused answer is never surer than the modalities behind it (stresslab.evidence), in the analysis too."""

import copy

import numpy as np
import torch

from stresslab import Clip, analyze
from stresslab.analysis import as_backend, softmax
from stresslab.evidence import bound_by_evidence, evidence, flatten_to


def test_one_modality_bounds_the_fused_answer_to_its_own_confidence_keeping_the_order():
    fused = np.array([[0.02, 0.03, 0.05, 0.80, 0.06, 0.04]])
    own = np.array([[[0.1, 0.1, 0.1, 0.4, 0.2, 0.1], [0.9, 0.02, 0.02, 0.02, 0.02, 0.02]]])
    out = bound_by_evidence(fused, own, np.array([[True, False]]))
    assert abs(out.max() - 0.4) < 1e-6 and out.argmax() == 3
    assert np.array_equal(np.argsort(out[0]), np.argsort(fused[0])) and abs(out.sum() - 1) < 1e-9
    # a fused answer already less sure than the evidence is left as it is
    assert np.allclose(bound_by_evidence(fused, own, np.array([[False, True]])), fused)


def test_agreeing_modalities_support_more_confidence_than_either_and_disagreeing_ones_less():
    a = np.array([0.5, 0.1, 0.1, 0.1, 0.1, 0.1])
    agree = evidence(np.stack([a, a])[None], np.ones((1, 2), bool))
    disagree = evidence(np.stack([a, np.roll(a, 1)])[None], np.ones((1, 2), bool))
    assert agree.max() > 0.5 + 0.2 and disagree.max() < 0.5
    assert np.allclose(evidence(np.stack([a, a])[None], np.array([[True, False]])), a)


def test_flatten_to_reaches_the_limit_from_above_and_never_below_uniform():
    p = softmax(np.random.default_rng(0).normal(0, 4, (50, 6)))
    limit = np.random.default_rng(1).uniform(0.1, 1.0, 50)
    out = flatten_to(p, limit)
    over = p.max(1) > limit
    assert np.all(out.max(1) <= np.maximum(limit, 1 / 6) + 1e-6)
    assert np.allclose(out.max(1)[over], np.maximum(limit[over], 1 / 6), atol=1e-6)
    assert np.allclose(out[~over], p[~over]) and np.array_equal(out.argmax(1)[over & (limit > 0.2)],
                                                                 p.argmax(1)[over & (limit > 0.2)])


def test_analysis_fused_confidence_never_exceeds_the_evidence(tiny_model):
    model = copy.deepcopy(tiny_model).eval()
    with torch.no_grad():  # a fused head far surer than the towers' heads: the case the bound exists for
        model.fused_head[1].weight.mul_(200.0)
        model.fused_head[1].bias.zero_()
    face = np.random.default_rng(0).integers(0, 256, (1, 48, 48, 3), dtype=np.uint8)  # FER-sized: the face itself
    clip = Clip(frames=face, frame_times=np.zeros(1, np.float32), audio=None, duration=1.0, kind="arrays",
                text="I can't believe you did that to me")
    d = analyze(clip, model=model).to_dict()
    own = {m: d["modalities"][m]["probabilities"] for m in ("video", "text")}
    both = evidence(np.array([[list(own["video"].values()), list(own["text"].values())]]), np.ones((1, 2), bool))
    assert max(d["probabilities"].values()) <= both.max() + 1e-4
    # each ablation leaves one modality: no surer than that modality's own head
    for dropped, kept in (("video", "text"), ("text", "video")):
        assert max(d["ablations"][dropped]["probabilities"].values()) <= max(own[kept].values()) + 1e-4
    text_only = analyze(None, text="I can't believe you did that to me", model=model).to_dict()
    assert max(text_only["probabilities"].values()) <= max(text_only["modalities"]["text"]["probabilities"].values()) \
        + 1e-4
    # without the bound the sharpened head is surer than the words alone (so this test can fail)
    backend = as_backend(model)
    words = backend.embed_text(["I can't believe you did that to me"])
    raw = backend.predict({"video": np.zeros_like(words), "audio": np.zeros_like(words), "text": words},
                          np.array([[False, False, True]]))
    text_conf = max(text_only["modalities"]["text"]["probabilities"].values())
    assert softmax(raw.fused_logits[0], model.config.temperatures.get("fused", 1.0)).max() > text_conf + 0.05
