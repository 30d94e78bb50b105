"""Push the correction store to Hugging Face dataset repos in a background thread that never blocks the app.

Only with a token (HF_TOKEN) and a repo (STRESSLAB_FEEDBACK_REPO, created private; an existing public repo is refused).
STRESSLAB_FEEDBACK_PUBLIC_REPO optionally receives the records whose author ticked "share" (their media only with
keep-media consent too). The local store stays the source of truth; the Hub is a copy that catches up.

Exactly once, across crashes and restarts: each repo has a ledger (sync/<owner>__<name>.json: the files the repo
holds per record id). A pass commits what the ledger lacks plus the erasures (one commit per batch), then records
it in the ledger. The ledger says "in flight" (written durably) before each commit and is cleared after it; a pass
that finds it in flight, or no ledger at all, first rebuilds it from the repo's file list, so a commit whose outcome
is unknown (crash, timeout after the server applied it) is neither resent nor lost, and a failed deletion (a file
already gone) cannot block the queue. A record saved again in place (FeedbackStore.replace) leaves a marker
sync/updated/<id>__<version>: each repo whose ledger holds another version gets the new files and loses the ones
the record no longer names (a clip no longer kept), or all of them (share consent withdrawn: the public repo); the
ledger notes the version, and the marker goes once every ledger has it (a later save's marker supersedes it).
Processes share the store: a file lock lets one push at a time; the others skip that pass. Errors (offline, HTTP
errors, a Hub that hangs: requests time out) are kept in status() without the token and retried with exponential
back-off. (Over 300 lines: the ledger, one pass and the thread share the exactly-once rules above.)
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

from filelock import FileLock, Timeout

from ..files import write_atomic
from .dataset import dataset_card
from .record import CorrectionRecord
from .store import FeedbackStore

log = logging.getLogger(__name__)
_TIMEOUT_LOCK = threading.Lock()
_request_timeout: float | None = None


def _client_factory():
    import httpx2
    from huggingface_hub.utils import _http

    client = _http.default_client_factory()
    client.timeout = httpx2.Timeout(_request_timeout, connect=min(_request_timeout or 10.0, 10.0))
    return client


def _install_request_timeout(seconds: float) -> None:
    """huggingface_hub's shared HTTP client waits forever by default: give its calls a timeout (process-wide; the
    smallest any HubSync asked for), unless the application installed its own client factory."""
    global _request_timeout
    import httpx2
    from huggingface_hub import set_client_factory
    from huggingface_hub.utils import _http

    with _TIMEOUT_LOCK:
        current = getattr(_http, "_GLOBAL_CLIENT_FACTORY", None)
        if current not in (_http.default_client_factory, _client_factory):
            log.info("huggingface_hub has an application-defined HTTP client; its timeouts apply")
            return
        _request_timeout = seconds if _request_timeout is None else min(_request_timeout, seconds)
        if current is _client_factory:
            _http.get_session().timeout = httpx2.Timeout(_request_timeout, connect=min(_request_timeout, 10.0))
        else:
            set_client_factory(_client_factory)


class HubSync:
    """Background pusher of a FeedbackStore to a private and optionally a public dataset repo."""

    max_backoff_s = 3600.0
    min_gap_s = 10.0  # nudges closer together than this share one commit
    max_commit_bytes = 512 << 20  # media per commit, roughly

    def __init__(self, store: FeedbackStore, repo_id: str, token: str, public_repo_id: str | None = None,
                 every_minutes: float = 5.0, *, endpoint: str | None = None, timeout: float = 30.0,
                 batch: int = 100):
        from huggingface_hub import HfApi

        if not token:
            raise ValueError("HubSync needs a Hugging Face token (HF_TOKEN)")
        _install_request_timeout(timeout)
        self.store, self.every, self.batch = store, every_minutes * 60.0, batch
        self.api = HfApi(endpoint=endpoint, token=token)
        self._secret = token
        self.targets = [(repo_id, True)] + ([(public_repo_id, False)] if public_repo_id else [])
        self.last_error: str | None = None
        self.last_success_utc: str | None = None
        self.failures = 0
        self._checked: set[str] = set()
        self._wake, self._stop = threading.Event(), threading.Event()
        self._nudged = self._forced = False
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"HubSync({', '.join(r for r, _ in self.targets)})"

    @classmethod
    def from_env(cls, store: FeedbackStore, **kwargs) -> HubSync | None:
        """A started HubSync when HF_TOKEN and STRESSLAB_FEEDBACK_REPO are set, else None."""
        token, repo = os.environ.get("HF_TOKEN"), os.environ.get("STRESSLAB_FEEDBACK_REPO")
        if not token or not repo:
            return None
        sync = cls(store, repo, token, os.environ.get("STRESSLAB_FEEDBACK_PUBLIC_REPO") or None, **kwargs)
        sync.start()
        return sync

    # --- ledgers ----------------------------------------------------------------------------------------------
    def _ledger_path(self, repo: str) -> Path:
        return self.store.root / "sync" / (repo.replace("/", "__") + ".json")

    def _ledger(self, repo: str) -> dict | None:
        """The ledger, or None when there is none yet (or one of an older format): rebuilt from the repo."""
        try:
            ledger = json.loads(self._ledger_path(repo).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):  # none yet, or damaged: rebuilt
            return None
        return ledger if isinstance(ledger, dict) and isinstance(ledger.get("files"), dict) else None

    def _save(self, repo: str, ledger: dict) -> None:
        write_atomic(self._ledger_path(repo), self.store.root / "tmp", json.dumps(ledger, sort_keys=True).encode())

    def _rebuild(self, repo: str) -> dict:
        """The ledger from the repo's file list."""
        files: dict[str, list[str]] = {}
        listed = self.api.list_repo_files(repo, repo_type="dataset")
        for f in listed:
            parts = f.split("/")
            if parts[0] == "records" and len(parts) == 2 and parts[1].endswith(".jsonl"):
                files.setdefault(parts[1][: -len(".jsonl")], []).append(f)
            elif parts[0] == "media" and len(parts) >= 3:
                files.setdefault(parts[1], []).append(f)
        ledger = {"repo": repo, "files": files, "inflight": False, "card": "README.md" in listed}
        self._save(repo, ledger)
        return ledger

    def _erased(self) -> set[str]:
        d = self.store.root / "sync" / "erased"
        return {p.name for p in d.iterdir()} if d.exists() else set()

    def _updated(self) -> dict[str, str]:
        """{record id: its latest version} for records saved again in place (markers id__version; versions sort
        by time)."""
        out: dict[str, str] = {}
        for p in (self.store.root / "sync" / "updated").glob("*__*"):
            i, version = p.name.split("__", 1)
            out[i] = max(out.get(i, version), version)
        return out

    def _due(self, repo: str, private: bool, ledger: dict | None, records: list[CorrectionRecord],
             erased: set[str]) -> tuple[list[CorrectionRecord], list[str]]:
        """(records to send: new ones, and updated ones the repo holds an older version of; ids to delete)."""
        held, versions, updated = (ledger or {}).get("files", {}), (ledger or {}).get("versions", {}), self._updated()
        todo = [r for r in records if r.id not in erased and (
            (r.id not in held and (private or r.consent_share))
            or (r.id in held and r.id in updated and versions.get(r.id) != updated[r.id]))]
        return todo, sorted(i for i in erased if i in held)

    def pending(self) -> dict[str, tuple[list[CorrectionRecord], list[str]]]:
        """{repo: (records to send, ids whose files to delete)}, from the local ledgers."""
        records, erased = self.store.records(), self._erased()
        return {repo: self._due(repo, private, self._ledger(repo), records, erased) for repo, private in self.targets}

    # --- one pass ---------------------------------------------------------------------------------------------
    def push_once(self) -> dict[str, int]:
        """Commit what is due to each repo now; {"sent": records, "erased": deletions}. Raises on Hub errors.
        Returns zeros at once if another process is pushing this store."""
        from huggingface_hub import CommitOperationAdd, CommitOperationDelete

        done = {"sent": 0, "erased": 0}
        lock = FileLock(str(self.store.root / "sync" / ".lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log.debug("another process is pushing this store; skipping this pass")
            return done
        try:
            for repo, private in self.targets:
                if repo not in self._checked:
                    self._check_repo(repo, private)
                ledger = self._ledger(repo)
                if ledger is None or ledger["inflight"]:
                    ledger = self._rebuild(repo)
                while True:
                    todo, gone = self._due(repo, private, ledger, self.store.records(), self._erased())
                    todo, gone = todo[: self.batch], gone[: self.batch]
                    if not todo and not gone:
                        break
                    ops, added, size, updated = [], {}, 0, self._updated()
                    for r in todo:
                        if size > self.max_commit_bytes:  # the rest go in the next commit
                            break
                        added[r.id] = []
                        if private or r.consent_share:  # else an update withdrew share consent: only deletions
                            try:
                                ops.append(CommitOperationAdd(f"records/{r.id}.jsonl", self.store.record_path(r.id)
                                                              .read_bytes()))
                            except FileNotFoundError:  # erased since: nothing to send
                                del added[r.id]
                                continue
                            added[r.id] = [f"records/{r.id}.jsonl"]
                            media = self.store.media_path(r)
                            if media is not None and r.consent_keep_media:
                                ops.append(CommitOperationAdd(f"media/{r.id}/{r.media}", str(media)))
                                added[r.id].append(f"media/{r.id}/{r.media}")
                                size += media.stat().st_size
                        ops += [CommitOperationDelete(f) for f in ledger["files"].get(r.id, []) if f not in added[r.id]]
                    if not added and not gone:  # every one erased meanwhile
                        continue
                    ops += [CommitOperationDelete(f) for i in gone for f in ledger["files"][i]]
                    if not ledger.get("card"):
                        ops.append(CommitOperationAdd("README.md", dataset_card().encode()))
                    ledger["inflight"] = True
                    self._save(repo, ledger)
                    self.api.create_commit(repo, ops, repo_type="dataset",
                                           commit_message=f"{len(added)} correction(s), {len(gone)} erasure(s)")
                    for i, files in added.items():
                        if files:
                            ledger["files"][i] = files
                        else:
                            ledger["files"].pop(i, None)
                        if i in updated:
                            ledger.setdefault("versions", {})[i] = updated[i]
                    for i in gone:
                        ledger["files"].pop(i, None)
                    ledger.update(inflight=False, card=True)
                    self._save(repo, ledger)
                    done["sent"] += len(added)
                    done["erased"] += len(gone)
                    log.info("pushed %d correction(s) and %d erasure(s) to %s", len(added), len(gone), repo)
            self._forget_markers()
            self.last_success_utc = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        finally:
            lock.release()
        return done

    def _check_repo(self, repo: str, private: bool) -> None:
        """Create the repo (private unless it is the public one); refuse a "private" repo that is public."""
        self.api.create_repo(repo, repo_type="dataset", private=private, exist_ok=True)
        if private and not self.api.repo_info(repo, repo_type="dataset").private:
            raise PermissionError(f"{repo} is public: corrections go only to a private repo (make it private)")
        self._checked.add(repo)

    def _forget_markers(self) -> None:
        """Drop an erasure marker once no ledger (of any repo this store ever pushed to) lists its record, and an
        update marker once every ledger that lists its record has that version (or the record is gone)."""
        ledgers = [json.loads(p.read_text()) for p in (self.store.root / "sync").glob("*.json")]
        if any(ledger.get("inflight") or not isinstance(ledger.get("files"), dict) for ledger in ledgers):
            return
        held = set().union(*(ledger["files"] for ledger in ledgers))
        for i in self._erased() - held:
            (self.store.root / "sync" / "erased" / i).unlink(missing_ok=True)
        live, latest = {r.id for r in self.store.records()}, self._updated()
        for p in (self.store.root / "sync" / "updated").glob("*__*"):
            i, version = p.name.split("__", 1)
            done = all(i not in ledger["files"] or ledger.get("versions", {}).get(i) == version for ledger in ledgers)
            if version != latest.get(i) or i not in live or done:  # superseded, erased, or everywhere
                p.unlink(missing_ok=True)

    # --- the background thread --------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the background thread (a first pass at once: what earlier runs left goes up)."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="stresslab-hub-sync", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Ask the thread to end after its current pass (records stay in the store for the next start)."""
        self._stop.set()
        self._wake.set()

    def nudge(self) -> None:
        """A record was added or erased: push soon (batched, and not during a back-off). Returns at once."""
        self._nudged = True
        self._wake.set()

    def _pass(self) -> bool:
        try:
            self.push_once()
        except Exception as e:  # offline, refused, timed out: the records wait in the store
            self.failures += 1
            self._checked.clear()  # the repo may have been deleted or made public meanwhile
            self.last_error = self._clean(f"{type(e).__name__}: {e}")
            log.warning("corrections not pushed yet (attempt %d), retrying later: %s", self.failures, self.last_error)
            return False
        self.failures, self.last_error = 0, None
        return True

    def backoff(self) -> float:
        """Seconds before the next try after `failures` failed passes in a row: doubling from min(every, 30 s)."""
        return min(min(self.every, 30.0) * 2 ** min(self.failures - 1, 20), self.max_backoff_s)

    def _run(self) -> None:
        due = last = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if self._forced or (self._nudged and not self.failures):
                due = min(due, now if self._forced else max(now, last + self.min_gap_s))
            if now >= due:
                self._forced = self._nudged = False
                ok = self._pass()
                last = time.monotonic()
                due = last + (self.every if ok else self.backoff())
                continue
            self._wake.wait(due - now)
            self._wake.clear()

    def flush(self, timeout: float = 60.0) -> bool:
        """Push now and wait until nothing is pending: True, or False when `timeout` passed first. Without the
        background thread, passes run here."""
        end = time.monotonic() + timeout
        while True:
            if self.status()["pending"] == 0:
                return True
            if time.monotonic() >= end:
                return False
            if self._thread is not None and self._thread.is_alive():
                self._forced = True
                self._wake.set()
                time.sleep(0.05)
            elif not self._pass():
                time.sleep(min(1.0, max(0.0, end - time.monotonic())))

    def status(self) -> dict:
        """{"repos", "pending" (records and erasures not yet on the Hub), "sent" (records the repos hold per the
        ledgers), "last_error" (never the token), "last_success_utc", "failures"}. Never raises."""
        try:
            due = self.pending()
            pending = sum(len(t) + len(g) for t, g in due.values())
            sent = sum(len((self._ledger(repo) or {"files": {}})["files"]) for repo, _ in self.targets)
        except Exception as e:
            pending, sent = None, None
            self.last_error = self._clean(f"reading the store: {type(e).__name__}: {e}")
        return {"repos": [r for r, _ in self.targets], "pending": pending, "sent": sent,
                "last_error": self.last_error, "last_success_utc": self.last_success_utc, "failures": self.failures}

    def _clean(self, text: str) -> str:
        return text.replace(self._secret, "<token>")
