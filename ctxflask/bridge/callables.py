"""What kind of callable a step hands to the bridge: async, or sync and cheap enough for
the event loop."""

from __future__ import annotations

import functools
import inspect
import types
import typing as t
from collections.abc import Callable

F = t.TypeVar("F", bound=Callable[..., t.Any])

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


def is_nonblocking(fn: Callable[..., t.Any]) -> bool:
    """Whether ``fn`` is marked with :func:`nonblocking`."""
    return getattr(fn, "__ctxflask_nonblocking__", False) is True
