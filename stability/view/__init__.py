"""``stability view``: browse a store's experiments, runs, calls and revision graph in a local browser.

:func:`serve` runs the server (uvicorn) on 127.0.0.1 only, until interrupted. :class:`Viewer` runs the same server
in a background thread (tests and benchmarks): ``with Viewer(db) as viewer: viewer.url``. The store is only ever
read through a private copy (:mod:`stability.view.source`), so a run may write it meanwhile.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

from stability.errors import StabilityError
from stability.store.store import default_db_path

HOST = "127.0.0.1"
DEFAULT_PORT = 7788


def _parts(db: Path | str | None, embedder: str) -> tuple[Any, Any]:
    try:
        import uvicorn  # noqa: F401
        from starlette.applications import Starlette  # noqa: F401
    except ImportError:
        raise StabilityError("stability view needs starlette and uvicorn; pip install 'stability[view]'") from None
    from stability.view.app import create_app
    from stability.view.source import StoreSource

    source = StoreSource(str(db if db is not None else default_db_path()))
    return source, create_app(source, embedder)


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as err:
        sock.close()
        raise StabilityError(f"cannot listen on {HOST}:{port} ({err.strerror}); choose another --port") from None
    return sock


def serve(db: Path | str | None = None, port: int = DEFAULT_PORT, embedder: str = "all-MiniLM-L6-v2",
          ready: Any = None) -> None:
    """Serve the viewer on 127.0.0.1:``port`` until interrupted; ``ready(url)`` is called once it listens."""
    import uvicorn

    sock = _bind(port)
    try:
        source, app = _parts(db, embedder)
    except BaseException:
        sock.close()
        raise
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    if threading.current_thread() is threading.main_thread():
        # uvicorn stops on SIGTERM, then raises it again: exit through ``finally`` so the copies are removed
        signal.signal(signal.SIGTERM, _terminated)
    url = f"http://{HOST}:{sock.getsockname()[1]}"
    if ready is not None:
        threading.Thread(target=_announce, args=(server, url, ready), daemon=True).start()
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        source.close()


def _terminated(number: int, frame: Any) -> None:
    raise SystemExit(128 + number)


def _announce(server: Any, url: str, ready: Any) -> None:
    while not server.started and not server.should_exit:
        time.sleep(0.02)
    if server.started:
        ready(url)


class Viewer:
    """The viewer in a background thread, on a free port (``port=0``) unless one is given."""

    def __init__(self, db: Path | str, port: int = 0, embedder: str = "hashing") -> None:
        import uvicorn

        self.source, app = _parts(db, embedder)
        self._sock = _bind(port)
        self.url = f"http://{HOST}:{self._sock.getsockname()[1]}"
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def __enter__(self) -> Viewer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise StabilityError("the viewer did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self._sock.close()
        self.source.close()
