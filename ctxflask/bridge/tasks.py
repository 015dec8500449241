"""Tasks of their own, started from sync code on an event loop's thread, and callbacks
that another thread hands to a loop.

Task groups are the rule; these are for the few tasks whose life does not fit one
caller's frame: a request's watch for its client leaving starts at the first question,
from whichever step asks (sync, on the loop or in a worker thread), and ends with the
request; an event stream's source is pulled by a task between the chunks of a response
body, so that the body can wait for it with a timeout (:func:`with_ticks`).
"""

from __future__ import annotations

import asyncio
import contextvars
import typing as t
from collections.abc import AsyncGenerator
from collections.abc import AsyncIterator
from collections.abc import Awaitable
from collections.abc import Callable

import anyio
import anyio.lowlevel
import sniffio

T = t.TypeVar("T")


class Detached:
    """A task started by :func:`detach`: :meth:`cancel` it from its loop's thread, and
    :meth:`wait` for its end on that loop."""

    __slots__ = ("_done", "_scope", "_task")

    def __init__(self) -> None:
        self._scope = anyio.CancelScope()
        self._done = anyio.Event()
        self._task: asyncio.Task[None] | None = None  # asyncio keeps weak references

    def cancel(self) -> None:
        self._scope.cancel()

    async def wait(self) -> None:
        await self._done.wait()

    async def _run(self, fn: Callable[[], Awaitable[None]]) -> None:
        try:
            with self._scope:
                await fn()
        finally:
            self._done.set()


def detach(
    fn: Callable[[], Awaitable[None]],
    name: str,
    context: contextvars.Context | None = None,
) -> Detached:
    """From sync code running in a task on this thread's event loop (asyncio or trio):
    start ``fn()`` as a task of its own, in ``context`` (``None``: an empty one), and
    return its handle.

    Nothing waits for it but its owner, who must cancel it and wait for it when done.
    ``fn`` must handle its own exceptions: under trio it runs as a system task, and one
    escaping from it would end the whole run.

    :raises RuntimeError: no event loop runs in this thread.
    """
    try:
        library = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        raise RuntimeError("No event loop runs in this thread.") from None
    handle = Detached()
    if library == "trio":
        import trio

        trio.lowlevel.spawn_system_task(
            handle._run, fn, name=name, context=context or contextvars.Context()
        )
    else:
        handle._task = asyncio.get_running_loop().create_task(
            handle._run(fn), name=name, context=context or contextvars.Context()
        )
    return handle


async def detach_and_settle(fn: Callable[[], Awaitable[None]], name: str) -> Detached:
    """:func:`detach`, then let the new task take its first steps (up to its first
    wait) before returning: what it can learn without waiting is known then."""
    handle = detach(fn, name)
    # asyncio runs a new task at the next turn; trio may order one batch either way.
    for _ in range(2):
        await anyio.lowlevel.checkpoint()
    return handle


def callback_here(fn: Callable[[], object]) -> Callable[[], None]:
    """A callable that any thread may call to have ``fn()`` called soon on the event loop
    running in this thread now (asyncio or trio); once that loop is closed, calling it
    does nothing."""
    if sniffio.current_async_library() == "trio":
        import trio

        token = trio.lowlevel.current_trio_token()

        def in_trio() -> None:
            try:
                token.run_sync_soon(fn)
            except trio.RunFinishedError:
                pass

        return in_trio
    loop = asyncio.get_running_loop()

    def in_asyncio() -> None:
        try:
            loop.call_soon_threadsafe(fn)
        except RuntimeError:  # the loop is closed
            pass

    return in_asyncio


async def cancellable(
    subscribe: Callable[[Callable[[], None]], Callable[[], None] | None],
    fn: Callable[..., Awaitable[T]],
    /,
    *args: t.Any,
    **kwargs: t.Any,
) -> tuple[bool, T | None]:
    """Await ``fn(*args, **kwargs)`` on this thread's loop, cancelled once the callback
    handed to ``subscribe`` is called, from any thread. ``subscribe`` returns what takes
    the callback back, or ``None`` when it will never call it (then ``fn`` just runs).
    Returns whether ``fn`` was cancelled, and its result (``None`` if it was)."""
    scope = anyio.CancelScope()
    finished = False

    def cancel() -> None:
        # Scheduled from another thread, it may arrive after fn is done.
        if not finished:
            scope.cancel()

    unsubscribe = subscribe(callback_here(cancel))
    if unsubscribe is None:
        return False, await fn(*args, **kwargs)
    try:
        with scope:
            return False, await fn(*args, **kwargs)
    finally:
        finished = True
        unsubscribe()
    return True, None


class _Handoff(t.Generic[T]):
    """One item at a time, from a pulling task to its reader."""

    __slots__ = ("arrived", "ended", "error", "item", "taken")

    def __init__(self) -> None:
        self.arrived = anyio.Event()  # an item, the end or an error is there
        self.taken = anyio.Event()  # the reader took the item: pull the next
        self.item: tuple[T] | None = None
        self.ended = False
        self.error: Exception | None = None


async def with_ticks(
    source: AsyncIterator[T], interval: float, tick: T
) -> AsyncGenerator[T, None]:
    """The items of ``source``, and ``tick`` each time none came for ``interval``
    seconds.

    Waiting with a timeout must not cancel ``source`` in the middle of a step, so a task
    of its own pulls it, one item ahead of the reader, in a copy of the current context
    (a request's contexts stay active in it). Closing this generator cancels that task
    (``source`` sees the cancellation where it waits) and closes ``source``.
    """
    box: _Handoff[T] = _Handoff()

    async def pull() -> None:
        try:
            while True:
                try:
                    item = await source.__anext__()
                except StopAsyncIteration:
                    return
                box.item = (item,)
                box.arrived.set()
                await box.taken.wait()
                box.taken = anyio.Event()
        except Exception as e:  # raised to the reader
            box.error = e
        finally:
            box.ended = True
            box.arrived.set()

    puller = detach(pull, "ctxflask stream source", contextvars.copy_context())
    try:
        while True:
            with anyio.move_on_after(interval):
                await box.arrived.wait()
            if not box.arrived.is_set():
                yield tick
                continue
            if box.item is not None:
                (item,) = box.item
                box.item = None
                box.arrived = anyio.Event()
                box.taken.set()
                yield item
                continue
            if box.error is not None:
                raise box.error
            return
    finally:
        with anyio.CancelScope(shield=True):
            puller.cancel()
            await puller.wait()
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                await aclose()
