"""Cross-corpus matrix for the audio tower: for each corpus X, train without X and test on X; and speaker
cross-validation within a corpus (--cv ravdess: its actors in k folds, each fold held out in turn while the tower
learns from the other actors and the other corpora).

Users meet voices the model never heard, so the model card shows how the audio tower does on a whole corpus it was
not trained on (e.g. German EmoDB -> English RAVDESS), beside speaker-held-out figures. Features go through the
product's own `audio_features` (with the AudioConfig given), so a feature-pipeline switch is measured as shipped.

Learners (`--learner`):
  cnn     the shipped architecture (AudioEncoder + a linear head), trained from scratch for --epochs;
  linear  logistic regression on per-clip statistics of the same frame features (seconds; for recipe search).
Test speakers of any corpus (EmoDB 03 + 08) never enter training.

    python -m training.crosscorpus --data data/corpora --corpora emodb ravdess cremad --learner linear --json
    python -m training.crosscorpus --cv ravdess --learner cnn --json     # the model card's RAVDESS CV figure
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from stresslab.labels import EMOTIONS, emotion_id
from stresslab.towers.audio import AudioConfig, audio_features
from training.metrics import classification_report

Predictor = Callable[[list[np.ndarray]], np.ndarray]  # (T_i, F) arrays -> (N, K) probabilities
TEST_SPEAKERS = {"emodb": ("03", "08")}


def clip_features(records: list[dict], config: AudioConfig) -> list[np.ndarray]:
    """Each record's audio file -> (T, F) audio_features through the product's decoding (load_clip)."""
    from stresslab.clip import load_clip

    return [audio_features(load_clip(r["audio"]).audio, config) for r in records]


def statistics(feats: list[np.ndarray]) -> np.ndarray:
    """(T_i, F) arrays -> (N, 4F + 1): mean, std, 10th and 90th percentile of every feature, voiced share."""
    return np.stack([np.concatenate([f.mean(0), f.std(0), *np.percentile(f, [10, 90], axis=0), [f[:, -1].mean()]])
                     for f in feats])


def fit_linear(feats: list[np.ndarray], y: np.ndarray, c: float = 1.0) -> Predictor:
    """Class-balanced logistic regression on standardised statistics()."""
    from sklearn.linear_model import LogisticRegression

    x = statistics(feats)
    mu, sd = x.mean(0), x.std(0) + 1e-6
    clf = LogisticRegression(C=c, max_iter=3000, class_weight="balanced").fit((x - mu) / sd, y)
    k = len(EMOTIONS)

    def predict(test: list[np.ndarray]) -> np.ndarray:
        p = np.zeros((len(test), k))
        p[:, clf.classes_] = clf.predict_proba((statistics(test) - mu) / sd)
        return p

    return predict


def fit_cnn(feats: list[np.ndarray], y: np.ndarray, config: AudioConfig, epochs: int = 30, seed: int = 0,
            batch: int = 32, lr: float = 2e-3) -> Predictor:
    """The shipped audio architecture (AudioEncoder + linear head) from scratch: AdamW, one-cycle schedule,
    class-weighted cross-entropy with label smoothing 0.1, a random start crop per batch."""
    import torch

    from stresslab.towers.audio_net import AudioEncoder

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    enc, head = AudioEncoder(config, 128), torch.nn.Linear(128, len(EMOTIONS))
    enc.fit_normalizer(feats)
    params = [*enc.parameters(), *head.parameters()]
    per_epoch = max(1, len(feats) // batch)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=epochs * per_epoch, pct_start=0.1)
    counts = np.bincount(y, minlength=len(EMOTIONS)).clip(1)
    weight = torch.tensor(len(y) / (len(EMOTIONS) * counts), dtype=torch.float32)

    def pad(fs: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        n = torch.tensor([len(f) for f in fs])
        x = torch.zeros(len(fs), int(n.max()), fs[0].shape[1])
        for i, f in enumerate(fs):
            x[i, : len(f)] = torch.from_numpy(f)
        return x, n

    enc.train()
    head.train()
    for _ in range(epochs):
        order = rng.permutation(len(feats))
        for i in range(per_epoch):
            idx = order[i * batch: (i + 1) * batch]
            x, n = pad([feats[j] for j in idx])
            crop = int(rng.integers(0, max(1, int(n.min()) // 5)))
            logits = head(enc(x[:, crop:], n - crop))
            loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y[idx]), weight=weight,
                                                     label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
    enc.eval()
    head.eval()

    @torch.no_grad()
    def predict(test: list[np.ndarray]) -> np.ndarray:
        out = [torch.softmax(head(enc(*pad(test[i: i + 64]))), 1) for i in range(0, len(test), 64)]
        return torch.cat(out).numpy()

    return predict


def matrix(records: list[dict], feats: list[np.ndarray], fit: Callable[[list[np.ndarray], np.ndarray], Predictor],
           corpora: list[str]) -> dict[str, dict]:
    """For each corpus X in corpora: fit on every other corpus's non-test speakers, test on all of X (and on X's
    test speakers where it has some). -> {"without X": {"trained_on", "test": report, "test_speakers": report}}."""
    corpus = np.array([r["corpus"] for r in records])
    y = np.array([emotion_id(r["emotion"]) for r in records])
    test_spk = np.array([str(r.get("speaker")) in TEST_SPEAKERS.get(r["corpus"], ()) for r in records])
    out = {}
    for held in corpora:
        train = (corpus != held) & ~test_spk
        if not train.any() or not (corpus == held).any():
            raise ValueError(f"cross-corpus needs clips of {held} and of another corpus; got {sorted(set(corpus))}")
        predict = fit([feats[i] for i in np.where(train)[0]], y[train])
        row = {"trained_on": sorted(set(corpus[train])), "n_train": int(train.sum())}
        for name, mask in (("test", corpus == held), ("test_speakers", (corpus == held) & test_spk)):
            if mask.any():
                p = predict([feats[i] for i in np.where(mask)[0]])
                rep = classification_report(y[mask], p.argmax(1), p)
                row[name] = {k: rep[k] for k in ("n", "accuracy", "uar", "macro_f1", "ece")}
        out[f"without {held}"] = row
    return out


def speaker_cv(records: list[dict], feats: list[np.ndarray], fit: Callable[[list[np.ndarray], np.ndarray], Predictor],
               corpus: str, folds: int = 6) -> dict:
    """Speaker cross-validation on `corpus`: its speakers (sorted) dealt into `folds` folds (speaker i to fold
    i % folds); each fold is tested after fitting on every other record except test speakers (TEST_SPEAKERS).
    -> {"folds": [{"speakers", "n", "uar", "accuracy"}], "uar": mean over folds, "uar_pooled": over all clips}."""
    corp = np.array([r["corpus"] for r in records])
    spk = np.array([str(r.get("speaker")) for r in records])
    y = np.array([emotion_id(r["emotion"]) for r in records])
    test_spk = np.array([str(r.get("speaker")) in TEST_SPEAKERS.get(r["corpus"], ()) for r in records])
    speakers = sorted(set(spk[corp == corpus]))
    if len(speakers) < folds:
        raise ValueError(f"{corpus} has {len(speakers)} speakers; {folds} folds need at least {folds}")
    rows, pooled_y, pooled_p = [], [], []
    for k in range(folds):
        held = speakers[k::folds]
        test = (corp == corpus) & np.isin(spk, held)
        train = ~test & ~test_spk
        p = fit([feats[i] for i in np.flatnonzero(train)], y[train])([feats[i] for i in np.flatnonzero(test)])
        rep = classification_report(y[test], p.argmax(1), p)
        rows.append({"speakers": held, "n": int(test.sum()), "uar": rep["uar"], "accuracy": rep["accuracy"]})
        pooled_y.append(y[test])
        pooled_p.append(p.argmax(1))
    pooled = classification_report(np.concatenate(pooled_y), np.concatenate(pooled_p))
    return {"corpus": corpus, "folds": rows, "uar": float(np.mean([r["uar"] for r in rows])),
            "uar_pooled": pooled["uar"], "accuracy_pooled": pooled["accuracy"]}


def markdown(result: dict[str, dict], names: dict[str, str] | None = None) -> str:
    """The matrix as a Markdown table for the model card / README; names: how to print each corpus id."""
    names = names or {}
    lines = ["| trained on | tested on (never heard) | n | accuracy | UAR |", "| --- | --- | --- | --- | --- |"]
    for key, row in result.items():
        t, held = row["test"], key.removeprefix("without ")
        lines.append(f"| {' + '.join(names.get(c, c) for c in row['trained_on'])} | {names.get(held, held)} (all "
                     f"speakers) | {t['n']} | {t['accuracy']:.3f} | {t['uar']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.crosscorpus", description=__doc__.splitlines()[0])
    p.add_argument("--data", default="data/corpora", help="folder holding the prepared clip folders")
    p.add_argument("--corpora", nargs="+", default=["emodb", "ravdess", "cremad"])
    p.add_argument("--learner", choices=["cnn", "linear"], default="linear")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--audio-config", default="", help="a config.json whose 'audio' table sets the features")
    p.add_argument("--cv", default="", metavar="CORPUS", help="speaker cross-validation on CORPUS instead")
    p.add_argument("--folds", type=int, default=6)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    from training.clip_folder import read_clip_folder

    cfg = AudioConfig()
    if a.audio_config:
        from stresslab.config import ModelConfig

        cfg = ModelConfig.from_dict(json.loads(Path(a.audio_config).read_text())).audio
    records = [r for c in a.corpora for r in read_clip_folder(Path(a.data) / c) if r.get("audio") and r["emotion"]]
    feats = clip_features(records, cfg)
    fit = fit_linear if a.learner == "linear" else (lambda f, y: fit_cnn(f, y, cfg, a.epochs))
    if a.cv:
        cv = speaker_cv(records, feats, fit, a.cv, a.folds)
        each = ", ".join(f"{r['uar']:.3f}" for r in cv["folds"])
        print(json.dumps(cv, indent=1) if a.json else f"{a.cv} speaker CV, {a.folds} folds: UAR {cv['uar']:.3f} "
              f"({each})")
        return 0
    result = matrix(records, feats, fit, a.corpora)
    print(json.dumps(result, indent=1) if a.json else markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
