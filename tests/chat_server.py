"""A loopback stand-in for an OpenAI-compatible chat server: it answers every
/v1/chat/completions request with the next canned reply (or an HTTP error) and keeps the
requests, so a test can fix exactly what a judge says. Real judges are tested against the
vLLM fixture; this one gives replies a small model cannot be relied on to write."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class ChatServer:
    replies: list[str] = field(default_factory=list)  # served in turn; the last one repeats
    status: int = 200
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    url: str = ""

    def answer(self) -> tuple[int, dict[str, Any]]:
        if self.status != 200:
            return self.status, {"error": {"message": "model overloaded"}}
        index = min(len(self.requests) - 1, len(self.replies) - 1)
        message = {"role": "assistant", "content": self.replies[index]}
        return 200, {"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}


# What a request gets: (status, body bytes), or None to close the connection unanswered.
Respond = Callable[[str, dict[str, Any], dict[str, str]], tuple[int, bytes] | None]


@contextmanager
def loopback_server(respond: Respond) -> Iterator[str]:
    """An HTTP server on a free loopback port answering each JSON POST (path, body, headers)
    with `respond`; yields its base URL and stops it on exit."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            answer = respond(self.path, json.loads(self.rfile.read(length)), dict(self.headers))
            if answer is None:
                self.close_connection = True
                return
            status, payload = answer
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextmanager
def chat_server(*replies: str) -> Iterator[ChatServer]:
    server = ChatServer(replies=list(replies))
    lock = threading.Lock()

    def respond(path: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, bytes]:
        with lock:
            server.requests.append({"path": path, **body})
            server.headers.append(headers)
            status, answer = server.answer()
        return status, json.dumps(answer).encode()

    with loopback_server(respond) as url:
        server.url = f"{url}/v1"
        yield server
