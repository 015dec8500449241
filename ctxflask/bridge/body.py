"""A streamed response body, iterated inside the request's context from either side.

A view may return a sync or an async iterable. :func:`iterate_body` gives its chunks, as
bytes, with every step of the iterable run inside the request's
:class:`contextvars.Context`, to either driver:

- from sync code (the WSGI entry point): sync chunks inline, async ones on this thread's
  event loop;
- from async code (the ASGI entry point): async chunks on the loop, sync ones in worker
  threads.
"""

from __future__ import annotations

import contextvars
import typing as t
from collections.abc import AsyncIterable
from collections.abc import Iterable

from .contexts import pinned
from .thread_loop import _run_on_thread_loop
from .thread_loop import run_awaitable
from .workers import Workers

if t.TYPE_CHECKING:
    from .drivers import Runner

_END: t.Any = object()


def _as_bytes(chunk: t.Any) -> bytes:
    if isinstance(chunk, str):
        return chunk.encode()
    return chunk if type(chunk) is bytes else bytes(chunk)


class BodyIterator:
    """The chunks of a body, as bytes, produced inside ``ctx``: iterate it with ``for``
    (then :meth:`close`) from sync code, or ``async for`` (then :meth:`aclose`) from an
    event loop, where sync chunks come from ``workers`` -- and async ones too with
    ``async_in_thread``, on the worker thread's own loop (give a pinned session then, so
    that every chunk is made on the same thread and loop).

    :meth:`first` (sync) or :meth:`afirst` (async) takes the first chunk ahead, before
    anything of the response is sent, so that a body failing at once can still be
    answered with an error response; iterating then gives that chunk first.
    """

    __slots__ = (
        "async_in_thread",
        "closed",
        "ctx",
        "head",
        "is_async",
        "iterator",
        "workers",
    )

    def __init__(
        self,
        source: Iterable[t.Any] | AsyncIterable[t.Any],
        ctx: contextvars.Context,
        workers: Runner | None = None,
        async_in_thread: bool = False,
    ) -> None:
        self.ctx = ctx
        self.workers: Runner = workers or Workers()
        self.async_in_thread = async_in_thread
        self.is_async = isinstance(source, AsyncIterable) and not isinstance(
            source, Iterable
        )
        self.iterator: t.Any = (
            t.cast(AsyncIterable[t.Any], source).__aiter__()
            if self.is_async
            else iter(t.cast(Iterable[t.Any], source))
        )
        self.closed = False
        #: The first chunk, taken ahead and not yet given.
        self.head: bytes | None = None

    # -- from sync code -----------------------------------------------------------------

    def __iter__(self) -> BodyIterator:
        return self

    def first(self) -> None:
        """Take the first chunk ahead; it raises what the iterable raises. An empty
        iterable leaves nothing."""
        try:
            self.head = self.__next__()
        except StopIteration:
            pass

    def __next__(self) -> bytes:
        head = self.head
        if head is not None:
            self.head = None
            return head
        if self.is_async:
            try:
                chunk = run_awaitable(self.iterator.__anext__, self.ctx)
            except StopAsyncIteration:
                raise StopIteration from None
        else:
            chunk = self.ctx.run(next, self.iterator)
        return _as_bytes(chunk)

    def close(self) -> None:
        """Close the iterable (a generator's ``finally`` runs), once."""
        if self.closed:
            return
        self.closed = True
        if self.is_async:
            aclose = getattr(self.iterator, "aclose", None)
            if aclose is not None:
                run_awaitable(aclose, self.ctx)
        else:
            close = getattr(self.iterator, "close", None)
            if close is not None:
                self.ctx.run(close)

    # -- from an event loop -------------------------------------------------------------

    def __aiter__(self) -> BodyIterator:
        return self

    async def afirst(self) -> None:
        """:meth:`first`, from an event loop."""
        try:
            self.head = await self.__anext__()
        except StopAsyncIteration:
            pass

    async def __anext__(self) -> bytes:
        head = self.head
        if head is not None:
            self.head = None
            return head
        if self.is_async and self.async_in_thread:
            chunk = await self.workers.run(
                _run_on_thread_loop, self.iterator.__anext__, self.ctx
            )
        elif self.is_async:
            chunk = await pinned(self.iterator.__anext__(), self.ctx)
        else:
            chunk = await self.workers.run(self.ctx.run, next, self.iterator, _END)
            if chunk is _END:
                raise StopAsyncIteration
        return _as_bytes(chunk)

    async def aclose(self) -> None:
        """Close the iterable (a generator's ``finally`` runs), once; a sync one in a
        worker thread."""
        if self.closed:
            return
        self.closed = True
        if self.is_async:
            aclose = getattr(self.iterator, "aclose", None)
            if aclose is not None and self.async_in_thread:
                await self.workers.run(_run_on_thread_loop, aclose, self.ctx)
            elif aclose is not None:
                await pinned(aclose(), self.ctx)
        else:
            close = getattr(self.iterator, "close", None)
            if close is not None:
                await self.workers.run(self.ctx.run, close)


def iterate_body(
    source: Iterable[t.Any] | AsyncIterable[t.Any],
    ctx: contextvars.Context,
    workers: Runner | None = None,
    async_in_thread: bool = False,
) -> BodyIterator:
    """The chunks of ``source`` as bytes, produced inside ``ctx`` (see
    :class:`BodyIterator`)."""
    return BodyIterator(source, ctx, workers, async_in_thread)
