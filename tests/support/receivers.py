"""Local receivers for the notifications' tests: an HTTP server that records what is POSTed to
it (some paths answer errors first, or slowly) and a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.support.panel import free_port


@dataclass
class Receiver:
    url: str
    #: path → the JSON bodies it accepted.
    got: dict[str, list[Any]] = field(default_factory=dict)
    #: path → every request, accepted or not.
    tries: dict[str, int] = field(default_factory=dict)
    #: path → how many first requests answer 503 ("/down" always answers 500).
    fail_first: dict[str, int] = field(default_factory=dict)
    #: path → seconds to wait before answering.
    slow: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait(self, path: str, n: int = 1, timeout: float = 60) -> list[Any]:
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                got = list(self.got.get(path, []))
            if len(got) >= n:
                return got
            assert time.monotonic() < deadline, (path, self.tries, self.got)
            time.sleep(0.1)


def _handler(rx: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path = self.path
            with rx.lock:
                rx.tries[path] = rx.tries.get(path, 0) + 1
                n = rx.tries[path]
            time.sleep(rx.slow.get(path, 0))
            code = 200
            if path == "/down":
                code = 500
            elif n <= rx.fail_first.get(path, 0):
                code = 503
            if code == 200:
                with rx.lock:
                    rx.got.setdefault(path, []).append(json.loads(body))
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    port = free_port()
    rx = Receiver(url=f"http://127.0.0.1:{port}")
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(rx))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rx
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Mailbox:
    port: int
    messages: list[Message] = field(default_factory=list)

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"

    def wait(self, n: int = 1, timeout: float = 60) -> list[Message]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < n:
            assert time.monotonic() < deadline, self.messages
            time.sleep(0.1)
        return list(self.messages)


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    from aiosmtpd.controller import Controller

    box = Mailbox(port=free_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()
