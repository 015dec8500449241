"""Streamed bodies run inside the request's contexts until their last chunk, and teardown
runs exactly once, after it: DESIGN.md section 4.3."""

from __future__ import annotations

import contextvars
import threading

import anyio
import anyio.lowlevel
import pytest
from werkzeug.test import EnvironBuilder

from ctxflask import g
from ctxflask import request
from ctxflask import session
from ctxflask import stream_with_context
from ctxflask.globals import _cv_app
from ctxflask.globals import _cv_request
from tests.support import variant

marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="unset")


def sync_body(events):
    def body():
        for i in range(3):
            events.append(f"chunk {i}")
            yield f"{request.path}|{g.value}|{session['value']}|{marker.get()}|{i}\n"

    return body()


def async_body(events):
    async def body():
        for i in range(3):
            await anyio.lowlevel.checkpoint()
            events.append(f"chunk {i}")
            yield f"{request.path}|{g.value}|{session['value']}|{marker.get()}|{i}\n"

    return body()


BODIES = {"sync generator": sync_body, "async generator": async_body}


@pytest.fixture(params=sorted(BODIES))
def body_kind(request):
    return request.param


@pytest.fixture
def stream_app(app, kind, body_kind):
    events: list[str] = []
    app.config["events"] = events

    @app.before_request
    @variant(kind)
    def before():
        g.value = "g"
        session["value"] = "s"
        marker.set("m")

    @app.get("/stream")
    @variant(kind)
    def stream():
        return BODIES[body_kind](events)

    @app.teardown_request
    @variant(kind)
    def teardown(exc):
        events.append(f"teardown {type(exc).__name__ if exc else None}")

    return app


def test_streamed_body_sees_the_requests_contexts(stream_app, client):
    response = client.get("/stream", buffered=True)
    assert response.status_code == 200
    assert response.text == "".join(f"/stream|g|s|m|{i}\n" for i in range(3))


def test_teardown_runs_once_after_the_last_chunk(stream_app, client):
    client.get("/stream", buffered=True)
    assert stream_app.config["events"] == [
        "chunk 0",
        "chunk 1",
        "chunk 2",
        "teardown None",
    ]


def _wsgi_call(app, method="GET", path="/stream"):
    environ = EnvironBuilder(path=path, method=method).get_environ()
    started = []
    body = app(environ, lambda status, headers, exc_info=None: started.append(status))
    return started, body


def test_wsgi_client_leaving_early_closes_the_body_and_tears_down_once(stream_app):
    """WSGI-specific: the server closes the iterable after a partial read."""
    events = stream_app.config["events"]
    started, body = _wsgi_call(stream_app)
    assert started == ["200 OK"]
    first = next(iter(body))
    assert first == b"/stream|g|s|m|0\n"
    assert events == ["chunk 0"]
    body.close()
    body.close()  # a second close changes nothing
    assert events == ["chunk 0", "teardown None"]
    assert _cv_app.get(None) is None
    assert _cv_request.get(None) is None


def test_wsgi_head_request_never_runs_the_generator(stream_app):
    """WSGI-specific: HEAD answers headers only; the body is closed unrun."""
    started, body = _wsgi_call(stream_app, method="HEAD")
    assert started == ["200 OK"]
    assert list(body) == []
    assert stream_app.config["events"] == ["teardown None"]


def test_an_error_mid_stream_reaches_teardown_once(app, kind, body_kind):
    events = []

    def failing_sync():
        yield "first"
        raise ValueError("mid-stream")

    async def failing_async():
        yield "first"
        raise ValueError("mid-stream")

    @app.get("/stream")
    def stream():
        return failing_sync() if body_kind == "sync generator" else failing_async()

    @app.teardown_request
    @variant(kind)
    def teardown(exc):
        events.append(exc)

    _started, body = _wsgi_call(app)
    chunks = iter(body)
    assert next(chunks) == b"first"
    with pytest.raises(ValueError, match="mid-stream"):
        next(chunks)
    assert events == []
    body.close()
    assert len(events) == 1
    assert isinstance(events[0], ValueError)


def test_stream_with_context_is_accepted_inside_the_request(app, client):
    @app.get("/")
    def index():
        @stream_with_context
        def body():
            yield request.args["name"]

        return body()

    assert client.get("/?name=kept", buffered=True).text == "kept"


def test_stream_with_context_runs_a_generator_elsewhere_with_the_request(app, client):
    results = []

    @app.get("/")
    def index():
        def body():
            yield request.args["name"]
            yield g.value

        g.value = "from g"
        wrapped = stream_with_context(body())
        # Iterated on another thread after the view returned: its own copies of the
        # request's contexts are pushed around each step, and popped at the end.
        thread = threading.Thread(target=lambda: results.append(list(wrapped)))
        thread.start()
        thread.join()
        return "ok"

    assert client.get("/?name=alice").text == "ok"
    assert results == [["alice", "from g"]]


def test_stream_with_context_outside_a_request_raises(app):
    def body():
        yield "x"

    with pytest.raises(RuntimeError, match="while a request is handled"):
        stream_with_context(body())
