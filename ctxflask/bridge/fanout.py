"""Calling a function for many items at once from a few threads, as a threaded WSGI
server calls its app: for tools that exercise the WSGI entry point concurrently."""

from __future__ import annotations

import itertools
import threading
import typing as t
from collections.abc import Callable
from collections.abc import Sequence

T = t.TypeVar("T")
R = t.TypeVar("R")


def fan_out(
    fn: Callable[[T], R], items: Sequence[T], threads: int
) -> list[R | BaseException]:
    """Call ``fn(item)`` for every item from ``threads`` threads (each takes the next
    item as it is free), all starting together; return the results in the items'
    order, an exception in place of the result of a call that raised.

    Each thread starts with a context of its own, as a server's threads do.
    """
    results: list[R | BaseException] = [
        RuntimeError("not run") for _ in range(len(items))
    ]
    taken = itertools.count()  # next() on it is atomic: each index goes to one thread
    count = max(1, min(threads, len(items)))
    start = threading.Barrier(count)

    def work() -> None:
        start.wait()
        while (i := next(taken)) < len(items):
            try:
                results[i] = fn(items[i])
            except BaseException as e:  # reported in the results, never lost
                results[i] = e

    pool = [threading.Thread(target=work, daemon=True) for _ in range(count)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return results
