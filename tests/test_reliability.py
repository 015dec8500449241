"""Hostile and broken inputs answered through the app's error handling, under both entry
points (DESIGN.md section 6): JSON nested deep enough to exhaust recursion, a body
shorter than its Content-Length, a streamed body failing before its first chunk, and a
request body still coming in when the response is done.

Real servers are driven in tests/test_reliability_servers.py.
"""

from __future__ import annotations

import io
import sys
import typing as t

import anyio
import anyio.lowlevel
import pytest

from ctxflask import abort
from ctxflask import g
from ctxflask import request
from ctxflask import stream_with_context
from ctxflask.asgi import http as asgi_http
from ctxflask.globals import _cv_app
from ctxflask.globals import _cv_request
from tests.serverapp.reliability import read_body
from tests.support import variant
from tests.test_asgi import Conversation
from tests.test_asgi import http_scope
from tests.test_asgi import serve

# -- JSON nested too deeply ------------------------------------------------------------

ARRAY_BOMB = "[" * 100_000 + "]" * 100_000
OBJECT_BOMB = '{"a":' * 50_000 + "1" + "}" * 50_000


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def depth_of(value: t.Any) -> int:
    depth = 0
    while isinstance(value, list) and value:
        value, depth = value[0], depth + 1
    return depth + isinstance(value, list)


@pytest.fixture
def json_app(app, kind):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    seen: list[str] = []
    app.config["seen"] = seen

    @app.post("/get_json")
    @variant(kind)
    def get_json():
        return {"depth": depth_of(request.get_json())}

    @app.post("/json")
    @variant(kind)
    def json_property():
        return {"depth": depth_of(request.json)}

    @app.post("/silent")
    @variant(kind)
    def silent():
        return {"value": request.get_json(silent=True)}

    @app.errorhandler(400)
    @variant(kind)
    def bad_request(e):
        seen.append(type(e).__name__)
        return "app's 400", 400

    return app


@pytest.mark.parametrize("bomb", [ARRAY_BOMB, OBJECT_BOMB], ids=["array", "object"])
@pytest.mark.parametrize("path", ["/get_json", "/json"])
def test_json_nested_too_deeply_is_the_apps_400(json_app, client, path, bomb):
    response = client.post(path, data=bomb, content_type="application/json")
    assert response.status_code == 400
    assert response.text == "app's 400"
    assert json_app.config["seen"] == ["BadRequest"]


def test_json_nested_too_deeply_is_none_when_silent(json_app, client):
    response = client.post("/silent", data=ARRAY_BOMB, content_type="application/json")
    assert response.status_code == 200
    assert response.json == {"value": None}


def test_deep_legal_json_still_parses_and_after_a_bomb_too(json_app, client):
    """500 levels parse; a bomb answered 400 leaves the thread and loop able to parse
    them again, and to recurse as deep as before."""

    def recurse(n: int) -> int:
        return 0 if n == 0 else 1 + recurse(n - 1)

    deep = nested(500)
    first = client.post("/get_json", data=deep, content_type="application/json")
    assert first.json == {"depth": 500}
    for bomb in (ARRAY_BOMB, OBJECT_BOMB, ARRAY_BOMB):
        assert client.post("/json", data=bomb, content_type="application/json")
        assert client.post(
            "/json", data=deep, content_type="application/json"
        ).json == {"depth": 500}
    assert recurse(sys.getrecursionlimit() - 100) == sys.getrecursionlimit() - 100


def test_json_nested_too_deeply_reaches_on_json_loading_failed(app, client):
    """A request class overriding ``on_json_loading_failed`` gets a ValueError, as for
    any invalid JSON."""
    failures: list[BaseException | None] = []

    class Request(app.request_class):
        def on_json_loading_failed(self, e):
            failures.append(e)
            return "replaced"

    app.request_class = Request

    @app.post("/")
    def index():
        return {"first": request.get_json(), "cached": request.get_json()}

    response = client.post("/", data=ARRAY_BOMB, content_type="application/json")
    assert response.json == {"first": "replaced", "cached": "replaced"}
    assert len(failures) == 1
    assert isinstance(failures[0], ValueError)
    assert "nested too deeply" in str(failures[0])


# -- a body shorter than its Content-Length --------------------------------------------

DECLARED = 100_000
SENT = 1_000

SHORT_BODIES = {
    "get_data": ("application/octet-stream", b"x" * SENT),
    "form": ("application/x-www-form-urlencoded", b"a=" + b"b" * (SENT - 2)),
    "files": (
        "multipart/form-data; boundary=xx",
        b'--xx\r\nContent-Disposition: form-data; name="f"; filename="f.txt"\r\n\r\n'
        + b"x" * SENT,
    ),
    "get_json": ("application/json", b"[" + b"1," * (SENT // 2)),
    "stream": ("application/octet-stream", b"x" * SENT),
}


@pytest.fixture
def body_app(app, kind):
    views_done: list[str] = []
    app.config["views_done"] = views_done

    @app.post("/<accessor>")
    @variant(kind)
    def read(accessor):
        size = read_body(accessor)
        views_done.append(accessor)
        return str(size)

    return app


def wsgi_environ(
    accessor: str, body: bytes, declared: int, terminated: bool
) -> dict[str, t.Any]:
    """A request whose input holds ``body`` after declaring ``declared`` bytes. As
    gunicorn gives it when ``terminated``: its input ends where the client stopped
    sending and is marked ``wsgi.input_terminated``; else as most servers do."""
    content_type, _ = SHORT_BODIES[accessor]
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": f"/{accessor}",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
        "wsgi.input": io.BytesIO(body),
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(declared),
    }
    if terminated:
        environ["wsgi.input_terminated"] = True
    return environ


def call_wsgi(app, environ) -> tuple[str, bytes]:
    started: list[str] = []
    body = app(environ, lambda status, headers, exc_info=None: started.append(status))
    try:
        data = b"".join(body)
    finally:
        getattr(body, "close", lambda: None)()
    return started[0], data


TERMINATED = pytest.mark.parametrize(
    "terminated", [True, False], ids=["input-terminated", "plain-input"]
)


@TERMINATED
@pytest.mark.parametrize("limit", [None, 1024 * 1024], ids=["no-limit", "limit"])
@pytest.mark.parametrize("accessor", sorted(SHORT_BODIES))
def test_wsgi_input_shorter_than_declared_is_400(body_app, accessor, limit, terminated):
    body_app.config["MAX_CONTENT_LENGTH"] = limit
    _, body = SHORT_BODIES[accessor]
    environ = wsgi_environ(accessor, body, DECLARED, terminated)
    status, _ = call_wsgi(body_app, environ)
    assert status == "400 BAD REQUEST"
    assert body_app.config["views_done"] == []


@TERMINATED
@pytest.mark.parametrize("accessor", ["get_data", "stream"])
def test_wsgi_input_of_the_declared_length_is_read_whole(
    body_app, accessor, terminated
):
    _, body = SHORT_BODIES[accessor]
    environ = wsgi_environ(accessor, body + b"trailing", len(body), terminated)
    status, data = call_wsgi(body_app, environ)
    assert (status, data) == ("200 OK", str(len(body)).encode())


@TERMINATED
def test_wsgi_input_declared_over_the_limit_is_413(body_app, terminated):
    body_app.config["MAX_CONTENT_LENGTH"] = 10
    _, body = SHORT_BODIES["get_data"]
    environ = wsgi_environ("get_data", body, DECLARED, terminated)
    status, _ = call_wsgi(body_app, environ)
    assert status == "413 REQUEST ENTITY TOO LARGE"


@pytest.mark.anyio
@pytest.mark.parametrize("accessor", sorted(SHORT_BODIES))
async def test_asgi_body_cut_short_by_the_client_is_400(body_app, accessor):
    content_type, body = SHORT_BODIES[accessor]
    conversation = Conversation(
        [
            {"type": "http.request", "body": body, "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    headers = [("content-type", content_type), ("content-length", str(DECLARED))]
    await serve(body_app, http_scope("POST", f"/{accessor}", headers), conversation)
    assert conversation.status == 400
    assert body_app.config["views_done"] == []


# -- a streamed body failing before its first chunk ------------------------------------


class Broke(Exception):
    pass


def failing_sync_body(events: list[str], at_once: bool) -> t.Iterator[str]:
    events.append("generator started")
    if not at_once:
        yield "first"
    raise Broke("generator broke")


async def failing_async_body(events: list[str], at_once: bool) -> t.AsyncIterator[str]:
    await anyio.lowlevel.checkpoint()
    events.append("generator started")
    if not at_once:
        yield "first"
    raise Broke("generator broke")
    yield "never"


def failing_body_in_context(events: list[str], at_once: bool) -> t.Iterator[str]:
    return stream_with_context(failing_sync_body(events, at_once))


FAILING_BODIES = {
    "sync generator": failing_sync_body,
    "async generator": failing_async_body,
    "stream_with_context": failing_body_in_context,
}


@pytest.fixture(params=sorted(FAILING_BODIES))
def failing_body(request):
    return FAILING_BODIES[request.param]


@pytest.fixture
def stream_error_app(app, kind, failing_body):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    events: list[str] = []
    app.config["events"] = events

    @app.get("/<when>")
    @variant(kind)
    def stream(when):
        g.marker = "view's g"
        return failing_body(events, when == "at-once")

    @app.after_request
    @variant(kind)
    def after(response):
        events.append(f"after_request {response.status_code}")
        response.headers["X-After"] = "1"
        return response

    @app.errorhandler(500)
    @variant(kind)
    def server_error(e):
        events.append(f"500 handler, g: {g.marker}")
        return f"app's 500 for {type(e.original_exception).__name__}", 500

    @app.teardown_request
    @variant(kind)
    def teardown(exc):
        events.append(f"teardown {type(exc).__name__}")

    return app


def test_stream_failing_before_its_first_chunk_is_the_apps_500(
    stream_error_app, client
):
    events = stream_error_app.config["events"]
    response = client.get("/at-once")
    assert response.status_code == 500
    assert response.text == "app's 500 for Broke"
    assert response.headers["X-After"] == "1"
    assert events == [
        "after_request 200",
        "generator started",
        "500 handler, g: view's g",
        "after_request 500",
        "teardown Broke",
    ]
    assert _cv_request.get(None) is None
    assert _cv_app.get(None) is None


def test_stream_failing_after_its_first_chunk_keeps_its_status(
    stream_error_app, client
):
    """The status went out with the first chunk: the failure ends the response (a
    server closes the connection; the test client raises) and tears down once."""
    events = stream_error_app.config["events"]
    with pytest.raises(Broke):
        client.get("/after-a-chunk")
    assert events == ["after_request 200", "generator started", "teardown Broke"]


def test_handler_for_the_generators_exception_answers(app, client, kind):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    teardowns: list[BaseException | None] = []

    @app.get("/")
    def stream():
        return failing_sync_body([], True)

    @app.errorhandler(Broke)
    @variant(kind)
    def handle_broke(e):
        return f"handled {e}", 418

    app.teardown_request(teardowns.append)
    response = client.get("/")
    assert (response.status_code, response.text) == (418, "handled generator broke")
    assert teardowns == [None]  # handled: teardown sees no error, as for a view


def test_abort_in_a_generator_before_its_first_chunk(app, client, kind):
    @app.get("/")
    @variant(kind)
    def stream():
        def body():
            abort(404)
            yield "never"

        return body()

    assert client.get("/").status_code == 404


def test_stream_failing_at_once_propagates_when_testing(app, client, failing_body):
    """With exceptions propagating (TESTING), the generator's exception reaches the
    caller, after a teardown that saw it."""
    teardowns: list[BaseException | None] = []
    app.get("/")(lambda: failing_body([], True))
    app.teardown_request(teardowns.append)
    with pytest.raises(Broke):
        client.get("/")
    assert len(teardowns) == 1
    assert isinstance(teardowns[0], Broke)


def test_error_handlers_own_stream_failing_at_once_is_not_handled_again(app, client):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    calls: list[str] = []
    teardowns: list[BaseException | None] = []
    app.get("/")(lambda: failing_sync_body([], True))

    @app.errorhandler(Broke)
    def handle_broke(e):
        calls.append("handler")
        return failing_sync_body([], True)

    app.teardown_request(teardowns.append)
    with pytest.raises(Broke):
        client.get("/")
    assert calls == ["handler"]
    assert len(teardowns) == 1


def test_error_handlers_own_stream_is_sent(app, client):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    app.get("/")(lambda: failing_sync_body([], True))

    @app.errorhandler(Broke)
    def handle_broke(e):
        return (c for c in ["stream", "ed"]), 503

    response = client.get("/")
    assert (response.status_code, response.text) == (503, "streamed")


def test_empty_stream_is_an_empty_200(app, client, kind):
    teardowns: list[BaseException | None] = []

    @app.get("/")
    @variant(kind)
    def stream():
        return iter(())

    app.teardown_request(teardowns.append)
    response = client.get("/")
    assert (response.status_code, response.data) == (200, b"")
    assert teardowns == [None]


def test_head_never_runs_a_failing_generator(stream_error_app, client):
    events = stream_error_app.config["events"]
    response = client.head("/at-once")
    assert response.status_code == 200
    assert "generator started" not in events
    assert events[-1] == "teardown NoneType"


def test_wsgi_status_goes_out_after_the_first_chunk(app):
    order: list[str] = []

    @app.get("/")
    def stream():
        def body():
            order.append("first chunk")
            yield "a"
            order.append("second chunk")
            yield "b"

        return body()

    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": io.StringIO(),
    }
    body = app(environ, lambda status, headers, exc_info=None: order.append(status))
    assert order == ["first chunk", "200 OK"]
    assert list(body) == [b"a", b"b"]
    body.close()


# -- a request body still coming in when the response is done (ASGI) ------------------


class QueuedServer:
    """A server that hands the body to the app through a queue of at most 10 messages
    and stops reading the client while it is full, as hypercorn does; ending the
    request puts ``http.disconnect`` in that queue too, and waits for room."""

    def __init__(self, chunks: int, size: int = 65536) -> None:
        self.send_stream, self.receive_stream = anyio.create_memory_object_stream[
            dict[str, t.Any]
        ](10)
        self.chunks = chunks
        self.size = size
        self.sent: list[dict[str, t.Any]] = []
        self.client_done = anyio.Event()

    def __enter__(self) -> QueuedServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.send_stream.close()
        self.receive_stream.close()

    async def client(self) -> None:
        for i in range(self.chunks):
            more = i < self.chunks - 1
            await self.send_stream.send(
                {"type": "http.request", "body": b"x" * self.size, "more_body": more}
            )
        self.client_done.set()

    async def receive(self) -> dict[str, t.Any]:
        return await self.receive_stream.receive()

    async def send(self, message: dict[str, t.Any]) -> None:
        self.sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            await self.send_stream.send({"type": "http.disconnect"})


def upload_scope(path: str) -> dict[str, t.Any]:
    return http_scope("POST", path, [("transfer-encoding", "chunked")])


@pytest.fixture
def upload_app(app, kind):
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024

    @app.post("/read")
    @variant(kind)
    def read():
        return str(len(request.get_data()))

    @app.post("/ignore")
    @variant(kind)
    def ignore():
        return "ignored"

    return app


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "status"), [("/read", 413), ("/ignore", 200)], ids=["413", "unread"]
)
async def test_body_left_in_a_full_server_queue_is_drained(upload_app, path, status):
    """2 MiB sent in 64 KiB messages, 1 MiB read at most: the response goes out, the
    rest of the body is received so the client can finish writing it, and the request
    ends (it waited for ever on the full queue before)."""
    with QueuedServer(chunks=32) as server, anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.client)
            await upload_app.asgi(upload_scope(path), server.receive, server.send)
    assert server.client_done.is_set()
    assert server.sent[0]["status"] == status
    assert [m.get("more_body", False) for m in server.sent[1:]] == [True, False]


@pytest.mark.anyio
async def test_body_past_the_drain_bounds_ends_the_response_unread(
    upload_app, monkeypatch
):
    """Past DRAIN_BYTES the response ends with the body unread (the server closes the
    connection); the queue is read meanwhile, so ending the request never waits for
    ever on the server's queue."""
    monkeypatch.setattr(asgi_http, "DRAIN_BYTES", 256 * 1024)
    with QueuedServer(chunks=64) as server, anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.client)
            await upload_app.asgi(upload_scope("/read"), server.receive, server.send)
            assert not server.client_done.is_set()
            tg.cancel_scope.cancel()  # the client is cut off: the server closed
    assert server.sent[0]["status"] == 413
    assert not server.sent[-1].get("more_body", False)


@pytest.mark.anyio
async def test_body_drain_stops_at_the_time_bound(upload_app, monkeypatch):
    """A client that stops sending mid-body: the response ends after DRAIN_SECONDS."""
    monkeypatch.setattr(asgi_http, "DRAIN_SECONDS", 0.2)
    monkeypatch.setattr(asgi_http, "DRAIN_GRACE", 0.2)
    server = QueuedServer(chunks=20)  # 1.25 MiB, never ended: more_body stays True
    server.__enter__()

    async def stalled_client() -> None:
        for _ in range(20):
            await server.send_stream.send(
                {"type": "http.request", "body": b"x" * 65536, "more_body": True}
            )

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(stalled_client)
            await upload_app.asgi(upload_scope("/read"), server.receive, server.send)
    server.__exit__()
    assert server.sent[0]["status"] == 413
    assert not server.sent[-1].get("more_body", False)
