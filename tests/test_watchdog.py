"""The loop watchdog: a blocking call in async code on the server's event loop gets one
warning that names the step, the blocking line and the fix."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import gc
import inspect
import logging
import queue
import sysconfig
import threading
import time
import weakref

import anyio
import anyio.lowlevel
import pytest
import trio

from ctxflask.bridge import watchdog
from ctxflask.bridge.contexts import pinned


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param


@pytest.fixture(autouse=True)
def _watchdog(caplog):
    caplog.set_level(logging.WARNING, logger="ctxflask.watchdog")
    yield
    watchdog.stop()
    assert not _watchdog_threads()


def _watchdog_threads():
    return [t for t in threading.enumerate() if t.name == "ctxflask-watchdog"]


def _warnings(caplog):
    return [r for r in caplog.records if r.name == "ctxflask.watchdog"]


def _line(fn, text):
    """The line number of the first line of ``fn`` that contains ``text``."""
    lines, first = inspect.getsourcelines(fn)
    return first + next(i for i, line in enumerate(lines) if text in line)


def _unnamed(fn):
    return f"{fn.__qualname__} ({__file__}:{inspect.getsourcelines(fn)[1]})"


async def serve(view):
    """Await an async view from a ctxflask frame, as the ASGI driver does."""
    await pinned(view(), contextvars.copy_context())


async def index():
    time.sleep(0.3)  # noqa: ASYNC251 - the blocking call under test


async def elsewhere():
    time.sleep(0.2)  # noqa: ASYNC251 - the blocking call under test


async def fetch():
    queue.Queue().get(timeout=0.2)


def logged(fn):
    @functools.wraps(fn)
    async def wrapper():
        return await fn()

    return wrapper


@logged
async def decorated():
    time.sleep(0.2)  # noqa: ASYNC251 - the blocking call under test


def name_views(code):
    names = {index: "index", decorated.__wrapped__: "decorated"}
    return next((f"view {n!r}" for f, n in names.items() if f.__code__ is code), None)


@pytest.mark.anyio
@pytest.mark.parametrize("name_step", [name_views, None], ids=["named", "unnamed"])
async def test_a_blocking_view_gets_one_warning_naming_it_and_its_line(
    caplog, name_step
):
    watchdog.watch_loop(0.1, name_step)
    started = time.time()
    await serve(index)
    await anyio.sleep(0.3)  # the same episode does not warn twice

    [record] = _warnings(caplog)
    assert record.created - started < 1.0
    step = "view 'index'" if name_step else _unnamed(index)
    assert record.ctxflask_step == step
    assert record.ctxflask_frame == f"{__file__}:{_line(index, 'sleep')} in index"
    assert 0.1 < record.ctxflask_blocked_for < 0.3
    message = record.getMessage()
    assert message.startswith(
        f"The event loop has not run for {record.ctxflask_blocked_for:.2f} s: "
        f"{step} blocks it at {record.ctxflask_frame}. Every request on this loop "
        "waits meanwhile. Fix: "
    )
    assert 'ASYNC_STEPS = "thread"' in message
    assert "@ctxflask.in_thread" in message


@pytest.mark.anyio
async def test_a_block_inside_a_library_shows_the_users_line_too(caplog):
    watchdog.watch_loop(0.05)
    with pytest.raises(queue.Empty):
        await serve(fetch)

    [record] = _warnings(caplog)
    assert record.ctxflask_step == _unnamed(fetch)
    stdlib = sysconfig.get_paths()["stdlib"]
    assert record.ctxflask_frame.startswith(f"{stdlib}/threading.py:")
    assert record.ctxflask_frame.endswith(
        f", called from {__file__}:{_line(fetch, 'get(')} in fetch"
    )


@pytest.mark.anyio
async def test_a_decorated_view_is_named_by_a_resolver_that_knows_it(caplog):
    watchdog.watch_loop(0.05, name_views)
    await serve(decorated)

    [record] = _warnings(caplog)
    assert record.ctxflask_step == "view 'decorated'"


@pytest.mark.anyio
async def test_short_awaits_do_not_warn(caplog):
    watchdog.watch_loop(0.1)
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        await anyio.lowlevel.checkpoint()
    assert _warnings(caplog) == []


@pytest.mark.anyio
async def test_the_same_place_warns_once_a_minute(caplog, monkeypatch):
    monkeypatch.setattr(watchdog, "PER_LOOP_SECONDS", 0.0)
    watchdog.watch_loop(0.05)
    await serve(index)
    await anyio.sleep(0.05)
    await serve(index)
    await anyio.sleep(0.05)
    assert len(_warnings(caplog)) == 1

    await serve(elsewhere)
    assert [r.ctxflask_step for r in _warnings(caplog)] == [
        _unnamed(index),
        _unnamed(elsewhere),
    ]


@pytest.mark.anyio
async def test_a_loop_warns_once_in_five_seconds(caplog):
    watchdog.watch_loop(0.05)
    await serve(index)
    await anyio.sleep(0.05)
    await serve(elsewhere)
    assert [r.ctxflask_step for r in _warnings(caplog)] == [_unnamed(index)]


@pytest.mark.anyio
async def test_the_smallest_threshold_wins_and_each_resolver_is_tried(caplog):
    watchdog.watch_loop(5.0, lambda code: None)
    watchdog.watch_loop(0.1, name_views)
    watchdog.watch_loop(1.0)
    assert watchdog.watched_loops() == 1
    await anyio.sleep(0.3)  # the 5 s heartbeat was re-armed: no late beat to report
    await serve(index)

    [record] = _warnings(caplog)
    assert record.ctxflask_step == "view 'index'"


@pytest.mark.anyio
async def test_no_threshold_installs_nothing():
    watchdog.watch_loop(None, name_views)
    assert watchdog.watched_loops() == 0
    assert not _watchdog_threads()


async def _watch(threshold):
    watchdog.watch_loop(threshold)


def _wait_for(condition):
    deadline = time.monotonic() + 2.0
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_closed_loop_is_dropped_and_the_thread_ends(caplog):
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(_watch(0.05))
        assert watchdog.watched_loops() == 1
        assert len(_watchdog_threads()) == 1
        time.sleep(0.2)  # not running is idle, not blocked
    finally:
        loop.close()
    _wait_for(lambda: watchdog.watched_loops() == 0 and not _watchdog_threads())
    dead = weakref.ref(loop)
    del loop
    gc.collect()
    assert dead() is None  # not kept alive
    assert _warnings(caplog) == []


def test_a_trio_run_is_dropped_when_it_ends():
    trio.run(_watch, 0.05)
    _wait_for(lambda: watchdog.watched_loops() == 0 and not _watchdog_threads())


def test_another_loop_on_the_same_thread_is_watched_too():
    first, second = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        first.run_until_complete(_watch(0.05))
        second.run_until_complete(_watch(0.05))
        second.run_until_complete(_watch(0.05))
        assert watchdog.watched_loops() == 2
    finally:
        first.close()
        second.close()


@pytest.mark.anyio
async def test_an_app_served_on_a_watched_loop_is_not_kept_alive_by_the_watchdog():
    # The watchdog keeps the step names of every app served on a loop it watches, for
    # as long as the loop runs: they must not hold the app.
    import ctxflask
    from ctxflask.testing import asgi_client

    app = ctxflask.Flask("short_lived")
    app.config["LOOP_BLOCK_WARNING"] = 0.5

    @app.get("/")
    async def index():
        return "served"

    async with asgi_client(app) as client:
        assert (await client.get("/")).text == "served"
    assert watchdog.watched_loops() >= 1
    gone = weakref.ref(app)
    del app, index, client
    gc.collect()
    assert gone() is None
