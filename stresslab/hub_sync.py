"""Push the correction store to Hugging Face dataset repos in the background, never blocking the app.

Only when a token is configured (HF_TOKEN) and a repo named (STRESSLAB_FEEDBACK_REPO, private by default;
STRESSLAB_FEEDBACK_PUBLIC_REPO optionally, which receives only records whose author ticked "share").
Each repo has a ledger (sync/<repo>.json: what it already holds); a pass commits, in one Hub commit, every record
(and its consented media) the ledger lacks and every erasure, then updates the ledger. A failed or hanging pass
changes nothing, and the next one retries with exponential back-off, so records wait while the Hub is away and none
is lost. On start the ledger is reconciled with the repo's file list, so a crash between a commit and its ledger
write does not send anything twice. The token never appears in logs, status or raised messages.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

from filelock import FileLock

from .feedback import FeedbackStore

log = logging.getLogger(__name__)


class HubSync:
    """Background pusher of a FeedbackStore to one private and optionally one public dataset repo."""

    def __init__(self, store: FeedbackStore, repo_id: str, token: str, public_repo_id: str | None = None,
                 every_seconds: float = 60.0, endpoint: str | None = None, timeout: float = 30.0):
        from huggingface_hub import HfApi

        self.store, self.token, self.every = store, token, every_seconds
        self.api = HfApi(endpoint=endpoint, token=token)
        self.timeout = timeout
        self.targets = [(repo_id, True)] + ([(public_repo_id, False)] if public_repo_id else [])
        self.last_error: str | None = None
        self.sent_total = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._created: set[str] = set()
        self._reconciled: set[str] = set()

    @classmethod
    def from_env(cls, store: FeedbackStore, **kwargs) -> HubSync | None:
        """A started HubSync when HF_TOKEN and STRESSLAB_FEEDBACK_REPO are set, else None."""
        token, repo = os.environ.get("HF_TOKEN"), os.environ.get("STRESSLAB_FEEDBACK_REPO")
        if not token or not repo:
            return None
        sync = cls(store, repo, token, os.environ.get("STRESSLAB_FEEDBACK_PUBLIC_REPO") or None, **kwargs)
        sync.start()
        return sync

    # --- what is due ------------------------------------------------------------------------------------------
    def _ledger_path(self, repo_id: str) -> Path:
        return self.store.root / "sync" / (repo_id.replace("/", "__") + ".json")

    def _ledger(self, repo_id: str) -> dict:
        path = self._ledger_path(repo_id)
        return json.loads(path.read_text()) if path.exists() else {"sent": [], "erased": []}

    def _save_ledger(self, repo_id: str, ledger: dict) -> None:
        self.store._write_atomic(self._ledger_path(repo_id), json.dumps(ledger).encode())

    def pending(self) -> dict[str, tuple[list, list]]:
        """{repo: (records to send, ids to delete)}."""
        erased_dir = self.store.root / "sync" / "erased"
        erased = sorted(p.name for p in erased_dir.iterdir()) if erased_dir.exists() else []
        records = self.store.records()
        out = {}
        for repo, private in self.targets:
            ledger = self._ledger(repo)
            sent = set(ledger["sent"])
            todo = [r for r in records if r.id not in sent and (private or r.consent_share)]
            gone = [i for i in erased if i in sent]
            out[repo] = (todo, gone)
        return out

    # --- one pass ---------------------------------------------------------------------------------------------
    def push_once(self) -> int:
        """Commit what is due to each repo; returns how many records were sent. Raises on Hub errors."""
        from huggingface_hub import CommitOperationAdd, CommitOperationDelete

        n = 0
        with FileLock(str(self.store.root / "sync" / ".lock"), timeout=self.timeout):
            for repo, private in self.targets:
                if repo not in self._created:
                    self.api.create_repo(repo, repo_type="dataset", private=private, exist_ok=True)
                    self._created.add(repo)
                if repo not in self._reconciled:
                    self._reconcile(repo)
                todo, gone = self.pending()[repo]
                if not todo and not gone:
                    continue
                ops = []
                for r in todo:
                    ops.append(CommitOperationAdd(f"records/{r.id}.jsonl", str(self.store.record_path(r.id))))
                    media = self.store.media_path(r)
                    if media is not None:
                        ops.append(CommitOperationAdd(f"media/{r.id}/{media.name}", str(media)))
                for rid in gone:
                    ops.append(CommitOperationDelete(f"records/{rid}.jsonl"))
                    ops.append(CommitOperationDelete(f"media/{rid}/", is_folder=True))
                self.api.create_commit(repo, ops, repo_type="dataset",
                                       commit_message=f"{len(todo)} correction(s), {len(gone)} erasure(s)")
                ledger = self._ledger(repo)
                ledger["sent"] = sorted((set(ledger["sent"]) | {r.id for r in todo}) - set(gone))
                ledger["erased"] = sorted(set(ledger["erased"]) | set(gone))
                self._save_ledger(repo, ledger)
                n += len(todo)
            self._forget_erasures()
        self.sent_total += n
        return n

    def _reconcile(self, repo: str) -> None:
        """Mark as sent what the repo already holds (a crash after a commit, before its ledger write)."""
        files = self.api.list_repo_files(repo, repo_type="dataset")
        held = {f[len("records/"): -len(".jsonl")] for f in files if f.startswith("records/") and f.endswith(".jsonl")}
        ledger = self._ledger(repo)
        ledger["sent"] = sorted(set(ledger["sent"]) | held)
        self._save_ledger(repo, ledger)
        self._reconciled.add(repo)

    def _forget_erasures(self) -> None:
        """An erasure marker is dropped once no ledger still lists the record as sent."""
        erased_dir = self.store.root / "sync" / "erased"
        if not erased_dir.exists():
            return
        still = set().union(*(set(self._ledger(repo)["sent"]) for repo, _ in self.targets))
        for p in erased_dir.iterdir():
            if p.name not in still:
                p.unlink(missing_ok=True)

    # --- the background thread --------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="stresslab-hub-sync", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def nudge(self) -> None:
        """Ask for a pass soon (after a new record); returns at once."""
        self._wake.set()

    def _run(self) -> None:
        delay = self.every
        while not self._stop.is_set():
            try:
                self.push_once()
                self.last_error, delay = None, self.every
            except Exception as e:  # offline, refused, timed out: keep the records, try again later
                self.last_error = self._clean(f"{type(e).__name__}: {e}")
                log.warning("feedback sync failed, will retry in %.0f s: %s", delay, self.last_error)
                delay = min(delay * 2, 3600)
            self._wake.wait(delay)
            self._wake.clear()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until nothing is pending (True) or the timeout passes (False)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not any(t or g for t, g in self.pending().values()):
                return True
            self._wake.set()
            time.sleep(0.1)
        return False

    def status(self) -> dict:
        pending = sum(len(t) for t, _ in self.pending().values())
        return {"repos": [r for r, _ in self.targets], "pending": pending, "sent": self.sent_total,
                "last_error": self.last_error}

    def _clean(self, text: str) -> str:
        return text.replace(self.token, "***") if self.token else text
