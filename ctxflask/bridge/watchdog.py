"""A watchdog of the server's event loops: one blocking call in an async view or hook
(``time.sleep``, a database query) stalls every request on its loop, silently.

Code on a loop calls :func:`watch_loop`. The first call on a loop arms a heartbeat there
(a timer under asyncio, a system task under trio) and registers the loop with one daemon
thread. When a heartbeat is ``threshold`` seconds late, that thread samples the loop
thread's stack and logs one warning naming the step that blocks, the frame that blocks
and the fix.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import sysconfig
import threading
import time
import types
import typing as t
import weakref
from collections.abc import Callable

if t.TYPE_CHECKING:
    import trio

#: Maps a step's code object to a label such as ``"view 'index'"``, or ``None``.
NameStep = Callable[[types.CodeType], "str | None"]

#: The same step blocking at the same place warns at most once in this many seconds.
SAME_PLACE_SECONDS = 60.0
#: One loop warns at most once in this many seconds.
PER_LOOP_SECONDS = 5.0
#: The shortest heartbeat interval: a tighter one costs the loop more than it finds.
MIN_INTERVAL = 0.005

logger = logging.getLogger("ctxflask.watchdog")

_MESSAGE = (
    "The event loop has not run for %.2f s: %s blocks it at %s. Every request on this "
    'loop waits meanwhile. Fix: set ASYNC_STEPS = "thread" in the app\'s config, mark '
    "the function with @ctxflask.in_thread, or use the library's async driver."
)

# ctxflask's own directory, found without importing the package above the bridge.
_CTXFLASK = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_paths = sysconfig.get_paths()
_STDLIB = (_paths["stdlib"] + os.sep, "<frozen ")
# Code a library generates (SQLAlchemy's "<sqlalchemy generated ...>") counts as its.
_LIBRARY = (
    *_STDLIB,
    _paths["purelib"] + os.sep,
    _paths["platlib"] + os.sep,
    _CTXFLASK,
    "<",
)
# What serves a request around the user's code, by top-level module (stdlib: by path).
_SERVING = frozenset(
    {"asyncio", "anyio", "trio", "outcome", "sniffio", "uvicorn", "hypercorn"}
    | {"granian", "uvloop", "httpx", "starlette"}
)


class _Frame(t.NamedTuple):
    """A frame of a sampled stack (not the frame object: it keeps its locals alive)."""

    file: str
    line: int
    code: types.CodeType
    module: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line} in {self.code.co_name}"


class _Watched:
    """A watched loop: its heartbeat, and what the watchdog thread knows of it."""

    def __init__(self, threshold: float) -> None:
        self.thread_id = threading.get_ident()
        self.last_beat = time.monotonic()
        self.checked_beat = -1.0  # the late beat already looked at: one look an episode
        self.last_warned = -float("inf")
        self.resolvers: tuple[NameStep, ...] = ()
        self.stopped = False  # by stop(): the heartbeat ends at its next beat
        self.set_threshold(threshold)

    def set_threshold(self, threshold: float) -> None:
        self.threshold = threshold
        self.interval = max(threshold / 4, MIN_INTERVAL)

    def beat(self) -> None:
        self.last_beat = time.monotonic()
        self.thread_id = threading.get_ident()

    def rearm(self) -> None:
        """On the loop: beat now, then every (new, shorter) interval."""
        raise NotImplementedError

    def alive(self) -> bool:
        raise NotImplementedError

    def is_running(self) -> bool:
        raise NotImplementedError


class _AsyncioLoop(_Watched):
    def __init__(self, loop: asyncio.AbstractEventLoop, threshold: float) -> None:
        super().__init__(threshold)
        self.loop = weakref.ref(loop)
        # Which timer is the heartbeat: re-arming starts another one. (Not the timer
        # handle: it holds the loop, and _by_key's values must not.)
        self.timer = 0
        loop.call_later(self.interval, self.beat, self.timer)

    def beat(self, timer: int = 0) -> None:
        loop = self.loop()
        if timer != self.timer or loop is None or self.stopped:
            return
        super().beat()
        loop.call_later(self.interval, self.beat, timer)

    def rearm(self) -> None:
        self.timer += 1
        self.beat(self.timer)

    def alive(self) -> bool:
        loop = self.loop()
        return loop is not None and not loop.is_closed()

    def is_running(self) -> bool:
        # A loop between two run_until_complete() calls is idle, not blocked.
        loop = self.loop()
        return loop is not None and loop.is_running()


class _TrioRun(_Watched):
    def __init__(self, threshold: float) -> None:
        import trio

        super().__init__(threshold)
        self._thread_id: int | None = self.thread_id  # what the fast path reads
        self.scope: trio.CancelScope | None = None
        trio.lowlevel.spawn_system_task(self._heartbeat, name="ctxflask-watchdog")

    async def _heartbeat(self) -> None:
        import trio

        try:
            while not self.stopped:
                self.beat()
                deadline = trio.current_time() + self.interval
                with trio.CancelScope(deadline=deadline) as self.scope:
                    await trio.sleep_forever()
        finally:
            self._thread_id = None  # the run is over (or stop()): dropped for good
            self.scope = None

    def rearm(self) -> None:
        if self.scope is not None:
            self.scope.cancel()  # the heartbeat wakes, beats and sleeps the new interval

    def alive(self) -> bool:
        return self._thread_id is not None

    is_running = alive


class _UvloopProbe:
    """The running thread of a loop without asyncio's ``_thread_id`` (uvloop)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, thread_id: int) -> None:
        self.loop = weakref.ref(loop)
        self.thread_id = thread_id

    @property
    def _thread_id(self) -> int | None:
        loop = self.loop()
        return self.thread_id if loop is not None and loop.is_running() else None


class _Stopped:
    _thread_id = None


_lock = threading.Lock()
_watched: list[_Watched] = []
_by_key: weakref.WeakKeyDictionary[object, _Watched] = weakref.WeakKeyDictionary()
_seen: dict[tuple[str, str], float] = {}  # (step, place) -> when last reported
_thread: threading.Thread | None = None
_wake = threading.Event()

# The fast path's memory of the last slow call: a probe whose _thread_id is the thread
# running the loop, None once the loop stops (a plain asyncio loop is its own probe); the
# loop's threshold and resolvers. One tuple, read at once: calls from loops in two
# threads cannot mix their values.
_LastCall = tuple[t.Any, float, tuple[NameStep, ...]]
_NOTHING: _LastCall = (_Stopped(), 0.0, ())
_last = _NOTHING
_get_ident = threading.get_ident


def watch_loop(threshold: float | None, name_step: NameStep | None = None) -> None:
    """From async code on a server's event loop (asyncio, uvloop, trio): warn whenever
    the loop does not run for ``threshold`` seconds (``None``: do nothing). ``name_step``
    names the step a code object belongs to. Cheap once the loop is watched: call it on
    every request."""
    if threshold is None:
        return
    # A thread runs one loop at a time: if the loop last watched runs on this thread, it
    # is the running one. (asyncio._get_running_loop() would tell as well, but on Python
    # 3.11 it makes a getpid() system call: 170 ns.)
    probe, smallest, resolvers = _last
    if (
        probe._thread_id == _get_ident()
        and threshold >= smallest
        and (name_step is None or name_step in resolvers)
    ):
        return
    try:
        _watch(threshold, name_step)
    except Exception:  # a watchdog must never break the request it watches
        logger.debug("Could not watch the event loop.", exc_info=True)


def _watch(threshold: float, name_step: NameStep | None) -> None:
    global _last, _thread
    key: object = asyncio._get_running_loop()
    if key is None:
        trio = sys.modules.get("trio")
        try:
            key = trio.lowlevel.current_trio_token() if trio else None
        except RuntimeError:
            key = None
    if key is None:
        return  # not on a loop this module knows
    with _lock:
        watched = _by_key.get(key)
        if watched is None:
            if isinstance(key, asyncio.AbstractEventLoop):
                watched = _AsyncioLoop(key, threshold)
            else:
                watched = _TrioRun(threshold)
            _by_key[key] = watched
            _watched.append(watched)
        elif threshold < watched.threshold:
            watched.set_threshold(threshold)
            watched.rearm()
        if name_step is not None and name_step not in watched.resolvers:
            watched.resolvers += (name_step,)
        probe: object = watched
        if isinstance(key, asyncio.BaseEventLoop) and hasattr(key, "_thread_id"):
            # Held strongly, but only while it runs: the watchdog thread lets go of it
            # once it stops (a weak reference would cost the fast path 15 ns).
            probe = key
        elif isinstance(key, asyncio.AbstractEventLoop):
            probe = _UvloopProbe(key, _get_ident())
        _last = (probe, watched.threshold, watched.resolvers)
        if _thread is None:
            _thread = threading.Thread(
                target=_run, name="ctxflask-watchdog", daemon=True
            )
            _thread.start()
    _wake.set()  # the thread may be sleeping an interval longer than the new one


def watched_loops() -> int:
    """How many loops the watchdog thread watches."""
    with _lock:
        return len(_watched)


def stop() -> None:
    """Stop watching every loop and wait for the watchdog thread to end."""
    global _last, _thread
    with _lock:
        for watched in _watched:
            watched.stopped = True
        _watched.clear()
        _by_key.clear()
        _seen.clear()
        _last = _NOTHING
        thread, _thread = _thread, None
    _wake.set()
    if thread is not None and thread is not threading.current_thread():
        thread.join()


def _forked() -> None:
    # A forked child has no watchdog thread, and the lock may have been held at the fork.
    global _lock, _wake, _thread, _last
    _lock, _wake, _thread, _last = threading.Lock(), threading.Event(), None, _NOTHING
    _watched.clear()
    _by_key.clear()
    _seen.clear()


os.register_at_fork(after_in_child=_forked)


def _run() -> None:
    global _last, _thread
    me = threading.current_thread()
    while True:
        with _lock:
            if _last[0]._thread_id is None:
                _last = _NOTHING  # its loop stopped: let go of it
            _watched[:] = [watched for watched in _watched if watched.alive()]
            if _thread is not me or not _watched:
                if _thread is me:
                    _thread = None  # the next registration starts a new thread
                return
            watching = list(_watched)
        for watched in watching:
            try:
                _check(watched)
            except Exception:  # sampling another thread is best effort
                logger.debug("The watchdog could not check a loop.", exc_info=True)
        _wake.wait(min(watched.interval for watched in watching))
        _wake.clear()


def _check(watched: _Watched) -> None:
    now = time.monotonic()
    beat = watched.last_beat
    if not watched.is_running():
        watched.last_beat = now  # idle is not blocked: time it from when it runs again
        return
    blocked = now - beat
    if blocked <= watched.threshold or watched.checked_beat == beat:
        return
    watched.checked_beat = beat
    frame = sys._current_frames().get(watched.thread_id)
    stack = _stack(frame)
    del frame
    if not stack or watched.last_beat != beat:
        return  # the loop ran meanwhile: the sample may show innocent code
    step = _name_step(stack, watched.resolvers)
    where = str(stack[-1])
    if stack[-1].file.startswith(_LIBRARY):
        # Inside a library: the user's line that called into it says more.
        user = next(
            (f for f in reversed(stack) if not f.file.startswith(_LIBRARY)), None
        )
        if user is not None:
            where += f", called from {user}"
    if now - watched.last_warned < PER_LOOP_SECONDS:
        return
    if now - _seen.get((step, where), -float("inf")) < SAME_PLACE_SECONDS:
        return
    watched.last_warned = _seen[step, where] = now
    for key, when in list(_seen.items()):
        if now - when >= SAME_PLACE_SECONDS:
            _seen.pop(key, None)
    extra = {
        "ctxflask_blocked_for": blocked,
        "ctxflask_step": step,
        "ctxflask_frame": where,
    }
    logger.warning(_MESSAGE, blocked, step, where, extra=extra)


def _stack(frame: types.FrameType | None) -> list[_Frame]:
    """The sampled stack, outermost frame first."""
    stack = []
    while frame is not None:
        module = str(frame.f_globals.get("__name__", "")).partition(".")[0]
        code = frame.f_code
        stack.append(_Frame(code.co_filename, frame.f_lineno, code, module))
        frame = frame.f_back
    stack.reverse()
    return stack


def _name_step(stack: list[_Frame], resolvers: tuple[NameStep, ...]) -> str:
    """The step that blocks. Runs of user frames split the stack (stdlib frames, such
    as a decorator's, neither start nor end one); the step's run is the outermost one a
    ctxflask frame called, else the innermost one. In it: the first frame a resolver
    names (a decorator's wrapper goes unnamed), else its first frame."""
    runs: list[tuple[bool, list[_Frame]]] = []
    caller = ""  # who called the current frame: "ctxflask", "serving" or "user"
    for frame in stack:
        if frame.file.startswith(_CTXFLASK):
            caller = "ctxflask"
        elif frame.module in _SERVING:
            caller = "serving"
        elif not frame.file.startswith(_STDLIB):
            if caller != "user":
                runs.append((caller == "ctxflask", []))
            runs[-1][1].append(frame)
            caller = "user"
    run = next((run for called, run in runs if called), None)
    if run is None:
        run = runs[-1][1] if runs else [stack[-1]]
    for frame in run:
        for resolve in resolvers:
            try:
                name = resolve(frame.code)
            except Exception:  # a resolver's bug must not silence the warning
                name = None
            if name:
                return name
    code = run[0].code
    return f"{code.co_qualname} ({code.co_filename}:{code.co_firstlineno})"
