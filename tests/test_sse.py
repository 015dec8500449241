"""Server-sent events (``ctxflask.sse``): the wire format, a heartbeat while an async
source is idle, and a source closed with teardown once when the client leaves, under
both entry points, with sync and async sources."""

from __future__ import annotations

import time
import typing as t

import anyio
import pytest

import ctxflask
from ctxflask import g
from ctxflask import request
from ctxflask.sse import event_stream
from ctxflask.sse import ServerSentEvent
from tests.test_disconnects import body_of
from tests.test_disconnects import converse


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param


def test_an_event_on_the_wire():
    event = ServerSentEvent("one\ntwo\r\nthree\rfour", event="note", id="7", retry=500)
    assert event.encode() == (
        b"event: note\nid: 7\nretry: 500\n"
        b"data: one\ndata: two\ndata: three\ndata: four\n\n"
    )
    assert ServerSentEvent("").encode() == b"data: \n\n"
    assert ServerSentEvent("caf\u00e9 \u2603").encode() == "data: café ☃\n\n".encode()


def test_data_other_than_text_is_json(app):
    with app.app_context():
        assert ServerSentEvent({"a": [1, 2]}).encode() == b'data: {"a": [1, 2]}\n\n'


@pytest.mark.parametrize(
    "fields",
    [{"event": "a\nb"}, {"id": "a\rb"}, {"id": "a\0b"}, {"retry": -1}],
)
def test_fields_that_would_break_the_stream_are_refused(fields):
    with pytest.raises(ValueError, match="event's"):
        ServerSentEvent("x", **fields)


@pytest.fixture
def sse_app(app: ctxflask.Flask) -> dict[str, list[t.Any]]:
    seen: dict[str, list[t.Any]] = {"teardown": [], "closed": []}

    @app.before_request
    def mark() -> None:
        g.mark = request.path

    @app.teardown_request
    def record(exc: BaseException | None) -> None:
        seen["teardown"].append(exc)

    @app.get("/sync")
    def sync_events() -> ctxflask.Response:
        def source() -> t.Iterator[t.Any]:
            try:
                yield ServerSentEvent(g.mark, event="mark", id="1")
                yield None  # a heartbeat, asked for
                yield "plain\ntext"
            finally:
                seen["closed"].append("sync")

        return event_stream(source())

    @app.get("/async")
    async def async_events() -> ctxflask.Response:
        async def source() -> t.AsyncIterator[t.Any]:
            try:
                yield ServerSentEvent(g.mark, event="mark", id="1")
                await anyio.sleep(0.15)  # idle: heartbeats go out
                yield "plain\ntext"
            finally:
                seen["closed"].append("async")

        return event_stream(source(), heartbeat=0.05)

    return seen


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_stream_of_events(client, sse_app, kind):
    response = client.get(f"/{kind}")
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    text = response.get_data(as_text=True)
    events = [e for e in text.split("\n\n") if e]
    assert events[0] == f"event: mark\nid: 1\ndata: /{kind}"
    assert events[-1] == "data: plain\ndata: text"
    heartbeats = [e for e in events if e.startswith(":")]
    assert 1 <= len(heartbeats) <= (1 if kind == "sync" else 5)
    assert sse_app["closed"] == [kind]
    assert sse_app["teardown"] == [None]


@pytest.fixture(params=["loop", "thread"])
def async_steps(request: pytest.FixtureRequest, app: ctxflask.Flask) -> str:
    app.config["ASYNC_STEPS"] = request.param
    return t.cast(str, request.param)


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_client_leaving_stops_the_stream_and_closes_its_source(
    app, async_steps, kind
):
    seen: list[t.Any] = []

    @app.teardown_request
    def record(exc: BaseException | None) -> None:
        seen.append(("teardown", exc))

    @app.get("/sync")
    def sync_events() -> ctxflask.Response:
        def source() -> t.Iterator[str]:
            try:
                while True:
                    time.sleep(0.01)
                    yield "tick"
            finally:
                seen.append("closed")

        return event_stream(source())

    @app.get("/async")
    async def async_events() -> ctxflask.Response:
        async def source() -> t.AsyncIterator[str]:
            try:
                while True:
                    await anyio.sleep(0.01)
                    yield "tick"
            finally:
                seen.append("closed")

        return event_stream(source(), heartbeat=0.05)

    started = time.monotonic()
    sent = await converse(app, f"/{kind}", leave_after=0.1)
    assert time.monotonic() - started < 1.5
    assert sent[0]["status"] == 200
    assert body_of(sent).startswith(b"data: tick\n\n")
    assert seen == ["closed", ("teardown", None)]
