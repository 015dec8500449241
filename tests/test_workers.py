"""Worker threads for sync code under an event loop (ASGI only): ctxflask's own pool under
asyncio, anyio's threads under trio, with the same guarantees."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import typing as t
from collections.abc import Callable

import anyio
import anyio.abc
import anyio.from_thread
import anyio.lowlevel
import pytest

import ctxflask
from ctxflask.bridge import pools
from ctxflask.bridge import workers
from ctxflask.testing import asgi_client


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.mark.anyio
async def test_a_job_runs_in_a_worker_thread_and_returns_or_raises():
    pool = pools.pool_for(object(), 4)
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
    assert pools.pool_for(key, 3) is pools.pool_for(key, 3)
    assert pools.pool_for(key, 3) is not pools.pool_for(object(), 3)
    assert pools.pool_for(key, 3).size == 3


@pytest.mark.anyio
async def test_a_pool_runs_at_most_size_jobs_at_once_and_all_of_them():
    pool = pools.pool_for(object(), 3)
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
    pool = pools.pool_for(object(), 2)
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
    pool = pools.pool_for(object(), 2)
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
    pool = pools.pool_for(object(), 2)
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
        pool = pools.pool_for(object(), 4)
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
        pools.pool_for(object(), 0)

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


# -- sessions: all of a caller's jobs on one thread --------------------------------------


def _peak(workers_: workers.Workers, jobs: int = 6) -> Callable[[], t.Awaitable[int]]:
    """How many of ``jobs`` plain jobs of 20 ms ran at once, at most."""

    async def measure() -> int:
        running = peak = 0
        lock = threading.Lock()

        def job() -> None:
            nonlocal running, peak
            with lock:
                running += 1
                peak = max(peak, running)
            time.sleep(0.02)
            with lock:
                running -= 1

        async with anyio.create_task_group() as tg:
            for _ in range(jobs):
                tg.start_soon(workers_.run, job)
        return peak

    return measure


@pytest.mark.anyio
async def test_a_session_runs_all_its_jobs_on_one_thread_while_others_use_the_pool():
    pool = workers.Workers(object(), 4)
    loop_thread = threading.get_ident()
    others: set[int] = set()
    holding = False  # between the session's first job and its close
    done = anyio.Event()

    def other_job() -> None:
        if holding:
            others.add(threading.get_ident())

    async def other_jobs() -> None:
        while not done.is_set():
            await pool.run(other_job)

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(other_jobs)
        async with pool.session() as session:
            seen = {await session.run(threading.get_ident)}
            holding = True
            for i in range(30):
                seen.add(await session.run(threading.get_ident))
                await (anyio.sleep(0.001) if i % 3 else anyio.lowlevel.checkpoint())
            holding = False
        done.set()

    assert len(seen) == 1
    (session_thread,) = seen
    assert session_thread != loop_thread
    # The other jobs ran meanwhile, and never on the session's thread.
    assert others
    assert session_thread not in others


@pytest.mark.anyio
async def test_a_session_holds_one_slot_from_its_first_job_until_closed():
    pool = workers.Workers(object(), 2)
    peak = _peak(pool)

    session = pool.session()
    assert await peak() == 2  # no thread taken before the first job
    await session.run(int)
    assert await peak() == 1
    await session.aclose()
    assert await peak() == 2


@pytest.mark.anyio
async def test_a_closed_session_gives_its_thread_back_to_the_pool(anyio_backend: str):
    pool = workers.Workers(object(), 1)
    async with pool.session() as session:
        session_thread = await session.run(threading.get_ident)
    with anyio.fail_after(5):
        plain = await pool.run(threading.get_ident)
    if anyio_backend == "asyncio":  # trio's threads are shared by all of its pools
        assert plain == session_thread


@pytest.mark.anyio
async def test_concurrent_jobs_of_a_session_run_one_at_a_time_in_order():
    session = workers.Workers(object(), 4).session()
    gate = threading.Event()
    order: list[int] = []
    threads: set[int] = set()
    running = peak = 0
    lock = threading.Lock()

    def job(i: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        if i == 0:
            gate.wait(5)
        time.sleep(0.002)
        order.append(i)
        threads.add(threading.get_ident())
        with lock:
            running -= 1
        return i

    async def one(i: int, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        task_status.started()
        # Nothing between started() and the call: the job is queued when start() returns.
        assert await session.run(job, i) == i

    with anyio.fail_after(10):
        async with session, anyio.create_task_group() as tg:
            for i in range(8):
                await tg.start(one, i)
            gate.set()
    assert order == list(range(8))
    assert peak == 1
    assert len(threads) == 1


@pytest.mark.anyio
async def test_a_cancelled_task_waits_for_its_session_job_then_is_cancelled():
    async with workers.Workers(object(), 2).session() as session:
        first = await session.run(threading.get_ident)
        started, finished, job = _slow_job()
        with anyio.move_on_after(0.02) as scope:
            await session.run(job)
            await anyio.lowlevel.checkpoint()
        assert scope.cancelled_caught
        assert started.is_set()
        assert finished == [True]
        # The session goes on, on its thread.
        assert await session.run(threading.get_ident) == first


@pytest.mark.asyncio
async def test_a_task_cancelled_directly_waits_for_its_session_job_too():
    await _cancel_a_task_while_its_session_job_runs()


async def _cancel_a_task_while_its_session_job_runs() -> None:
    async with workers.Workers(object(), 2).session() as session:
        first = await session.run(threading.get_ident)
        started, finished, job = _slow_job()
        task = asyncio.ensure_future(session.run(job))
        await asyncio.to_thread(started.wait)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert finished == [True]
        assert await session.run(threading.get_ident) == first


@pytest.mark.anyio
async def test_code_in_a_session_job_calls_back_into_the_loop_with_anyio():
    loop_thread = threading.get_ident()

    async def on_loop(x: int) -> tuple[int, int]:
        await anyio.lowlevel.checkpoint()
        return x * 2, threading.get_ident()

    def job() -> tuple[int, int, int]:
        assert workers.in_worker_thread()
        doubled, there = anyio.from_thread.run(on_loop, 21)
        return doubled, there, threading.get_ident()

    async with workers.Workers(object(), 2).session() as session:
        first = await session.run(job)
        second = await session.run(workers.run_on_loop, on_loop, 1)
        third = await session.run(job)
    assert first[:2] == (42, loop_thread)
    assert second == (2, loop_thread)
    assert third[2] == first[2] != loop_thread
    assert not workers.in_worker_thread()


@pytest.mark.anyio
async def test_a_closed_session_runs_no_more_jobs():
    pool = workers.Workers(object(), 2)
    session = pool.session()
    assert await session.run(divmod, 7, 2) == (3, 1)
    await session.aclose()
    await session.aclose()  # again: nothing to do
    with pytest.raises(RuntimeError, match="closed"):
        await session.run(int)

    unused = pool.session()
    await unused.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await unused.run(int)
    # Neither holds a slot.
    assert await _peak(pool)() == 2


@pytest.mark.anyio
async def test_a_session_job_raises_and_the_session_goes_on():
    async with workers.Workers(object(), 2).session() as session:
        first = await session.run(threading.get_ident)
        with pytest.raises(ZeroDivisionError):
            await session.run(divmod, 1, 0)
        with pytest.raises(RuntimeError) as info:
            await session.run(next, iter(()))
        assert isinstance(info.value.__cause__, StopIteration)
        assert await session.run(threading.get_ident) == first


@pytest.mark.anyio
async def test_many_sessions_at_once_each_keep_their_own_thread():
    """50 tasks, 8 threads: sessions wait for a slot, never share a thread, all end."""
    pool = workers.Workers(object(), 8)
    owners: dict[int, int] = {}
    lock = threading.Lock()
    holding = peak = 0
    finished = 0

    def claim(n: int) -> int:
        nonlocal holding, peak
        with lock:
            assert owners.setdefault(threading.get_ident(), n) == n
            holding += 1
            peak = max(peak, holding)
        return threading.get_ident()

    def release(n: int) -> int:
        nonlocal holding
        with lock:
            assert owners.pop(threading.get_ident()) == n
            holding -= 1
        return threading.get_ident()

    async def one(n: int) -> None:
        nonlocal finished
        async with pool.session() as session:
            thread = await session.run(claim, n)
            for i in range(5):
                await anyio.sleep(0.001 * (i % 2))
                assert await session.run(threading.get_ident) == thread
                if n % 10 == 0:
                    await pool.run(int)  # a plain job now and then, in another slot
            assert await session.run(release, n) == thread
        finished += 1

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            for n in range(50):
                tg.start_soon(one, n)
    assert finished == 50
    assert 1 <= peak <= 8
    assert not owners


@pytest.mark.anyio
async def test_a_session_dropped_unclosed_gives_its_thread_back():
    pool = workers.Workers(object(), 1)
    session = pool.session()
    await session.run(int)
    del session
    gc.collect()
    with anyio.fail_after(5):
        assert await pool.run(int, "3") == 3


def test_sessions_run_under_uvloop():
    import uvloop

    async def main() -> None:
        loop_thread = threading.get_ident()
        async with workers.Workers(object(), 2).session() as session:
            threads = {await session.run(threading.get_ident) for _ in range(20)}
            back = await session.run(anyio.from_thread.run, _double, 4)
        assert len(threads) == 1
        assert loop_thread not in threads
        assert back == 8
        await _cancel_a_task_while_its_session_job_runs()

    uvloop.run(main())


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_session_left_open_does_not_hold_up_the_end_of_the_loop(backend: str):
    kept: list[pools.WorkerSession] = []

    async def main() -> None:
        session = workers.Workers(object(), 2).session()
        kept.append(session)  # still referenced when the loop ends: never collected
        await session.run(int)

    errors: list[BaseException] = []

    def run() -> None:
        try:
            anyio.run(main, backend=backend)
        except BaseException as e:
            errors.append(e)

    # In a thread of its own, so that a hang fails the test instead of the run.
    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    runner.join(10)
    assert not runner.is_alive()
    assert errors == []
    assert kept
