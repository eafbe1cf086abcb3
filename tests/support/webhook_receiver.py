"""A real HTTP receiver for webhook deliveries: a server on a thread at 127.0.0.1 that records
each request (its headers and body) and answers as told, one answer per request (the last one
repeats). An answer is a status code, or ("sleep", seconds, status) to answer late."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = int | tuple[str, float, int]


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    path: str


@dataclass
class Receiver:
    port: int
    answers: list[Answer] = field(default_factory=lambda: [200])
    received: list[Received] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def answer_next(self) -> Answer:
        if len(self.answers) > 1:
            return self.answers.pop(0)
        return self.answers[0]


@contextmanager
def webhook_receiver(answers: list[Answer] | None = None) -> Iterator[Receiver]:
    lock = threading.Lock()
    receiver = Receiver(port=0, answers=list(answers or [200]))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            with lock:
                receiver.received.append(
                    Received(headers=dict(self.headers.items()), body=body, path=self.path)
                )
                answer = receiver.answer_next()
            if isinstance(answer, tuple):
                _sleep, seconds, status = answer
                threading.Event().wait(seconds)
            else:
                status = answer
            text = b"ok" if 200 <= status < 300 else b"x" * 3000  # more than 1 KB
            try:
                self.send_response(status)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the sender gave up waiting (a timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
