"""From sync code, calling sync or async callables: async ones run on an event loop that
belongs to the current thread and is reused across its calls (a new loop per call costs
about 0.3 ms), or, in a worker thread of a running loop, on that loop."""

from __future__ import annotations

import atexit
import contextvars
import functools
import threading
import types
import typing as t
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Coroutine

from .callables import IN_WORKER_LOOP
from .callables import is_async_callable
from .callables import ON_LOOP
from .callables import placement
from .contexts import copy_back
from .contexts import pinned
from .workers import anyio_locals
from .workers import in_worker_thread
from .workers import run_on_loop

# asyncio, sniffio, anyio's thread helpers and the helper pool are imported where a loop is
# first needed: sync code that calls only sync code never loads them.
if t.TYPE_CHECKING:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

T = t.TypeVar("T")


class _ThreadLoop(threading.local):
    loop: asyncio.AbstractEventLoop | None = None
    #: Whether the loop was handed out since :func:`cancel_leftover_tasks` last looked.
    used = False

    def get(self) -> asyncio.AbstractEventLoop:
        self.used = True
        loop = self.loop
        if loop is None or loop.is_closed():
            import asyncio

            loop = self.loop = asyncio.new_event_loop()
            _loops.add(loop)
        return loop

    def __del__(self) -> None:
        # Runs when the thread that owns this loop ends.
        loop = self.loop
        if loop is not None and not loop.is_running():
            _close_loop(loop)


_thread_loop = _ThreadLoop()
_loops: set[asyncio.AbstractEventLoop] = set()
_helpers: ThreadPoolExecutor | None = None
_helpers_lock = threading.Lock()


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    _loops.discard(loop)
    if loop.is_closed():
        return
    try:
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()


@atexit.register
def _close_all_loops() -> None:
    for loop in list(_loops):
        if not loop.is_running():
            _close_loop(loop)
    if _helpers is not None:
        _helpers.shutdown(wait=False)


def _helper_pool() -> ThreadPoolExecutor:
    global _helpers
    with _helpers_lock:
        if _helpers is None:
            from concurrent.futures import ThreadPoolExecutor

            _helpers = ThreadPoolExecutor(thread_name_prefix="ctxflask-bridge")
        return _helpers


def _run_on_thread_loop(
    make: Callable[[], Awaitable[T]], ctx: contextvars.Context
) -> T:
    import sniffio

    loop = _thread_loop.get()
    awaitable = ctx.run(make)
    if type(awaitable) is not types.CoroutineType:
        awaitable = _as_coroutine(awaitable)
    task = loop.create_task(t.cast(Coroutine[t.Any, t.Any, T], awaitable), context=ctx)
    # The context may come from trio code, whose library marker it carries: on this thread
    # the running library is asyncio (the thread's marker outranks the context's).
    previous = sniffio.thread_local.name
    sniffio.thread_local.name = "asyncio"
    try:
        return loop.run_until_complete(task)
    finally:
        sniffio.thread_local.name = previous


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable


_ASYNC_PLACES = (ON_LOOP, IN_WORKER_LOOP)


class _OwnLoops(threading.local):
    #: Whether async code that sync code reaches in this worker thread runs on the
    #: thread's own loop ("thread" mode) rather than on the loop the thread works for.
    active = False


own_loops = _OwnLoops()


def run_awaitable(make: Callable[[], Awaitable[T]], ctx: contextvars.Context) -> T:
    """From sync code: await ``make()`` to completion inside ``ctx``.

    It runs on this thread's reused event loop. In a worker thread of a running event loop
    (sync code under ASGI) it runs on that loop, where the loop's resources (connection
    pools, trio) live -- unless the thread runs a request's steps in "thread" mode
    (:data:`own_loops`), where async code runs on the thread's own loop. If this thread
    is already running an event loop (sync code called from async code, as in an async
    test calling the sync test client), it runs on a helper thread's loop instead, since
    a thread can run one loop at a time.
    """
    if in_worker_thread() and not own_loops.active:
        return t.cast(T, run_on_loop(_await_made, make, ctx))
    if not _loop_running_here():
        return _run_on_thread_loop(make, ctx)
    return _helper_pool().submit(_run_on_thread_loop, make, ctx).result()


def _loop_running_here() -> bool:
    # Asked of the thread, not of the context: a request's context copied from a task
    # carries sniffio's marker of that task's library into worker threads.
    import asyncio

    import sniffio

    return (
        asyncio._get_running_loop() is not None or sniffio.thread_local.name is not None
    )


async def _await_made(make: Callable[[], Awaitable[T]], ctx: contextvars.Context) -> T:
    awaitable = ctx.run(make)
    if type(awaitable) is types.CoroutineType:
        return await pinned(t.cast(Coroutine[t.Any, t.Any, T], awaitable), ctx)
    return await awaitable


def cancel_leftover_tasks() -> list[asyncio.Task[t.Any]]:
    """Cancel the tasks still pending on this thread's event loop, and let them finish.

    Under WSGI the loop runs only while an async step runs: a task a step started and did
    not await would otherwise stay frozen until some later request on this thread runs
    the loop again, in that request's middle. Returns the tasks that were cancelled.
    """
    local = _thread_loop
    if not local.used:
        # Not run since the last look (a request of sync steps only): listing the
        # loop's tasks would cost a sync request a fifth of its time.
        return []
    loop = local.loop
    if loop is None or loop.is_closed() or loop.is_running():
        return []
    local.used = False
    import asyncio

    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    if pending:
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    return pending


def call_sync(
    fn: Callable[..., t.Any],
    args: tuple[t.Any, ...],
    kwargs: dict[str, t.Any],
    ctx: contextvars.Context,
) -> t.Any:
    """From sync code: call a sync or async ``fn`` inside ``ctx``; return its result. An
    async ``fn`` marked ``in_thread`` runs on this thread's own loop."""
    where = placement(fn)
    if where == IN_WORKER_LOOP and in_worker_thread() and not _loop_running_here():
        return _run_on_thread_loop(functools.partial(fn, *args, **kwargs), ctx)
    if where in _ASYNC_PLACES:
        return run_awaitable(functools.partial(fn, *args, **kwargs), ctx)
    result = ctx.run(fn, *args, **kwargs)
    if type(result) is types.CoroutineType:
        # A sync wrapper (a decorator unaware of async) around an async function.
        return run_awaitable(lambda: result, ctx)
    return result


def call_in(
    ctx: contextvars.Context | None,
    fn: Callable[..., T],
    /,
    *args: t.Any,
    **kwargs: t.Any,
) -> T:
    """From sync code: call a sync or async ``fn`` inside ``ctx`` and return its result.

    With ``ctx=None`` it runs in the current context. An async callable then runs in a copy,
    whose changes are copied back afterwards (Python offers no handle on the running context
    that an event loop could enter).
    """
    if ctx is not None:
        return t.cast(T, call_sync(fn, args, kwargs, ctx))
    make: Callable[[], Awaitable[t.Any]]
    if is_async_callable(fn):
        make = functools.partial(fn, *args, **kwargs)  # type: ignore[assignment]
    else:
        result: t.Any = fn(*args, **kwargs)
        if type(result) is not types.CoroutineType:
            return t.cast(T, result)
        make = lambda: result  # noqa: E731 - a sync wrapper's coroutine, to await
    copy = contextvars.copy_context()
    value = run_awaitable(make, copy)
    copy_back(copy)
    return t.cast(T, value)


def on_worker_loop() -> bool:
    """Whether this is a worker thread of a running event loop that runs an event loop of
    its own right now (async steps in "thread" mode)."""
    return in_worker_thread() and _loop_running_here()


async def await_on_loop(fn: Callable[..., Awaitable[T]], /, *args: t.Any) -> T:
    """From async code on a worker thread's own loop: await ``fn(*args)`` on the event
    loop the thread works for (the server's), without blocking this thread's loop."""
    import asyncio

    import anyio.from_thread

    token = anyio_locals().current_token
    server_loop = token.native_token  # asyncio's loop; trio's token
    if isinstance(server_loop, asyncio.AbstractEventLoop):
        coro = t.cast(Coroutine[t.Any, t.Any, T], fn(*args))
        return await asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(coro, server_loop)
        )
    # Other loops (trio) are reached from a thread that waits for them.
    here = asyncio.get_running_loop()
    return await here.run_in_executor(
        _helper_pool(),
        functools.partial(anyio.from_thread.run, fn, *args, token=token),  # type: ignore[arg-type]
    )
