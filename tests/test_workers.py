"""Worker threads for sync code under an event loop (ASGI only): ctxflask's own pool under
asyncio, anyio's threads under trio, with the same guarantees."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import Callable

import anyio
import anyio.from_thread
import anyio.lowlevel
import pytest

import ctxflask
from ctxflask.bridge import workers
from ctxflask.testing import asgi_client


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.mark.anyio
async def test_a_job_runs_in_a_worker_thread_and_returns_or_raises():
    pool = workers.pool_for(object(), 4)
    loop_thread = threading.get_ident()

    assert await pool.run(threading.get_ident) != loop_thread
    assert await pool.run(divmod, 7, 2) == (3, 1)
    with pytest.raises(ZeroDivisionError):
        await pool.run(divmod, 1, 0)
    # A future cannot carry StopIteration: it arrives as a RuntimeError caused by it.
    with pytest.raises(RuntimeError) as info:
        await pool.run(next, iter(()))
    assert isinstance(info.value.__cause__ or info.value.__context__, StopIteration)


@pytest.mark.anyio
async def test_a_pool_is_one_per_key_and_loop():
    key = object()
    assert workers.pool_for(key, 3) is workers.pool_for(key, 3)
    assert workers.pool_for(key, 3) is not workers.pool_for(object(), 3)
    assert workers.pool_for(key, 3).size == 3


@pytest.mark.anyio
async def test_a_pool_runs_at_most_size_jobs_at_once_and_all_of_them():
    pool = workers.pool_for(object(), 3)
    running = peak = done = 0
    lock = threading.Lock()

    def job(i: int) -> int:
        nonlocal running, peak, done
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.005)
        with lock:
            running -= 1
            done += 1
        return i

    results: list[int] = []

    async def one(i: int) -> None:
        results.append(await pool.run(job, i))

    async with anyio.create_task_group() as tg:
        for i in range(30):
            tg.start_soon(one, i)
    assert peak == 3
    assert done == 30
    assert sorted(results) == list(range(30))


def _slow_job() -> tuple[threading.Event, list[bool], Callable[[], None]]:
    """A job of 0.1 s: the event is set as it starts, the list has True once it ended."""
    started = threading.Event()
    finished: list[bool] = []

    def job() -> None:
        started.set()
        time.sleep(0.1)
        finished.append(True)

    return started, finished, job


@pytest.mark.anyio
async def test_a_cancelled_task_waits_for_its_job_then_is_cancelled():
    """The job runs a request's own steps: it is never abandoned half-way."""
    pool = workers.pool_for(object(), 2)
    started, finished, job = _slow_job()

    with anyio.move_on_after(0.02) as scope:
        await pool.run(job)
        # The cancellation comes at the latest here (asyncio: already at the return).
        await anyio.lowlevel.checkpoint()
    assert scope.cancelled_caught
    assert started.is_set()
    assert finished == [True]  # the job ended before the cancellation came through


@pytest.mark.asyncio
async def test_a_task_cancelled_directly_waits_for_its_job_too():
    """asyncio only: ``task.cancel()``, as a server does, not a cancel scope."""
    await _cancel_a_task_while_its_job_runs()


async def _cancel_a_task_while_its_job_runs() -> None:
    pool = workers.pool_for(object(), 2)
    started, finished, job = _slow_job()
    task = asyncio.ensure_future(pool.run(job))
    await asyncio.to_thread(started.wait)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert finished == [True]
    # The pool is whole again: both of its threads serve.
    assert await asyncio.gather(pool.run(int, "1"), pool.run(int, "2")) == [1, 2]


@pytest.mark.anyio
async def test_code_in_a_worker_calls_back_into_the_loop_with_anyio():
    pool = workers.pool_for(object(), 2)
    loop_thread = threading.get_ident()

    async def on_loop(x: int) -> tuple[int, int]:
        await anyio.lowlevel.checkpoint()
        return x * 2, threading.get_ident()

    def job() -> tuple[int, int]:
        assert workers.in_worker_thread()
        return anyio.from_thread.run(on_loop, 21)

    assert await pool.run(job) == (42, loop_thread)
    assert not workers.in_worker_thread()


@pytest.mark.anyio
async def test_a_sync_view_may_call_anyio_from_thread():
    app = ctxflask.Flask(__name__)

    async def fetch(name: str) -> str:
        await anyio.lowlevel.checkpoint()
        return f"fetched {name}"

    @app.get("/<name>")
    def view(name: str) -> str:
        return anyio.from_thread.run(fetch, name)

    async with asgi_client(app) as client:
        response = await client.get("/x")
    assert response.text == "fetched x"


def test_worker_threads_end_with_their_loop():
    """asyncio only: a loop that is gone takes its idle threads with it."""

    def names() -> set[int]:
        return {
            t.ident or 0 for t in threading.enumerate() if t.name == "ctxflask-worker"
        }

    before = names()

    async def use_pool() -> set[int]:
        pool = workers.pool_for(object(), 4)
        await asyncio.gather(*(pool.run(time.sleep, 0.01) for _ in range(4)))
        return names() - before

    started = asyncio.run(use_pool())
    assert started
    gc.collect()
    deadline = time.monotonic() + 5
    while started & names() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not started & names()


def test_a_pool_needs_a_thread():
    async def make() -> None:
        workers.pool_for(object(), 0)

    with pytest.raises(ValueError, match="at least one thread"):
        asyncio.run(make())


def test_the_pool_and_a_sync_view_run_under_uvloop():
    """uvicorn's loop when uvloop is installed: a sync view, a cancelled job and a call
    back into the loop behave as under asyncio's own loop."""
    import uvloop

    app = ctxflask.Flask(__name__)

    @app.get("/<int:n>")
    def square(n: int) -> str:
        return str(anyio.from_thread.run(_double, n) * n // 2)

    async def main() -> None:
        async with asgi_client(app) as client:
            responses = await asyncio.gather(*(client.get(f"/{n}") for n in range(50)))
        assert [r.text for r in responses] == [str(n * n) for n in range(50)]
        await _cancel_a_task_while_its_job_runs()

    uvloop.run(main())


async def _double(n: int) -> int:
    await anyio.lowlevel.checkpoint()
    return 2 * n
