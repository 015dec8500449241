"""Clients that go away, against real servers on loopback (DESIGN.md section 6):
``request.is_disconnected()`` ends a long poll early, ``@cancel_on_disconnect`` cancels
an async view, and a server-sent event stream stops and closes its source, each with
teardown once, and the server goes on serving. Serves tests/serverapp/disconnects.py."""

from __future__ import annotations

import time
import typing as t

import httpx
import pytest

from tests.test_servers import Server
from tests.test_servers import SERVERS

TARGETS = {
    "tests.serverapp.app:app.asgi": "tests.serverapp.disconnects:app.asgi",
    "tests.serverapp.app:app": "tests.serverapp.disconnects:app",
}

#: The servers and what each is asked: which views poll, and whether the other checks run.
ASGI = ["uvicorn", "hypercorn", "hypercorn-trio", "gunicorn-asgi", "granian-asgi"]
WSGI = ["gunicorn-sync", "gunicorn-gthread"]
#: How long a check waits for what the server records once the client left.
SETTLE_SECONDS = 2.0


@pytest.fixture(scope="module", params=ASGI + WSGI)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> t.Iterator[Server]:
    name = request.param
    command = [TARGETS.get(part, part) for part in SERVERS[name]]
    srv = Server(name, command, tmp_path_factory.mktemp(name))
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.terminate()


def recorded(
    server: Server, match: t.Callable[[dict[str, t.Any]], bool]
) -> list[t.Any]:
    """The events ``match`` picks, once there is one, within ``SETTLE_SECONDS``."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        found = [e for e in httpx.get(f"{server.base_url}/events").json() if match(e)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def teardowns(server: Server, path: str) -> list[t.Any]:
    events = httpx.get(f"{server.base_url}/events").json()
    return [e["exc"] for e in events if e.get("teardown") == path]


def leave_after(server: Server, path: str, seconds: float) -> None:
    """Ask for ``path`` and go away after ``seconds`` without an answer."""
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{server.base_url}{path}", timeout=seconds)


def poll_kinds(server: Server) -> list[str]:
    return ["async", "sync"] if server.name in ASGI else ["sync"]


def test_a_long_poll_ends_early_when_its_client_leaves(server: Server):
    for kind in poll_kinds(server):
        path = f"/poll/{kind}"
        started = time.monotonic()
        leave_after(server, path, 0.3)
        found = recorded(server, lambda e, p=path: e.get("view") == p)
        assert found == [{"view": path, "gone": True}], server.log_tail()
        assert time.monotonic() - started < 0.3 + SETTLE_SECONDS
        assert recorded(server, lambda e, p=path: e.get("teardown") == p)
        assert teardowns(server, path) == [None]
    assert httpx.get(f"{server.base_url}/count").status_code == 200


def test_cancel_on_disconnect_cancels_the_view(server: Server):
    """Under ASGI the view is cancelled; a WSGI server cannot cancel it: it runs to its
    end (documented), torn down once."""
    cancelled = server.name in ASGI
    # Not cancelled, the view ends after a second of its own.
    leave_after(server, "/cancel" if cancelled else "/cancel?seconds=1", 0.3)
    found = recorded(server, lambda e: e.get("view") == "/cancel")
    assert found == [{"view": "/cancel", "cancelled": cancelled}], server.log_tail()
    assert recorded(server, lambda e: e.get("teardown") == "/cancel")
    assert teardowns(server, "/cancel") == ["HTTPDisconnect" if cancelled else None]
    assert "Traceback" not in server.log()
    assert httpx.get(f"{server.base_url}/count").status_code == 200


def test_an_event_stream_with_heartbeats_stops_when_its_client_leaves(server: Server):
    lines: list[str] = []
    with (
        httpx.Client(timeout=5) as client,
        client.stream("GET", f"{server.base_url}/sse") as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        for line in response.iter_lines():
            lines.append(line)
            if line == "data: event 3":
                break
    # The client left: the stream's source is closed, teardown ran once.
    assert lines[:3] == ["event: hello", "id: 1", "data: first"]
    assert 2 <= lines.count(":") <= 5  # heartbeats while the source was idle
    found = recorded(server, lambda e: e.get("stream") == "/sse")
    assert found == [{"stream": "/sse", "closed": True}], server.log_tail()
    assert recorded(server, lambda e: e.get("teardown") == "/sse")
    assert teardowns(server, "/sse") == [None]
    assert httpx.get(f"{server.base_url}/count").status_code == 200
