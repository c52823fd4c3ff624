"""A real HTTP server on 127.0.0.1 standing in for a channel's callback endpoint."""

import contextlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    headers: dict
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers each POST with the next planned reply: a status code, or ("sleep", seconds)."""

    url: str = ""
    plan: list = field(default_factory=list)
    default: int = 200
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_reply(self):
        with self.lock:
            return self.plan.pop(0) if self.plan else self.default

    def idempotency_keys(self) -> list[str]:
        return [r.headers["Idempotency-Key"] for r in self.received]


def start_receiver() -> tuple[Receiver, ThreadingHTTPServer]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            reply = receiver.next_reply()
            with receiver.lock:
                receiver.received.append(Received(dict(self.headers.items()), body))
            if isinstance(reply, tuple) and reply[0] == "sleep":
                time.sleep(reply[1])
                reply = 200
            payload = json.dumps({"id": f"ch-{len(receiver.received)}"}).encode()
            self.send_response(reply)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(payload)  # unless the client gave up (timeout)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/closeloop/outbound"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver, server
