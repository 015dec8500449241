"""Concurrent requests through the ASGI entry point, as asyncio tasks or trio tasks, never
see each other's request, session, g or context variables: DESIGN.md section 4."""

from __future__ import annotations

import asyncio
import contextvars
import random
import time

import anyio
import anyio.lowlevel
import pytest

from ctxflask import Flask
from ctxflask import g
from ctxflask import request
from ctxflask import session
from ctxflask.globals import _cv_app
from ctxflask.globals import _cv_request
from ctxflask.testing import asgi_client

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")


def _seen() -> tuple[str, str, str, str]:
    return (request.args["id"], g.id, session["id"], request_id.get())


async def _async_pause() -> None:
    await anyio.sleep(random.choice((0, 0, 0.0005, 0.001)))


def _sync_pause() -> None:
    time.sleep(random.choice((0, 0.0002, 0.0005)))


def mixed_app(log: dict[str, list[tuple[str, ...]]], mode: str = "loop") -> Flask:
    """Hooks and views of both kinds; which one runs depends on the request's id, so
    concurrent requests mix them. Each step records what it sees of the four stores."""
    app = Flask(__name__)
    app.secret_key = "isolation"
    app.config["ASYNC_STEPS"] = mode

    def record(step: str) -> None:
        log.setdefault(request.args["id"], []).append((step, *_seen()))

    def begin() -> None:
        rid = request.args["id"]
        g.id = rid
        session["id"] = rid
        request_id.set(rid)
        record("before")

    @app.before_request
    async def before_async():
        if request.args["hooks"] == "async":
            await _async_pause()
            begin()

    @app.before_request
    def before_sync():
        if request.args["hooks"] == "sync":
            _sync_pause()
            begin()

    @app.get("/sync")
    def sync_view():
        _sync_pause()
        record("view")
        return request.args["id"]

    @app.get("/async")
    async def async_view():
        await _async_pause()
        record("view")
        return request.args["id"]

    @app.get("/stream")
    async def async_stream():
        record("view")

        async def body():
            for _ in range(3):
                await _async_pause()
                record("body")
                yield request.args["id"]

        return body()

    @app.get("/sync-stream")
    def sync_stream():
        record("view")

        def body():
            for _ in range(2):
                _sync_pause()
                record("body")
                yield request.args["id"]

        return body()

    @app.after_request
    async def after_async(response):
        if request.args["hooks"] == "async":
            await _async_pause()
            record("after")
        return response

    @app.after_request
    def after_sync(response):
        if request.args["hooks"] == "sync":
            record("after")
        return response

    @app.teardown_request
    async def teardown_async(exc):
        await _async_pause()
        record("teardown")

    @app.teardown_request
    def teardown_sync(exc):
        record("teardown")

    return app


VIEWS = {"/sync": 1, "/async": 1, "/stream": 3, "/sync-stream": 2}


def _check(log, bodies, n):
    mismatches = []
    for rid, (path, body) in bodies.items():
        repeats = VIEWS[path]
        if body != rid * repeats:
            mismatches.append((rid, "body", body))
        entries = log.get(rid, [])
        steps = [step for step, *_ in entries]
        expected = [
            "before",
            "view",
            "after",
            *["body"] * (repeats if "stream" in path else 0),
        ]
        expected += ["teardown", "teardown"]
        if steps != expected:
            mismatches.append((rid, "steps", steps))
        mismatches.extend(
            (rid, step, seen) for step, *seen in entries if seen != [rid] * 4
        )
    assert len(bodies) == n
    assert mismatches == []
    assert _cv_app.get(None) is None
    assert _cv_request.get(None) is None


def _requests(n):
    paths = list(VIEWS)
    return [
        (f"r{i}", paths[i % len(paths)], "async" if (i // len(paths)) % 2 else "sync")
        for i in range(n)
    ]


MODES = ["loop", "thread"]  # ASYNC_STEPS: async steps on the server's loop, in threads


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", MODES)
async def test_a_thousand_gathered_requests_each_see_only_their_own(mode):
    log: dict[str, list[tuple[str, ...]]] = {}
    app = mixed_app(log, mode)
    bodies: dict[str, tuple[str, str]] = {}

    async with asgi_client(app) as client:

        async def one(rid: str, path: str, hooks: str) -> None:
            response = await client.get(path, params={"id": rid, "hooks": hooks})
            assert response.status_code == 200
            bodies[rid] = (path, response.text)

        await asyncio.gather(*(one(*r) for r in _requests(1000)))

    _check(log, bodies, 1000)


@pytest.fixture
def anyio_backend():
    return "trio"


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_concurrent_trio_tasks_each_see_only_their_own(mode):
    log: dict[str, list[tuple[str, ...]]] = {}
    app = mixed_app(log, mode)
    bodies: dict[str, tuple[str, str]] = {}

    async with asgi_client(app) as client:

        async def one(rid: str, path: str, hooks: str) -> None:
            response = await client.get(path, params={"id": rid, "hooks": hooks})
            bodies[rid] = (path, response.text)

        async with anyio.create_task_group() as tg:
            for r in _requests(400):
                tg.start_soon(one, *r)

    _check(log, bodies, 400)


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.anyio
async def test_async_code_called_from_a_sync_view_runs_on_the_servers_loop(
    anyio_backend,
):
    """Under ASGI a sync view runs in a worker thread; async code it calls through the
    bridge (``ensure_sync``, async template context processors, signal receivers) runs
    on the server's event loop, where the loop's resources live."""
    import threading

    app = Flask(__name__)
    loop_thread = threading.get_ident()

    async def where() -> str:
        await (
            anyio.lowlevel.checkpoint()
        )  # trio-safe: it runs on the server's loop, not another one
        return str(threading.get_ident())

    @app.get("/")
    def view():
        return f"{threading.get_ident()} {app.ensure_sync(where)()}"

    async with asgi_client(app) as client:
        view_thread, async_thread = (await client.get("/")).text.split()
    assert view_thread != str(loop_thread)
    assert async_thread == str(loop_thread)
