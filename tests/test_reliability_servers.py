"""Broken inputs against real servers (DESIGN.md section 6), on 127.0.0.1 and a free port:
``tests/serverapp/reliability.py`` served as tests/test_servers.py serves its app.

- JSON nested too deeply: 400, and 500 levels still parse;
- a body shorter than its Content-Length, then a half-close: 400, the view never ends
  (gunicorn sync and gthread mark such an input terminated; the ASGI servers too);
- a streamed body failing before its first chunk: the app's 500 under every server,
  and after its first chunk a response cut short;
- a chunked body over MAX_CONTENT_LENGTH sent by an httpx ``AsyncClient``: 413 at once,
  and the next request on the same connection answered (hypercorn held both).

Every client call has a short timeout, so a regression fails fast instead of hanging.
"""

from __future__ import annotations

import asyncio
import socket
import time
import typing as t

import httpx
import pytest

from tests.serverapp import reliability as reliabilityapp
from tests.test_reliability import ARRAY_BOMB
from tests.test_reliability import DECLARED
from tests.test_reliability import OBJECT_BOMB
from tests.test_reliability import SHORT_BODIES
from tests.test_servers import HOST
from tests.test_servers import Server
from tests.test_servers import SERVERS

LIMIT = reliabilityapp.MAX_CONTENT_LENGTH
TIMEOUT = 5.0
ASGI_SERVERS = ["uvicorn", "hypercorn", "hypercorn-trio", "gunicorn-asgi"]
WSGI_SERVERS = ["gunicorn-sync", "gunicorn-gthread"]


def command(name: str) -> list[str]:
    return [
        part.replace("tests.serverapp.app:", "tests.serverapp.reliability:")
        for part in SERVERS[name]
    ]


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory,
) -> t.Iterator[t.Callable[[str], Server]]:
    """Start each server once for the module, when a test first asks for it."""
    running: dict[str, Server] = {}

    def get(name: str) -> Server:
        if name not in running:
            srv = Server(name, command(name), tmp_path_factory.mktemp(name))
            running[name] = srv
            srv.wait_ready()
        return running[name]

    try:
        yield get
    finally:
        for srv in running.values():
            srv.terminate()


def count(server: Server) -> dict[str, t.Any]:
    with httpx.Client(base_url=server.base_url, timeout=TIMEOUT) as client:
        response = client.get("/count")
    server.served += 1
    return t.cast(dict[str, t.Any], response.json())


def assert_torn_down_once_each(server: Server) -> None:
    """Every response received so far was torn down, once (a stream's teardown may
    still be running when its client has read the end)."""
    deadline = time.monotonic() + 5
    while True:
        expected = server.served  # this count request is not torn down yet
        teardowns = count(server)["teardowns"]
        if teardowns == expected or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert teardowns == expected, server.log_tail()


# -- JSON nested too deeply ------------------------------------------------------------


@pytest.mark.parametrize("bomb", [ARRAY_BOMB, OBJECT_BOMB], ids=["array", "object"])
@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("name", WSGI_SERVERS + ASGI_SERVERS)
def test_json_nested_too_deeply_is_400(servers, name, kind, bomb):
    server = servers(name)
    with httpx.Client(base_url=server.base_url, timeout=TIMEOUT) as client:
        bad = client.post(
            f"/json/{kind}", content=bomb, headers={"content-type": "application/json"}
        )
        deep = client.post(
            f"/json/{kind}",
            content="[" * 500 + "]" * 500,
            headers={"content-type": "application/json"},
        )
    server.served += 2
    assert (bad.status_code, deep.status_code, deep.text) == (400, 200, "list")
    assert "RecursionError" not in server.log()


# -- a body shorter than its Content-Length --------------------------------------------


def short_body_then_half_close(server: Server, path: str, accessor: str) -> bytes:
    """Declare 100,000 bytes, send 1,000, shut the writing side: what came back."""
    content_type, body = SHORT_BODIES[accessor]
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {DECLARED}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection((HOST, server.port), timeout=TIMEOUT) as sock:
        sock.sendall(head + body)
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        try:
            while chunk := sock.recv(65536):
                reply += chunk
        except ConnectionResetError:
            pass
    return reply


@pytest.mark.parametrize("accessor", sorted(SHORT_BODIES))
@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("name", WSGI_SERVERS + ASGI_SERVERS)
def test_short_body_then_half_close_is_400(servers, name, kind, accessor):
    server = servers(name)
    reply = short_body_then_half_close(server, f"/body/{kind}/{accessor}", accessor)
    if name in WSGI_SERVERS or reply:
        # The WSGI servers run the view on what came; the ASGI ones tell the app the
        # client left, and may close the connection without an answer.
        assert reply.startswith(b"HTTP/1.1 400 "), (reply[:200], server.log_tail())
    server.served += 1
    assert count(server)["views_done"] == [], server.log_tail()


# -- a streamed body failing -----------------------------------------------------------

STREAMS = ["sync", "async", "with-context"]
ALL_SERVERS = ASGI_SERVERS + WSGI_SERVERS


@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize("name", ALL_SERVERS)
def test_stream_failing_before_its_first_chunk_is_the_apps_500(servers, name, stream):
    server = servers(name)
    with httpx.Client(base_url=server.base_url, timeout=TIMEOUT) as client:
        response = client.get(f"/stream/{stream}/before")
    server.served += 1
    assert response.status_code == 500, server.log_tail()
    assert response.text == "app's 500 for RuntimeError"
    assert response.headers["content-length"] == str(len(response.text))
    assert_torn_down_once_each(server)


@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize("name", ALL_SERVERS)
def test_stream_failing_after_its_first_chunk_is_cut_short(servers, name, stream):
    """The status and the first chunk went out: the server ends the connection
    without the end of the chunked body."""
    server = servers(name)
    with (
        httpx.Client(base_url=server.base_url, timeout=TIMEOUT) as client,
        client.stream("GET", f"/stream/{stream}/after") as response,
    ):
        assert response.status_code == 200
        assert response.headers["transfer-encoding"] == "chunked"
        received: list[bytes] = []
        with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked"):
            received.extend(response.iter_raw())
    assert b"".join(received) == b"first chunk\n"
    server.served += 1
    assert_torn_down_once_each(server)


# -- a chunked body over the limit, from an async client -------------------------------

ROUNDS = 4


async def chunked_body(
    chunks: int = 32, size: int = 64 * 1024
) -> t.AsyncIterator[bytes]:
    for _ in range(chunks):
        yield b"x" * size


async def upload_then_ping(base_url: str, path: str) -> list[tuple[int, int, str]]:
    """``ROUNDS`` times on one client: a 2 MiB chunked upload, then a GET on the same
    connection. Each round's statuses and whether both had the same client port."""
    results = []
    async with httpx.AsyncClient(base_url=base_url, timeout=TIMEOUT) as client:
        for _ in range(ROUNDS):
            upload = await client.post(path, content=chunked_body())
            ping = await client.get("/ping")
            same = upload.headers["x-port"] == ping.headers["x-port"]
            results.append((upload.status_code, ping.status_code, str(same)))
    return results


UPLOADS = {"/body/sync/get_data": 413, "/body/async/get_data": 413}
UPLOADS |= {"/ignore/sync": 200, "/ignore/async": 200}


@pytest.mark.parametrize("path", list(UPLOADS))
@pytest.mark.parametrize("name", ASGI_SERVERS)
def test_chunked_body_over_the_limit_is_answered_at_once(servers, name, path):
    """413 (200 for a view that ignores the body) within the client's timeout, and
    the next request on the same connection answered, every round; before, hypercorn
    held one or the other until the timeout."""
    server = servers(name)
    started = time.monotonic()
    results = asyncio.run(upload_then_ping(server.base_url, path))
    server.served += 2 * ROUNDS
    assert results == [(UPLOADS[path], 200, "True")] * ROUNDS, server.log_tail()
    assert time.monotonic() - started < TIMEOUT, "answered, but slowly"
    assert_torn_down_once_each(server)


@pytest.mark.parametrize("name", ASGI_SERVERS)
def test_body_past_what_is_drained_closes_the_connection_promptly(servers, name):
    """24 MiB over a 1 MiB limit: past what is drained (16 MiB) the response ends and
    the server closes the connection; the client gets the 413 or a closed
    connection, not a timeout, and the server serves the next client."""
    server = servers(name)

    async def upload() -> int | str:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=TIMEOUT) as c:
            try:
                response = await c.post(
                    "/body/async/get_data", content=chunked_body(chunks=384)
                )
            except (httpx.RemoteProtocolError, httpx.WriteError, httpx.ReadError):
                return "closed"
            return response.status_code

    assert asyncio.run(upload()) in (413, "closed")
    server.served += 1
    with httpx.Client(base_url=server.base_url, timeout=TIMEOUT) as client:
        assert client.get("/ping").status_code == 200
    server.served += 1
    assert_torn_down_once_each(server)
