"""Running code inside a given :class:`contextvars.Context` -- the request's own, not a
copy -- across awaits, and bringing a copy's changes back."""

from __future__ import annotations

import contextvars
import typing as t
from collections.abc import Awaitable
from collections.abc import Coroutine
from collections.abc import Generator

T = t.TypeVar("T")


class Pinned:
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
    return t.cast(Awaitable[T], Pinned(coro, ctx))


_missing: t.Any = object()


def copy_back(ctx: contextvars.Context) -> None:
    """Set in the current context every variable that ``ctx`` (a copy of it, where code
    ran) holds with another value."""
    for var, value in ctx.items():
        if var.get(_missing) is not value:
            var.set(value)
