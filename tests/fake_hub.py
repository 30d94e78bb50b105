"""A local fake of the few Hugging Face Hub HTTP endpoints that HubSync uses (127.0.0.1 only), so the real
huggingface_hub client code runs unchanged: create repo, preupload, commit (ndjson), tree listing.
mode: "ok", "refuse" (HTTP 500 to everything) or "hang" (hold requests until the mode changes)."""

from __future__ import annotations

import base64
import gzip
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeHub:
    def __init__(self):
        self.repos: dict[str, dict[str, bytes]] = {}
        self.private: dict[str, bool] = {}
        self.commits: list[tuple[str, list[str], list[str]]] = []  # (repo, added paths, deleted paths)
        self.auth_headers: list[str] = []
        self.mode = "ok"
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _wait(self) -> bool:
                while hub.mode == "hang":
                    time.sleep(0.05)
                if hub.mode == "refuse":
                    self._json(500, {"error": "the fake hub refuses"})
                    return False
                return True

            def _json(self, code, obj, headers=None):
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> bytes:
                data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                return gzip.decompress(data) if self.headers.get("Content-Encoding") == "gzip" else data

            def do_POST(self):
                hub.auth_headers.append(self.headers.get("Authorization", ""))
                if not self._wait():
                    return
                body = self._body()
                if self.path == "/api/repos/create":
                    req = json.loads(body)
                    name = req["name"]
                    repo = name if "/" in name else f"{req.get('organization') or 'user'}/{name}"
                    hub.repos.setdefault(repo, {})
                    hub.private[repo] = req.get("visibility") == "private" or bool(req.get("private"))
                    return self._json(200, {"url": f"{hub.url}/datasets/{repo}", "name": repo})
                parts = self.path.split("/")  # /api/datasets/ns/name/(preupload|commit)/main
                repo = f"{parts[3]}/{parts[4]}"
                if parts[5] == "preupload":
                    files = json.loads(body)["files"]
                    return self._json(200, {"files": [{"path": f["path"], "uploadMode": "regular",
                                                       "shouldIgnore": False} for f in files]})
                if parts[5] == "commit":
                    added, deleted = [], []
                    for line in body.decode().splitlines():
                        item = json.loads(line)
                        if item["key"] == "file":
                            hub.repos[repo][item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                            added.append(item["value"]["path"])
                        elif item["key"] in ("deletedFile", "deletedFolder"):
                            path = item["value"]["path"]
                            for p in [p for p in hub.repos[repo] if p == path or p.startswith(path.rstrip("/") + "/")]:
                                del hub.repos[repo][p]
                            deleted.append(path)
                    hub.commits.append((repo, added, deleted))
                    return self._json(200, {"commitUrl": f"{hub.url}/datasets/{repo}/commit/{len(hub.commits):040d}",
                                            "commitOid": f"{len(hub.commits):040d}", "pullRequestUrl": None})
                self._json(404, {"error": "unknown"})

            def do_GET(self):
                if not self._wait():
                    return
                parts = self.path.split("?")[0].split("/")  # /api/datasets/ns/name/tree/main
                if len(parts) >= 6 and parts[5] == "tree":
                    repo = f"{parts[3]}/{parts[4]}"
                    files = [{"type": "file", "path": p, "size": len(b), "oid": "0" * 40}
                             for p, b in hub.repos.get(repo, {}).items()]
                    return self._json(200, files)
                self._json(404, {"error": "unknown"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.mode = "ok"
        self.server.shutdown()
