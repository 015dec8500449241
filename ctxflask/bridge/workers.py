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

A :class:`WorkerSession` (``Workers.session()``) pins all of a caller's jobs to one thread
of the pool, with the same guarantees: a request whose steps leave loop-bound objects to
later steps (a client in ``g``, an ``asyncio.Lock``, made on the thread's own event loop)
finds them on the thread, and so the loop, that made them, as under WSGI.

This module is what sync code and the drivers import; the pools themselves (and asyncio,
anyio's thread helpers) are in :mod:`.pools`, loaded with the first job.
"""

from __future__ import annotations

import functools
import threading
import typing as t
from collections.abc import Awaitable
from collections.abc import Callable

if t.TYPE_CHECKING:
    from .pools import WorkerSession

T = t.TypeVar("T")

#: How long an idle thread waits for a job before it ends.
IDLE_SECONDS = 10.0
#: The size of the pool that serves code outside of an app (anyio's default too).
DEFAULT_WORKER_THREADS = 40


@functools.cache
def anyio_locals() -> t.Any:
    """Where anyio keeps a worker thread's event loop token, which
    ``anyio.from_thread.run`` reads (a thread-local; anyio marks its own workers there
    too)."""
    import anyio.from_thread

    return getattr(anyio.from_thread, "threadlocals", threading.local())


class WorkerPool(t.Protocol):
    """Runs sync callables in worker threads for one event loop."""

    size: int

    async def run(self, fn: Callable[..., T], /, *args: t.Any) -> T:
        """Call ``fn(*args)`` in a worker thread (in that thread's own context: pass
        ``ctx.run`` as ``fn`` to run it in another) and return what it returns."""
        ...


@functools.cache
def _pool_for() -> Callable[[t.Hashable, int], WorkerPool]:
    # Once, not at each trip: an import statement in a function costs more than this call.
    from .pools import pool_for

    return pool_for


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
        return _pool_for()(self.key, self.size)

    async def run(self, fn: Callable[..., T], /, *args: t.Any) -> T:
        """Call ``fn(*args)`` in one of the threads; see :meth:`WorkerPool.run`."""
        return await _pool_for()(self.key, self.size).run(fn, *args)

    def session(self) -> WorkerSession:
        """A session that runs all of its jobs on one of these threads; it takes the
        thread at its first job. See :class:`WorkerSession`."""
        from .pools import WorkerSession

        return WorkerSession(self)

    def __repr__(self) -> str:
        return f"<Workers of {self.key!r}, {self.size} threads>"


def in_worker_thread() -> bool:
    """Whether this thread is a worker thread of a running event loop (ctxflask's or
    anyio's), running a job."""
    return hasattr(anyio_locals(), "current_token")


class NotInWorkerThread(RuntimeError):
    """:func:`run_on_loop` was called from a thread that is not a worker thread of a
    running event loop (the loop's own thread, say)."""


def run_on_loop(fn: Callable[..., Awaitable[T]], /, *args: t.Any) -> T:
    """From a worker thread: await ``fn(*args)`` on the event loop the thread works for,
    and return its result.

    :raises NotInWorkerThread: called from any other thread.
    """
    if not in_worker_thread():
        raise NotInWorkerThread(
            "This code must run in a worker thread of the event loop, and runs on"
            f" {threading.current_thread().name!r}."
        )
    import anyio.from_thread

    return anyio.from_thread.run(fn, *args)  # type: ignore[arg-type]
