"""Work done once per process: a server imports the app, then forks its workers."""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from collections.abc import Callable

_pid = os.getpid()
_all: weakref.WeakSet[OncePerProcess] = weakref.WeakSet()


def _forked() -> None:
    global _pid
    _pid = os.getpid()
    for once in list(_all):
        once.done = False


os.register_at_fork(after_in_child=_forked)


class OncePerProcess:
    """Runs a function once in this process, and again in each child forked after it
    ran; concurrent first callers wait for the one that runs it."""

    __slots__ = ("__weakref__", "_lock", "done")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: Whether it has run in this process (a plain attribute: read per request).
        self.done = False
        _all.add(self)

    def run(self, fn: Callable[[], object]) -> None:
        """Call ``fn()`` unless it has run in this process. If it raises, a later call
        tries again."""
        with self._lock:
            if self.done:
                return
            fn()
            self.done = True


def pid() -> int:
    """This process's id, kept current across forks without a system call."""
    return _pid


def at_exit(fn: Callable[[], object]) -> None:
    """Call ``fn`` once when this process ends: at interpreter exit, or at the end of a
    multiprocessing child (granian's workers), which leaves by ``os._exit`` after
    multiprocessing's finalizers, never reaching ``atexit``. Children forked later
    inherit the registration but don't call it."""
    import multiprocessing.util  # only once a process starts serving

    owner = _pid
    called = False

    def once() -> None:
        nonlocal called
        if called or owner != _pid:
            return
        called = True
        fn()

    atexit.register(once)
    multiprocessing.util.Finalize(None, once, exitpriority=0)
