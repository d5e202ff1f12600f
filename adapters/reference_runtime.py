"""The reference runtime: the HTTP contract every instance runtime implements, served by one
OS process per instance (`python -m adapters.reference_runtime --port P --instance ID
--state-dir D`, or `lifeline runtime ...`). With a state directory its configuration and
conversations survive a restart of the process, as a real runtime's would; the simulated
provider runs the same `Runtime` in memory.

It is built on the standard library's threading HTTP server rather than Litestar + uvicorn
because the local provider starts one per instance and provisioning is timed from the API
call. Measured on the 2-core dev box: interpreter alone 0.11-0.14 s, interpreter + http.server
+ msgspec 0.27 s, interpreter + litestar + uvicorn 0.73-1.08 s; spawn to first answer of
`/api/status` 0.26-0.34 s. (`lifeline runtime` answers only after 1.5-2 s because the CLI
imports the whole service, so the provider spawns `python -m adapters.reference_runtime`.)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec

VERSION = "1.0.0"
DEFAULT_MODEL = "echo-1"
MAX_BODY = 1024 * 1024


class Message(msgspec.Struct):
    role: str
    content: str
    at: str
    user_id: str | None = None


class Conversation(msgspec.Struct):
    id: str
    created_at: str
    messages: list[Message]


class ChatRequest(msgspec.Struct):
    message: str
    conversation_id: str | None = None
    user_id: str | None = None


class SavedState(msgspec.Struct):
    config: dict[str, Any]
    conversations: dict[str, Conversation]
    updates_applied: int = 0


class Runtime:
    """The runtime's state: configuration, model policy and conversations, in memory and, with
    a state directory, in `state.json` there (rewritten whole and atomically on each change)."""

    def __init__(self, instance_id: str, state_dir: str | Path | None = None) -> None:
        self.instance_id = instance_id
        self.started = time.monotonic()
        self.config: dict[str, Any] = {}
        self.conversations: dict[str, Conversation] = {}
        self.updates_applied = 0
        self.lock = threading.Lock()
        self.state_file = Path(state_dir) / "state.json" if state_dir else None
        if self.state_file is not None:
            with contextlib.suppress(FileNotFoundError, msgspec.DecodeError):
                saved = msgspec.json.decode(self.state_file.read_bytes(), type=SavedState)
                self.config = saved.config
                self.conversations = saved.conversations
                self.updates_applied = saved.updates_applied

    def _save(self) -> None:
        """Called with the lock held."""
        if self.state_file is None:
            return
        data = msgspec.json.encode(
            SavedState(self.config, self.conversations, self.updates_applied)
        )
        temporary = self.state_file.with_suffix(".tmp")
        temporary.write_bytes(data)
        temporary.replace(self.state_file)

    def model(self) -> str:
        policy = self.config.get("model_policy")
        if isinstance(policy, dict) and isinstance(policy.get("default_model"), str):
            return str(policy["default_model"])
        return DEFAULT_MODEL

    def status(self) -> dict[str, Any]:
        return {
            "status": "running",
            "instance_id": self.instance_id,
            "uptime_secs": round(time.monotonic() - self.started, 3),
            "conversations": len(self.conversations),
            "model": self.model(),
            "version": VERSION,
            "updates_applied": self.updates_applied,
            "pid": os.getpid(),
        }

    def chat(self, request: ChatRequest) -> dict[str, Any]:
        now = datetime.now(UTC).isoformat()
        with self.lock:
            conversation_id = request.conversation_id or f"c-{uuid.uuid4().hex[:12]}"
            conversation = self.conversations.setdefault(
                conversation_id, Conversation(conversation_id, now, [])
            )
            conversation.messages.append(Message("user", request.message, now, request.user_id))
            reply = f"You said: {request.message}"
            conversation.messages.append(Message("assistant", reply, now))
            self._save()
        # Whitespace tokens: simple, but real counts of what went in and out.
        usage = {
            "input_tokens": len(request.message.split()),
            "output_tokens": len(reply.split()),
            "model": self.model(),
        }
        return {"reply": reply, "conversation_id": conversation_id, "usage": usage}

    def get(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        if path == "/api/status":
            return 200, self.status()
        if path == "/api/config":
            return 200, self.config
        if path == "/api/conversations":
            limit = max(1, min(int(query.get("limit", ["20"])[0]), 1000))
            items = sorted(self.conversations.values(), key=lambda c: c.created_at)[-limit:]
            brief = [
                {"id": c.id, "created_at": c.created_at, "messages": len(c.messages)} for c in items
            ]
            return 200, {"conversations": brief}
        if path.startswith("/api/conversations/"):
            found = self.conversations.get(path.rsplit("/", 1)[1])
            return (200, found) if found else (404, {"detail": "no such conversation"})
        return 404, {"detail": "not found"}

    def post(self, path: str, body: bytes) -> tuple[int, Any]:
        if path == "/api/chat":
            return 200, self.chat(msgspec.json.decode(body, type=ChatRequest))
        if path == "/api/config":
            changes = msgspec.json.decode(body, type=dict[str, Any])
            with self.lock:
                self.config.update(changes)
                self._save()
            return 200, self.config
        if path == "/api/updates/apply":
            with self.lock:
                self.updates_applied += 1
                self._save()
            return 200, {"applied": True, "version": VERSION}
        return 404, {"detail": "not found"}

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, Any]:
        """One call of the contract; a malformed request is a 400, never a dropped connection."""
        try:
            if method == "GET":
                return self.get(path, query)
            if method == "POST":
                return self.post(path, body or b"{}")
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as e:
            return 400, {"detail": str(e)}
        return 405, {"detail": f"{method} is not part of the runtime contract"}


def make_handler(runtime: Runtime) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # the runtime is quiet; Lifeline records what matters as events

        def _send(self, status: int, body: Any) -> None:
            data = msgspec.json.encode(body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                raise ValueError("body too large")
            return self.rfile.read(length) if length else b"{}"

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            self._send(*runtime.handle("GET", url.path, parse_qs(url.query), b""))

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            try:
                body = self._body()
            except ValueError as e:
                self.close_connection = True  # the unread body would corrupt the next request
                self._send(413, {"detail": str(e)})
                return
            self._send(*runtime.handle("POST", url.path, parse_qs(url.query), body))

    return Handler


def serve(
    port: int, instance_id: str, state_dir: str | None = None, *, fail_start: bool = False
) -> None:
    if fail_start or os.environ.get("LIFELINE_RUNTIME_FAIL_START"):
        # Lets tests (and operators) see what a runtime that cannot start looks like; the env
        # variable reaches runtimes the local provider spawns.
        raise SystemExit("runtime refused to start: --fail-start / LIFELINE_RUNTIME_FAIL_START")
    runtime = Runtime(instance_id, state_dir)
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(runtime))
    server.daemon_threads = True
    server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Lifeline's reference instance runtime")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--instance", default="local")
    parser.add_argument("--state-dir", default=None)
    parser.add_argument("--fail-start", action="store_true")
    args = parser.parse_args(argv)
    serve(args.port, args.instance, args.state_dir, fail_start=args.fail_start)


if __name__ == "__main__":
    main()
