"""Where async steps run under ASGI: on the server's loop (``ASYNC_STEPS = "loop"``, the
default), or in worker threads, each request's on one thread's own loop (``"thread"``, and
``@in_thread`` for one callable). DESIGN.md section 9. ASGI-specific unless a test says
otherwise: under WSGI every async step runs on the server thread's own loop already.
Async tests run on asyncio and trio."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time

import anyio
import anyio.lowlevel
import pytest

import ctxflask
from ctxflask import g
from ctxflask import in_thread
from ctxflask import request
from ctxflask import session
from ctxflask import stream_request_body
from ctxflask import websocket
from ctxflask.testing import asgi_client
from ctxflask.testing import websocket_connect

step_var: contextvars.ContextVar[str] = contextvars.ContextVar("step_var", default="-")


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def thread_app(app: ctxflask.Flask) -> ctxflask.Flask:
    app.config["ASYNC_STEPS"] = "thread"
    return app


def _where() -> tuple[int, int | None]:
    """This thread, and the asyncio loop running on it (None under trio's own thread)."""
    loop = asyncio._get_running_loop()
    return threading.get_ident(), None if loop is None else id(loop)


@pytest.mark.anyio
async def test_thread_mode_runs_every_async_step_of_a_request_on_one_worker_loop(
    thread_app,
):
    server = threading.get_ident()
    seen = {}

    @thread_app.before_request
    async def before():
        await anyio.lowlevel.checkpoint()
        seen["before"] = _where()
        g.lock = asyncio.Lock()  # bound to the loop it is first used on
        async with g.lock:
            pass

    @thread_app.get("/")
    async def index():
        seen["view"] = _where()
        async with g.lock:  # the same loop as before_request's: no error
            await asyncio.sleep(0)
        return "ok"

    @thread_app.teardown_request
    async def teardown(exc):
        seen["teardown"] = _where()

    async with asgi_client(thread_app) as client:
        response = await client.get("/")
    assert response.text == "ok"
    assert len(set(seen.values())) == 1, seen
    thread, loop = seen["view"]
    assert thread != server
    assert loop is not None


@pytest.mark.anyio
async def test_loop_mode_runs_an_in_thread_callable_on_a_worker_loop_only(app):
    server = threading.get_ident()
    seen = {}

    @app.before_request
    async def before():
        seen["before"] = threading.get_ident()

    @app.get("/")
    @in_thread
    async def index():
        seen["view"] = _where()
        await asyncio.sleep(0)
        return "ok"

    async with asgi_client(app) as client:
        assert (await client.get("/")).text == "ok"
    assert seen["before"] == server
    assert seen["view"][0] != server
    assert seen["view"][1] is not None


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["loop", "thread"])
async def test_a_worker_loop_steps_changes_reach_the_later_steps(app, mode, kind):
    # g, the session and a ContextVar set in a step on a worker's loop are seen by the
    # steps after it, sync or async, as in "loop" mode.
    app.config["ASYNC_STEPS"] = mode

    @app.before_request
    @in_thread
    async def before():
        await asyncio.sleep(0)
        g.who = request.args["who"]
        session["who"] = request.args["who"]
        step_var.set(f"set {request.args['who']}")

    async def view_async():
        await (
            anyio.lowlevel.checkpoint()
        )  # on the server's loop in "loop" mode: trio too
        return f"{g.who} {session['who']} {step_var.get()}"

    def view_sync():
        return f"{g.who} {session['who']} {step_var.get()}"

    app.get("/")(view_async if kind == "async" else view_sync)

    @app.after_request
    def after(response):
        response.headers["X-Var"] = step_var.get()
        return response

    async with asgi_client(app) as client:
        response = await client.get("/", params={"who": "ann"})
    assert response.text == "ann ann set ann"
    assert response.headers["x-var"] == "set ann"
    assert "session" in response.headers["set-cookie"]


@pytest.mark.anyio
async def test_a_blocking_async_view_holds_up_only_its_own_request_in_thread_mode(
    thread_app,
):
    @thread_app.get("/block")
    async def block():
        time.sleep(0.6)  # noqa: ASYNC251 - the blocking call (a database driver, say)
        return "done"

    @thread_app.get("/ping")
    async def ping():
        return "pong"

    async with asgi_client(thread_app) as client:
        timings = {}

        async def timed(path: str) -> None:
            started = time.monotonic()
            assert (await client.get(path)).status_code == 200
            timings[path] = time.monotonic() - started

        async with anyio.create_task_group() as tg:
            tg.start_soon(timed, "/block")
            await anyio.sleep(0.05)  # the blocking view is running
            tg.start_soon(timed, "/ping")
    assert timings["/block"] >= 0.6
    assert timings["/ping"] < 0.3


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["loop", "thread"])
async def test_ensure_sync_from_a_sync_step_runs_where_the_mode_says(app, mode):
    # "loop": on the server's loop, where loop-bound resources live; "thread": on the
    # worker thread's own loop, so a stalled server loop cannot hold the worker.
    app.config["ASYNC_STEPS"] = mode
    server = threading.get_ident()
    seen = {}

    async def helper():
        seen["helper"] = threading.get_ident()
        return "helped"

    @app.get("/")
    def index():
        seen["view"] = threading.get_ident()
        return ctxflask.current_app.ensure_sync(helper)()

    async with asgi_client(app) as client:
        assert (await client.get("/")).text == "helped"
    assert seen["view"] != server
    expected = server if mode == "loop" else seen["view"]
    assert seen["helper"] == expected


@pytest.mark.anyio
async def test_thread_mode_streams_an_async_generator_from_one_worker_loop(thread_app):
    server = threading.get_ident()
    places = []

    @thread_app.get("/")
    async def index():
        g.lock = asyncio.Lock()

        async def chunks():
            for i in range(4):
                async with g.lock:  # loop-bound: every chunk on the same loop
                    places.append(_where())
                    await asyncio.sleep(0)
                yield f"{i}{request.args['who']}"

        return chunks()

    async with asgi_client(thread_app) as client:
        response = await client.get("/", params={"who": "x"})
    assert response.text == "0x1x2x3x"
    assert len(set(places)) == 1
    assert places[0][0] != server


@pytest.mark.anyio
async def test_thread_mode_reads_a_streamed_request_body(thread_app):
    @thread_app.post("/")
    @stream_request_body
    async def upload():
        total = 0
        async for chunk in request.iter_body():
            total += len(chunk)
        return str(total)

    async def body():
        for _ in range(8):
            yield b"x" * 1000
            await anyio.lowlevel.checkpoint()

    async with asgi_client(thread_app) as client:
        response = await client.post("/", content=body())
    assert response.text == "8000"


@pytest.mark.anyio
async def test_thread_mode_reads_the_body_with_sync_accessors(thread_app):
    @thread_app.post("/")
    async def echo():
        return {"got": request.get_json(), "form": request.args.get("x")}

    async with asgi_client(thread_app) as client:
        response = await client.post("/?x=1", json={"a": [1, 2]})
    assert response.json() == {"got": {"a": [1, 2]}, "form": "1"}


@pytest.mark.anyio
async def test_thread_mode_websocket_handler_sends_and_receives_at_once(thread_app):
    @thread_app.websocket("/ws")
    async def chat():
        await websocket.accept()
        received = []

        async def ticker():
            for i in range(3):
                await websocket.send(f"tick {i}")
                await asyncio.sleep(0.01)

        async def listener():
            received.append(await websocket.receive())

        await asyncio.gather(ticker(), listener())
        await websocket.send(f"got {received[0]}")

    async with websocket_connect(thread_app, "/ws") as ws:
        await ws.send("hello")
        messages = [await ws.receive() for _ in range(4)]
    assert messages == ["tick 0", "tick 1", "tick 2", "got hello"]


@pytest.mark.anyio
async def test_thread_mode_runs_background_tasks(thread_app):
    done = anyio.Event()
    seen = []

    @thread_app.get("/")
    async def index():
        g.who = "bg"

        async def task():
            await asyncio.sleep(0)
            seen.append((g.who, threading.get_ident()))
            done.set()

        ctxflask.current_app.add_background_task(task)
        return "ok"

    async with asgi_client(thread_app) as client:
        assert (await client.get("/")).text == "ok"
    with anyio.fail_after(5):
        await done.wait()
    assert seen[0][0] == "bg"


@pytest.mark.anyio
async def test_a_bad_async_steps_setting_names_the_choices(app):
    app.config["ASYNC_STEPS"] = "threads"
    app.get("/")(lambda: "ok")
    with pytest.raises(ValueError, match="ASYNC_STEPS must be 'loop' or 'thread'"):
        async with asgi_client(app) as client:
            await client.get("/")


def test_in_thread_refuses_a_sync_function():
    def view():
        return "sync"

    with pytest.raises(TypeError, match="@in_thread marks async callables"):
        in_thread(view)


# -- the loop watchdog -------------------------------------------------------------------------


@pytest.fixture
def watchdog_stopped():
    from ctxflask.bridge import watchdog

    yield
    watchdog.stop()


def _line_of(function, text: str) -> int:
    import inspect

    lines, first = inspect.getsourcelines(function)
    return first + next(i for i, line in enumerate(lines) if text in line)


@pytest.mark.anyio
async def test_the_watchdog_names_a_blocking_view_and_its_line(
    app, caplog, watchdog_stopped
):
    app.config["LOOP_BLOCK_WARNING"] = 0.1

    @app.get("/")
    async def index():
        time.sleep(0.3)  # noqa: ASYNC251 - the blocking call the watchdog must name
        return "slept"

    with caplog.at_level("WARNING", logger="ctxflask.watchdog"):
        async with asgi_client(app) as client:
            assert (await client.get("/")).text == "slept"
        deadline = time.monotonic() + 1
        while not caplog.records and time.monotonic() < deadline:  # noqa: ASYNC110 - the watchdog thread writes the log
            await anyio.sleep(0.01)
    (record,) = caplog.records
    where = f"{__file__}:{_line_of(index, 'time.sleep(0.3)')}"
    assert record.ctxflask_step == "view 'index'"
    assert record.ctxflask_frame.startswith(where)
    message = record.getMessage()
    assert "view 'index'" in message
    assert where in message
    assert 'ASYNC_STEPS = "thread"' in message


@pytest.mark.anyio
async def test_the_watchdog_names_a_blocking_hook(app, caplog, watchdog_stopped):
    app.config["LOOP_BLOCK_WARNING"] = 0.1

    @app.before_request
    async def load_user():
        time.sleep(0.3)  # noqa: ASYNC251 - the blocking call the watchdog must name

    app.get("/")(lambda: "ok")
    with caplog.at_level("WARNING", logger="ctxflask.watchdog"):
        async with asgi_client(app) as client:
            assert (await client.get("/")).text == "ok"
        deadline = time.monotonic() + 1
        while not caplog.records and time.monotonic() < deadline:  # noqa: ASYNC110 - the watchdog thread writes the log
            await anyio.sleep(0.01)
    (record,) = caplog.records
    assert "before_request hook" in record.ctxflask_step
    assert "load_user" in record.ctxflask_step


@pytest.mark.anyio
@pytest.mark.parametrize(
    "config",
    [
        pytest.param({"ASYNC_STEPS": "thread"}, id="thread-mode"),
        pytest.param({"LOOP_BLOCK_WARNING": None}, id="turned-off"),
    ],
)
async def test_the_watchdog_is_quiet_in_thread_mode_and_when_turned_off(
    app, caplog, watchdog_stopped, config
):
    # A loop is watched once an app served on it asks for it: each case on its own loop.
    app.config["LOOP_BLOCK_WARNING"] = 0.1
    app.config.update(config)

    @app.get("/")
    async def index():
        time.sleep(0.3)  # noqa: ASYNC251 - off the loop, or the watchdog is off
        return "slept"

    with caplog.at_level("WARNING", logger="ctxflask.watchdog"):
        async with asgi_client(app) as client:
            assert (await client.get("/")).text == "slept"
        await anyio.sleep(0.2)
    assert caplog.records == []


@pytest.mark.anyio
async def test_a_bad_loop_block_warning_names_the_choices(app):
    app.config["LOOP_BLOCK_WARNING"] = "soon"
    app.get("/")(lambda: "ok")
    with pytest.raises(ValueError, match="LOOP_BLOCK_WARNING must be a number"):
        async with asgi_client(app) as client:
            await client.get("/")
