"""A loopback stand-in for an OpenAI-compatible chat server: it answers every
/v1/chat/completions request with the next canned reply (or an HTTP error) and keeps the
requests, so a test can fix exactly what a judge says. Real judges are tested against the
vLLM fixture; this one gives replies a small model cannot be relied on to write."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
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


@contextmanager
def chat_server(*replies: str) -> Iterator[ChatServer]:
    server = ChatServer(replies=list(replies))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            with lock:
                server.requests.append({"path": self.path, **json.loads(self.rfile.read(length))})
                server.headers.append(dict(self.headers))
                status, body = server.answer()
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
