"""A client that goes away: ``request.is_disconnected()`` from sync and async steps under
both entry points, and ``@cancel_on_disconnect`` for async views under ASGI (DESIGN.md
section 6). In-process: an ASGI conversation whose client leaves when the test says,
and WSGI requests whose client socket is a socket pair's end."""

from __future__ import annotations

import asyncio
import socket
import time
import typing as t

import anyio
import pytest
from werkzeug.test import EnvironBuilder

import ctxflask
from ctxflask import request
from ctxflask.globals import _cv_app
from ctxflask.globals import _cv_request
from tests.test_asgi import http_scope

Message = dict[str, t.Any]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(params=["loop", "thread"])
def async_steps(request: pytest.FixtureRequest, app: ctxflask.Flask) -> str:
    app.config["ASYNC_STEPS"] = request.param
    # These tests assert that a client leaving logs no error or warning. The loop
    # watchdog's warnings are about timing (a collector pause on a loaded machine
    # passes its threshold) and are tested in test_watchdog.
    app.config["LOOP_BLOCK_WARNING"] = None
    return t.cast(str, request.param)


@pytest.fixture
def teardowns(app: ctxflask.Flask) -> list[BaseException | None]:
    seen: list[BaseException | None] = []

    @app.teardown_request
    def record(exc: BaseException | None) -> None:
        seen.append(exc)

    return seen


async def converse(
    app: ctxflask.Flask,
    path: str,
    leave_after: float | None,
    body: bytes = b"",
) -> list[Message]:
    """One ``GET`` (``POST`` with a body) through ``app.asgi``; the client leaves after
    ``leave_after`` seconds (``0``: before the app starts; ``None``: once the response
    is complete). Returns what the app sent."""
    sent: list[Message] = []
    complete = anyio.Event()
    gone = anyio.Event()
    pending = [{"type": "http.request", "body": body, "more_body": False}]
    headers = [("content-length", str(len(body)))] if body else []
    scope = http_scope("POST" if body else "GET", path, headers)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if leave_after is None:
            await complete.wait()
        else:
            await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if gone.is_set():
            return  # dropped, as servers do once the client left
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            complete.set()

    async def leave() -> None:
        if leave_after is not None:
            await anyio.sleep(leave_after)
            gone.set()

    with anyio.fail_after(3):
        async with anyio.create_task_group() as tg:
            tg.start_soon(leave)
            await app.asgi(scope, receive, send)
            tg.cancel_scope.cancel()
    assert _cv_request.get(None) is None
    assert _cv_app.get(None) is None
    return sent


def body_of(sent: list[Message]) -> bytes:
    return b"".join(
        m.get("body", b"") for m in sent if m["type"] == "http.response.body"
    )


# -- is_disconnected() under ASGI --------------------------------------------------------


def polling_views(app: ctxflask.Flask) -> None:
    @app.get("/poll/sync")
    def poll_sync() -> str:
        for i in range(300):
            if request.is_disconnected():
                return f"gone after {i}"
            time.sleep(0.01)
        return "stayed"

    @app.get("/poll/async")
    async def poll_async() -> str:
        for i in range(300):
            if request.is_disconnected():
                return f"gone after {i}"
            await anyio.sleep(0.01)
        return "stayed"


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_long_poll_ends_soon_after_its_client_leaves(
    app, async_steps, teardowns, kind
):
    polling_views(app)
    started = time.monotonic()
    sent = await converse(app, f"/poll/{kind}", leave_after=0.1)
    assert time.monotonic() - started < 1.5
    # The view saw it and returned; its answer could not be sent.
    assert teardowns == [None]
    assert not body_of(sent).startswith(b"stayed")


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_is_disconnected_is_false_while_the_client_stays(
    app, async_steps, teardowns, kind
):
    @app.get("/async")
    async def check_async() -> str:
        answers = [request.is_disconnected()]
        await anyio.sleep(0.02)
        answers.append(request.is_disconnected())
        return repr(answers)

    @app.get("/sync")
    def check_sync() -> str:
        answers = [request.is_disconnected()]
        time.sleep(0.02)
        answers.append(request.is_disconnected())
        return repr(answers)

    sent = await converse(app, f"/{kind}", leave_after=None)
    assert body_of(sent) == b"[False, False]"
    assert teardowns == [None]


@pytest.mark.anyio
async def test_a_sync_step_asking_after_the_client_left_is_told_at_once(
    app, async_steps, teardowns
):
    # The watch takes what the server already sent before the first answer returns.
    @app.get("/late")
    def late() -> str:
        time.sleep(0.1)
        return repr(request.is_disconnected())

    answers: list[bool] = []

    @app.after_request
    def keep(response: ctxflask.Response) -> ctxflask.Response:
        answers.append(response.get_data() == b"True")
        return response

    await converse(app, "/late", leave_after=0.02)
    assert answers == [True]
    assert teardowns == [None]


@pytest.mark.anyio
async def test_an_async_step_on_the_loop_is_told_from_its_next_await(app, teardowns):
    answers: list[bool] = []

    @app.get("/late")
    async def late() -> str:
        await anyio.sleep(0.1)
        answers.append(request.is_disconnected())  # may not know yet
        await anyio.sleep(0.01)
        answers.append(request.is_disconnected())
        return ""

    await converse(app, "/late", leave_after=0.02)
    assert answers[-1] is True
    assert teardowns == [None]


@pytest.mark.anyio
async def test_before_the_body_is_received_a_client_leaving_is_a_400(app, teardowns):
    # is_disconnected() does not read the body; reading it tells the client left.
    @app.post("/upload")
    def upload() -> str:
        return str(len(request.get_data()))

    sent: list[Message] = []
    scope_body = [{"type": "http.request", "body": b"x" * 10, "more_body": True}]

    async def receive() -> Message:
        if scope_body:
            return scope_body.pop()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = http_scope("POST", "/upload", [("content-length", "100")])
    await app.asgi(scope, receive, send)
    assert sent[0]["status"] == 400
    assert len(teardowns) == 1


@pytest.mark.anyio
async def test_no_watch_is_left_after_the_request(app, teardowns, anyio_backend):
    @app.get("/ask")
    async def ask() -> str:
        return repr(request.is_disconnected())

    for _ in range(3):
        sent = await converse(app, "/ask", leave_after=None)
        assert body_of(sent) == b"False"
        if anyio_backend == "asyncio":
            names = [task.get_name() for task in asyncio.all_tasks()]
            assert "ctxflask disconnect watch" not in names
    assert teardowns == [None, None, None]


# -- @cancel_on_disconnect ---------------------------------------------------------------


@pytest.mark.anyio
async def test_cancel_on_disconnect_cancels_the_view_and_tears_down_once(
    app, async_steps, teardowns, caplog
):
    events: list[str] = []

    @app.get("/slow")
    @ctxflask.cancel_on_disconnect
    async def slow() -> str:
        try:
            await anyio.sleep(5)
        except anyio.get_cancelled_exc_class():
            events.append("cancelled")
            raise
        return "done"  # pragma: no cover

    started = time.monotonic()
    with caplog.at_level("DEBUG", logger=app.logger.name):
        sent = await converse(app, "/slow", leave_after=0.05)
    assert time.monotonic() - started < 1.5
    assert events == ["cancelled"]
    assert sent == []  # nothing sent
    assert len(teardowns) == 1
    assert isinstance(teardowns[0], ctxflask.HTTPDisconnect)
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "WARNING")]
    assert any("client went away" in r.getMessage() for r in caplog.records)


@pytest.mark.anyio
async def test_cancel_on_disconnect_leaves_a_view_whose_client_stays(
    app, async_steps, teardowns
):
    @app.get("/quick")
    @ctxflask.cancel_on_disconnect
    async def quick() -> str:
        await anyio.sleep(0.01)
        return "done"

    sent = await converse(app, "/quick", leave_after=None)
    assert body_of(sent) == b"done"
    assert teardowns == [None]
    # The next request is served as usual.
    sent = await converse(app, "/quick", leave_after=None)
    assert body_of(sent) == b"done"


def test_cancel_on_disconnect_refuses_a_sync_view():
    with pytest.raises(TypeError, match="sync view cannot be interrupted"):

        @ctxflask.cancel_on_disconnect
        def view() -> str:  # pragma: no cover
            return ""


def test_cancel_on_disconnect_changes_nothing_while_the_client_stays(client):
    @client.application.get("/quick")
    @ctxflask.cancel_on_disconnect
    async def quick() -> str:
        return "done"

    assert client.get("/quick").data == b"done"


# -- is_disconnected() under WSGI --------------------------------------------------------


@pytest.fixture
def peer_app(app: ctxflask.Flask) -> ctxflask.Flask:
    @app.get("/sync")
    def sync_view() -> str:
        return repr(request.is_disconnected())

    @app.get("/async")
    async def async_view() -> str:
        return repr(request.is_disconnected())

    return app


def wsgi_call(app: ctxflask.Flask, path: str, **environ: t.Any) -> bytes:
    env = EnvironBuilder(path=path).get_environ()
    env.update(environ)
    body = app(env, lambda status, headers, exc_info=None: None)
    try:
        return b"".join(body)
    finally:
        getattr(body, "close", lambda: None)()


@pytest.mark.parametrize("key", ["gunicorn.socket", "werkzeug.socket"])
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_wsgi_tells_from_the_client_socket(peer_app, key, kind):
    server, client = socket.socketpair()
    with server, client:
        assert wsgi_call(peer_app, f"/{kind}", **{key: server}) == b"False"
        client.sendall(b"GET / HTTP/1.1\r\n\r\n")  # pipelined: the client is there
        assert wsgi_call(peer_app, f"/{kind}", **{key: server}) == b"False"
        server.recv(100)
        client.close()
        assert wsgi_call(peer_app, f"/{kind}", **{key: server}) == b"True"


def test_under_wsgi_cancel_on_disconnect_lets_the_view_run(app):
    @app.get("/quick")
    @ctxflask.cancel_on_disconnect
    async def quick() -> str:
        return "done"

    server, client = socket.socketpair()
    with server, client:
        client.close()
        assert wsgi_call(app, "/quick", **{"gunicorn.socket": server}) == b"done"


def test_wsgi_without_a_socket_says_false(peer_app, teardowns):
    assert wsgi_call(peer_app, "/sync") == b"False"
    assert teardowns == [None]


def test_the_test_client_says_false(client, peer_app):
    assert client.get("/sync").data == b"False"
    assert client.get("/async").data == b"False"


def test_outside_a_request_there_is_nothing_to_ask(app):
    with app.test_request_context():
        assert request.is_disconnected() is False


@pytest.mark.anyio
async def test_through_wsgi_middleware(app, async_steps, teardowns, caplog):
    # Under ASGI a request through the app's WSGI middleware is told too, and a
    # cancelled view ends it with nothing sent and no error.
    inner = app.wsgi_app
    app.wsgi_app = lambda environ, start_response: inner(environ, start_response)
    polling_views(app)

    @app.get("/slow")
    @ctxflask.cancel_on_disconnect
    async def slow() -> str:
        await anyio.sleep(5)
        return "done"  # pragma: no cover

    started = time.monotonic()
    await converse(app, "/poll/async", leave_after=0.05)
    await converse(app, "/poll/sync", leave_after=0.05)
    assert await converse(app, "/slow", leave_after=0.05) == []
    assert time.monotonic() - started < 2
    assert teardowns[:2] == [None, None]
    assert isinstance(teardowns[2], ctxflask.HTTPDisconnect)
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "WARNING")]
