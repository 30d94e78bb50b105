"""Speech to text with openai-whisper: a local checkpoint, or (online, e.g. on a Space) fetched once on first use.

STRESSLAB_WHISPER names the model: a whisper `.pt` file, a size name ("tiny", the default; "base", "small", ...)
or "off". A size name is looked for in whisper's usual cache (~/.cache/whisper, or $XDG_CACHE_HOME/whisper); when it
is not there and the machine is online, it is fetched on first use from whisper's own URL table (whisper._MODELS,
whose paths carry the file's sha256, checked before the file is kept) with request timeouts, into that cache.
Online is decided at once: HF_HUB_OFFLINE=1 or STRESSLAB_OFFLINE=1 means offline, else a HEAD request for the
file must succeed within `connect_timeout` (1 s) -- so an offline start answers within about a second and
never waits on a network that is not there. Whisper's loader reads checkpoints with torch.load(weights_only=True),
which unpickles no code. When no model can be had the text modality is missing and unavailable_reason says why in
visitor-facing words ("type what was said to include the words"; the settings are documented in the README).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import os
import sys
import tempfile
import threading
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DEFAULT_SIZE = "tiny"
TYPE_THE_WORDS = "type what was said to include the words"


@dataclass
class Transcript:
    """What was said: the text, its language, and (start s, end s, text) segments."""

    text: str
    language: str | None = None
    segments: list[tuple[float, float, str]] = field(default_factory=list)


def cache_dir() -> Path:
    """whisper's own download folder: $XDG_CACHE_HOME/whisper, else ~/.cache/whisper."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "whisper"


def whisper_setting(name: str | None = None) -> str:
    """The model asked for: `name`, else STRESSLAB_WHISPER, else DEFAULT_SIZE."""
    return (name or os.environ.get("STRESSLAB_WHISPER") or DEFAULT_SIZE).strip()


def resolve_whisper(name: str | None = None) -> Path | None:
    """A local whisper checkpoint for `name` (a file path, or a size name already in whisper's cache), or None."""
    name = whisper_setting(name)
    if name.lower() in ("off", "none", "0"):
        return None
    path = Path(name).expanduser()
    if path.is_file():
        return path
    url = _models().get(name)
    cached = cache_dir() / (Path(urllib.parse.urlparse(url).path).name if url else f"{name}.pt")
    return cached if cached.is_file() else None


def _installed() -> bool:
    """Whether openai-whisper is installed, without importing it (importing whisper imports torch: seconds and
    hundreds of MB for a process that may never transcribe, e.g. an ONNX app where no Whisper can be had)."""
    return (sys.modules["whisper"] is not None) if "whisper" in sys.modules else (
        importlib.util.find_spec("whisper") is not None)


def _models() -> dict[str, str]:
    """whisper's URL table (size name -> URL): the imported module's, else read from its source without importing
    it (see _installed); {} when whisper is not installed."""
    loaded = sys.modules.get("whisper")
    if loaded is not None:
        return dict(loaded._MODELS)
    if not _installed():
        return {}
    try:
        for node in ast.parse(Path(importlib.util.find_spec("whisper").origin or "").read_text()).body:
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_MODELS"
                                                    for t in node.targets):
                return dict(ast.literal_eval(node.value))
    except (OSError, SyntaxError, ValueError):
        pass
    try:  # a whisper whose table is not a literal in its __init__.py: import it after all
        import whisper
    except ImportError:
        return {}
    return dict(whisper._MODELS)


def offline_by_setting() -> bool:
    """HF_HUB_OFFLINE or STRESSLAB_OFFLINE set to 1/true/yes."""
    return any(os.environ.get(k, "").strip().lower() in ("1", "true", "yes", "on")
               for k in ("HF_HUB_OFFLINE", "STRESSLAB_OFFLINE"))


def reachable(url: str, timeout: float = 1.0) -> bool:
    """Whether a HEAD request for url is answered with success within `timeout` seconds, name lookup included (the
    request runs in a thread that is abandoned, not waited for, when it takes longer). A bare TCP connect is not
    enough: sandboxes and proxies accept connections to anywhere."""
    ok = threading.Event()

    def probe() -> None:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout) as r:  # noqa: S310
                if r.status < 400:
                    ok.set()
        except (OSError, ValueError):
            pass

    worker = threading.Thread(target=probe, daemon=True, name="stresslab-asr-probe")
    worker.start()
    worker.join(timeout)
    return ok.is_set()


def fetch(url: str, folder: Path, timeout: float = 20.0) -> Path:
    """Download url into folder (atomically, under the URL's file name) and check the sha256 that whisper's URLs
    carry as their parent folder. Every socket operation times out after `timeout` s. Returns the file."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / Path(urllib.parse.urlparse(url).path).name
    expected = urllib.parse.urlparse(url).path.split("/")[-2]
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            while chunk := response.read(1 << 20):
                out.write(chunk)
                digest.update(chunk)
        if len(expected) == 64 and digest.hexdigest() != expected:
            raise OSError(f"{target.name}: sha256 {digest.hexdigest()} is not the expected {expected}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


class Transcriber:
    """Whisper on the CPU: transcribe((N,) 16 kHz float32) -> Transcript. Construct once per process.

    Construction answers quickly (a local file, or whether a size name can be fetched: at most connect_timeout);
    the model is loaded (and fetched) on first use: `available` and transcribe() do it, once, under a lock.
    `can_load` tells without loading whether it may become available (for callers that must not block)."""

    def __init__(self, name: str | None = None, device: str = "cpu", connect_timeout: float = 1.0,
                 read_timeout: float = 20.0):
        self.model = None
        self.device, self.read_timeout = device, read_timeout
        self.unavailable_reason: str | None = None
        self.name = whisper_setting(name)
        self.path: Path | None = resolve_whisper(self.name)
        self.url: str | None = None
        self._lock = threading.Lock()
        if not _installed():
            self.unavailable_reason = f"no speech recogniser installed: {TYPE_THE_WORDS}"
            return
        if self.path is not None or self.name.lower() in ("off", "none", "0"):
            if self.path is None:
                self.unavailable_reason = f"speech recognition is switched off: {TYPE_THE_WORDS}"
            return
        self.url = _models().get(self.name)
        if self.url is None or offline_by_setting() or not reachable(self.url, connect_timeout):
            # the setting that would fix it (STRESSLAB_WHISPER) is documented in the README, not shown to visitors
            self.unavailable_reason = f"no speech recogniser here: {TYPE_THE_WORDS}"
            self.url = None

    @property
    def can_load(self) -> bool:
        """True when a model is loaded, on disk, or fetchable; never blocks."""
        return self.unavailable_reason is None

    @property
    def available(self) -> bool:
        """Loads the model (fetching it the first time when online); False, with unavailable_reason, if that fails."""
        return self.load() is not None

    def load(self):
        """The whisper model, loaded (and fetched) once; None when unavailable."""
        with self._lock:
            if self.model is not None or self.unavailable_reason is not None:
                return self.model
            try:
                import whisper

                if self.path is None:
                    self.path = fetch(self.url, cache_dir(), self.read_timeout)
                self.model = whisper.load_model(str(self.path), device=self.device)
            except (ImportError, OSError, RuntimeError, ValueError, KeyError) as e:  # ImportError: a broken install
                self.unavailable_reason = f"the speech recogniser could not be loaded: {TYPE_THE_WORDS}"
                self.error = f"{type(e).__name__}: {e}"
            return self.model

    def transcribe(self, audio: np.ndarray, language: str | None = None) -> Transcript:
        """(N,) float32 mono 16 kHz -> Transcript; greedy decoding, no temperature fallback (fast on a CPU)."""
        model = self.load()
        if model is None:
            raise RuntimeError(self.unavailable_reason)
        import whisper

        result = whisper.transcribe(model, audio.astype(np.float32), language=language, temperature=0.0,
                                    condition_on_previous_text=False, fp16=False, verbose=None)
        segments = [(float(s["start"]), float(s["end"]), s["text"].strip()) for s in result.get("segments", [])]
        return Transcript(result["text"].strip(), result.get("language"), segments)
