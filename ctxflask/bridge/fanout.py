"""Calling a function for many items at once from a few threads, as a threaded WSGI
server calls its app: for tools that exercise the WSGI entry point concurrently."""

from __future__ import annotations

import itertools
import threading
import time
import typing as t
from collections.abc import Callable
from collections.abc import Sequence

T = t.TypeVar("T")
R = t.TypeVar("R")


def fan_out(
    fn: Callable[[T], R],
    items: Sequence[T],
    threads: int,
    timeout: float | None = None,
) -> list[R | BaseException]:
    """Call ``fn(item)`` for every item from ``threads`` threads (each takes the next
    item as it is free), all starting together; return the results in the items'
    order, an exception in place of the result of a call that raised.

    With a ``timeout`` (seconds), it returns by then: a call still running, or never
    started, has a :class:`TimeoutError` for its result (its thread, a daemon, is left
    to finish).

    Each thread starts with a context of its own, as a server's threads do.
    """
    late = TimeoutError(f"still running after {timeout} s")
    results: list[R | BaseException] = [late] * len(items)
    taken = itertools.count()  # next() on it is atomic: each index goes to one thread
    count = max(1, min(threads, len(items)))
    start = threading.Barrier(count)
    closed = False  # past the timeout: no more calls start

    def work() -> None:
        start.wait()
        while not closed and (i := next(taken)) < len(items):
            try:
                results[i] = fn(items[i])
            except BaseException as e:  # reported in the results, never lost
                results[i] = e

    pool = [threading.Thread(target=work, daemon=True) for _ in range(count)]
    for thread in pool:
        thread.start()
    deadline = None if timeout is None else time.monotonic() + timeout
    for thread in pool:
        thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
    closed = True
    return list(results)
