"""The two drivers of pipeline steps (:mod:`.steps`): from sync code, and from an event loop.

- :func:`run_steps` drives them from sync code (the WSGI entry point, and the public sync
  methods such as ``app.preprocess_request()``). Sync callables run inline; async ones run on
  an event loop that belongs to the current thread and is reused across its requests.
- :func:`run_steps_async` drives them from an event loop (the ASGI entry point). Async
  callables are awaited on the loop, by the steps themselves: there is no trip through the
  driver, whose only work is then to pass up to the loop what they wait on. Sync ones run
  in a bounded pool of worker threads. Consecutive sync callables share one trip to a
  worker thread: the driver itself moves to the thread and comes back at the next
  callable that runs on the loop. Async callables marked ``in_thread`` (every async
  callable, with ``async_in_thread``) travel with the sync ones, and run on the worker
  thread's own event loop.

Every callable runs inside the request's own :class:`contextvars.Context` (not a copy of it),
so whatever one step sets -- ``g``, the session, any ``ContextVar`` -- the next step sees,
whichever side of the bridge each of them runs on.
"""

from __future__ import annotations

import contextvars
import types
import typing as t
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Generator

from .callables import IN_WORKER
from .callables import IN_WORKER_LOOP
from .callables import NONBLOCKING
from .callables import ON_LOOP
from .callables import placement
from .contexts import Pinned
from .steps import driver_state
from .steps import Invoke
from .steps import Ready
from .steps import ShieldRest
from .steps import Steps
from .thread_loop import call_in
from .thread_loop import call_sync
from .thread_loop import own_loops
from .workers import Workers

T = t.TypeVar("T")
R = t.TypeVar("R")


class Runner(t.Protocol):
    """Where the async driver sends work for worker threads: a :class:`~.workers.Workers`
    handle, a pinned session of one, or a chooser of either."""

    async def run(self, fn: Callable[..., R], /, *args: t.Any) -> R:
        """Call ``fn(*args)`` in a worker thread and return what it returns."""
        ...


#: The sync callables a sync driver's steps call themselves: all of them (it would call
#: them right there). In a worker thread, those that run in worker threads.
_SYNC_DRIVER_INLINE = (IN_WORKER, NONBLOCKING)
_WORKER_INLINE = (IN_WORKER,)


def _resume(
    steps: Steps[t.Any],
    ctx: contextvars.Context | None,
    value: t.Any,
    error: BaseException | None,
    sync_inline: tuple[int, ...] | None = None,
) -> Invoke | Ready[t.Any] | ShieldRest:
    """Resume the steps inside ``ctx`` (``None``: the current context) with the result or
    the exception of the callable they awaited; return the next request, or their end.
    What the steps themselves raise propagates."""
    # The steps of a sync driver: async callables go through it.
    state = driver_state
    state.inline = False
    state.sync_inline = _SYNC_DRIVER_INLINE if sync_inline is None else sync_inline
    try:
        if ctx is None:
            return steps.send(value) if error is None else steps.throw(error)
        if error is None:
            return ctx.run(steps.send, value)
        return ctx.run(steps.throw, error)
    except StopIteration as stop:
        return Ready(stop.value)


def run_steps(steps: Steps[T], ctx: contextvars.Context | None = None) -> T:
    """From sync code: run pipeline steps to their end, inside ``ctx``, and return their
    result.

    With ``ctx=None`` the steps run in the current context itself, so the contexts they
    push and pop are the caller's (``app.preprocess_request()`` in a test, a ``with``
    block's pop); only async callables then run in a copy (see :func:`.call_in`).
    """
    outcome = _resume(steps, ctx, None, None)
    while type(outcome) is not Ready:
        if type(outcome) is ShieldRest:
            outcome = _resume(steps, ctx, None, None)
            continue
        value: t.Any = None
        error: BaseException | None = None
        try:
            value = call_in(ctx, outcome.fn, *outcome.args, **outcome.kwargs)  # type: ignore[union-attr]
        except BaseException as e:  # thrown into the steps, which decide
            error = e
        outcome = _resume(steps, ctx, value, error)
        del error
    result: T = outcome.value
    return result


class _Wait:
    """Pass up to the event loop what an async callable awaited in the steps waits on
    (a future, trio's trap), and back down what the loop answers."""

    __slots__ = ("request",)

    def __init__(self, request: t.Any) -> None:
        self.request = request

    def __await__(self) -> Generator[t.Any, t.Any, t.Any]:
        return (yield self.request)


def _to_worker(fn: Callable[..., t.Any], async_in_thread: bool) -> bool:
    """Whether the async driver runs ``fn`` in a worker thread."""
    where = placement(fn)
    return where in _WORKER_PLACES or (async_in_thread and where == ON_LOOP)


_WORKER_PLACES = (IN_WORKER, IN_WORKER_LOOP)


def _steps_in_thread(
    steps: Steps[t.Any], ctx: contextvars.Context, invoke: Invoke, async_in_thread: bool
) -> Invoke | Ready[t.Any] | ShieldRest:
    """In a worker thread: run callables and the steps between them, until the steps ask
    for a callable that runs on the loop or a shield (returned, for the loop) or end.
    Async callables run on this thread's own loop; so does async code that sync code
    reaches (``ensure_sync``) with ``async_in_thread``."""
    own = own_loops.active
    own_loops.active = async_in_thread
    try:
        while True:
            value: t.Any = None
            error: BaseException | None = None
            try:
                value = call_sync(invoke.fn, invoke.args, invoke.kwargs, ctx)
            except BaseException as e:
                error = e
            outcome = _resume(steps, ctx, value, error, _WORKER_INLINE)
            del error
            if type(outcome) is not Invoke or not _to_worker(
                outcome.fn, async_in_thread
            ):
                return outcome
            invoke = outcome
    finally:
        own_loops.active = own


_DEFAULT_WORKERS = Workers()


async def run_steps_async(
    steps: Steps[T],
    ctx: contextvars.Context,
    workers: Runner | None = None,
    before_step: Callable[[Invoke], Awaitable[bool]] | None = None,
    async_in_thread: bool = False,
) -> T:
    """From async code: run pipeline steps to their end inside ``ctx``; return their result.

    Async callables are awaited on the loop, by the steps themselves; a run of sync
    callables, with the steps between them, goes to one thread of ``workers`` (``None``:
    the loop's default pool) and comes back at the next callable that runs on the loop.
    With ``async_in_thread`` (``ASYNC_STEPS = "thread"``), async callables go to the worker
    threads too, and run on each thread's own event loop; so do, in any mode, async
    callables marked ``in_thread``.
    ``before_step(invoke)``, if given, is awaited before each callable that runs on the
    loop (a ``nonblocking`` one aside), until it returns false; what it raises is thrown
    into the steps as if the callable had raised it.

    The steps are never abandoned: cancelling the task throws the cancellation into them
    where they wait; from a :func:`~.steps.shield_rest` on, they run shielded from it.
    """
    # Without ``before_step`` and in "loop" mode, the steps await async callables
    # themselves (see call()).
    inline = before_step is None and not async_in_thread
    state = driver_state
    value: t.Any = None
    error: BaseException | None = None
    while True:
        state.inline = inline
        state.sync_inline = ()
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
            if type(outcome) is Invoke and _to_worker(outcome.fn, async_in_thread):
                if workers is None:
                    workers = _DEFAULT_WORKERS
                after = await workers.run(
                    _steps_in_thread, steps, ctx, outcome, async_in_thread
                )
                if type(after) is Ready:
                    result = after.value
                    return result
                outcome = after  # a callable for the loop, or a shield_rest()
            if type(outcome) is not Invoke:
                if type(outcome) is ShieldRest:
                    return await _run_shielded(
                        steps, ctx, workers, before_step, async_in_thread
                    )
                # An async callable awaited in the steps waits on the loop.
                value = await _Wait(outcome)
                continue
            fn = outcome.fn
            if (
                before_step is not None
                and placement(fn) != NONBLOCKING
                and not await before_step(outcome)
            ):
                # Not needed again: the steps may await async callables themselves.
                before_step = None
                inline = not async_in_thread
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
                    value = await Pinned(coro, ctx, yielded)
        except BaseException as e:  # thrown into the steps, which decide
            if getattr(steps, "cr_frame", True) is None:
                raise  # the steps raised it themselves, in a worker thread, and ended
            value, error = None, e


async def _run_shielded(
    steps: Steps[T],
    ctx: contextvars.Context,
    workers: Runner | None,
    before_step: Callable[[Invoke], Awaitable[bool]] | None,
    async_in_thread: bool,
) -> T:
    import anyio  # the async driver's only use of it: WSGI requests never load anyio

    # The steps wait at a shield_rest(): resume them from there, shielded.
    with anyio.CancelScope(shield=True):
        result = await run_steps_async(
            steps, ctx, workers, before_step, async_in_thread
        )
    return result
