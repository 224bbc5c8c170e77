"""The viewer's web app (Starlette): the page and its assets, and the JSON endpoints the page reads.

Pages are one HTML file and plain JavaScript served from the package (``stability/view/static/``, cytoscape.js
bundled; nothing comes from elsewhere). Every endpoint reads one page of data through :class:`StoreSource`
and sends it with the secrets removed (:func:`stability.redaction.redact`). A missing thing is a 404 with a
one-line ``error``; a store that cannot be read right now is a 503.

Only requests addressed to this machine by name are answered (:class:`LocalHostOnly`): a ``Host`` header other
than ``127.0.0.1``, ``localhost`` or ``[::1]`` (with or without a port) is a 403, so a web page that rebinds its
own name to 127.0.0.1 (DNS rebinding) cannot read the store through the user's browser.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from stability.errors import StabilityError
from stability.redaction import redact
from stability.view import data
from stability.view.findings import FindingsCache
from stability.view.groups import GroupCache
from stability.view.source import StoreSource

STATIC = Path(__file__).resolve().parent / "static"
PAGE = 50
#: Content-Security-Policy: the page loads its own scripts and styles only, and talks to this server only
POLICY = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; object-src 'none'"


#: the names a request may address the viewer by (the Host header, without its port)
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})


def local_host(value: str) -> bool:
    """Whether a ``Host`` header names this machine: ``127.0.0.1``, ``localhost`` or ``[::1]``, and at most a
    port (digits) after a colon."""
    name, colon, port = value, "", ""
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return False
        name, rest = value[:end + 1], value[end + 1:]
        if rest and not rest.startswith(":"):
            return False
        colon, port = rest[:1], rest[1:]
    elif ":" in value:
        name, colon, port = value.partition(":")
    if colon and not (port.isascii() and port.isdigit() and int(port) <= 65535):
        return False
    return name.lower() in LOCAL_HOSTS


class LocalHostOnly:
    """ASGI middleware: a request whose ``Host`` header (exactly one) is not :func:`local_host` gets a 403."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            hosts = [v for k, v in scope.get("headers", []) if k.lower() == b"host"]
            if len(hosts) != 1 or not local_host(hosts[0].decode("latin-1")):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                body = json.dumps({"error": "the viewer answers requests to 127.0.0.1, localhost or [::1] only"})
                await Response(body, status_code=403, media_type="application/json",
                               headers={"Cache-Control": "no-store"})(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _json(value: Any, status: int = 200) -> Response:
    body = json.dumps(redact(value), default=_default, ensure_ascii=False)
    return Response(body, status_code=status, media_type="application/json",
                    headers={"Cache-Control": "no-store"})


#: the largest ``offset``, ``limit``, ``max_nodes`` or ``group`` a query may ask for (DuckDB's BIGINT and beyond
#: are refused with a 400, not met as a 500 inside the query)
LARGEST = 2**31 - 1


class BadQuery(Exception):
    """A query parameter out of range: answered with HTTP 400 and a one-line ``error``."""


def _int(request: Request, name: str, default: int) -> int:
    try:
        value = max(0, int(request.query_params.get(name, default)))
    except ValueError:
        return default
    return _bounded(name, value)


def _bounded(name: str, value: int) -> int:
    if value > LARGEST:
        raise BadQuery(f"{name} {value} is out of range (0 to {LARGEST})")
    return value


def _by(request: Request, default: list[str]) -> list[str]:
    given = request.query_params.get("by")
    return default if given is None else [p.strip() for p in given.split(",") if p.strip()]


def create_app(source: StoreSource, embedder: str = "all-MiniLM-L6-v2") -> Starlette:
    """The app over one store. ``embedder`` is the analysis's (``hashing`` needs no model)."""
    cache = GroupCache(source, embedder)
    found = FindingsCache(source, embedder, cache._lock)  # one analysis at a time: both write the embeddings

    def answered(handler: Callable[[Request], Any]) -> Callable[[Request], Response]:
        """``handler``'s answer as JSON; a bad query is 400, a missing name 404, an unreadable store 503."""
        def endpoint(request: Request) -> Response:
            try:
                return _json(handler(request))
            except BadQuery as err:
                return _json({"error": str(err)}, 400)
            except data.NotFound as err:
                return _json({"error": str(err)}, 404)
            except StabilityError as err:
                return _json({"error": str(err)}, 503)
        return endpoint

    def reading(build: Callable[..., Any]) -> Callable[[Request], Response]:
        def read(request: Request) -> Any:
            with source.reading() as store:
                return build(store, request)
        return answered(read)

    def grouped(build: Callable[[str, list[str]], Any]) -> Callable[[Request], Any]:
        def read(request: Request) -> Any:
            with source.reading() as store:
                summary = data.experiment(store, request.path_params["name"], 0, 1)
            return build(summary["id"], _by(request, summary["group_by"]))
        return read

    def findings(request: Request) -> Any:
        with source.reading() as store:
            summary = data.experiment(store, request.path_params["name"], 0, 1)
        return found.page(summary["id"])

    def selected(request: Request) -> list[str]:
        """The runs a graph request selects: an experiment's (or one of its analysis groups'), or the ones given."""
        query = request.query_params
        with source.reading() as store:
            runs = data.graph_runs(store, query.get("experiment"), [r for r in query.get("runs", "").split(",") if r])
            summary = data.experiment(store, query["experiment"], 0, 1) \
                if query.get("experiment") and query.get("group") is not None else None
        if summary is not None:
            runs = cache.group_runs(summary["id"], _by(request, summary["group_by"]), _int(request, "group", 0))
        return runs

    def graph(request: Request) -> Any:
        runs = selected(request)
        with source.reading() as store:
            return data.graph(store, runs, _int(request, "max_nodes", data.GRAPH_NODES))

    def graph_next(request: Request) -> Any:
        runs = selected(request)
        node = request.query_params.get("node") or None
        if node is None and request.query_params.get("starts") != "1":
            raise BadQuery("give node=HASH (its successors the view leaves out) or starts=1")
        with source.reading() as store:
            return data.graph_next(store, runs, _int(request, "max_nodes", data.GRAPH_NODES), node,
                                   _int(request, "offset", 0), _int(request, "limit", PAGE))

    def index(_: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": POLICY,
                                                            "Cache-Control": "no-store"})

    routes = [
        Route("/", index),
        Route("/api/status", reading(lambda store, r: source.state())),
        Route("/api/experiments", reading(lambda store, r: data.experiments(store))),
        Route("/api/experiments/{name}", reading(lambda store, r: data.experiment(
            store, r.path_params["name"], _int(r, "offset", 0), _int(r, "limit", PAGE)))),
        Route("/api/experiments/{name}/progress", reading(lambda store, r: {**data.progress(
            store, r.path_params["name"], _int(r, "offset", 0), _int(r, "limit", PAGE)), "source": source.state()})),
        Route("/api/experiments/{name}/groups", answered(grouped(cache.groups))),
        Route("/api/experiments/{name}/figures", answered(grouped(cache.figures))),
        Route("/api/experiments/{name}/findings", answered(findings)),
        Route("/api/runs", reading(lambda store, r: data.runs(store, _int(r, "offset", 0), _int(r, "limit", PAGE)))),
        Route("/api/runs/{run_id}", reading(lambda store, r: data.run(
            store, r.path_params["run_id"], _int(r, "offset", 0), _int(r, "limit", 200)))),
        Route("/api/runs/{run_id}/steps/{step:int}", reading(lambda store, r: data.step_calls(
            store, r.path_params["run_id"], _bounded("step", r.path_params["step"])))),
        Route("/api/calls/{call_id}", reading(lambda store, r: data.call(store, r.path_params["call_id"]))),
        Route("/api/graph", answered(graph)),
        Route("/api/graph/next", answered(graph_next)),
        Route("/api/nodes/{digest}", reading(lambda store, r: data.node(
            store, r.path_params["digest"], _int(r, "offset", 0), _int(r, "limit", PAGE)))),
        Route("/api/search", reading(lambda store, r: data.search(
            store, r.query_params.get("q", ""), _int(r, "offset", 0), _int(r, "limit", PAGE)))),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(LocalHostOnly)])
