"""Work done once per process: a server imports the app, then forks its workers."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


class OncePerProcess:
    """Runs a function once in this process, and again in each child forked after it
    ran; concurrent first callers wait for the one that runs it."""

    __slots__ = ("_lock", "_ran_in")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ran_in: int | None = None

    @property
    def done(self) -> bool:
        """Whether it has run in this process."""
        return self._ran_in == _pid

    def run(self, fn: Callable[[], object]) -> None:
        """Call ``fn()`` unless it has run in this process. If it raises, a later call
        tries again."""
        with self._lock:
            if self._ran_in == _pid:
                return
            fn()
            self._ran_in = _pid


def pid() -> int:
    """This process's id, kept current across forks without a system call."""
    return _pid
