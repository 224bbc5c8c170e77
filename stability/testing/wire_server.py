"""A local HTTP server on 127.0.0.1 that speaks the OpenAI and Anthropic wire formats.

The real SDK providers are pointed at it (``OPENAI_BASE_URL=<url>/v1``, ``ANTHROPIC_BASE_URL=<url>``), so tests
exercise the real client code paths offline. It counts every request, answers with a function of the messages
(so a reply is a deterministic function of the request), and injects faults on demand:

    with WireServer(reply=lambda messages: "NO CHANGE") as server:
        server.fail_next(429, retry_after=0.01)      # an HTTP error status (429, 500, 529, 400, ...)
        server.fail_next("reset")                     # close the connection without a response
        ...
        assert server.count == 3

Fault kinds (:data:`FAULT_KINDS`): an HTTP ``status`` (``429`` with ``Retry-After``, ``500``, ``529``
overloaded), ``reset`` (connection closed, no response), ``timeout`` (the request is held for ``hold`` seconds,
longer than the client's timeout, then dropped; set the client's with ``STABILITY_HTTP_TIMEOUT``), ``truncate``
(a declared content-length longer than the body sent), ``cut_json`` (a complete response whose JSON is cut
short), ``no_content`` (a well-formed answer with no text), ``length`` (the answer cut to half its words, with
``finish_reason: length`` / ``stop_reason: max_tokens``) and ``slow`` (an answer after extra latency).

Requests are held to the real APIs' rules (:mod:`stability.testing.wire_rules`): reasoning models' parameters,
extended thinking's limits, and, with ``refuse_structured=500`` (or 400, 422), a server without JSON-schema
output; add ``json_object_schema=True`` for llama.cpp's servers, which refuse ``json_schema`` but take
``response_format: {"type": "json_object", "schema": …}`` and answer it with ``structured_reply``. Answers
count whitespace-separated words as tokens and are cut at ``max_tokens`` (or ``max_completion_tokens``) with
the finish reason each API gives. A request with ``thinking`` gets a thinking block (``think(messages)``) before
its text. A request with a JSON schema (``response_format`` or ``tools``) is
answered with ``structured_reply(messages)`` as JSON when that is set, else with ``reply``; on Anthropic a JSON
object answer comes back as the ``answer`` tool's input.

``usage=(10**15, -5)`` reports that usage (input, output tokens) on every answer instead of the word counts: a
server that reports absurd or negative token counts.

``faults=FaultMix(rate=0.2, seed=1)`` adds a seeded random mix on top of ``fail_next``. Whether the n-th
occurrence of a request body meets a fault depends only on the seed, the body and n, never on arrival order, so
a concurrent run sees the same faults every time.

Batches (:mod:`stability.testing.wire_batches`): OpenAI's Files + Batches API and Anthropic's Message Batches API,
on ``server.batches``, with a completion delay (``batch_delay``), injected expiries, partial errors and failed
batches, and a ``batch_state`` file that a server started again on it (a restart) reads back.

Run it standalone with ``python -m stability.testing.wire_server --port 8123 --latency 0.1 --fault-rate 0.2``;
``GET /count`` then returns its counters as JSON, ``max_in_flight`` (the most requests it held at once) among
them; ``GET /count?reset_max_in_flight`` also starts that one afresh.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from stability.models.structured import parse_json_object
from stability.testing.wire_batches import WireBatches
from stability.testing.wire_rules import anthropic_rejection, cut, openai_rejection

Reply = Callable[[list[dict[str, Any]]], str]
StructuredReply = Callable[[list[dict[str, Any]]], dict[str, Any]]

#: Every kind of fault the server can inject. Numbers are HTTP statuses.
FAULT_KINDS = ("429", "500", "529", "reset", "timeout", "truncate", "cut_json", "no_content", "length", "slow")


@dataclass
class Fault:
    """One injected fault. ``kind`` is ``"status"`` (send ``status``) or one of the names in FAULT_KINDS."""

    status: int = 0
    retry_after: float | None = None
    kind: str = "status"
    hold: float = 2.0  # seconds a ``timeout`` holds the request, or ``slow`` delays it

    @classmethod
    def of(cls, fault: int | str, retry_after: float | None = None, hold: float = 2.0) -> Fault:
        if isinstance(fault, int) or fault.isdigit():
            return cls(status=int(fault), retry_after=retry_after, hold=hold)
        if fault not in FAULT_KINDS:
            raise ValueError(f"unknown fault {fault!r}: expected an HTTP status or one of {', '.join(FAULT_KINDS)}")
        return cls(kind=fault, hold=hold)

    @property
    def name(self) -> str:
        return str(self.status) if self.kind == "status" else self.kind


@dataclass
class FaultMix:
    """A seeded random fault on a fraction ``rate`` of requests, drawn evenly from ``kinds``."""

    rate: float = 0.2
    seed: int = 0
    kinds: tuple[str, ...] = ("429", "500", "529", "reset", "timeout", "truncate", "cut_json", "no_content")
    retry_after: float = 0.01
    hold: float = 1.0
    slow: float = 0.05
    seen: Counter[str] = field(default_factory=Counter)

    def draw(self, body_key: str) -> Fault | None:
        """The fault for this request body's next occurrence (called under the server's lock)."""
        n = self.seen[body_key]
        self.seen[body_key] += 1
        rng = random.Random(f"{self.seed}:{body_key}:{n}")
        if rng.random() >= self.rate:
            return None
        kind = rng.choice(self.kinds)
        if kind == "429":
            return Fault(status=429, retry_after=self.retry_after)
        if kind == "529":
            return Fault(status=529, retry_after=self.retry_after)
        return Fault.of(kind, hold=self.slow if kind == "slow" else self.hold)


def decline(messages: list[dict[str, Any]]) -> str:
    return "NO CHANGE"


def considered(messages: list[dict[str, Any]]) -> str:
    return "Let me weigh each principle against the others before I answer."


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default of 5 resets connections under 50-way concurrency

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up (timeouts) are expected here; tests read the counters instead


class WireServer:
    def __init__(self, reply: Reply = decline, latency: float = 0.0, port: int = 0,
                 faults: FaultMix | None = None, refuse_structured: int | None = None,
                 structured_reply: StructuredReply | None = None, think: Reply = considered,
                 batch_state: str | None = None, batch_delay: float = 0.0,
                 usage: tuple[Any, Any] | None = None, json_object_schema: bool = False) -> None:
        self.reply = reply
        #: reported as (input, output) tokens instead of the word counts: an absurd (10**15) or negative usage
        self.usage = usage
        self.json_object_schema = json_object_schema
        self.structured_reply = structured_reply
        self.think = think
        self.refuse_structured = refuse_structured
        self.latency = latency
        self.mix = faults
        self.lock = threading.Lock()
        self.faults: list[Fault] = []
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.bodies: Counter[str] = Counter()  # every request, by canonical body
        self.answered: Counter[str] = Counter()  # requests that got a complete, good answer, by canonical body
        self.injected: Counter[str] = Counter()  # faults sent, by kind
        self.retry_afters: list[float] = []  # every Retry-After sent
        self.incomplete = 0  # requests whose body never fully arrived (the client died sending it)
        self.batches = WireBatches(self._direct, batch_state, batch_delay)
        self.in_flight = 0  # requests admitted and not yet answered
        self.max_in_flight = 0  # the most there ever were at once (how parallel the client really is)
        self.httpd = _Server(("127.0.0.1", port), self._handler())
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def count(self) -> int:
        with self.lock:
            return len(self.requests)

    def fail_next(self, fault: int | str, retry_after: float | None = None, times: int = 1,
                  hold: float = 2.0) -> None:
        """Inject ``fault`` (an HTTP status or a kind from FAULT_KINDS) into the next ``times`` requests."""
        with self.lock:
            self.faults.extend(Fault.of(fault, retry_after, hold) for _ in range(times))

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

    def _admit(self, path: str, body: dict[str, Any], headers: dict[str, str],
               raw: bytes = b"") -> tuple[Fault | None, str]:
        key = json.dumps(body, sort_keys=True)
        with self.lock:
            self.requests.append({"path": path, "body": body, "raw": raw})
            self.headers.append(headers)
            self.bodies[key] += 1
            fault = self.faults.pop(0) if self.faults else None
            if fault is None and self.mix is not None:
                fault = self.mix.draw(hashlib.sha256(key.encode()).hexdigest())
            if fault is not None:
                self.injected[fault.name] += 1
                if fault.retry_after is not None:
                    self.retry_afters.append(fault.retry_after)
        return fault, key

    def _answer(self, path: str, body: dict[str, Any], fault: Fault | None,
                headers: dict[str, str]) -> tuple[int, dict[str, Any], dict[str, str]]:
        if fault is not None and fault.kind == "status":
            extra = {"retry-after": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            kind = "overloaded_error" if fault.status == 529 else "rate_limit_error" if fault.status == 429 \
                else "api_error"
            message = f"injected {fault.status}"
            if fault.status == 401:  # like OpenAI's, the message quotes the key it was sent
                lower = {k.lower(): v for k, v in headers.items()}
                key = lower.get("authorization", "").removeprefix("Bearer ") or lower.get("x-api-key", "")
                message = f"Incorrect API key provided: {key}"
            return fault.status, {"type": "error", "error": {"type": kind, "message": message}}, extra
        empty = fault is not None and fault.kind == "no_content"
        halve = fault is not None and fault.kind == "length"
        if path.endswith("/chat/completions"):
            rejection = openai_rejection(body, self.refuse_structured, self.json_object_schema)
            return (*rejection, {}) if rejection else (200, self._openai(body, empty, halve), {})
        if path.endswith("/messages"):
            rejection = anthropic_rejection(body, self.refuse_structured)
            return (*rejection, {}) if rejection else (200, self._anthropic(body, empty, halve), {})
        return 404, {"error": {"message": f"no route {path}"}}, {}

    def _direct(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """A batched request's answer: what a direct request would get, faults aside."""
        status, payload, _ = self._answer(path, body, None, {})
        return status, payload

    def _text(self, messages: list[dict[str, Any]], schema: bool) -> str:
        if schema and self.structured_reply is not None:
            return json.dumps(self.structured_reply(messages))
        return self.reply(messages)

    def _openai(self, body: dict[str, Any], empty: bool = False, halve: bool = False) -> dict[str, Any]:
        response_format = body.get("response_format") or {}
        schema = response_format.get("type") == "json_schema" or (
            response_format.get("type") == "json_object" and "schema" in response_format)
        text, truncated = cut("" if empty else self._text(body["messages"], schema),
                              body.get("max_completion_tokens", body.get("max_tokens")), halve)
        n_in = n_in_words(body["messages"])
        return {
            "id": "chatcmpl-wire", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": None if empty else text},
                         "finish_reason": "length" if truncated else "stop"}],
            "usage": {"prompt_tokens": n_in, "completion_tokens": len(text.split()),
                      "total_tokens": n_in + len(text.split())} if self.usage is None else
                     {"prompt_tokens": self.usage[0], "completion_tokens": self.usage[1]},
        }

    def _anthropic(self, body: dict[str, Any], empty: bool = False, halve: bool = False) -> dict[str, Any]:
        messages = ([{"role": "system", "content": body["system"]}] if body.get("system") else []) + body["messages"]
        thinking = self.think(messages) if (body.get("thinking") or {}).get("type") == "enabled" else None
        spent = len(thinking.split()) if thinking else 0
        text, truncated = cut("" if empty else self._text(messages, bool(body.get("tools"))),
                              int(body["max_tokens"]) - spent, halve)
        content: list[dict[str, Any]] = []
        if thinking:
            content.append({"type": "thinking", "thinking": thinking, "signature": "c2lnbmF0dXJl"})
        tool_input = parse_json_object(text) if body.get("tools") and not truncated else None
        if tool_input is not None:
            content.append({"type": "tool_use", "id": "toolu_wire", "name": "answer", "input": tool_input})
        elif not empty:
            content.append({"type": "text", "text": text})
        stop = "max_tokens" if truncated else "tool_use" if tool_input is not None else "end_turn"
        return {
            "id": "msg_wire", "type": "message", "role": "assistant", "model": body["model"],
            "content": content, "stop_reason": stop, "stop_sequence": None,
            "usage": {"input_tokens": n_in_words(messages), "output_tokens": spent + len(text.split())}
            if self.usage is None else {"input_tokens": self.usage[0], "output_tokens": self.usage[1]},
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as two writes; with Nagle's algorithm on, the body waits for the client's
            # delayed ACK of the headers (~40 ms on Linux), which would add to every request's latency.
            disable_nagle_algorithm = True

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("content-length", 0))
                raw = self.rfile.read(length)
                if len(raw) < length:  # the client went away mid-request (killed): count it, answer nothing
                    with server.lock:
                        server.requests.append({"path": self.path, "body": None})
                        server.incomplete += 1
                    self._drop()
                    return
                if server.batches.handles(self.path):
                    self._send(*server.batches.post(self.path, raw, dict(self.headers.items())))
                    return
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    body = {}
                headers = dict(self.headers.items())
                fault, key = server._admit(self.path, body, headers, raw)
                with server.lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    self._respond(body, headers, fault, key)
                finally:
                    with server.lock:
                        server.in_flight -= 1

            def _respond(self, body: dict[str, Any], headers: dict[str, str], fault: Fault | None,
                         key: str) -> None:
                delay = server.latency + (fault.hold if fault is not None and fault.kind == "slow" else 0.0)
                if delay:
                    time.sleep(delay)
                if fault is not None and fault.kind in ("reset", "timeout"):
                    if fault.kind == "timeout":
                        time.sleep(fault.hold)
                    self._drop()
                    return
                status, payload, extra = server._answer(self.path, body, fault, headers)
                data = json.dumps(payload).encode()
                declared = len(data)
                if fault is not None and fault.kind == "truncate":
                    declared, data = len(data) + 64, data[: len(data) // 2]
                elif fault is not None and fault.kind == "cut_json":
                    data = data[: len(data) // 2]
                    declared = len(data)
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(declared))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
                self.wfile.flush()
                if fault is not None and fault.kind == "truncate":
                    self._drop()
                elif status == 200 and (fault is None or fault.kind == "slow"):
                    with server.lock:
                        server.answered[key] += 1

            def do_GET(self) -> None:  # noqa: N802 - ``GET /count``: the counters, for a server in another process
                if server.batches.handles(self.path):
                    self._send(*server.batches.get(self.path))
                    return
                with server.lock:
                    counts = {"count": len(server.requests), "answered": sum(server.answered.values()),
                              "injected": dict(server.injected), "incomplete": server.incomplete,
                              "batch_submitted_twice": server.batches.twice(),
                              "max_in_flight": server.max_in_flight}
                    if self.path == "/count?reset_max_in_flight":  # a new measurement starts
                        server.max_in_flight = server.in_flight
                        self.path = "/count"
                data = json.dumps(counts).encode()
                self.send_response(200 if self.path == "/count" else 404)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _send(self, status: int, data: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _drop(self) -> None:
                """Close the connection at once, sending nothing more (the client sees a reset or EOF)."""
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def n_in_words(messages: list[dict[str, Any]]) -> int:
    return sum(len(str(m.get("content", "")).split()) for m in messages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--fault-rate", type=float, default=0.0, help="fraction of requests given a random fault")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-state", default=None, help="JSON file keeping batch state across restarts")
    parser.add_argument("--batch-delay", type=float, default=0.0, help="seconds until a batch completes")
    args = parser.parse_args()
    mix = FaultMix(rate=args.fault_rate, seed=args.seed) if args.fault_rate else None
    server = WireServer(latency=args.latency, port=args.port, faults=mix, batch_state=args.batch_state,
                        batch_delay=args.batch_delay)
    print(server.url, flush=True)
    server.httpd.serve_forever()


if __name__ == "__main__":
    main()
