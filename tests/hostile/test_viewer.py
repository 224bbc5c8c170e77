"""The viewer answers only requests addressed to this machine by name (DNS-rebinding defence, as Jupyter does):
raw HTTP requests with a bad ``Host`` header get a 403 and none of the store's data."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from tests.view.store_builder import build

pytest.importorskip("starlette", reason="starlette is not installed (pip install -e '.[view]')")

from stability.view import Viewer  # noqa: E402
from stability.view.app import local_host  # noqa: E402


@pytest.fixture(scope="module")
def viewer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Viewer, str]]:
    folder = tmp_path_factory.mktemp("hostile-viewer")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STABILITY_RETRY_INITIAL", "0")
        experiment = build(folder, folder / "grid.duckdb")
    with Viewer(folder / "grid.duckdb") as running:
        yield running, experiment


def raw(viewer: Viewer, head: str) -> tuple[int, str]:
    """Send ``head`` (request line and headers, ``\\n``-separated) as it is; return (status, body)."""
    port = int(viewer.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode("latin-1") + b"\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1].decode("utf-8", errors="replace")


def port_of(viewer: Viewer) -> str:
    return viewer.url.rsplit(":", 1)[1]


BAD_HOSTS = ["evil.example", "evil.example:{port}", "127.0.0.1.evil.example", "localhost.evil.example:{port}",
             "attacker.localhost:{port}", "127.0.0.2:{port}", "0.0.0.0:{port}", "127.1:{port}", "2130706433:{port}",
             "[::2]:{port}", "[::ffff:127.0.0.1]:{port}", "[::1]x", "[::1", "localhost:", "localhost:abc",
             "localhost:{port}:{port}", "127.0.0.1@evil.example", "localhost.", "localhost.:{port}",
             "localhost%00.evil.example", "", "localhost :{port}", "localhost:-1", "localhost:999999",
             "xn--localhost", "LOCALHOST.evil.example"]


@pytest.mark.parametrize("host", BAD_HOSTS)
@pytest.mark.parametrize("path", ["/api/runs", "/"])
def test_a_request_for_another_host_gets_403_and_no_data(viewer: tuple[Viewer, str], host: str,
                                                         path: str) -> None:
    running, _ = viewer
    status, body = raw(running, f"GET {path} HTTP/1.1\nHost: {host.format(port=port_of(running))}\n"
                                "Connection: close")
    assert status in (400, 403), body  # 400: the HTTP parser refused it before the app saw it
    assert "r-" not in body and "constitution" not in body.lower()
    if status == 403:
        assert "127.0.0.1, localhost or [::1]" in json.loads(body)["error"]


def test_no_host_or_two_hosts_get_no_data(viewer: tuple[Viewer, str]) -> None:
    running, _ = viewer
    port = port_of(running)
    for head in ("GET /api/runs HTTP/1.0", f"GET /api/runs HTTP/1.1\nHost: 127.0.0.1:{port}\nHost: evil.example",
                 f"GET /api/runs HTTP/1.1\nHost: evil.example\nHost: 127.0.0.1:{port}"):
        status, body = raw(running, head + "\nConnection: close")
        assert status in (400, 403), (head, body)
        assert "r-" not in body


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:{port}", "localhost", "localhost:{port}", "[::1]",
                                  "[::1]:{port}", "LocalHost:{port}"])
def test_requests_to_this_machine_by_name_are_answered(viewer: tuple[Viewer, str], host: str) -> None:
    running, _ = viewer
    status, body = raw(running, f"GET /api/runs HTTP/1.1\nHost: {host.format(port=port_of(running))}\n"
                                "Connection: close")
    assert status == 200, body
    assert json.loads(body)["total"] > 0


@pytest.mark.parametrize(("host", "allowed"), [
    ("127.0.0.1:7788", True), ("localhost", True), ("[::1]:1", True), ("[::1]", True), ("localhost:65535", True),
    ("localhost:65536", False), ("localhost:123456", False), ("[::1]:", False), ("[::1]7788", False),
    ("::1", False), ("127.0.0.1:", False),
    ("localhost:７７８８", False), ("evil.example", False), ("", False), ("127.0.0.1:80 ", False),
])
def test_the_host_rule(host: str, allowed: bool) -> None:
    assert local_host(host) is allowed


def test_a_rebinding_page_cannot_read_the_store_through_any_endpoint(viewer: tuple[Viewer, str]) -> None:
    running, experiment = viewer
    for path in ("/api/status", "/api/experiments", f"/api/experiments/{experiment}", "/api/search?q=kind",
                 "/api/graph?experiment=" + experiment, "/static/view.js"):
        status, body = raw(running, f"GET {path} HTTP/1.1\nHost: rebind.example:{port_of(running)}\n"
                                    "Origin: http://rebind.example\nConnection: close")
        assert status == 403, (path, body)

