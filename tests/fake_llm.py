"""A scripted OpenAI-compatible chat server on loopback, for testing the real litellm client.

Tests talk to it over real HTTP (model "openai/fake", api_base `server.base_url`), so
retries, timeouts, usage fields and truncation go through the same code paths as with
a real provider. Each request takes the next `Reply` from the script (or asks the
`responder`, or falls back to `default`) and the server records every request it got.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """What the server does for one request."""

    content: str = "ok"
    status: int = 200
    delay_s: float = 0.0
    """Sleep this long before answering (past the client's timeout: a slow reply)."""
    wait_for: int = 0
    """Hold the answer until this many requests are in flight at once (at most 10 s): a concurrency check
    that does not depend on how fast a loaded machine starts threads."""
    finish_reason: str = "stop"
    usage: dict[str, int] | None = field(default_factory=lambda: {"prompt_tokens": 100, "completion_tokens": 50})
    """None: send no usage field (some local servers do not)."""
    headers: dict[str, str] = field(default_factory=dict)
    raw_body: bytes | None = None
    """Send these bytes as the body instead of a generated one."""


@dataclass
class Received:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    """Header names in lower case (HTTP header names are case-insensitive; clients differ)."""
    t: float


class FakeLLM:
    """Start with `with FakeLLM(script) as server:`; `server.base_url` is the OpenAI-style /v1 URL."""

    def __init__(
        self,
        script: Iterable[Reply] = (),
        default: Reply | None = None,
        responder: Callable[[dict[str, Any]], Reply] | None = None,
    ) -> None:
        self.script: list[Reply] = list(script)
        self.default = default or Reply()
        self.responder = responder
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        self._in_flight = threading.Condition(self._lock)
        self.in_flight = 0
        self.max_in_flight = 0
        """The most chat requests the server held at once."""
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- script ----------------------------------------------------------------------
    def push(self, *replies: Reply) -> None:
        with self._lock:
            self.script.extend(replies)

    def _next(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if self.script:
                return self.script.pop(0)
        if self.responder is not None:
            return self.responder(body)
        return self.default

    @property
    def count(self) -> int:
        """Chat requests received so far."""
        with self._lock:
            return sum(1 for r in self.requests if r.path.endswith("/chat/completions"))

    # ---- server ----------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        assert self._server is not None, "server not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> FakeLLM:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    body = {}
                with fake._lock:
                    fake.requests.append(
                        Received(self.path, body, {k.lower(): v for k, v in self.headers.items()}, time.time())
                    )
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                    fake._in_flight.notify_all()
                try:
                    self._answer(fake._next(body), body)
                finally:
                    with fake._lock:
                        fake.in_flight -= 1

            def _answer(self, reply: Reply, body: dict[str, Any]) -> None:
                if reply.wait_for:
                    with fake._in_flight:
                        fake._in_flight.wait_for(lambda: fake.in_flight >= reply.wait_for, timeout=10.0)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                if reply.raw_body is not None:
                    payload = reply.raw_body
                elif reply.status == 200:
                    payload = json.dumps(_chat_body(body, reply)).encode()
                else:
                    payload = json.dumps(
                        {
                            "error": {
                                "message": f"scripted error {reply.status}",
                                "type": "server_error",
                                "code": reply.status,
                            }
                        }
                    ).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): that is the point of a slow reply

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _chat_body(request: dict[str, Any], reply: Reply) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"chatcmpl-fake-{time.time_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", "fake"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.content},
                "finish_reason": reply.finish_reason,
            }
        ],
    }
    if reply.usage is not None:
        body["usage"] = {**reply.usage, "total_tokens": sum(reply.usage.values())}
    return body
