"""A local fake of the Hugging Face Hub HTTP endpoints that HubSync and FeedbackStore.from_hub use (127.0.0.1 only),
so the real huggingface_hub client code runs unchanged: create repo, repo info, validate-yaml, preupload, commit
(ndjson), tree listing, file download. Like the Hub, a commit is all or nothing, and deleting a missing file fails
it (404).

mode: "ok"; "refuse" (HTTP 500 to everything); "hang" (hold every request until the mode changes, then 503 without
doing anything); "lose-reply" (apply commits, then hold the reply until the mode changes: the client times out on a
commit the Hub did make).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


class FakeHub:
    """A Hub on 127.0.0.1. The suite runs with HF_HUB_OFFLINE=1 (conftest); while a FakeHub is open, huggingface_hub
    may talk to it (and only to it: HF_ENDPOINT points every request here)."""

    def __init__(self):
        import huggingface_hub.constants

        self._was_offline = huggingface_hub.constants.HF_HUB_OFFLINE
        huggingface_hub.constants.HF_HUB_OFFLINE = False
        self.repos: dict[str, dict[str, bytes]] = {}
        self.private: dict[str, bool] = {}
        self.commits: list[tuple[str, list[str], list[str]]] = []  # (repo, added paths, deleted paths)
        self.auth_headers: list[str] = []
        self.held = 0  # requests being held now ("hang", "lose-reply")
        self.mode = "ok"
        self.lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _hold(self) -> None:
                mode = hub.mode
                with hub.lock:
                    hub.held += 1
                while hub.mode == mode:
                    time.sleep(0.02)
                with hub.lock:
                    hub.held -= 1

            def _gate(self) -> bool:
                hub.auth_headers.append(self.headers.get("Authorization", ""))
                if hub.mode == "hang":
                    self._hold()
                    self._send(503, {"error": "was hanging"})
                    return False
                if hub.mode == "refuse":
                    self._send(500, {"error": "the fake hub refuses"})
                    return False
                return True

            def _send(self, code, obj=None, raw: bytes | None = None, headers=None, head=False):
                body = raw if raw is not None else json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json" if raw is None else "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _body(self) -> bytes:
                data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                return gzip.decompress(data) if self.headers.get("Content-Encoding") == "gzip" else data

            def do_POST(self):
                body = self._body()
                if not self._gate():
                    return
                parts = urlsplit(self.path).path.split("/")
                if self.path.startswith("/api/repos/create"):
                    req = json.loads(body)
                    name = req["name"]
                    repo = name if "/" in name else f"{req.get('organization') or 'user'}/{name}"
                    url = f"{hub.url}/datasets/{repo}"
                    if repo in hub.repos:
                        return self._send(409, {"error": "You already created this dataset repo", "url": url})
                    hub.repos[repo] = {}
                    hub.private[repo] = req.get("visibility") == "private" or req.get("private") is True
                    return self._send(200, {"url": url, "name": repo})
                if self.path.startswith("/api/validate-yaml"):  # before a README.md is committed
                    return self._send(200, {"errors": [], "warnings": []})
                repo = f"{parts[3]}/{parts[4]}"  # /api/datasets/ns/name/(preupload|commit)/main
                if repo not in hub.repos:
                    return self._send(404, {"error": "Repository not found"})
                if parts[5] == "preupload":
                    files = json.loads(body)["files"]
                    return self._send(200, {"files": [{"path": f["path"], "uploadMode": "regular",
                                                       "shouldIgnore": False} for f in files]})
                if parts[5] == "commit":
                    return self._commit(repo, body)
                self._send(404, {"error": "unknown"})

            def _commit(self, repo: str, body: bytes):
                files = dict(hub.repos[repo])
                added, deleted = [], []
                for line in body.decode().splitlines():
                    item = json.loads(line)
                    if item["key"] == "file":
                        files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                        added.append(item["value"]["path"])
                    elif item["key"] in ("deletedFile", "deletedFolder"):
                        path = item["value"]["path"].rstrip("/")
                        gone = [p for p in files if p == path or p.startswith(path + "/")]
                        if not gone:
                            return self._send(404, {"error": f"{path} does not exist"})
                        for p in gone:
                            del files[p]
                        deleted.append(path)
                hub.repos[repo] = files
                hub.commits.append((repo, added, deleted))
                if hub.mode == "lose-reply":
                    self._hold()
                oid = hashlib.sha1(str(len(hub.commits)).encode()).hexdigest()
                self._send(200, {"commitUrl": f"{hub.url}/datasets/{repo}/commit/{oid}", "commitOid": oid,
                                 "pullRequestUrl": None})

            def do_HEAD(self):
                self.do_GET(head=True)

            def do_GET(self, head=False):
                if not self._gate():
                    return
                parts = [unquote(p) for p in urlsplit(self.path).path.split("/")]
                if parts[1] == "api" and len(parts) >= 5:  # /api/datasets/ns/name[/revision/main | /tree/main...]
                    repo = f"{parts[3]}/{parts[4]}"
                    if repo not in hub.repos:
                        return self._send(404, {"error": "Repository not found"},
                                          headers={"X-Error-Code": "RepoNotFound"})
                    if len(parts) >= 7 and parts[5] == "tree":
                        return self._send(200, [{"type": "file", "path": p, "size": len(b), "oid": _oid(b)}
                                                for p, b in sorted(hub.repos[repo].items())])
                    return self._send(200, {"id": repo, "private": hub.private[repo], "sha": "a" * 40,
                                            "siblings": [{"rfilename": p} for p in sorted(hub.repos[repo])]})
                if parts[1] == "datasets" and len(parts) >= 7 and parts[4] == "resolve":  # .../ns/name/resolve/rev/path
                    repo, path = f"{parts[2]}/{parts[3]}", "/".join(parts[6:])
                    data = hub.repos.get(repo, {}).get(path)
                    if data is None:
                        return self._send(404, {"error": "Entry not found"}, headers={"X-Error-Code": "EntryNotFound"})
                    return self._send(200, raw=data, head=head, headers={"X-Repo-Commit": "a" * 40,
                                                                         "ETag": f'"{_oid(data)}"'})
                self._send(404, {"error": "unknown"})

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a client that timed out and left: expected here

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def added(self, repo: str) -> list[str]:
        """Every path added to a repo, one entry per commit that added it."""
        return [p for r, added, _ in self.commits if r == repo for p in added]

    def close(self):
        import huggingface_hub.constants

        huggingface_hub.constants.HF_HUB_OFFLINE = self._was_offline
        self.mode = "closed"
        self.server.shutdown()
        self.server.server_close()


def _oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
