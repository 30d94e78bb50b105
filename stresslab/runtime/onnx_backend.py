"""The onnxruntime runtime: an exported folder (runtime/export.py) behind the numpy Backend interface, no torch.

The tokenizer runs through the `tokenizers` library on tokenizer/tokenizer.json (what transformers' fast tokenizer
uses underneath), with the same truncation and padding as the torch tower.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np

from ..labels import MODALITIES
from .base import Scores

GRAPHS = ("video", "audio", "text", "fusion")


class OnnxBackend:
    """Backend over onnx/{video,audio,text,fusion}.onnx (see runtime/base.py for the interface and shapes)."""

    uses_waveform = False

    def __init__(self, folder: str | Path, source: str | None = None):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        from ..config import ModelConfig
        from . import threads

        folder = Path(folder)
        missing = [p for p in ("config.json", "tokenizer/tokenizer.json", "onnx/manifest.json",
                               *(f"onnx/{g}.onnx" for g in GRAPHS)) if not (folder / p).is_file()]
        if missing:
            raise FileNotFoundError(f"{folder} is not a complete exported stresslab folder: "
                                    f"missing {', '.join(missing)}")
        self.manifest = json.loads((folder / "onnx" / "manifest.json").read_text())
        if self.manifest.get("format") != "stresslab-onnx":
            raise ValueError(f"{folder}/onnx/manifest.json: not a stresslab-onnx manifest")
        self.config = ModelConfig.from_dict(json.loads((folder / "config.json").read_text()))
        self.folder, self.source = folder, source or str(folder)
        self.info = {"runtime": "onnx", "precision": self.manifest.get("precision", "float32")}
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads()
        options.inter_op_num_threads = 1
        # No busy-waiting between runs: spinning threads took the cores OpenCV's face finder needed next (5 s clip:
        # face finding 5.4 ms a frame beside torch, 9.5 ms beside spinning onnxruntime threads).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.sessions = {}
        for g in GRAPHS:
            try:
                self.sessions[g] = ort.InferenceSession(str(folder / "onnx" / f"{g}.onnx"), options,
                                                        providers=["CPUExecutionProvider"])
            except Exception as e:  # onnxruntime raises its own classes (InvalidProtobuf, Fail, ...)
                raise ValueError(f"{folder}/onnx/{g}.onnx cannot be loaded by onnxruntime: "
                                 f"{str(e).splitlines()[0][:200]}") from None
        self.fusion_outputs = [o.name for o in self.sessions["fusion"].get_outputs()]
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer" / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.config.text.max_length)
        self.tokenizer.enable_padding(pad_id=self.tokenizer.token_to_id("[PAD]") or 0)
        self._tokenizer_lock = threading.Lock()  # one Tokenizer refuses two threads at once ("Already borrowed")

    @classmethod
    def load(cls, name: str | Path) -> OnnxBackend:
        """From a local exported folder, or a Hub model id holding one (its files only are downloaded)."""
        from ..config import is_hub_id

        folder = Path(name).expanduser()
        if folder.is_dir():
            return cls(folder)
        if not is_hub_id(name):
            raise FileNotFoundError(f"no exported model folder at {name}")
        from huggingface_hub import snapshot_download

        local = snapshot_download(str(name), allow_patterns=["config.json", "tokenizer/*", "onnx/*", "README.md"])
        return cls(local, source=str(name))

    def push_to_hub(self, repo_id: str, token: str | None = None, private: bool = True,
                    commit_message: str = "Upload stresslab model (ONNX)") -> str:
        """Upload this exported folder as a Hub model repo (its card names the runtime); returns the commit URL."""
        from huggingface_hub import HfApi

        api = HfApi(token=token)
        api.create_repo(repo_id, private=private, exist_ok=True)
        return str(api.upload_folder(repo_id=repo_id, folder_path=str(self.folder), commit_message=commit_message))

    def _run(self, graph: str, feeds: dict) -> list[np.ndarray]:
        return self.sessions[graph].run(None, feeds)

    def embed_frames(self, crops: np.ndarray) -> np.ndarray:
        return self._run("video", {"crops": np.ascontiguousarray(crops, np.float32)})[0]

    def embed_audio(self, feats: np.ndarray, lengths: np.ndarray, waves: np.ndarray | None = None) -> np.ndarray:
        return self._run("audio", {"feats": np.ascontiguousarray(feats, np.float32),
                                   "lengths": np.asarray(lengths, np.int64)})[0]

    def embed_text(self, texts: list[str]) -> np.ndarray:
        with self._tokenizer_lock:
            enc = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in enc], np.int64)
        mask = np.array([e.attention_mask for e in enc], np.int64)
        return self._run("text", {"input_ids": ids, "attention_mask": mask})[0]

    def predict(self, emb: dict[str, np.ndarray], mask: np.ndarray) -> Scores:
        if not bool(np.asarray(mask).any(1).all()):
            raise ValueError("every row needs at least one present modality")
        b = mask.shape[0]
        zeros = np.zeros((b, self.config.embed_dim), np.float32)
        feeds = {m: np.ascontiguousarray(emb.get(m, zeros), np.float32) for m in MODALITIES}
        out = dict(zip(self.fusion_outputs, self._run("fusion", {**feeds, "mask": np.asarray(mask, bool)}),
                       strict=True))
        return Scores(out["fused_logits"], out["weights"],
                      {m: out[f"{m}_logits"] for m in MODALITIES if m in emb}, out.get("stress"))

    def head(self, modality: str, emb: np.ndarray) -> np.ndarray:
        mask = np.zeros((len(emb), len(MODALITIES)), bool)
        mask[:, MODALITIES.index(modality)] = True
        return self.predict({modality: emb}, mask).modality_logits[modality]
