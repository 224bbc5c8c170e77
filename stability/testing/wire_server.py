"""A local HTTP server on 127.0.0.1 that speaks the OpenAI and Anthropic wire formats.

The real SDK providers are pointed at it (``OPENAI_BASE_URL=<url>/v1``, ``ANTHROPIC_BASE_URL=<url>``), so tests
exercise the real client code paths offline. It counts every request, answers with a function of the messages,
and injects faults on demand:

    with WireServer(reply=lambda messages: "NO CHANGE") as server:
        server.fail_next(429, retry_after=0.01)
        ...
        assert server.count == 2

Run it standalone with ``python -m stability.testing.wire_server --port 8123 --latency 0.1``.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = Callable[[list[dict[str, Any]]], str]


@dataclass
class Fault:
    status: int
    retry_after: float | None = None


def decline(messages: list[dict[str, Any]]) -> str:
    return "NO CHANGE"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default of 5 resets connections under 50-way concurrency


class WireServer:
    def __init__(self, reply: Reply = decline, latency: float = 0.0, port: int = 0) -> None:
        self.reply = reply
        self.latency = latency
        self.lock = threading.Lock()
        self.faults: list[Fault] = []
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.bodies: Counter[str] = Counter()
        self.httpd = _Server(("127.0.0.1", port), self._handler())
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def count(self) -> int:
        with self.lock:
            return len(self.requests)

    def fail_next(self, status: int, retry_after: float | None = None, times: int = 1) -> None:
        with self.lock:
            self.faults.extend(Fault(status, retry_after) for _ in range(times))

    def start(self) -> WireServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> WireServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handle(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, Any],
                                                                                           dict[str, str]]:
        with self.lock:
            self.requests.append({"path": path, "body": body})
            self.headers.append(headers)
            self.bodies[json.dumps(body, sort_keys=True)] += 1
            fault = self.faults.pop(0) if self.faults else None
        if self.latency:
            time.sleep(self.latency)
        if fault is not None:
            extra = {"retry-after": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            kind = "overloaded_error" if fault.status == 529 else "rate_limit_error" if fault.status == 429 \
                else "api_error"
            return fault.status, {"type": "error", "error": {"type": kind, "message": f"injected {fault.status}"}}, \
                extra
        if path.endswith("/chat/completions"):
            return 200, self._openai(body), {}
        if path.endswith("/messages"):
            return 200, self._anthropic(body), {}
        return 404, {"error": {"message": f"no route {path}"}}, {}

    def _openai(self, body: dict[str, Any]) -> dict[str, Any]:
        text = self.reply(body["messages"])
        n_in = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
        return {
            "id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion", "created": 0,
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": n_in, "completion_tokens": len(text.split()),
                      "total_tokens": n_in + len(text.split())},
        }

    def _anthropic(self, body: dict[str, Any]) -> dict[str, Any]:
        messages = ([{"role": "system", "content": body["system"]}] if body.get("system") else []) + body["messages"]
        text = self.reply(messages)
        n_in = sum(len(str(m.get("content", "")).split()) for m in messages)
        return {
            "id": f"msg_{len(self.requests)}", "type": "message", "role": "assistant", "model": body["model"],
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": n_in, "output_tokens": len(text.split())},
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("content-length", 0))
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    body = {}
                status, payload, extra = server._handle(self.path, body, dict(self.headers.items()))
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    server = WireServer(latency=args.latency, port=args.port)
    print(server.url, flush=True)
    server.httpd.serve_forever()


if __name__ == "__main__":
    main()
