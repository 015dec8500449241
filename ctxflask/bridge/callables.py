"""What kind of callable a step hands to the bridge, and so where the async driver runs it:

- a sync callable: in a worker thread (the default), or on the loop if marked
  :func:`nonblocking`;
- an async callable: on the loop (the default, ``ASYNC_STEPS = "loop"``), or in a worker
  thread on that thread's own event loop if marked :func:`in_thread` (or in ``"thread"``
  mode, for every async callable).
"""

from __future__ import annotations

import functools
import inspect
import types
import typing as t
from collections.abc import Callable

F = t.TypeVar("F", bound=Callable[..., t.Any])


def is_async_callable(fn: Callable[..., t.Any]) -> bool:
    """Whether calling ``fn`` gives a coroutine to await: an ``async def`` function, a
    partial or bound method of one, or an object whose ``__call__`` is ``async def``."""
    if type(fn) is types.FunctionType:
        return _function_placement(fn) in _ASYNC
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - the method, not callability
    )


#: Where the async driver runs a callable (see :func:`placement`).
IN_WORKER = 0  # a sync callable: in a worker thread
ON_LOOP = 1  # an async callable: awaited on the loop, unless in "thread" mode
IN_WORKER_LOOP = 2  # an async callable marked in_thread: on a worker thread's own loop
NONBLOCKING = 3  # a sync callable marked nonblocking: called on the loop
_ASYNC = (ON_LOOP, IN_WORKER_LOOP)


def placement(fn: Callable[..., t.Any]) -> int:
    """Where the async driver runs ``fn``: :data:`IN_WORKER`, :data:`ON_LOOP`,
    :data:`IN_WORKER_LOOP` or :data:`NONBLOCKING` (remembered for plain functions)."""
    if type(fn) is types.FunctionType:
        return _function_placement(fn)
    return _place(fn, is_async_callable(fn))


def _place(fn: Callable[..., t.Any], is_async: bool) -> int:
    """Where ``fn`` runs, given whether it is async: by default, or as its mark says."""
    if is_async:
        return IN_WORKER_LOOP if _marked(fn, "__ctxflask_in_thread__") else ON_LOOP
    return NONBLOCKING if _marked(fn, "__ctxflask_nonblocking__") else IN_WORKER


#: Where a plain function's placement is kept: in the function itself, with the code it
#: was found for (``functools.wraps`` copies it to wrappers, whose code differs). A
#: table of functions would keep every function it saw, those made per request too.
_PLACEMENT = "__ctxflask_placement__"


def _function_placement(fn: types.FunctionType) -> int:
    kept = fn.__dict__.get(_PLACEMENT)
    if kept is not None and kept[1] is fn.__code__:
        return t.cast(int, kept[0])
    where = _place(fn, inspect.iscoroutinefunction(fn))
    fn.__dict__[_PLACEMENT] = (where, fn.__code__)
    return where


def _marked(fn: Callable[..., t.Any], mark: str) -> bool:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return getattr(fn, mark, False) is True


def nonblocking(fn: F) -> F:
    """Mark a sync callable as cheap and free of blocking I/O.

    The ASGI driver then runs it on the event loop instead of sending it to a worker thread.
    Use it only for code that returns in microseconds: anything that waits blocks every
    request served by the loop.
    """
    fn.__ctxflask_nonblocking__ = True  # type: ignore[attr-defined]
    _forget_placement(fn)
    return fn


def is_nonblocking(fn: Callable[..., t.Any]) -> bool:
    """Whether ``fn`` is marked with :func:`nonblocking`."""
    return getattr(fn, "__ctxflask_nonblocking__", False) is True


def in_thread(fn: F) -> F:
    """Mark an async callable (a view, hook, error handler, teardown) to run, under ASGI, in
    a worker thread on that thread's own event loop instead of on the server's loop: for
    async code that calls blocking code (a database driver, an extension), which would
    otherwise stall every request on the loop. The mirror of :func:`nonblocking`; the
    ``ASYNC_STEPS = "thread"`` setting does the same for every async callable. Under WSGI
    async callables run that way already.

    :raises TypeError: ``fn`` is not an async callable (a sync one runs in a worker thread
        anyway).
    """
    if not is_async_callable(fn):
        raise TypeError(
            f"@in_thread marks async callables, and {fn!r} is sync: under ASGI a sync"
            " callable runs in a worker thread already. Fix: remove the mark, or make the"
            " function `async def`."
        )
    fn.__ctxflask_in_thread__ = True  # type: ignore[attr-defined]
    _forget_placement(fn)
    return fn


def _forget_placement(fn: Callable[..., t.Any]) -> None:
    """Drop the placement kept for ``fn``: a mark set now changes it."""
    namespace = getattr(fn, "__dict__", None)
    if namespace is not None:
        namespace.pop(_PLACEMENT, None)
