"""``app.add_background_task``: work after the response is sent, with copies of the
request's contexts: DESIGN.md section 4.5."""

from __future__ import annotations

import logging
import threading

import anyio
import pytest
from werkzeug.test import EnvironBuilder

from ctxflask import current_app
from ctxflask import g
from ctxflask import request
from ctxflask import session
from tests.support import variant


def test_task_runs_after_the_response_with_the_request_contexts(app, client, kind):
    events = []

    @app.get("/")
    def index():
        g.user = "ann"

        @variant(kind)
        def task(greeting):
            events.append(
                (
                    "task",
                    greeting,
                    request.path,
                    request.args["q"],
                    g.user,
                    current_app.name,
                )
            )

        app.add_background_task(task, "hi")
        events.append(("view",))
        return "ok"

    @app.teardown_request
    def teardown(exc):
        events.append(("teardown",))

    assert client.get("/?q=1").text == "ok"
    assert events == [
        ("view",),
        ("teardown",),
        ("task", "hi", "/", "1", "ann", app.name),
    ]


def test_tasks_run_in_order_and_a_failure_is_logged_not_sent(app, client, kind, caplog):
    ran = []

    @variant(kind)
    def failing():
        ran.append("failing")
        raise ValueError("task failed")

    @variant(kind)
    def next_one():
        ran.append("next")

    @app.get("/")
    def index():
        app.add_background_task(failing)
        app.add_background_task(next_one)
        return "fine"

    with caplog.at_level(logging.ERROR):
        response = client.get("/")
    assert response.status_code == 200
    assert response.text == "fine"
    assert ran == ["failing", "next"]
    assert "Background task" in caplog.text
    assert "task failed" in caplog.text


def test_the_session_is_not_saved_after_the_response(app, client, kind):
    @app.get("/")
    def index():
        session["seen"] = "in view"

        @variant(kind)
        def task():
            session["seen"] = "in task"

        app.add_background_task(task)
        return "ok"

    @app.get("/read")
    def read():
        return session.get("seen", "none")

    client.get("/")
    assert client.get("/read").text == "in view"


def test_a_task_of_a_streamed_response_runs_after_its_last_chunk(app, client, kind):
    events = []

    @app.get("/")
    def index():
        def body():
            for i in range(2):
                events.append(f"chunk {i}")
                yield str(i)

        app.add_background_task(variant(kind)(lambda: events.append("task")))
        return body()

    assert client.get("/", buffered=True).text == "01"
    assert events == ["chunk 0", "chunk 1", "task"]


def test_outside_a_request_it_raises(app, app_ctx):
    with pytest.raises(RuntimeError, match="while a request is handled"):
        app.add_background_task(print)


def test_wsgi_task_runs_when_the_server_closes_the_response(app):
    """WSGI-specific: the server closes the body after sending it."""
    ran = threading.Event()

    @app.get("/")
    def index():
        app.add_background_task(ran.set)
        return "ok"

    environ = EnvironBuilder("/").get_environ()
    body = app(environ, lambda status, headers, exc_info=None: None)
    assert b"".join(body) == b"ok"
    assert not ran.is_set()
    body.close()
    assert ran.is_set()


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param


async def _lifespan(app, inbox, outbox):
    await app.asgi(
        {"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.receive, outbox.send
    )


@pytest.mark.anyio
@pytest.mark.parametrize("finishes", [True, False], ids=["finishes", "hangs"])
async def test_asgi_lifespan_shutdown_waits_for_running_tasks(app, finishes, caplog):
    """ASGI-specific: shutdown waits for background tasks still running, up to
    BACKGROUND_TASK_SHUTDOWN_TIMEOUT, then goes on (and says so)."""
    app.config["BACKGROUND_TASK_SHUTDOWN_TIMEOUT"] = 0.2
    started = anyio.Event()
    release = anyio.Event()
    log = []

    @app.get("/")
    def index():
        async def task():
            started.set()
            if finishes:
                await anyio.sleep(0.05)
            else:
                await release.wait()
            log.append("task done")

        app.add_background_task(task)
        return "ok"

    @app.after_serving
    def stopped():
        log.append("after_serving")

    to_app, inbox = anyio.create_memory_object_stream(10)
    outbox, from_app = anyio.create_memory_object_stream(10)
    sent = []

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"test")],
        "server": ("test", 80),
        "client": ("127.0.0.1", 1),
    }
    with caplog.at_level(logging.WARNING):
        async with to_app, inbox, outbox, from_app, anyio.create_task_group() as tg:
            tg.start_soon(_lifespan, app, inbox, outbox)
            await to_app.send({"type": "lifespan.startup"})
            assert (await from_app.receive())["type"] == "lifespan.startup.complete"
            tg.start_soon(app.asgi, scope, receive, send)
            await started.wait()
            await to_app.send({"type": "lifespan.shutdown"})
            assert (await from_app.receive())["type"] == "lifespan.shutdown.complete"
            release.set()
    assert sent[0]["status"] == 200
    if finishes:
        assert log[:2] == ["task done", "after_serving"]
    else:
        assert log[0] == "after_serving"
        assert "background task(s) still running" in caplog.text
