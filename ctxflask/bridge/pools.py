"""The worker pools behind :class:`~.workers.Workers`: ctxflask's own threads under
asyncio, anyio's under any other loop (trio), and the sessions that hold one thread (see
:mod:`.workers`)."""

from __future__ import annotations

import asyncio
import queue
import threading
import typing as t
import weakref
from collections.abc import Callable

import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
from anyio.lowlevel import RunVar

from .workers import anyio_locals
from .workers import DEFAULT_WORKER_THREADS
from .workers import IDLE_SECONDS
from .workers import WorkerPool
from .workers import Workers

T = t.TypeVar("T")

_anyio_locals = anyio_locals()


def pool_for(key: t.Hashable, size: int) -> WorkerPool:
    """The pool of ``key`` (an app, or ``None`` for the default one) on the running event
    loop, of ``size`` threads, made on first use."""
    if size < 1:
        raise ValueError(
            f"A worker pool needs at least one thread, not {size}: check WORKER_THREADS."
        )
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is not None:
        pools = _asyncio_pools.get(loop)
        if pools is None:
            pools = _asyncio_pools[loop] = {}
        pool = pools.get(key)
        if pool is None:
            pool = pools[key] = _ThreadPool(loop, size)
        return pool
    try:
        other_pools = _anyio_pools.get()
    except LookupError:
        other_pools = {}
        _anyio_pools.set(other_pools)
    anyio_pool = other_pools.get(key)
    if anyio_pool is None:
        anyio_pool = other_pools[key] = _AnyioPool(size)
    return anyio_pool


def default_pool() -> WorkerPool:
    """The running loop's pool for code outside of an app's requests."""
    return pool_for(None, DEFAULT_WORKER_THREADS)


class WorkerSession:
    """All of a caller's jobs on one worker thread of a :class:`Workers`, one at a time,
    in the order :meth:`run` was called; use it as ``async with workers.session() as s``
    or call :meth:`aclose`.

    Its first job takes a thread, and one of the pool's ``size`` slots, and the session
    holds both until :meth:`aclose` gives the thread back to the pool: between jobs the
    thread serves no one else. Jobs have a pool job's guarantees (see
    :class:`WorkerPool`). A session serves the event loop of its first job. Its one
    thread runs one job at a time, so a job must not wait (through the loop) for another
    job of its own session.
    """

    __slots__ = ("__weakref__", "_closed", "_lock", "_seat", "_stop", "_workers")

    def __init__(self, workers: Workers) -> None:
        self._workers = workers
        self._closed = False
        self._lock: anyio.Lock | None = None
        self._seat: _Seat | None = None
        self._stop: weakref.finalize[[], WorkerSession] | None = None

    async def run(self, fn: Callable[..., T], /, *args: t.Any) -> T:
        """Call ``fn(*args)`` in the session's thread; see :meth:`WorkerPool.run`."""
        if self._closed:
            raise self._closed_error()
        lock = self._lock
        if lock is None:
            # Made at the first job, on the loop it serves (anyio picks the backend).
            lock = self._lock = anyio.Lock(fast_acquire=True)
        # A fair lock, held for the whole job: jobs run one at a time, in call order,
        # and the first caller alone opens the seat (the next one does if it fails).
        async with lock:
            seat = self._seat
            if seat is None:
                if self._closed:  # closed while this job waited its turn
                    raise self._closed_error()
                pool = pool_for(self._workers.key, self._workers.size)
                assert isinstance(pool, (_ThreadPool, _AnyioPool))
                seat = self._seat = await pool.seat()
                # A session dropped unclosed still gives its thread back.
                self._stop = weakref.finalize(self, seat.stop)
            return await seat.run(fn, args)

    async def aclose(self) -> None:
        """Give the thread back to the pool, after the jobs already asked for; later
        jobs raise :exc:`RuntimeError`. Closing again does nothing."""
        self._closed = True
        lock = self._lock
        if lock is None:
            return
        # Shielded: a cancelled request must still give its thread back, and its jobs
        # are never abandoned anyway.
        with anyio.CancelScope(shield=True):
            async with lock:
                seat, stop = self._seat, self._stop
                self._seat = self._stop = None
                if seat is not None and stop is not None:
                    stop()
                    await seat.stopped()

    def _closed_error(self) -> RuntimeError:
        return RuntimeError(
            f"This worker session of {self._workers!r} is closed (aclose was called):"
            " it runs no more jobs. Open another with Workers.session()."
        )

    async def __aenter__(self) -> WorkerSession:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<WorkerSession of {self._workers!r}, {state}>"


class _Seat(t.Protocol):
    """A thread held by one session, running its jobs as they come until stopped."""

    async def run(self, fn: Callable[..., T], args: tuple[t.Any, ...]) -> T: ...

    def stop(self) -> None:
        """End the session's hold on the thread after the jobs already queued (from any
        thread: a finalizer calls it)."""

    async def stopped(self) -> None:
        """Wait until the thread is back in its pool and the slot is free."""


def _serve(
    jobs: queue.SimpleQueue[t.Any],
    post: Callable[..., object],
    settle: Callable[[t.Any, t.Any, BaseException | None], None],
) -> None:
    """A seat's thread, between its session's first job and its stop: run each job and
    ``post(settle, waiter, result, error)`` to the loop (``call_soon_threadsafe`` or a trio
    token's ``run_sync_soon``). It runs as one long job of its pool, so the thread stays
    out of the idle ones and keeps the loop's token (``anyio.from_thread``) throughout."""
    while True:
        item = jobs.get()
        if item is None:
            return
        fn, args, waiter = item
        del item
        try:
            result, error = fn(*args), None
        except BaseException as e:
            result, error = None, e
        finally:
            del fn, args
        try:
            post(settle, waiter, result, error)
        except RuntimeError:
            # The loop is closed (trio: RunFinishedError): nobody waits for the result.
            return
        finally:
            # Between jobs, hold nothing of a request.
            del waiter, result, error


# -- asyncio: ctxflask's threads ---------------------------------------------------------


_asyncio_pools: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[t.Hashable, _ThreadPool]
] = weakref.WeakKeyDictionary()


class _Job(asyncio.Future[t.Any]):
    """The result of a job. Cancelling the task that awaits it does not cancel it: the
    task is then cancelled at its next step, once the job is done."""

    def cancel(self, msg: t.Any = None) -> bool:
        return False


def _settle(job: _Job, result: t.Any, error: BaseException | None) -> None:
    if error is None:
        job.set_result(result)
    else:
        job.set_exception(_raisable(error))


def _raisable(error: BaseException) -> BaseException:
    if isinstance(error, StopIteration):
        # A future cannot carry it, nor a coroutine raise it (it would end the awaiting
        # coroutine, or become a vaguer RuntimeError).
        failure = RuntimeError("a sync callable raised StopIteration")
        failure.__cause__ = error
        return failure
    return error


class _ThreadPool:
    """At most ``size`` threads for one asyncio loop, started as jobs need them, each
    ending after :data:`IDLE_SECONDS` without a job or once the loop is gone.

    Idle threads hold only a weak reference to the loop, so that a loop no longer used is
    collected, and its threads end with it.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, size: int) -> None:
        self.size = size
        self._loop = weakref.ref(loop)
        self._backend = anyio.lowlevel.current_token().backend_class
        self._slots = asyncio.Semaphore(size)
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []  # under _lock
        weakref.finalize(loop, self._stop_idle)

    async def run(self, fn: Callable[..., T], /, *args: t.Any) -> T:
        slots = self._slots
        await slots.acquire()
        try:
            loop = asyncio.get_running_loop()
            job = _Job(loop=loop)
            with self._lock:
                worker = self._idle.pop() if self._idle else None
            if worker is None:
                worker = _Worker(self)
            token = anyio.lowlevel.EventLoopToken(self._backend, loop)
            worker.jobs.put((fn, args, job, token))
            return t.cast(T, await job)
        finally:
            slots.release()

    async def seat(self) -> _ThreadSeat:
        """A thread for one session. It takes a slot as a job does, then runs the
        session's jobs as one long job of its own: like that, :meth:`run` and the workers
        stay as they are, and the thread goes back to the idle ones when the session ends."""
        await self._slots.acquire()
        try:
            loop = asyncio.get_running_loop()
            seat = _ThreadSeat(loop)
            seat.host.add_done_callback(self._release_slot)
            with self._lock:
                worker = self._idle.pop() if self._idle else None
            if worker is None:
                worker = _Worker(self)
        except BaseException:
            self._slots.release()
            raise
        token = anyio.lowlevel.EventLoopToken(self._backend, loop)
        host_args = (seat.jobs, loop.call_soon_threadsafe, _settle)
        worker.jobs.put((_serve, host_args, seat.host, token))
        return seat

    def _release_slot(self, host: _Job) -> None:
        self._slots.release()

    def _idle_again(self, worker: _Worker) -> None:
        with self._lock:
            self._idle.append(worker)

    def _retire(self, worker: _Worker) -> bool:
        """Whether an idle ``worker`` may end: not if a job was just handed to it."""
        with self._lock:
            if worker in self._idle:
                self._idle.remove(worker)
                return True
            return False

    def _stop_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.jobs.put(None)


class _Worker(threading.Thread):
    def __init__(self, pool: _ThreadPool) -> None:
        super().__init__(name="ctxflask-worker", daemon=True)
        self.pool = pool
        self.jobs: queue.SimpleQueue[t.Any] = queue.SimpleQueue()
        self.start()

    def run(self) -> None:
        pool, jobs = self.pool, self.jobs
        while True:
            try:
                item = jobs.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                if pool._retire(self):
                    return
                continue
            if item is None:
                return
            fn, args, job, token = item
            del item
            _anyio_locals.current_token = token
            try:
                result, error = fn(*args), None
            except BaseException as e:
                result, error = None, e
            finally:
                del _anyio_locals.current_token, fn, args
            loop = job.get_loop()
            # Idle before the result is out: the pool may hand this thread the next job
            # as soon as the waiting task resumes.
            pool._idle_again(self)
            try:
                loop.call_soon_threadsafe(_settle, job, result, error)
            except RuntimeError:  # the loop is closed: nobody waits for the result
                pool._retire(self)
                return
            finally:
                # Between jobs, hold nothing that keeps the loop (or a request) alive.
                del job, loop, result, error, token


class _ThreadSeat:
    """A session's thread of a :class:`_ThreadPool`: its jobs wait as pool jobs do."""

    __slots__ = ("host", "jobs", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.jobs: queue.SimpleQueue[t.Any] = queue.SimpleQueue()
        #: Done once the thread left the session, back among the idle ones.
        self.host = _Job(loop=loop)

    async def run(self, fn: Callable[..., T], args: tuple[t.Any, ...]) -> T:
        job = _Job(loop=self.loop)
        self.jobs.put((fn, args, job))
        return t.cast(T, await job)

    def stop(self) -> None:
        self.jobs.put(None)

    async def stopped(self) -> None:
        await self.host


# -- other loops (trio): anyio's threads -------------------------------------------------

_anyio_pools: RunVar[dict[t.Hashable, _AnyioPool]] = RunVar("ctxflask_worker_pools")


class _AnyioPool:
    def __init__(self, size: int) -> None:
        self.size = size
        self._limiter = anyio.CapacityLimiter(size)

    async def run(self, fn: Callable[..., T], /, *args: t.Any) -> T:
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    async def seat(self) -> _TrioSeat:
        """A thread for one session, counted by the limiter of this pool's jobs."""
        seat = _TrioSeat()
        await self._limiter.acquire_on_behalf_of(seat)
        try:
            seat.start(self._limiter)
        except BaseException:
            self._limiter.release_on_behalf_of(seat)
            raise
        return seat


class _TrioSeat:
    """A session's thread under trio: one of anyio's worker threads, held by a long
    ``to_thread.run_sync`` call that serves the session's jobs.

    A thread of ctxflask's own would not do: trio's ``from_thread`` calls, which
    ``anyio.from_thread.run`` makes, work only in threads that trio started. The call needs
    a task that outlives the job which opens the seat, so it is a trio system task.
    """

    __slots__ = ("_post", "_stopped", "jobs")

    def __init__(self) -> None:
        import trio

        self.jobs: queue.SimpleQueue[t.Any] = queue.SimpleQueue()
        self._post = trio.lowlevel.current_trio_token().run_sync_soon
        self._stopped = anyio.Event()

    def start(self, limiter: anyio.CapacityLimiter) -> None:
        import trio

        trio.lowlevel.spawn_system_task(self._host, limiter, name="ctxflask session")

    async def _host(self, limiter: anyio.CapacityLimiter) -> None:
        try:
            # The pool's slot is already taken on the seat's behalf: the call's own
            # limiter only has to let it through. Abandoned only when trio's run ends
            # (system tasks are cancelled then), not to wait there for a session never
            # closed.
            await anyio.to_thread.run_sync(
                _serve,
                self.jobs,
                self._post,
                _settle_box,
                abandon_on_cancel=True,
                limiter=anyio.CapacityLimiter(1),
            )
        finally:
            limiter.release_on_behalf_of(self)
            self._stopped.set()

    async def run(self, fn: Callable[..., T], args: tuple[t.Any, ...]) -> T:
        box = _Box()
        self.jobs.put((fn, args, box))
        # Never abandoned, as in anyio's threads: a cancellation waits for the job and
        # comes through at the caller's next checkpoint.
        with anyio.CancelScope(shield=True):
            await box.done.wait()
        if box.error is not None:
            raise _raisable(box.error)
        return t.cast(T, box.result)

    def stop(self) -> None:
        self.jobs.put(None)

    async def stopped(self) -> None:
        await self._stopped.wait()


class _Box:
    """Where a session job's outcome arrives under trio."""

    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.result: t.Any = None
        self.error: BaseException | None = None


def _settle_box(box: _Box, result: t.Any, error: BaseException | None) -> None:
    box.result, box.error = result, error
    box.done.set()
