"""The one place that decides how sync and async callables run from each other's side.

The request pipeline (:mod:`ctxflask.pipeline`) is written once, as *steps*: coroutines that
never touch an event loop. Whenever a step needs to run a user callable (a view, a hook, an
error handler, a teardown, a signal receiver) it awaits :func:`call`, which hands the callable to
whichever driver is running the steps:

- :func:`run_steps` drives them from sync code (the WSGI entry point, and the public sync
  methods such as ``app.preprocess_request()``). Sync callables run inline; async ones run on
  an event loop that belongs to the current thread and is reused across its requests.
- :func:`run_steps_async` drives them from an event loop (the ASGI entry point). Async
  callables are awaited on the loop, by the steps themselves: there is no trip through the
  driver, whose only work is then to pass up to the loop what they wait on. Sync ones run
  in a bounded pool of worker threads. Consecutive sync callables share one trip to a
  worker thread: the driver itself moves to the thread and comes back at the next async
  callable.

Every callable runs inside the request's own :class:`contextvars.Context` (not a copy of it),
so whatever one step sets -- ``g``, the session, any ``ContextVar`` -- the next step sees,
whichever side of the bridge each of them runs on.

Nothing else in ctxflask starts threads or event loops.
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import functools
import inspect
import threading
import types
import typing as t
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Coroutine
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor

import anyio
import anyio.from_thread
import sniffio

from .workers import default_pool
from .workers import in_worker_thread
from .workers import WorkerPool

T = t.TypeVar("T")
F = t.TypeVar("F", bound=Callable[..., t.Any])


class Invoke:
    """A request, from a step to its driver, to run ``fn(*args, **kwargs)``.

    Awaiting it suspends the steps up to the driver, which runs the callable in the request's
    context on the right side of the bridge and resumes the steps with its result or
    exception.
    """

    __slots__ = ("args", "fn", "kwargs")

    def __init__(
        self,
        fn: Callable[..., t.Any],
        args: tuple[t.Any, ...],
        kwargs: dict[str, t.Any],
    ) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs

    def __await__(self) -> Generator[Invoke, t.Any, t.Any]:
        return (yield self)


#: A coroutine of pipeline steps: it awaits only :class:`Invoke` and other steps, and is run
#: by :func:`run_steps` or :func:`run_steps_async`, never awaited on an event loop directly.
Steps = Coroutine[Invoke, t.Any, T]


class _DriverState(threading.local):
    #: Whether the steps being resumed on this thread may await an async callable
    #: themselves, with no trip through the driver: each driver says so as it resumes
    #: its steps, and only :func:`run_steps_async` (without ``before_async``) says yes.
    #: Steps only run inside a resume, and a sync driver's steps never run an event loop,
    #: so what the latest resume said holds for the code running now.
    inline = False


_driver = _DriverState()


def call(
    fn: Callable[..., t.Any], /, *args: t.Any, **kwargs: t.Any
) -> Awaitable[t.Any]:
    """From a step: run a sync or async callable through the driver; await the result."""
    if _driver.inline and is_async_callable(fn):
        awaitable: Awaitable[t.Any] = fn(*args, **kwargs)
        return awaitable
    return Invoke(fn, args, kwargs)


class _ShieldRest:
    __slots__ = ()

    def __await__(self) -> Generator[_ShieldRest, None, None]:
        yield self


_SHIELD = _ShieldRest()


def shield_rest() -> Awaitable[None]:
    """From a step: run the steps from here to their end shielded from cancellation, so
    that what they do to wind down (pops, teardowns) is not cut short. Only the async
    driver has cancellation to shield from; the sync one just goes on."""
    return _SHIELD


class _Wait:
    """Pass up to the event loop what an async callable awaited in the steps waits on
    (a future, trio's trap), and back down what the loop answers."""

    __slots__ = ("request",)

    def __init__(self, request: t.Any) -> None:
        self.request = request

    def __await__(self) -> Generator[t.Any, t.Any, t.Any]:
        return (yield self.request)


class _Done:
    """The steps ended with this value."""

    __slots__ = ("value",)

    def __init__(self, value: t.Any) -> None:
        self.value = value


def _resume(
    steps: Steps[t.Any],
    ctx: contextvars.Context | None,
    value: t.Any,
    error: BaseException | None,
) -> Invoke | _Done | _ShieldRest:
    """Resume the steps inside ``ctx`` (``None``: the current context) with the result or
    the exception of the callable they awaited; return the next request, or their end.
    What the steps themselves raise propagates."""
    _driver.inline = False  # the steps of a sync driver: every callable goes through it
    try:
        if ctx is None:
            return steps.send(value) if error is None else steps.throw(error)
        if error is None:
            return ctx.run(steps.send, value)
        return ctx.run(steps.throw, error)
    except StopIteration as stop:
        return _Done(stop.value)


_async_cache: dict[Callable[..., t.Any], bool] = {}


def is_async_callable(fn: Callable[..., t.Any]) -> bool:
    """Whether calling ``fn`` gives a coroutine to await: an ``async def`` function, a
    partial or bound method of one, or an object whose ``__call__`` is ``async def``."""
    if type(fn) is types.FunctionType:
        try:
            return _async_cache[fn]
        except KeyError:
            result = _async_cache[fn] = inspect.iscoroutinefunction(fn)
            return result
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - the method, not callability
    )


def nonblocking(fn: F) -> F:
    """Mark a sync callable as cheap and free of blocking I/O.

    The ASGI driver then runs it on the event loop instead of sending it to a worker thread.
    Use it only for code that returns in microseconds: anything that waits blocks every
    request served by the loop.
    """
    fn.__ctxflask_nonblocking__ = True  # type: ignore[attr-defined]
    return fn


def _is_nonblocking(fn: Callable[..., t.Any]) -> bool:
    return getattr(fn, "__ctxflask_nonblocking__", False) is True


# -- the sync side: a reused event loop per thread --------------------------------------------


class _ThreadLoop(threading.local):
    loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> asyncio.AbstractEventLoop:
        loop = self.loop
        if loop is None or loop.is_closed():
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
            _helpers = ThreadPoolExecutor(thread_name_prefix="ctxflask-bridge")
        return _helpers


def _run_on_thread_loop(
    make: Callable[[], Awaitable[T]], ctx: contextvars.Context
) -> T:
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


def run_awaitable(make: Callable[[], Awaitable[T]], ctx: contextvars.Context) -> T:
    """From sync code: await ``make()`` to completion inside ``ctx``.

    It runs on this thread's reused event loop. If this thread is already running an event
    loop (sync code called from async code, as in an async test calling the sync test
    client), it runs on a helper thread's loop instead, since a thread can run one loop at a
    time.
    """
    if in_worker_thread():
        # A worker thread of a running event loop (sync code under ASGI): await it there,
        # where the loop's resources (connection pools, trio) live.
        return anyio.from_thread.run(_await_made, make, ctx)
    if not _loop_running_here():
        return _run_on_thread_loop(make, ctx)
    return _helper_pool().submit(_run_on_thread_loop, make, ctx).result()


def _loop_running_here() -> bool:
    try:
        sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return False
    return True


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
    loop = _thread_loop.loop
    if loop is None or loop.is_closed() or loop.is_running():
        return []
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    if pending:
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    return pending


def _call_sync(
    fn: Callable[..., t.Any],
    args: tuple[t.Any, ...],
    kwargs: dict[str, t.Any],
    ctx: contextvars.Context,
) -> t.Any:
    if is_async_callable(fn):
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
        return t.cast(T, _call_sync(fn, args, kwargs, ctx))
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
    _copy_back(copy)
    return t.cast(T, value)


_missing: t.Any = object()


def _copy_back(ctx: contextvars.Context) -> None:
    for var, value in ctx.items():
        if var.get(_missing) is not value:
            var.set(value)


def run_steps(steps: Steps[T], ctx: contextvars.Context | None = None) -> T:
    """From sync code: run pipeline steps to their end, inside ``ctx``, and return their
    result.

    With ``ctx=None`` the steps run in the current context itself, so the contexts they
    push and pop are the caller's (``app.preprocess_request()`` in a test, a ``with``
    block's pop); only async callables then run in a copy (see :func:`call_in`).
    """
    outcome = _resume(steps, ctx, None, None)
    while not isinstance(outcome, _Done):
        if isinstance(outcome, _ShieldRest):
            outcome = _resume(steps, ctx, None, None)
            continue
        value: t.Any = None
        error: BaseException | None = None
        try:
            value = call_in(ctx, outcome.fn, *outcome.args, **outcome.kwargs)
        except BaseException as e:  # thrown into the steps, which decide
            error = e
        outcome = _resume(steps, ctx, value, error)
        del error
    result: T = outcome.value
    return result


# -- the async side: callables from the event loop --------------------------------------------


class _Pinned:
    """Await a coroutine with every one of its steps run inside ``ctx``.

    Unlike a new task, it runs in the awaiting task (no scheduling round-trip) and in the
    given context itself, not a copy, so the coroutine's context changes are kept.
    """

    __slots__ = ("coro", "ctx", "started")

    _NOT_STARTED: t.Any = object()

    def __init__(
        self,
        coro: Coroutine[t.Any, t.Any, t.Any],
        ctx: contextvars.Context,
        first_yield: t.Any = _NOT_STARTED,
    ) -> None:
        self.coro = coro
        self.ctx = ctx
        self.started = first_yield  # what the coroutine yielded, if it has begun

    def __await__(self) -> Generator[t.Any, t.Any, t.Any]:
        coro, run = self.coro, self.ctx.run
        value: t.Any = None
        error: BaseException | None = None
        yielded = self.started
        if yielded is self._NOT_STARTED:
            try:
                yielded = run(coro.send, None)
            except StopIteration as stop:
                return stop.value
        while True:
            try:
                value = yield yielded
            except BaseException as e:  # cancellation and the like reach the coroutine
                value, error = None, e
            try:
                if error is None:
                    yielded = run(coro.send, value)
                else:
                    yielded = run(coro.throw, error)
            except StopIteration as stop:
                return stop.value
            finally:
                error = None


def pinned(coro: Coroutine[t.Any, t.Any, T], ctx: contextvars.Context) -> Awaitable[T]:
    """From async code: await ``coro`` inside ``ctx`` (not a copy of it)."""
    return t.cast(Awaitable[T], _Pinned(coro, ctx))


def _steps_in_thread(
    steps: Steps[t.Any], ctx: contextvars.Context, invoke: Invoke
) -> Invoke | _Done | _ShieldRest:
    """In a worker thread: run sync callables and the steps between them, until the steps
    ask for an async callable or a shield (returned, for the loop) or end."""
    while True:
        value: t.Any = None
        error: BaseException | None = None
        try:
            value = _call_sync(invoke.fn, invoke.args, invoke.kwargs, ctx)
        except BaseException as e:
            error = e
        outcome = _resume(steps, ctx, value, error)
        del error
        if not isinstance(outcome, Invoke) or is_async_callable(outcome.fn):
            return outcome
        invoke = outcome


async def run_steps_async(
    steps: Steps[T],
    ctx: contextvars.Context,
    workers: WorkerPool | Callable[[], WorkerPool] | None = None,
    before_async: Callable[[Invoke], Awaitable[None]] | None = None,
) -> T:
    """From async code: run pipeline steps to their end inside ``ctx``; return their result.

    Async callables are awaited on the loop, by the steps themselves; a run of sync
    callables, with the steps between them, goes to one thread of ``workers`` and comes
    back at the next async callable (``workers`` may be a function giving the pool, called
    at the first trip; ``None``: the loop's default pool).
    ``before_async(invoke)``, if given, is awaited before each async callable, which the
    driver then runs; what it raises is thrown into the steps as if the callable had
    raised it.

    The steps are never abandoned: cancelling the task throws the cancellation into them
    where they wait; from a :func:`shield_rest` on, they run shielded from it.
    """
    # Without ``before_async``, the steps await async callables themselves (see call()).
    inline = before_async is None
    driver = _driver
    value: t.Any = None
    error: BaseException | None = None
    while True:
        driver.inline = inline
        try:  # resume the steps: their next request, or their end
            if error is None:
                # An Invoke, a shield_rest(), or what an async callable awaited in the
                # steps waits on.
                outcome: t.Any = ctx.run(steps.send, value)
            else:
                outcome = ctx.run(steps.throw, error)
        except StopIteration as stop:
            result: T = stop.value
            return result
        finally:
            error = None
        value = None
        try:
            if (
                type(outcome) is Invoke
                and not is_async_callable(outcome.fn)
                and not _is_nonblocking(outcome.fn)
            ):
                if workers is None:
                    workers = default_pool()
                elif callable(workers):
                    workers = workers()
                after = await workers.run(_steps_in_thread, steps, ctx, outcome)
                if isinstance(after, _Done):
                    result = after.value
                    return result
                outcome = after  # an async callable to run, or a shield_rest()
            if type(outcome) is not Invoke:
                if isinstance(outcome, _ShieldRest):
                    return await _run_shielded(steps, ctx, workers, before_async)
                # An async callable awaited in the steps waits on the loop.
                value = await _Wait(outcome)
                continue
            fn = outcome.fn
            if before_async is not None and not _is_nonblocking(fn):
                await before_async(outcome)
            value = ctx.run(fn, *outcome.args, **outcome.kwargs)
            if type(value) is types.CoroutineType:
                # Most coroutines of a view end without waiting: step once before
                # pinning the rest to the request's context.
                coro = value
                try:
                    yielded = ctx.run(coro.send, None)
                except StopIteration as stop:
                    value = stop.value
                else:
                    value = await _Pinned(coro, ctx, yielded)
        except BaseException as e:  # thrown into the steps, which decide
            if getattr(steps, "cr_frame", True) is None:
                raise  # the steps raised it themselves, in a worker thread, and ended
            value, error = None, e


async def _run_shielded(
    steps: Steps[T],
    ctx: contextvars.Context,
    workers: WorkerPool | Callable[[], WorkerPool] | None,
    before_async: Callable[[Invoke], Awaitable[None]] | None,
) -> T:
    # The steps wait at a shield_rest(): resume them from there, shielded.
    with anyio.CancelScope(shield=True):
        result = await run_steps_async(steps, ctx, workers, before_async)
    return result
