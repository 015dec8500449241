"""Worker threads: where sync code runs when an event loop needs it run, and how it
calls back into the loop.

Under ASGI a request sends its sync steps (views, hooks, teardowns, sync generators) to a
worker thread and waits for them. That hop is most of the cost of a sync view, so under
asyncio the threads are ctxflask's own: a job goes straight to an idle thread's queue and its
result comes back with one ``call_soon_threadsafe``, about half the latency of
``anyio.to_thread.run_sync`` (which adds a checkpoint, a capacity limiter and a cancel scope
to every call). Under any other event loop (trio), anyio's worker threads serve.

Either way, a :class:`WorkerPool`:

- runs at most ``size`` jobs at once; the others wait their turn, first come first served;
- never abandons a job: a task cancelled while its job runs is cancelled once the job is
  done, since the job runs the request's own steps and context;
- lets code in its threads call back into the loop with ``anyio.from_thread.run``, as in
  anyio's own worker threads.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import typing as t
import weakref
from collections.abc import Awaitable
from collections.abc import Callable

import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
from anyio.lowlevel import RunVar

T = t.TypeVar("T")

#: How long an idle thread waits for a job before it ends.
IDLE_SECONDS = 10.0
#: The size of the pool that serves code outside of an app (anyio's default too).
DEFAULT_WORKER_THREADS = 40

# Where anyio keeps a worker thread's event loop token, which ``anyio.from_thread.run``
# reads (a thread-local; anyio marks its own workers there too).
_anyio_locals: t.Any = getattr(anyio.from_thread, "threadlocals", threading.local())


class WorkerPool(t.Protocol):
    """Runs sync callables in worker threads for one event loop."""

    size: int

    async def run(self, fn: Callable[..., T], /, *args: t.Any) -> T:
        """Call ``fn(*args)`` in a worker thread (in that thread's own context: pass
        ``ctx.run`` as ``fn`` to run it in another) and return what it returns."""
        ...


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


class Workers:
    """The worker threads a caller's sync work goes to: the pool of ``key`` (an app),
    ``size`` threads, on whichever event loop runs the work. ``None`` stands for the
    loop's default pool. The pool is looked up at each trip, so a handle serves every
    loop, and work that never needs a thread never pays for the lookup."""

    __slots__ = ("key", "size")

    def __init__(
        self, key: t.Hashable = None, size: int = DEFAULT_WORKER_THREADS
    ) -> None:
        self.key = key
        self.size = size

    def pool(self) -> WorkerPool:
        """The pool on the running event loop, made on first use."""
        return pool_for(self.key, self.size)

    async def run(self, fn: Callable[..., T], /, *args: t.Any) -> T:
        """Call ``fn(*args)`` in one of the threads; see :meth:`WorkerPool.run`."""
        return await pool_for(self.key, self.size).run(fn, *args)

    def __repr__(self) -> str:
        return f"<Workers of {self.key!r}, {self.size} threads>"


def in_worker_thread() -> bool:
    """Whether this thread is a worker thread of a running event loop (ctxflask's or
    anyio's), running a job."""
    return hasattr(_anyio_locals, "current_token")


class NotInWorkerThread(RuntimeError):
    """:func:`run_on_loop` was called from a thread that is not a worker thread of a
    running event loop (the loop's own thread, say)."""


def run_on_loop(fn: Callable[..., Awaitable[T]], /, *args: t.Any) -> T:
    """From a worker thread: await ``fn(*args)`` on the event loop the thread works for,
    and return its result.

    :raises NotInWorkerThread: called from any other thread.
    """
    if not hasattr(_anyio_locals, "current_token"):
        raise NotInWorkerThread(
            "This code must run in a worker thread of the event loop, and runs on"
            f" {threading.current_thread().name!r}."
        )
    return anyio.from_thread.run(fn, *args)  # type: ignore[arg-type]


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
    elif isinstance(error, StopIteration):
        # A future cannot carry it (it would end the awaiting coroutine).
        failure = RuntimeError("a sync callable raised StopIteration")
        failure.__cause__ = error
        job.set_exception(failure)
    else:
        job.set_exception(error)


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


# -- other loops (trio): anyio's threads -------------------------------------------------

_anyio_pools: RunVar[dict[t.Hashable, _AnyioPool]] = RunVar("ctxflask_worker_pools")


class _AnyioPool:
    def __init__(self, size: int) -> None:
        self.size = size
        self._limiter = anyio.CapacityLimiter(size)

    async def run(self, fn: Callable[..., T], /, *args: t.Any) -> T:
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter)
