"""What is left when a request ends: tasks its async steps started and did not await,
and streamed bodies nobody finished (DESIGN.md sections 4.4 and 4.5).

- Under ASGI a task keeps running on the server's event loop after the request ended,
  with the request's contexts still readable in it (a copy of its context).
- Under WSGI the thread's event loop runs only during async steps: tasks still pending
  when the request ends are cancelled (their ``finally`` runs) and a warning names them.
  Work meant to outlive the response belongs in ``app.add_background_task``.
- A streamed body that is never iterated, closed early, or dropped and collected (on any
  thread) ends its request once: teardown runs once, and no context stays active.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading

import pytest
from werkzeug.test import EnvironBuilder

from ctxflask import g
from ctxflask import request
from ctxflask.globals import _cv_app
from ctxflask.globals import _cv_request
from ctxflask.testing import asgi_client
from tests.support import variant


@pytest.mark.asyncio
async def test_asgi_task_outlives_its_request_with_its_contexts(app):
    """ASGI-specific: the task goes on after the response, and still reads the request."""
    done = asyncio.Event()
    seen = []

    @app.get("/")
    async def index():
        g.who = request.args["who"]

        async def later():
            await asyncio.sleep(0.01)
            seen.append((request.args["who"], g.who))
            done.set()

        asyncio.get_running_loop().create_task(later())
        return "sent"

    async with asgi_client(app) as client:
        assert (await client.get("/?who=ann")).text == "sent"
        assert seen == []
        await asyncio.wait_for(done.wait(), 5)
    assert seen == [("ann", "ann")]


def test_wsgi_task_left_pending_is_cancelled_when_the_request_ends(app, caplog):
    """WSGI-specific: the task is cancelled with a warning, its ``finally`` runs."""
    events = []

    @app.get("/")
    async def index():
        async def forever():
            try:
                await asyncio.sleep(3600)
            finally:
                events.append("task cleaned up")

        asyncio.get_running_loop().create_task(forever())
        await asyncio.sleep(0)
        return "sent"

    @app.get("/sync")
    def sync_view():
        return "plain"

    client = app.test_client()
    with caplog.at_level(logging.WARNING):
        assert client.get("/").text == "sent"
    assert events == ["task cleaned up"]
    assert "Cancelled 1 task(s) still running when the request ended" in caplog.text

    # A request of sync steps in between does not look at the loop; the next task
    # left behind is cancelled at the end of its own request again.
    assert client.get("/sync").text == "plain"
    assert client.get("/").text == "sent"  # the thread's loop is fine for the next one
    assert events == ["task cleaned up"] * 2


@pytest.fixture
def stream_app(app):
    events = []
    app.config["events"] = events

    @app.get("/stream")
    def stream():
        def body():
            try:
                for i in range(3):
                    yield f"{request.path} {i}\n"
            finally:
                events.append("generator closed")

        return body()

    @app.teardown_request
    def teardown(exc):
        events.append("teardown")

    return app


def _start(app):
    environ = EnvironBuilder("/stream").get_environ()
    return app(environ, lambda status, headers, exc_info=None: None)


def test_wsgi_stream_never_iterated_then_closed_tears_down_once(stream_app):
    body = _start(stream_app)
    body.close()
    # The first chunk was taken before the status went out: the generator is closed
    # at its first yield (its finally runs), then the request tears down, once each.
    assert stream_app.config["events"] == ["generator closed", "teardown"]
    del body
    gc.collect()
    assert stream_app.config["events"] == ["generator closed", "teardown"]


def test_wsgi_stream_dropped_without_close_tears_down_once_when_collected(stream_app):
    body = _start(stream_app)
    next(iter(body))
    assert stream_app.config["events"] == []
    del body
    gc.collect()
    assert stream_app.config["events"] == ["generator closed", "teardown"]
    assert _cv_app.get(None) is None
    assert _cv_request.get(None) is None


def test_wsgi_stream_collected_on_another_thread_tears_down_once(stream_app):
    holder = [_start(stream_app)]
    next(iter(holder[0]))

    def drop():
        holder.clear()
        gc.collect()

    thread = threading.Thread(target=drop)
    thread.start()
    thread.join()
    assert stream_app.config["events"] == ["generator closed", "teardown"]
    assert _cv_app.get(None) is None
    assert _cv_request.get(None) is None


def test_callables_made_per_request_are_not_kept(app, client, kind):
    """The bridge remembers where a function runs without keeping it: a callback made
    for one request (here ``after_this_request``'s) goes with the request."""
    import weakref

    from ctxflask import after_this_request

    made = []

    @app.get("/")
    @variant(kind)
    def index():
        @variant(kind)
        def callback(response):
            response.headers["X-Callback"] = "ran"
            return response

        made.append(weakref.ref(callback))
        after_this_request(callback)
        return "ok"

    for _ in range(20):
        response = client.get("/")
        assert (response.text, response.headers["X-Callback"]) == ("ok", "ran")
    gc.collect()
    assert len(made) == 20
    assert [ref for ref in made if ref() is not None] == []
