#!/usr/bin/env python3
"""A small stand-in for the Hugging Face Hub, for mergegraph's tests: the subset of its HTTP API that downloads use,
on 127.0.0.1, serving model repos from local directories.

    python3 hub_server.py --repo ORG/NAME=DIR [--repo ...] [--gated ORG/NAME] [--private ORG/NAME] [--token T]
                          [--log FILE] [--page-size N] [--cut-after FILE=N] [--stall-after FILE=N]
                          [--corrupt-once FILE]

Prints the port it listens on as its first line. Each repo has one commit (a hash of its id and files), reachable as
the branch `main`, the tag `v1.0` and the hash itself. Endpoints, as the Hub answers them:

  GET  /api/models/REPO/revision/REV   {"id", "sha", "siblings": [{"rfilename"}], "private", "gated"}
  GET  /api/models/REPO/tree/REV       [{"type": "file", "path", "size", "oid", "lfs": {"oid", "size", "pointerSize"}}]
                                       (paged by `Link: <...>; rel="next"` with --page-size)
  HEAD/GET /REPO/resolve/REV/FILE      the bytes (Range: bytes=A-B or A-), with X-Repo-Commit, ETag, X-Linked-Etag and
                                       X-Linked-Size (LFS files: *.safetensors, *.bin, or over 10 kB), Accept-Ranges
  Errors: 404/401 with X-Error-Code RepoNotFound, RevisionNotFound, EntryNotFound (with X-Repo-Commit), GatedRepo.

FILE in the fault options is REPO/PATH; faults strike downloads (no Range, or an open one: bytes=A-), not other
Range reads. --cut-after closes the connection after N bytes of that file's first download; --stall-after sends N bytes of the first download, then nothing; --corrupt-once flips a byte in the first
download. --log appends one JSON line per request: method, path, range, status, bytes of body sent.
"""
import argparse
import hashlib
import json
import os
import re
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LFS_THRESHOLD = 10 * 1024


class Repo:
    def __init__(self, repo_id, directory):
        self.id = repo_id
        self.directory = directory
        self.files = {}
        for root, _, names in os.walk(directory):
            for name in sorted(names):
                full = os.path.join(root, name)
                path = os.path.relpath(full, directory).replace(os.sep, "/")
                data = open(full, "rb").read()
                lfs = path.endswith((".safetensors", ".bin")) or len(data) > LFS_THRESHOLD
                self.files[path] = {
                    "data": data,
                    "oid": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest(),
                    "sha256": hashlib.sha256(data).hexdigest() if lfs else None,
                }
        digest = hashlib.sha1(repo_id.encode())
        for path in sorted(self.files):
            digest.update(path.encode() + self.files[path]["oid"].encode())
        self.commit = digest.hexdigest()
        self.refs = {"main": self.commit, "v1.0": self.commit}

    def resolve(self, revision):
        return self.refs.get(revision) or (revision if revision == self.commit else None)


class Hub:
    def __init__(self, args):
        self.repos = {}
        for spec in args.repo:
            repo_id, directory = spec.split("=", 1)
            self.repos[repo_id] = Repo(repo_id, directory)
        self.gated = set(args.gated)
        self.private = set(args.private)
        self.token = args.token
        self.page_size = args.page_size
        self.log = args.log
        self.lock = threading.Lock()
        self.faults = {}
        for kind in ("cut_after", "stall_after"):
            for spec in getattr(args, kind):
                name, count = spec.rsplit("=", 1)
                self.faults[name] = (kind, int(count))
        for name in args.corrupt_once:
            self.faults[name] = ("corrupt", 0)

    def take_fault(self, name):
        with self.lock:
            return self.faults.pop(name, None)

    def record(self, entry):
        if self.log:
            with self.lock, open(self.log, "a") as f:
                f.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub = None

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self.handle_request(head=True)

    def do_GET(self):
        self.handle_request(head=False)

    # MARK: replies

    def reply(self, status, body=b"", headers=None, head=False, record=None):
        headers = dict(headers or {})
        headers.setdefault("Content-Length", str(len(body)))
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        sent = 0
        if not head and body:
            self.wfile.write(body)
            sent = len(body)
        self.hub.record(dict(record or {}, status=status, bytes=sent))

    def error(self, status, code, message, head, record, commit=None):
        headers = {"X-Error-Code": code, "X-Error-Message": message, "Content-Type": "application/json"}
        if commit:
            headers["X-Repo-Commit"] = commit
        self.reply(status, json.dumps({"error": message}).encode(), headers, head, record)

    def authorized(self):
        return self.hub.token is not None and self.headers.get("Authorization") == "Bearer " + self.hub.token

    def repo(self, repo_id, head, record):
        """The repo, or None after replying with the Hub's error."""
        repo = self.hub.repos.get(repo_id)
        if repo is None or (repo_id in self.hub.private and not self.authorized()):
            status = 401 if "Authorization" not in self.headers else 404
            self.error(status, "RepoNotFound", "Repository Not Found for url: %s." % self.path, head, record)
            return None
        if repo_id in self.hub.gated and not self.authorized():
            self.error(401, "GatedRepo", "Access to model %s is restricted. You must have access to it and be "
                                         "authenticated to access it. Please log in." % repo_id, head, record)
            return None
        return repo

    def resolved(self, repo_id, revision, head, record):
        """(repo, commit), or None after replying with the Hub's error."""
        repo = self.repo(repo_id, head, record)
        if repo is None:
            return None
        commit = repo.resolve(revision)
        if commit is None:
            self.error(404, "RevisionNotFound", "Invalid rev id: %s" % revision, head, record)
            return None
        return repo, commit

    def handle_request(self, head):
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        record = {"method": self.command, "path": urllib.parse.unquote(path), "range": self.headers.get("Range")}
        match = re.fullmatch(r"/api/models/(.+)/(revision|tree)/([^/]+)", path)
        if match:
            repo_id, kind, revision = match.group(1), match.group(2), urllib.parse.unquote(match.group(3))
            found = self.resolved(repo_id, revision, head, record)
            if found is None:
                return
            repo, commit = found
            if kind == "revision":
                body = {"id": repo_id, "modelId": repo_id, "sha": commit, "private": repo_id in self.hub.private,
                        "gated": "manual" if repo_id in self.hub.gated else False,
                        "siblings": [{"rfilename": name} for name in sorted(repo.files)]}
                self.reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"}, head, record)
                return
            entries = []
            for name in sorted(repo.files):
                f = repo.files[name]
                entry = {"type": "file", "oid": f["oid"], "size": len(f["data"]), "path": name}
                if f["sha256"]:
                    entry["lfs"] = {"oid": f["sha256"], "size": len(f["data"]), "pointerSize": 134}
                entries.append(entry)
            query = urllib.parse.parse_qs(url.query)
            start = int(query.get("cursor", ["0"])[0])
            page = entries[start:start + self.hub.page_size]
            headers = {"Content-Type": "application/json"}
            if start + self.hub.page_size < len(entries):
                nxt = "%s?recursive=true&expand=false&cursor=%d" % (path, start + self.hub.page_size)
                headers["Link"] = '<http://%s%s>; rel="next"' % (self.headers.get("Host"), nxt)
            self.reply(200, json.dumps(page).encode(), headers, head, record)
            return
        match = re.fullmatch(r"/(.+?/.+?)/resolve/([^/]+)/(.+)", path) or re.fullmatch(r"/([^/]+)/resolve/([^/]+)/(.+)", path)
        if match:
            repo_id, revision = match.group(1), urllib.parse.unquote(match.group(2))
            name = urllib.parse.unquote(match.group(3))
            found = self.resolved(repo_id, revision, head, record)
            if found is None:
                return
            repo, commit = found
            f = repo.files.get(name)
            if f is None:
                self.error(404, "EntryNotFound", "Entry not found", head, record, commit=commit)
                return
            self.send_file(repo, commit, name, f, head, record)
            return
        self.reply(404, b"not found", {}, head, record)

    def send_file(self, repo, commit, name, f, head, record):
        data = f["data"]
        etag = f["sha256"] or f["oid"]
        headers = {"X-Repo-Commit": commit, "ETag": '"%s"' % f["oid"], "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream"}
        if f["sha256"]:
            headers["X-Linked-Etag"] = '"%s"' % etag
            headers["X-Linked-Size"] = str(len(data))
        status, body = 200, data
        spec = self.headers.get("Range")
        if spec:
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", spec.strip())
            first = int(match.group(1))
            last = int(match.group(2)) if match.group(2) else len(data) - 1
            if first >= len(data):
                headers["Content-Range"] = "bytes */%d" % len(data)
                self.reply(416, b"", headers, head, record)
                return
            last = min(last, len(data) - 1)
            status, body = 206, data[first:last + 1]
            headers["Content-Range"] = "bytes %d-%d/%d" % (first, last, len(data))
        # Faults strike downloads (the whole file, or its rest from an offset), not a plan's header reads.
        download = not head and (spec is None or spec.strip().endswith("-"))
        fault = self.hub.take_fault("%s/%s" % (repo.id, name)) if download else None
        if fault is None:
            self.reply(status, body, headers, head, record)
            return
        kind, count = fault
        if kind == "corrupt":
            body = bytes([body[0] ^ 0xFF]) + body[1:]
            self.reply(status, body, headers, head, record)
            return
        headers["Content-Length"] = str(len(body))
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body[:count])
        self.wfile.flush()
        self.hub.record(dict(record, status=status, bytes=min(count, len(body)), fault=kind))
        if kind == "stall_after":
            time.sleep(600)
        self.close_connection = True
        try:
            self.connection.shutdown(2)
        except OSError:
            pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repo", action="append", default=[])
    parser.add_argument("--gated", action="append", default=[])
    parser.add_argument("--private", action="append", default=[])
    parser.add_argument("--token")
    parser.add_argument("--log")
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--cut-after", dest="cut_after", action="append", default=[])
    parser.add_argument("--stall-after", dest="stall_after", action="append", default=[])
    parser.add_argument("--corrupt-once", dest="corrupt_once", action="append", default=[])
    args = parser.parse_args()
    Handler.hub = Hub(args)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
