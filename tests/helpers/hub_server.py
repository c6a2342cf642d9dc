"""A minimal Hugging Face Hub on 127.0.0.1 for tests (standard library only).

It speaks just enough of the Hub's HTTP API for huggingface_hub 2.4's `whoami`, `create_repo`,
`create_branch`, `list_repo_refs`, `upload_folder`, `repo_info`/`model_info`, `list_repo_tree`, `get_paths_info`,
`hf_hub_download` and `snapshot_download`, hence for transformers' `from_pretrained(repo_id)`.
`preupload` answers "regular" for every file, so uploads never touch LFS or Xet storage.
Each repo starts with one branch, `main`, whose files live on disk under
`<root>/repos/<namespace>/<name>/`; `create_branch` copies a branch into `<name>@<branch>/`,
and every route takes a revision (a branch name or the commit at a branch's head), so
`upload_folder(revision=...)`, `list_repo_refs` and `from_pretrained(id, revision=...)` work.

    with run_hub_server(tmp_path, tokens={"hf_good": "alice"}) as hub:
        HfApi(endpoint=hub.url, token="hf_good").create_repo("alice/tiny")
        hub.files("alice/tiny")  # {"config.json": b"...", ...}

Tokens map to users. A user writes to their own namespace and to the orgs given in `orgs`
(user -> {org: roleInOrg}) unless the role is "read"; a token whose role (`token_roles`) is
"read" writes nowhere. Public repos are readable without a token; an unknown token gets 401,
a namespace it cannot write gets 403, like the real Hub.
"""

import base64
import hashlib
import json
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def git_blob_id(data: bytes) -> str:
    """The git object id of a file: what the Hub reports as `oid`/ETag for non-LFS files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, **extra: Any):
        super().__init__(message)
        self.status, self.message, self.code, self.extra = status, message, code, extra


@dataclass
class Branch:
    """One branch of a repo: its files (a folder) and its commits, oldest first."""

    name: str
    path: Path
    commits: list[str] = field(default_factory=list)

    @property
    def head(self) -> str:
        return self.commits[-1]

    def file_paths(self) -> list[str]:
        return sorted(
            p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file()
        )


@dataclass
class Repo:
    repo_id: str
    private: bool
    path: Path  # the files of `main`; another branch's are in the folder `<path>@<branch>`
    created_at: str = field(default_factory=_now)
    branches: dict[str, Branch] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.branches.setdefault("main", Branch("main", self.path))

    @property
    def commits(self) -> list[str]:  # `main`'s, oldest first
        return self.branches["main"].commits

    @property
    def head(self) -> str:
        return self.commits[-1]

    def file_paths(self) -> list[str]:
        return self.branches["main"].file_paths()

    def branch(self, revision: str) -> Branch | None:
        """The branch `revision` names: a branch name, or the commit at a branch's head."""
        if revision in self.branches:
            return self.branches[revision]
        return next((b for b in self.branches.values() if b.head == revision), None)

    def add_branch(self, name: str, start: Branch) -> Branch:
        path = self.path.with_name(f"{self.path.name}@{name}")
        shutil.copytree(start.path, path)
        self.branches[name] = Branch(name, path, [start.head])
        return self.branches[name]


@dataclass
class FakeHub:
    root: Path
    tokens: dict[str, str]
    orgs: dict[str, dict[str, str]]
    token_roles: dict[str, str]
    url: str = ""
    repos: dict[str, Repo] = field(default_factory=dict)
    requests: list[str] = field(
        default_factory=list
    )  # "METHOD /path", for assertions and debugging
    unhandled: list[str] = field(default_factory=list)  # requests no route matched
    # cleared: every commit waits until it is set again (outside the lock: other requests go
    # on); a test holds uploads back with it (a run killed while its checkpoints upload)
    commits_open: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.commits_open.set()

    lock: threading.Lock = field(default_factory=threading.Lock)

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """Every file of a branch of the repo (`main` unless `revision` names another), by path."""
        branch = self.repos[repo_id].branches[revision]
        return {p: (branch.path / p).read_bytes() for p in branch.file_paths()}

    def writable_namespaces(self, token: str) -> list[str]:
        user = self.tokens[token]
        if self.token_roles.get(token, "write") == "read":
            return []
        orgs = self.orgs.get(user, {})
        return [user] + [org for org, role in orgs.items() if role != "read"]


# --------------------------------------------------------------------------- request handling
class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    # HTTP/1.0: one request per connection, so no handler thread outlives the test.
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    # ------------------------------------------------------------------ plumbing
    @property
    def hub(self) -> FakeHub:
        return self.server.hub

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        self.query = parse_qs(url.query)
        self.hub.requests.append(f"{method} {url.path}")
        for route_method, pattern, handler in ROUTES:
            match = pattern.fullmatch(url.path)
            if match and method in route_method.split("|"):
                if handler is _Handler.commit:
                    self.hub.commits_open.wait()
                args = {k: unquote(v) for k, v in match.groupdict(default="").items()}
                try:
                    with self.hub.lock:
                        handler(self, **args)
                except HubError as err:
                    self._error(err)
                return
        self.hub.unhandled.append(f"{method} {self.path}")
        self._error(HubError(404, f"fake hub: no route for {method} {url.path}"))

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        if isinstance(body, bytes):
            payload, content_type = body, "application/octet-stream"
        else:
            payload, content_type = json.dumps(body).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _error(self, err: HubError) -> None:
        headers = {"X-Error-Message": err.message}
        if err.code:
            headers["X-Error-Code"] = err.code
        self._send(err.status, {"error": err.message, **err.extra}, headers)

    # ------------------------------------------------------------------ auth and lookups
    def _token(self) -> str | None:
        header = self.headers.get("Authorization")
        if not header:
            return None
        token = header.removeprefix("Bearer ").strip()
        if token not in self.hub.tokens:
            raise HubError(401, "Invalid credentials in Authorization header")
        return token

    def _require_write(self, namespace: str) -> str:
        token = self._token()
        if token is None:
            raise HubError(401, "You must be authenticated to write to the Hub")
        if namespace not in self.hub.writable_namespaces(token):
            user = self.hub.tokens[token]
            raise HubError(
                403,
                f"You don't have the rights to write to the namespace {namespace} (user {user})",
            )
        return token

    def _repo(self, repo_id: str, revision: str = "main") -> Branch:
        """The branch `revision` names of a repo the request may read."""
        repo = self._readable(repo_id)
        branch = repo.branch(revision)
        if branch is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return branch

    def _readable(self, repo_id: str) -> Repo:
        token = self._token()  # an invalid token is refused even on public repos
        repo = self.hub.repos.get(repo_id)
        readable = repo is not None and (
            not repo.private
            or (token is not None and repo_id.split("/")[0] in self.hub.writable_namespaces(token))
        )
        if not readable:
            raise HubError(404, "Repository not found", "RepoNotFound")
        return repo

    def _entry(self, repo: Branch, path: str) -> dict[str, Any]:
        target = repo.path / path
        if target.is_file():
            data = target.read_bytes()
            return {"type": "file", "oid": git_blob_id(data), "size": len(data), "path": path}
        return {"type": "directory", "oid": git_blob_id(path.encode()), "size": 0, "path": path}

    # ------------------------------------------------------------------ routes
    def whoami(self) -> None:
        token = self._token()
        if token is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        user = self.hub.tokens[token]
        orgs = [
            {"type": "org", "name": org, "fullname": org, "roleInOrg": role}
            for org, role in self.hub.orgs.get(user, {}).items()
        ]
        role = self.hub.token_roles.get(token, "write")
        self._send(200, {
            "type": "user", "id": hashlib.sha1(user.encode()).hexdigest()[:24], "name": user,
            "fullname": user, "orgs": orgs,
            "auth": {"type": "access_token",
                     "accessToken": {"displayName": "test", "role": role, "createdAt": _now()}},
        })  # fmt: skip

    def create_repo(self) -> None:
        payload = json.loads(self._body())
        if payload.get("type", "model") != "model":
            raise HubError(400, "fake hub: only model repos are supported")
        token = self._token()
        namespace = payload.get("organization") or (self.hub.tokens[token] if token else "")
        self._require_write(namespace)
        repo_id = f"{namespace}/{payload['name']}"
        url = f"{self.hub.url}/{repo_id}"
        if repo_id in self.hub.repos:
            # create_repo(exist_ok=True) reads the url from this 409 body.
            raise HubError(409, "You already created this model repo", url=url)
        path = self.hub.root / "repos" / namespace / payload["name"]
        path.mkdir(parents=True)
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        repo = Repo(repo_id, private, path)
        repo.commits.append(
            hashlib.sha1(f"{repo_id} initial {time.time_ns()}".encode()).hexdigest()
        )
        self.hub.repos[repo_id] = repo
        self._send(200, {"url": url, "name": repo_id, "id": repo.head[:24]})

    def create_branch(self, repo_id: str, branch: str) -> None:
        self._require_write(repo_id.split("/")[0])
        repo = self._readable(repo_id)
        start = json.loads(self._body() or b"{}").get("startingPoint", "main")
        if branch in repo.branches:
            raise HubError(409, f"Reference refs/heads/{branch} already exists")
        source = repo.branch(start)
        if source is None:
            raise HubError(404, f"Invalid rev id: {start}", "RevisionNotFound")
        repo.add_branch(branch, source)
        self._send(200, {})

    def refs(self, repo_id: str) -> None:
        repo = self._readable(repo_id)
        branches = [
            {"name": name, "ref": f"refs/heads/{name}", "targetCommit": branch.head}
            for name, branch in sorted(repo.branches.items())
        ]
        self._send(200, {"branches": branches, "converts": [], "tags": [], "pullRequests": []})

    def validate_yaml(self) -> None:
        self._body()
        self._send(200, {"errors": [], "warnings": []})

    def model_info(self, repo_id: str, revision: str = "") -> None:
        repo, branch = self._readable(repo_id), self._repo(repo_id, revision or "main")
        siblings = []
        for p in branch.file_paths():
            entry = self._entry(branch, p)
            siblings.append({"rfilename": p, "size": entry["size"], "blobId": entry["oid"]})
        self._send(200, {
            "_id": branch.head[:24], "id": repo_id, "modelId": repo_id,
            "author": repo_id.split("/")[0], "sha": branch.head, "private": repo.private,
            "disabled": False, "gated": False, "downloads": 0, "likes": 0, "tags": [],
            "library_name": "transformers", "createdAt": repo.created_at,
            "lastModified": repo.created_at, "siblings": siblings,
        })  # fmt: skip

    def tree(self, repo_id: str, revision: str, path: str = "") -> None:
        repo = self._repo(repo_id, revision)
        prefix = PurePosixPath(path) if path else None
        if prefix and not (repo.path / path).is_dir():
            raise HubError(404, f"{path} does not exist on {revision}", "EntryNotFound")
        recursive = self.query.get("recursive", ["false"])[0].lower() in ("1", "true")
        entries: dict[str, dict[str, Any]] = {}
        for p in repo.file_paths():
            parts = PurePosixPath(p)
            if prefix and prefix not in parts.parents:
                continue
            depth = len(prefix.parts) if prefix else 0
            # Non-recursive listings show the first level only, folders included.
            levels = range(depth + 1, len(parts.parts) + 1) if recursive else [depth + 1]
            for level in levels:
                sub = "/".join(parts.parts[:level])
                entries.setdefault(sub, self._entry(repo, sub))
        self._send(200, [entries[k] for k in sorted(entries)])

    def paths_info(self, repo_id: str, revision: str) -> None:
        repo = self._repo(repo_id, revision)
        form = parse_qs(self._body().decode())
        found = [p for p in form.get("paths", []) if (repo.path / _safe_path(p)).exists()]
        self._send(200, [self._entry(repo, p) for p in found])

    def preupload(self, repo_id: str, revision: str) -> None:
        self._require_write(repo_id.split("/")[0])
        repo = self._repo(repo_id, revision)
        files = []
        for item in json.loads(self._body())["files"]:
            info = {"path": item["path"], "uploadMode": "regular", "shouldIgnore": False}
            existing = repo.path / _safe_path(item["path"])
            if existing.is_file():  # lets the client skip unchanged files, as the Hub does
                info["oid"] = git_blob_id(existing.read_bytes())
            files.append(info)
        self._send(200, {"files": files})

    def commit(self, repo_id: str, revision: str) -> None:
        self._require_write(repo_id.split("/")[0])
        repo = self._repo(repo_id, revision)
        lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
        header = next((x["value"] for x in lines if x["key"] == "header"), {})
        parent = header.get("parentCommit")
        if parent and parent != repo.head:
            raise HubError(412, "A commit has happened since. Please refresh and try again.")
        for item in lines:
            key, value = item["key"], item["value"]
            if key == "header":
                continue
            target = repo.path / _safe_path(value["path"])
            if key == "file":
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(base64.b64decode(value["content"]))
            elif key == "deletedFile" and target.is_file():
                target.unlink()
            elif key == "deletedFolder" and target.is_dir():
                shutil.rmtree(target)
            elif key not in ("deletedFile", "deletedFolder"):
                raise HubError(400, f"fake hub: unsupported commit operation {key!r}")
        summary = header.get("summary", "")
        oid = hashlib.sha1(f"{repo.head} {summary} {time.time_ns()}".encode()).hexdigest()
        repo.commits.append(oid)
        self._send(200, {
            "success": True, "commitOid": oid, "commitUrl": f"{self.hub.url}/{repo_id}/commit/{oid}",
            "hookOutput": "", "pullRequestUrl": None,
        })  # fmt: skip

    def resolve(self, repo_id: str, revision: str, path: str) -> None:
        repo = self._repo(repo_id, revision)
        target = repo.path / _safe_path(path)
        if not target.is_file():
            raise HubError(404, "Entry not found", "EntryNotFound")
        data = target.read_bytes()
        headers = {"X-Repo-Commit": repo.head, "ETag": f'"{git_blob_id(data)}"'}
        self._send(200, data, headers)


def _safe_path(path: str) -> str:
    parts = PurePosixPath(path).parts
    if not parts or path.startswith("/") or ".." in parts:
        raise HubError(400, f"fake hub: invalid path {path!r}")
    return path


_REPO = r"(?P<repo_id>[^/]+/[^/]+)"
_REV = r"(?P<revision>[^/]+)"
ROUTES: list[tuple[str, re.Pattern[str], Callable[..., None]]] = [
    (m, re.compile(p), f)
    for m, p, f in [
        ("GET", r"/api/whoami-v2", _Handler.whoami),
        ("POST", r"/api/repos/create", _Handler.create_repo),
        ("POST", r"/api/validate-yaml", _Handler.validate_yaml),
        ("POST", rf"/api/models/{_REPO}/branch/(?P<branch>[^/]+)", _Handler.create_branch),
        ("GET", rf"/api/models/{_REPO}/refs", _Handler.refs),
        ("GET", rf"/api/models/{_REPO}(?:/revision/{_REV})?", _Handler.model_info),
        ("GET", rf"/api/models/{_REPO}/tree/{_REV}(?:/(?P<path>.+))?", _Handler.tree),
        ("POST", rf"/api/models/{_REPO}/paths-info/{_REV}", _Handler.paths_info),
        ("POST", rf"/api/models/{_REPO}/preupload/{_REV}", _Handler.preupload),
        ("POST", rf"/api/models/{_REPO}/commit/{_REV}", _Handler.commit),
        ("GET|HEAD", rf"/{_REPO}/resolve/{_REV}/(?P<path>.+)", _Handler.resolve),
    ]
]


# --------------------------------------------------------------------------- server lifecycle
class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() then joins every handler thread
    block_on_close = True
    hub: FakeHub


@contextmanager
def run_hub_server(
    root: str | Path,
    tokens: dict[str, str] | None = None,
    orgs: dict[str, dict[str, str]] | None = None,
    token_roles: dict[str, str] | None = None,
) -> Iterator[FakeHub]:
    """Serve a fake Hub on a free 127.0.0.1 port; yield it (`.url`, `.files()`, `.requests`)."""
    hub = FakeHub(Path(root) / "fake_hub", tokens or {}, orgs or {}, token_roles or {})
    server = _Server(("127.0.0.1", 0), _Handler)
    server.hub = hub
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-hub", daemon=True
    )
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
