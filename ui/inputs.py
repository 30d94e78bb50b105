"""What each session's inputs hold, as the server last set them: the guard against answering about another clip.

Each change (an upload, a recording, a clicked example, a cleared input) gets a new version that the page receives
with it. An Analyse sent with an older version than the server's (an example or upload still on its way to the
player) is refused, so an answer is always about what the player shows.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Loaded:
    """One session's input: its version, the file to analyse and which input holds it."""

    version: int = 0
    media: str | None = None
    source: str | None = None  # "video", "audio" or "image"
    clicked: float = 0.0  # when the page's last loaded example click was made (the page's clock, ms)


class LoadedInputs:
    """Loaded per session id. Thread-safe."""

    def __init__(self):
        self._by_session: dict[str, Loaded] = {}
        self._lock = threading.Lock()

    def get(self, session: str) -> Loaded:
        with self._lock:
            return self._by_session.get(session, Loaded())

    def set(self, session: str, media: str | None, source: str | None, clicked: float | None = None) -> int | None:
        """A new input for the session; returns its version. `clicked`: when the page's click that loads it was
        made; a click older than one already loaded changes nothing (None): the last click wins, whatever order
        the requests arrive in."""
        with self._lock:
            old = self._by_session.get(session, Loaded())
            if clicked is not None and clicked <= old.clicked:
                return None
            self._by_session[session] = Loaded(old.version + 1, media, source, old.clicked if clicked is None
                                               else clicked)
            return old.version + 1

    def drop(self, session: str) -> None:
        with self._lock:
            self._by_session.pop(session, None)
