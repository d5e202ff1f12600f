"""The reference runtime: the HTTP contract every instance runtime implements, served by one
OS process per instance (`python -m adapters.reference_runtime --port P --instance ID`).

It is built on the standard library's threading HTTP server rather than Litestar because the
local provider starts one per instance and provisioning is timed from the API call: this
starts in about 50 ms, where importing an ASGI stack alone costs several hundred.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


class Runtime:
    """The runtime's state: configuration, model policy and conversations, kept in memory."""

    def __init__(self, instance_id: str) -> None:
        self.instance_id = instance_id
        self.started = time.monotonic()
        self.config: dict[str, Any] = {}
        self.conversations: dict[str, Conversation] = {}
        self.updates_applied = 0
        self.lock = threading.Lock()

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
            limit = int(query.get("limit", ["20"])[0])
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
            return 200, self.config
        if path == "/api/updates/apply":
            with self.lock:
                self.updates_applied += 1
            return 200, {"applied": True, "version": VERSION}
        return 404, {"detail": "not found"}


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
            self._send(*runtime.get(url.path, parse_qs(url.query)))

        def do_POST(self) -> None:
            try:
                self._send(*runtime.post(self.path, self._body()))
            except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as e:
                self._send(400, {"detail": str(e)})

    return Handler


def serve(port: int, instance_id: str) -> None:
    if os.environ.get("LIFELINE_RUNTIME_FAIL_START"):
        # Lets tests (and operators) see what a runtime that cannot start looks like.
        raise SystemExit("runtime refused to start: LIFELINE_RUNTIME_FAIL_START is set")
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(Runtime(instance_id)))
    server.daemon_threads = True
    server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Lifeline's reference instance runtime")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--instance", default="local")
    args = parser.parse_args(argv)
    serve(args.port, args.instance)


if __name__ == "__main__":
    main()
