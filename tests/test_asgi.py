"""The ASGI entry point, ``app.asgi``, driven with hand-written scope/receive/send where the
messages matter, and through ``asgi_client`` (httpx) elsewhere: DESIGN.md sections 5, 6, 7.

Async tests run on asyncio and trio (the ``anyio_backend`` fixture below).
"""

from __future__ import annotations

import contextvars
import hashlib
import inspect
import threading
import typing as t

import anyio
import anyio.from_thread
import anyio.lowlevel
import pytest
import uvicorn.config
import uvicorn.importer

import ctxflask
from ctxflask import current_app
from ctxflask import g
from ctxflask import has_request_context
from ctxflask import request
from ctxflask import stream_request_body
from ctxflask.testing import asgi_client
from tests.support import variant

Message = dict[str, t.Any]

#: An app at module level, for uvicorn's ``module:attribute`` import strings.
served = ctxflask.Flask("served")


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param


# -- helpers: a scripted ASGI conversation ------------------------------------------------


def http_scope(
    method: str = "GET",
    path: str = "/",
    headers: t.Iterable[tuple[str, str]] = (),
    http_version: str = "1.1",
) -> dict[str, t.Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": http_version,
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


def body_messages(*chunks: bytes) -> list[Message]:
    """``http.request`` messages carrying ``chunks``, the last one ending the body."""
    return [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]


class Conversation:
    """One request as a server would play it: ``receive`` hands out ``messages`` in order,
    then waits and reports ``http.disconnect`` once the response is complete (or, with
    ``disconnect_after``, once that many body chunks were sent). ``send`` records the
    messages, and raises ``OSError`` past ``fail_send_after`` body chunks."""

    def __init__(
        self,
        messages: t.Iterable[Message] = (),
        *,
        disconnect_after: int | None = None,
        fail_send_after: int | None = None,
    ) -> None:
        self.pending = list(messages)
        self.total = len(self.pending)
        self.receive_calls = 0
        self.sent: list[Message] = []
        self.complete = anyio.Event()
        self.chunks_sent = 0
        self.enough_chunks = anyio.Event()
        self.disconnect_after = disconnect_after
        self.fail_send_after = fail_send_after
        #: What happened, in order: "receive", "start", "body" (more to come), "end".
        self.log: list[str] = []

    @property
    def consumed(self) -> int:
        """How many of the scripted messages were received."""
        return self.total - len(self.pending)

    async def receive(self) -> Message:
        self.receive_calls += 1
        self.log.append("receive")
        if self.pending:
            return self.pending.pop(0)
        if self.disconnect_after is not None:
            await self.enough_chunks.wait()
        else:
            await self.complete.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.body" and message.get("more_body"):
            if (
                self.fail_send_after is not None
                and self.chunks_sent >= self.fail_send_after
            ):
                raise OSError("connection reset by peer")
            self.chunks_sent += 1
            if (
                self.disconnect_after is not None
                and self.chunks_sent >= self.disconnect_after
            ):
                self.enough_chunks.set()
        self.sent.append(message)
        if message["type"] == "http.response.start":
            self.log.append("start")
        elif message["type"] == "http.response.body":
            self.log.append("body" if message.get("more_body") else "end")
        if message["type"] == "http.response.body" and not message.get("more_body"):
            self.complete.set()

    def received_before_start(self) -> int:
        """How many times ``receive`` was called before the response started."""
        return self.log[: self.log.index("start")].count("receive")

    @property
    def starts(self) -> list[Message]:
        return [m for m in self.sent if m["type"] == "http.response.start"]

    @property
    def status(self) -> int:
        (start,) = self.starts
        return t.cast(int, start["status"])

    @property
    def headers(self) -> dict[str, str]:
        (start,) = self.starts
        return {k.decode(): v.decode() for k, v in start["headers"]}

    @property
    def body(self) -> bytes:
        return b"".join(
            m.get("body", b"") for m in self.sent if m["type"] == "http.response.body"
        )


async def serve(
    app: ctxflask.Flask, scope: dict[str, t.Any], conversation: Conversation
) -> Conversation:
    with anyio.fail_after(10):  # a safety net against hangs, not a timing assumption
        await app.asgi(scope, conversation.receive, conversation.send)
    return conversation


async def request_with(
    app: ctxflask.Flask,
    method: str = "GET",
    path: str = "/",
    *chunks: bytes,
    headers: t.Iterable[tuple[str, str]] = (),
    **kwargs: t.Any,
) -> Conversation:
    return await serve(
        app,
        http_scope(method, path, headers),
        Conversation(body_messages(*chunks) if chunks else (), **kwargs),
    )


def chunked(content_type: str | None = None) -> list[tuple[str, str]]:
    headers = [("transfer-encoding", "chunked")]
    if content_type is not None:
        headers.append(("content-type", content_type))
    return headers


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


async def run_lifespan(
    app: ctxflask.Flask, sent: list[t.Any] | None = None
) -> list[Message]:
    """Play a server's lifespan: startup, then shutdown once startup completed."""
    messages: list[Message] = [{"type": "lifespan.startup"}]
    sent = [] if sent is None else sent

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "lifespan.startup.complete":
            messages.append({"type": "lifespan.shutdown"})

    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}
    with anyio.fail_after(10):
        await app.asgi(scope, receive, send)
    return sent


# -- app.asgi, the object --------------------------------------------------------------------


def test_asgi_is_an_object_with_an_async_call(app):
    assert not inspect.ismethod(app.asgi)
    assert inspect.iscoroutinefunction(type(app.asgi).__call__)


def test_uvicorn_imports_app_asgi_and_detects_asgi3():
    target = f"{__name__}:served.asgi"
    assert uvicorn.importer.import_from_string(target) is served.asgi
    config = uvicorn.config.Config(target, log_config=None, proxy_headers=False)
    config.load()
    assert config.interface == "asgi3"
    assert config.loaded_app is served.asgi


def test_asgi_is_cached_per_app(app):
    other = ctxflask.Flask("other")
    assert app.asgi is app.asgi
    assert other.asgi is not app.asgi


class AddHeader:
    """An ASGI middleware adding a response header."""

    def __init__(self, inner: t.Any) -> None:
        self.inner = inner

    async def __call__(self, scope: t.Any, receive: t.Any, send: t.Any) -> None:
        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": [*message["headers"], (b"x-middleware", b"yes")],
                }
            await send(message)

        await self.inner(scope, receive, send_with_header)


@pytest.mark.anyio
async def test_asgi_can_be_wrapped_in_middleware(app):
    app.get("/")(lambda: "hello")
    inner = app.asgi
    app.asgi = AddHeader(inner)
    assert app.asgi.inner is inner
    async with asgi_client(app) as client:
        response = await client.get("/")
    assert response.status_code == 200
    assert response.text == "hello"
    assert response.headers["x-middleware"] == "yes"


def test_asgi_test_client_goes_through_the_assigned_middleware(app):
    app.get("/")(lambda: "hello")
    app.asgi = AddHeader(app.asgi)
    response = app.test_client(asgi=True).get("/")
    assert response.text == "hello"
    assert response.headers["X-Middleware"] == "yes"


@pytest.mark.anyio
async def test_connection_classes_are_chosen_by_class_attribute(app, kind):
    # ASGIApp picks a class per scope type: a subclass swaps one by its attribute, and
    # the rest (here the lifespan) keep theirs.
    from ctxflask.asgi import ASGIApp
    from ctxflask.asgi import HTTPConnection

    served: list[str] = []

    class TracedHTTPConnection(HTTPConnection):
        async def run(self) -> None:
            served.append(self.request.path)
            await super().run()

    class TracedASGIApp(ASGIApp):
        http_connection_class = TracedHTTPConnection

    @app.get("/traced")
    @variant(kind)
    def traced():
        return "traced"

    started = []
    app.before_serving(variant(kind)(lambda: started.append(True)))
    app.asgi = TracedASGIApp(app)
    async with asgi_client(app) as client:
        response = await client.get("/traced")
    assert response.text == "traced"
    assert served == ["/traced"]
    assert await run_lifespan(app) == [
        {"type": "lifespan.startup.complete"},
        {"type": "lifespan.shutdown.complete"},
    ]
    assert started == [True]


# -- scope types -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_unsupported_scope_type_raises_value_error_naming_it(app):
    async def receive() -> Message:
        raise AssertionError("not called")

    async def send(message: Message) -> None:
        raise AssertionError("not called")

    with pytest.raises(ValueError, match="'telepathy'"):
        await app.asgi({"type": "telepathy"}, receive, send)


@pytest.mark.anyio
async def test_websocket_scope_is_closed(app):
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "path": "/ws",
        "raw_path": b"/ws",
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "scheme": "ws",
    }
    with anyio.fail_after(10):
        await app.asgi(scope, receive, send)
    assert [m["type"] for m in sent] == ["websocket.close"]


# -- lifespan --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_lifespan_startup_runs_before_serving_in_an_app_context(app, kind):
    seen = []

    @app.before_serving
    @variant(kind)
    def start():
        g.started = "yes"
        seen.append((current_app._get_current_object(), g.started))

    sent = await run_lifespan(app)
    assert sent == [
        {"type": "lifespan.startup.complete"},
        {"type": "lifespan.shutdown.complete"},
    ]
    assert seen == [(app, "yes")]


@pytest.mark.anyio
async def test_lifespan_pushes_an_app_context_only_for_serving_callbacks(app, kind):
    # ASGI-specific (the lifespan protocol): as under WSGI, an app without before_serving
    # or after_serving callbacks gets no app context, so no teardown, at startup or
    # shutdown; one with a startup callback gets one, torn down once.
    torn_down = []
    app.teardown_appcontext(variant(kind)(lambda exc: torn_down.append(exc)))
    await run_lifespan(app)
    assert torn_down == []
    app.before_serving(variant(kind)(lambda: None))
    await run_lifespan(app)
    assert torn_down == [None]


@pytest.mark.anyio
async def test_lifespan_shutdown_runs_after_serving_in_an_app_context(app, kind):
    seen = []

    @app.after_serving
    @variant(kind)
    def stop():
        g.stopped = "yes"
        seen.append((current_app._get_current_object(), g.stopped))

    sent = await run_lifespan(app)
    assert sent == [
        {"type": "lifespan.startup.complete"},
        {"type": "lifespan.shutdown.complete"},
    ]
    assert seen == [(app, "yes")]


@pytest.mark.anyio
async def test_lifespan_runs_each_phase_once_in_order(app):
    events = []
    app.before_serving(lambda: events.append("sync start"))

    @app.before_serving
    async def async_start():
        await anyio.lowlevel.checkpoint()
        events.append("async start")

    @app.after_serving
    async def async_stop():
        await anyio.lowlevel.checkpoint()
        events.append("async stop")

    app.after_serving(lambda: events.append("sync stop"))

    await run_lifespan(app, sent=events)
    assert events == [
        "sync start",
        "async start",
        {"type": "lifespan.startup.complete"},
        "async stop",
        "sync stop",
        {"type": "lifespan.shutdown.complete"},
    ]


@pytest.mark.anyio
async def test_failing_before_serving_sends_startup_failed_with_its_message(app, kind):
    @app.before_serving
    @variant(kind)
    def start():
        raise RuntimeError("database unreachable")

    sent = await run_lifespan(app)
    assert [m["type"] for m in sent] == ["lifespan.startup.failed"]
    assert "database unreachable" in sent[0]["message"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("setting", "value"), [("ASYNC_STEPS", "threads"), ("LOOP_BLOCK_WARNING", -1)]
)
async def test_a_bad_setting_fails_the_startup_with_its_message(app, setting, value):
    # ASGI-specific (the lifespan protocol): settings are read when serving starts.
    app.config[setting] = value
    sent = await run_lifespan(app)
    assert [m["type"] for m in sent] == ["lifespan.startup.failed"]
    assert setting in sent[0]["message"]


@pytest.mark.anyio
async def test_failing_after_serving_sends_shutdown_failed_with_its_message(app, kind):
    @app.after_serving
    @variant(kind)
    def stop():
        raise RuntimeError("flush failed")

    sent = await run_lifespan(app)
    assert [m["type"] for m in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.failed",
    ]
    assert "flush failed" in sent[1]["message"]


# -- request bodies --------------------------------------------------------------------------


@pytest.mark.anyio
async def test_sync_view_that_ignores_the_body_runs_before_it_is_received(app):
    """The body is not received for the view; once the answer went out, its rest is
    received and dropped before the response ends, so the connection stays usable."""
    received_in_view = []
    conversation = Conversation(body_messages(b"a" * 10, b"b" * 10))

    @app.post("/")
    def ignore():
        received_in_view.append(conversation.receive_calls)
        return "ignored"

    scope = http_scope("POST", "/", [("content-length", "20")])
    await serve(app, scope, conversation)
    assert received_in_view == [0]
    assert conversation.status == 200
    assert conversation.body == b"ignored"
    assert [m.get("more_body", False) for m in conversation.sent[1:]] == [True, False]
    assert conversation.consumed == 2


@pytest.mark.anyio
async def test_declared_length_over_the_limit_is_413_without_receiving(app, kind):
    app.config["MAX_CONTENT_LENGTH"] = 100

    @app.post("/")
    @variant(kind)
    def upload():
        return str(len(request.get_data()))

    conversation = await request_with(
        app, "POST", "/", b"x" * 101, headers=[("content-length", "101")]
    )
    assert conversation.status == 413
    assert conversation.received_before_start() == 0
    # The answer goes out whole, then the body is dropped so that the connection can
    # serve the next request, then the response ends.
    assert conversation.log == ["start", "body", "receive", "end"]


@pytest.mark.anyio
async def test_chunked_body_over_the_limit_is_413_and_stops_receiving(app, kind):
    app.config["MAX_CONTENT_LENGTH"] = 100

    @app.post("/")
    @variant(kind)
    def upload():
        return str(len(request.get_data()))

    conversation = await request_with(
        app, "POST", "/", *[b"x" * 30] * 20, headers=chunked()
    )
    assert conversation.status == 413
    # 4 messages pass the limit (120 bytes); at most one more may have been read.
    assert conversation.received_before_start() <= 5
    # Then the rest is dropped before the response ends.
    assert conversation.consumed == 20
    assert conversation.log[-2:] == ["receive", "end"]


@pytest.mark.anyio
async def test_chunked_body_of_exactly_the_limit_is_readable_whole(app, kind):
    app.config["MAX_CONTENT_LENGTH"] = 90

    @app.post("/")
    @variant(kind)
    def upload():
        return request.get_data()

    data = bytes(range(48, 48 + 90))
    conversation = await request_with(
        app, "POST", "/", *split(data, 30), headers=chunked()
    )
    assert conversation.status == 200
    assert conversation.body == data


@pytest.mark.anyio
async def test_chunked_body_under_the_limit_is_readable_whole(app, kind):
    app.config["MAX_CONTENT_LENGTH"] = 1000

    @app.post("/")
    @variant(kind)
    def upload():
        return request.get_data()

    conversation = await request_with(
        app, "POST", "/", b"first,", b"", b"second,", b"third", headers=chunked()
    )
    assert conversation.status == 200
    assert conversation.body == b"first,second,third"


@pytest.mark.anyio
async def test_body_without_length_over_http2_is_readable_whole(app, kind):
    @app.post("/")
    @variant(kind)
    def upload():
        return request.get_data()

    scope = http_scope("POST", "/", http_version="2")
    conversation = await serve(
        app, scope, Conversation(body_messages(b"no ", b"length ", b"given"))
    )
    assert conversation.status == 200
    assert conversation.body == b"no length given"


@pytest.mark.anyio
async def test_chunked_json_body_is_parsed(app, kind):
    @app.post("/")
    @variant(kind)
    def upload():
        return {"got": request.get_json()}

    conversation = await request_with(
        app,
        "POST",
        "/",
        *split(b'{"name": "ctxflask", "tags": ["a", "b"]}', 7),
        headers=chunked("application/json"),
    )
    assert conversation.status == 200
    assert conversation.body == b'{"got":{"name":"ctxflask","tags":["a","b"]}}\n'


@pytest.mark.anyio
async def test_chunked_form_body_is_parsed(app, kind):
    @app.post("/")
    @variant(kind)
    def upload():
        return f"{request.form['a']}|{request.form['b']}"

    conversation = await request_with(
        app,
        "POST",
        "/",
        *split(b"a=one+two&b=%C3%A9t%C3%A9", 4),
        headers=chunked("application/x-www-form-urlencoded"),
    )
    assert conversation.status == 200
    assert conversation.body == "one two|été".encode()


def multipart(boundary: str, field: str, filename: str, content: bytes) -> bytes:
    return (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="title"\r\n\r\n'
            f"{field}\r\n"
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="upload"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )


@pytest.mark.anyio
async def test_chunked_multipart_body_gives_form_and_files(app, kind):
    content = bytes(range(256)) * 40

    @app.post("/")
    @variant(kind)
    def upload():
        upload = request.files["upload"]
        data = upload.read()
        return f"{request.form['title']}|{upload.filename}|{hashlib.sha256(data).hexdigest()}"

    body = multipart("b0undary", "holiday", "photo.bin", content)
    conversation = await request_with(
        app,
        "POST",
        "/",
        *split(body, 1000),
        headers=chunked("multipart/form-data; boundary=b0undary"),
    )
    assert conversation.status == 200
    assert conversation.body.decode() == (
        f"holiday|photo.bin|{hashlib.sha256(content).hexdigest()}"
    )


@pytest.mark.anyio
@pytest.mark.parametrize("length", ["declared", "chunked"])
@pytest.mark.parametrize(
    ("size", "chunk", "in_memory"),
    [
        (3 * 1024 * 1024, 65536, False),  # past 1 MiB: a temporary file
        (3 * 1024 * 1024, 100_003, False),  # the bound crossed inside a message
        (1024 * 1024, 65536, True),  # up to 1 MiB: memory
        (1000, 7, True),
    ],
)
async def test_a_body_received_for_an_async_view_is_kept_whole(
    app, length, size, chunk, in_memory
):
    data = (bytes(range(256)) * (size // 256 + 1))[:size]
    seen = {}

    @app.post("/")
    async def upload():
        await anyio.lowlevel.checkpoint()
        stream = request.environ["wsgi.input"]
        seen["in memory"] = isinstance(stream._store, bytearray)
        return hashlib.sha256(request.get_data()).hexdigest()

    headers = (
        [("content-length", str(len(data)))] if length == "declared" else chunked()
    )
    conversation = await request_with(
        app, "POST", "/", *split(data, chunk), headers=headers
    )
    assert conversation.status == 200
    assert conversation.body.decode() == hashlib.sha256(data).hexdigest()
    assert seen == {"in memory": in_memory}


@pytest.mark.anyio
async def test_client_leaving_mid_body_is_a_400_and_tears_down_once(app, kind):
    teardowns = []

    @app.post("/")
    @variant(kind)
    def upload():
        return str(len(request.get_data()))

    @app.teardown_request
    def teardown(exc):
        teardowns.append(exc)

    messages = [
        {"type": "http.request", "body": b"x" * 50, "more_body": True},
        {"type": "http.disconnect"},
    ]
    conversation = await serve(
        app,
        http_scope("POST", "/", [("content-length", "100")]),
        Conversation(messages),
    )
    assert conversation.status == 400
    assert len(teardowns) == 1


@pytest.mark.anyio
async def test_streamed_request_body_arrives_chunk_by_chunk(app):
    got_first = anyio.Event()
    chunks: list[bytes] = []

    @app.post("/")
    @stream_request_body
    async def upload():
        async for chunk in request.iter_body():
            chunks.append(chunk)
            got_first.set()
        return b"|".join(chunks)

    send_stream, receive_stream = anyio.create_memory_object_stream[Message](10)
    complete = anyio.Event()
    sent: list[Message] = []

    async def receive() -> Message:
        try:
            return await receive_stream.receive()
        except anyio.EndOfStream:
            await complete.wait()
            return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            complete.set()

    scope = http_scope("POST", "/", [("content-length", "15")])
    with anyio.fail_after(10):
        async with send_stream, receive_stream, anyio.create_task_group() as tg:
            tg.start_soon(app.asgi, scope, receive, send)
            await send_stream.send(
                {"type": "http.request", "body": b"first", "more_body": True}
            )
            await got_first.wait()
            before_the_rest = list(chunks)
            await send_stream.send(
                {"type": "http.request", "body": b"secon", "more_body": True}
            )
            await send_stream.send(
                {"type": "http.request", "body": b"third", "more_body": False}
            )
            await complete.wait()
    assert before_the_rest == [b"first"]
    assert sent[0]["status"] == 200
    assert sent[-1]["body"] == b"first|secon|third"


@pytest.mark.anyio
async def test_streamed_request_body_over_declared_limit_is_413_unreceived(app):
    app.config["MAX_CONTENT_LENGTH"] = 100

    @app.post("/")
    @stream_request_body
    async def upload():
        size = 0
        async for chunk in request.iter_body():
            size += len(chunk)
        return str(size)

    conversation = await request_with(
        app, "POST", "/", b"x" * 101, headers=[("content-length", "101")]
    )
    assert conversation.status == 413
    assert conversation.received_before_start() == 0
    # The answer goes out whole, then the body is dropped so that the connection can
    # serve the next request, then the response ends.
    assert conversation.log == ["start", "body", "receive", "end"]


@pytest.mark.anyio
async def test_streamed_chunked_request_body_over_limit_is_413_and_stops(app):
    app.config["MAX_CONTENT_LENGTH"] = 100

    @app.post("/")
    @stream_request_body
    async def upload():
        size = 0
        async for chunk in request.iter_body():
            size += len(chunk)
        return str(size)

    conversation = await request_with(
        app, "POST", "/", *[b"x" * 30] * 20, headers=chunked()
    )
    assert conversation.status == 413
    assert conversation.received_before_start() == 4
    # Then the rest is dropped before the response ends.
    assert conversation.consumed == 20
    assert conversation.log[-2:] == ["receive", "end"]


@pytest.mark.anyio
async def test_sync_body_read_in_a_streaming_view_explains_the_fix(app):
    # ASGI-specific: a view marked @stream_request_body gets no body received ahead, and
    # a sync accessor on the loop cannot wait for it: the error says what to do instead.
    @app.post("/")
    @stream_request_body
    async def upload():
        return request.get_data()

    with pytest.raises(RuntimeError, match="read from the event loop") as info:
        await request_with(app, "POST", "/", b"abc", b"def", headers=chunked())
    assert "request.iter_body()" in str(info.value)


# -- execution: worker threads and the loop --------------------------------------------------


@pytest.mark.anyio
async def test_steps_run_in_worker_threads_if_sync_and_on_the_loop_if_async(app, kind):
    loop_thread = threading.get_ident()
    threads = {}

    @app.before_request
    @variant(kind)
    def before():
        threads["before_request"] = threading.get_ident()

    @app.get("/")
    @variant(kind)
    def view():
        threads["view"] = threading.get_ident()
        return "ok"

    @app.after_request
    @variant(kind)
    def after(response):
        threads["after_request"] = threading.get_ident()
        return response

    @app.teardown_request
    @variant(kind)
    def teardown(exc):
        threads["teardown_request"] = threading.get_ident()

    conversation = await request_with(app)
    assert conversation.body == b"ok"
    assert sorted(threads) == [
        "after_request",
        "before_request",
        "teardown_request",
        "view",
    ]
    on_loop = {name: ident == loop_thread for name, ident in threads.items()}
    assert set(on_loop.values()) == {kind == "async"}


@pytest.mark.anyio
async def test_error_handler_runs_in_a_worker_thread_if_sync_on_the_loop_if_async(
    app, kind
):
    loop_thread = threading.get_ident()
    threads = []

    @app.get("/")
    def view():
        raise KeyError("missing")

    @app.errorhandler(KeyError)
    @variant(kind)
    def handle(e):
        threads.append(threading.get_ident())
        return "handled", 418

    conversation = await request_with(app)
    assert conversation.status == 418
    assert len(threads) == 1
    assert (threads[0] == loop_thread) is (kind == "async")


@pytest.mark.anyio
async def test_sync_before_serving_runs_in_a_worker_thread(app):
    loop_thread = threading.get_ident()
    threads = []
    app.before_serving(lambda: threads.append(threading.get_ident()))
    await run_lifespan(app)
    assert len(threads) == 1
    assert threads[0] != loop_thread


@pytest.mark.anyio
async def test_consecutive_sync_steps_share_one_worker_thread(app):
    loop_thread = threading.get_ident()
    threads = []
    app.before_request(lambda: threads.append(threading.get_ident()))

    @app.get("/")
    def view():
        threads.append(threading.get_ident())
        return "ok"

    @app.after_request
    def after(response):
        threads.append(threading.get_ident())
        return response

    app.teardown_request(lambda exc: threads.append(threading.get_ident()))

    await request_with(app)
    assert len(threads) == 4
    assert len(set(threads)) == 1
    assert threads[0] != loop_thread


@pytest.mark.anyio
async def test_saturated_worker_threads_do_not_stall_async_views(app):
    app.config["WORKER_THREADS"] = 2
    release = threading.Event()
    send_arrival, arrivals = anyio.create_memory_object_stream[str](2)

    @app.get("/blocking")
    def blocking():
        anyio.from_thread.run_sync(send_arrival.send_nowait, "in")
        release.wait(10)
        return "released"

    @app.get("/async")
    async def fast():
        await anyio.lowlevel.checkpoint()
        return "answered"

    blocked = []

    async def get_blocking(client: t.Any) -> None:
        blocked.append((await client.get("/blocking")).text)

    async with (
        send_arrival,
        arrivals,
        asgi_client(app) as client,
        anyio.create_task_group() as tg,
    ):
        try:
            tg.start_soon(get_blocking, client)
            tg.start_soon(get_blocking, client)
            with anyio.fail_after(10):
                await arrivals.receive()
                await arrivals.receive()
            with anyio.fail_after(5):
                response = await client.get("/async")
            assert blocked == []
        finally:
            release.set()
    assert response.status_code == 200
    assert response.text == "answered"
    assert blocked == ["released", "released"]


step_var: contextvars.ContextVar[str] = contextvars.ContextVar(
    "step_var", default="unset"
)


@pytest.mark.anyio
async def test_context_var_changes_cross_between_sync_and_async_steps(app):
    seen = []

    @app.before_request
    def sync_before():
        step_var.set("sync before")

    @app.before_request
    async def async_before():
        await anyio.lowlevel.checkpoint()
        seen.append(step_var.get())
        step_var.set("async before")

    @app.get("/")
    def view():
        seen.append(step_var.get())
        step_var.set("sync view")
        return "ok"

    @app.after_request
    async def async_after(response):
        await anyio.lowlevel.checkpoint()
        seen.append(step_var.get())
        step_var.set("async after")
        return response

    @app.teardown_request
    def sync_teardown(exc):
        seen.append(step_var.get())

    conversation = await request_with(app)
    assert conversation.body == b"ok"
    assert seen == ["sync before", "async before", "sync view", "async after"]
    assert step_var.get() == "unset"


# Cancellation is ASGI's only: under WSGI nothing can cancel a request's thread.


@pytest.mark.anyio
async def test_request_cancelled_while_its_async_view_waits_ends_it_and_tears_down_once(
    app,
):
    # As a server does on shutdown or a timeout: the request's task is cancelled.
    log = []
    waiting = anyio.Event()

    @app.before_request
    async def async_before():
        g.path = request.path

    @app.get("/wait")
    async def wait():
        waiting.set()
        try:
            await anyio.sleep(30)
        finally:
            log.append(("view ended", g.path))

    @app.teardown_request
    def teardown(exc):
        log.append(("teardown", type(exc)))

    conversation = Conversation()
    async with anyio.create_task_group() as tg:
        tg.start_soon(
            app.asgi, http_scope(path="/wait"), conversation.receive, conversation.send
        )
        await waiting.wait()
        tg.cancel_scope.cancel()
    assert log == [
        ("view ended", "/wait"),
        ("teardown", anyio.get_cancelled_exc_class()),
    ]
    assert conversation.sent == []


@pytest.mark.anyio
async def test_thread_mode_request_cancelled_while_its_async_view_runs_finishes_it(
    app,
):
    # In "thread" mode an async view runs in a worker thread, on that thread's loop: like
    # a sync view, it runs to its end; then the request ends, and tears down once.
    app.config["ASYNC_STEPS"] = "thread"
    log = []
    running = threading.Event()

    @app.get("/wait")
    async def wait():
        import asyncio

        running.set()
        await asyncio.sleep(0.2)
        log.append("view finished")
        return "done"

    @app.teardown_request
    def teardown(exc):
        log.append(("teardown", type(exc)))

    conversation = Conversation()
    async with anyio.create_task_group() as tg:
        tg.start_soon(
            app.asgi, http_scope(path="/wait"), conversation.receive, conversation.send
        )
        await anyio.to_thread.run_sync(running.wait, 5)
        tg.cancel_scope.cancel()
    assert log[0] == "view finished"
    assert [entry[0] for entry in log[1:]] == ["teardown"]  # once


@pytest.mark.anyio
async def test_request_cancelled_while_its_sync_view_runs_finishes_it_and_tears_down_once(
    app,
):
    # A thread cannot be interrupted: the view runs to its end, then the request ends.
    log = []
    running = threading.Event()
    release = threading.Event()

    @app.get("/work")
    def work():
        running.set()
        release.wait(5)
        log.append("view finished")
        return "done"

    @app.teardown_request
    def teardown(exc):
        log.append("teardown")

    conversation = Conversation()
    async with anyio.create_task_group() as tg:
        tg.start_soon(
            app.asgi, http_scope(path="/work"), conversation.receive, conversation.send
        )
        await anyio.to_thread.run_sync(running.wait, 5)
        tg.cancel_scope.cancel()
        release.set()
    assert log == ["view finished", "teardown"]


@pytest.mark.anyio
async def test_request_cancelled_while_waiting_for_a_worker_thread_still_tears_down(
    app,
):
    # The only worker thread is busy: the second request's sync view waits its turn when
    # it is cancelled, and never runs; its teardown does.
    app.config["WORKER_THREADS"] = 1
    log = []
    busy = threading.Event()
    release = threading.Event()

    @app.get("/<name>")
    def view(name):
        if name == "first":
            busy.set()
            release.wait(5)
        log.append(f"view {name}")
        return name

    @app.teardown_request
    def teardown(exc):
        log.append(f"teardown {request.view_args['name']} {type(exc).__name__}")

    first, second = Conversation(), Conversation()
    second_scope = anyio.CancelScope()

    async def second_request():
        with second_scope:
            await app.asgi(http_scope(path="/second"), second.receive, second.send)

    async with anyio.create_task_group() as tg:
        tg.start_soon(app.asgi, http_scope(path="/first"), first.receive, first.send)
        await anyio.to_thread.run_sync(busy.wait, 5)
        tg.start_soon(second_request)
        await anyio.sleep(0.05)  # the second request now waits for the thread
        second_scope.cancel()
        await anyio.sleep(0.05)
        release.set()
    cancelled = anyio.get_cancelled_exc_class().__name__
    assert log == [
        "view first",
        "teardown first NoneType",
        f"teardown second {cancelled}",
    ]
    assert second.sent == []


# -- responses -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_head_sends_headers_and_an_empty_body(app, kind):
    @app.get("/")
    @variant(kind)
    def view():
        return "hello"

    conversation = await request_with(app, "HEAD")
    assert conversation.status == 200
    assert conversation.headers["content-length"] == "5"
    assert conversation.headers["content-type"] == "text/html; charset=utf-8"
    bodies = [m for m in conversation.sent if m["type"] == "http.response.body"]
    assert bodies == [{"type": "http.response.body", "body": b""}]


@pytest.mark.anyio
async def test_head_on_a_streamed_response_sends_an_empty_body(app):
    @app.get("/")
    def view():
        def body():
            yield "hello"

        return body()

    conversation = await request_with(app, "HEAD")
    assert conversation.status == 200
    assert conversation.body == b""


def _responses(kind: str) -> dict[str, t.Callable[[], t.Any]]:
    @variant(kind)
    def plain():
        return "plain"

    @variant(kind)
    def streamed():
        def body():
            yield "stream"
            yield "ed"

        return body()

    @variant(kind)
    def failing():
        raise LookupError("handled")

    return {"/plain": plain, "/streamed": streamed, "/failing": failing}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        ("/plain", 200, b"plain"),
        ("/streamed", 200, b"streamed"),
        ("/failing", 409, b"conflict"),
        ("/missing", 404, None),
    ],
)
async def test_response_start_is_sent_exactly_once(app, kind, path, status, body):
    for rule, view in _responses(kind).items():
        app.add_url_rule(rule, view_func=view)
    app.register_error_handler(LookupError, lambda e: ("conflict", 409))

    conversation = await request_with(app, "GET", path)
    assert len(conversation.starts) == 1
    assert conversation.status == status
    if body is not None:
        assert conversation.body == body
    last = conversation.sent[-1]
    assert last["type"] == "http.response.body"
    assert not last.get("more_body", False)


@pytest.mark.anyio
async def test_sync_generator_runs_in_worker_threads(app):
    loop_thread = threading.get_ident()
    threads = []

    @app.get("/")
    def view():
        def body():
            for i in range(3):
                threads.append(threading.get_ident())
                yield str(i)

        return body()

    conversation = await request_with(app)
    assert conversation.body == b"012"
    assert len(threads) == 3
    assert loop_thread not in threads


@pytest.mark.anyio
async def test_async_generator_runs_on_the_loop(app):
    loop_thread = threading.get_ident()
    threads = []

    @app.get("/")
    def view():
        async def body():
            for i in range(3):
                await anyio.lowlevel.checkpoint()
                threads.append(threading.get_ident())
                yield str(i)

        return body()

    conversation = await request_with(app)
    assert conversation.body == b"012"
    assert threads == [loop_thread] * 3


def sync_failing_body():
    yield "first"
    raise RuntimeError("generator broke")


async def async_failing_body():
    await anyio.lowlevel.checkpoint()
    yield "first"
    raise RuntimeError("generator broke")


@pytest.mark.anyio
@pytest.mark.parametrize("make_body", [sync_failing_body, async_failing_body])
async def test_generator_error_after_headers_raises_without_a_second_start(
    app, make_body
):
    teardowns = []
    app.get("/")(lambda: make_body())
    app.teardown_request(teardowns.append)

    conversation = Conversation()
    with pytest.raises(RuntimeError, match="generator broke") as raised:
        await serve(app, http_scope(), conversation)
    assert len(conversation.starts) == 1
    assert conversation.status == 200
    assert conversation.body == b"first"
    assert teardowns == [raised.value]


def infinite_sync_body(events: list[str]) -> t.Iterator[str]:
    try:
        while True:
            yield "tick"
    finally:
        events.append(f"closed, in request: {has_request_context()}")


async def infinite_async_body(events: list[str]) -> t.AsyncIterator[str]:
    try:
        while True:
            await anyio.lowlevel.checkpoint()
            yield "tick"
    finally:
        events.append(f"closed, in request: {has_request_context()}")


@pytest.mark.anyio
@pytest.mark.parametrize("make_body", [infinite_sync_body, infinite_async_body])
async def test_client_leaving_mid_stream_closes_the_generator_and_tears_down_once(
    app, make_body
):
    events: list[str] = []
    app.get("/")(lambda: make_body(events))
    app.teardown_request(lambda exc: events.append(f"teardown {exc!r}"))

    conversation = await serve(app, http_scope(), Conversation(disconnect_after=3))
    assert len(conversation.starts) == 1
    assert conversation.chunks_sent >= 3
    assert events == ["closed, in request: True", "teardown None"]


@pytest.mark.anyio
@pytest.mark.parametrize("make_body", [infinite_sync_body, infinite_async_body])
async def test_send_failing_mid_stream_closes_the_generator_and_tears_down_once(
    app, make_body
):
    events: list[str] = []
    app.get("/")(lambda: make_body(events))
    app.teardown_request(lambda exc: events.append(f"teardown {exc!r}"))

    # The client went away: not an error of the app, which returns normally.
    conversation = await serve(app, http_scope(), Conversation(fail_send_after=3))
    assert len(conversation.starts) == 1
    assert conversation.chunks_sent == 3
    assert events == ["closed, in request: True", "teardown None"]


# -- asgi_client -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_asgi_client_serves_requests_from_an_async_test(app, kind):
    @app.post("/echo/<name>")
    @variant(kind)
    def echo(name):
        return {"name": name, "body": request.get_json(), "arg": request.args["q"]}

    async with asgi_client(app) as client:
        response = await client.post("/echo/ada?q=1", json={"x": [1, 2]})
    assert response.status_code == 200
    assert response.json() == {"name": "ada", "body": {"x": [1, 2]}, "arg": "1"}


@pytest.mark.anyio
async def test_asgi_client_concurrent_requests_each_see_their_own_request(app, kind):
    @app.get("/<int:n>")
    @variant(kind)
    def view(n):
        g.n = n
        return f"{request.view_args['n']}|{g.n}"

    results: dict[int, str] = {}

    async def fetch(client: t.Any, n: int) -> None:
        results[n] = (await client.get(f"/{n}")).text

    async with asgi_client(app) as client, anyio.create_task_group() as tg:
        for n in range(10):
            tg.start_soon(fetch, client, n)
    assert results == {n: f"{n}|{n}" for n in range(10)}
