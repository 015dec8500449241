"""The bridge: the one place that starts threads and event loops and crosses between them.

The request pipeline is written once, as *steps* (:mod:`.steps`): coroutines that never
touch an event loop and hand every user callable to the bridge with :func:`call`. The
bridge decides how each callable runs, from either side:

- :mod:`.drivers` -- :func:`run_steps` runs steps from sync code (WSGI),
  :func:`run_steps_async` from an event loop (ASGI);
- :mod:`.thread_loop` -- sync code calling async code: the reused per-thread loop
  (:func:`call_in`, :func:`run_awaitable`);
- :mod:`.workers` -- the event loop calling sync code: bounded pools of worker threads
  (:class:`Workers`; the pools in :mod:`.pools`), and code in them reaching back to the
  loop (:func:`run_on_loop`);
- :mod:`.body` -- a streamed response body iterated from either side
  (:func:`iterate_body`);
- :mod:`.contexts` -- running inside the request's own :class:`contextvars.Context`;
- :mod:`.tasks` -- a task of its own started from sync code on a loop (:func:`detach`),
  and callbacks handed to a loop from any thread (:func:`callback_here`);
- :mod:`.process` -- work done once per process;
- :mod:`.watchdog` -- a thread that notices when an event loop stalls, and names what
  blocks it (:func:`watch_loop`).

Nothing else in ctxflask imports ``threading``, ``concurrent.futures``,
``anyio.to_thread`` or ``anyio.from_thread``, or makes an event loop: an import-linter
contract in ``pyproject.toml`` checks it.
"""

from __future__ import annotations

import importlib
import typing as t

if t.TYPE_CHECKING:
    from .body import BodyIterator as BodyIterator
    from .body import iterate_body as iterate_body
    from .callables import in_thread as in_thread
    from .callables import is_async_callable as is_async_callable
    from .callables import is_nonblocking as is_nonblocking
    from .callables import nonblocking as nonblocking
    from .contexts import copy_back as copy_back
    from .contexts import pinned as pinned
    from .drivers import run_steps as run_steps
    from .drivers import run_steps_async as run_steps_async
    from .drivers import Runner as Runner
    from .pools import pool_for as pool_for
    from .pools import WorkerSession as WorkerSession
    from .process import OncePerProcess as OncePerProcess
    from .steps import call as call
    from .steps import Invoke as Invoke
    from .steps import Ready as Ready
    from .steps import shield_rest as shield_rest
    from .steps import Steps as Steps
    from .tasks import callback_here as callback_here
    from .tasks import cancellable as cancellable
    from .tasks import detach as detach
    from .tasks import detach_and_settle as detach_and_settle
    from .tasks import Detached as Detached
    from .tasks import with_ticks as with_ticks
    from .thread_loop import await_on_loop as await_on_loop
    from .thread_loop import call_in as call_in
    from .thread_loop import cancel_leftover_tasks as cancel_leftover_tasks
    from .thread_loop import on_worker_loop as on_worker_loop
    from .thread_loop import run_awaitable as run_awaitable
    from .watchdog import watch_loop as watch_loop
    from .workers import in_worker_thread as in_worker_thread
    from .workers import NotInWorkerThread as NotInWorkerThread
    from .workers import run_on_loop as run_on_loop
    from .workers import WorkerPool as WorkerPool
    from .workers import Workers as Workers

# Each name is imported from its module when first asked for (PEP 562): a process that
# never runs async code, or never serves ASGI, never loads asyncio, anyio's thread
# helpers or the worker pools.
_MODULES: dict[str, str] = {
    "BodyIterator": "body",
    "iterate_body": "body",
    "in_thread": "callables",
    "is_async_callable": "callables",
    "is_nonblocking": "callables",
    "nonblocking": "callables",
    "copy_back": "contexts",
    "pinned": "contexts",
    "run_steps": "drivers",
    "run_steps_async": "drivers",
    "Runner": "drivers",
    "OncePerProcess": "process",
    "call": "steps",
    "Invoke": "steps",
    "Ready": "steps",
    "shield_rest": "steps",
    "Steps": "steps",
    "callback_here": "tasks",
    "cancellable": "tasks",
    "detach": "tasks",
    "detach_and_settle": "tasks",
    "Detached": "tasks",
    "with_ticks": "tasks",
    "await_on_loop": "thread_loop",
    "call_in": "thread_loop",
    "cancel_leftover_tasks": "thread_loop",
    "on_worker_loop": "thread_loop",
    "run_awaitable": "thread_loop",
    "watch_loop": "watchdog",
    "in_worker_thread": "workers",
    "NotInWorkerThread": "workers",
    "pool_for": "pools",
    "run_on_loop": "workers",
    "WorkerPool": "workers",
    "Workers": "workers",
    "WorkerSession": "pools",
}


def __getattr__(name: str) -> t.Any:
    if name in _MODULES.values():  # a module of the bridge, as ``bridge.process``
        return importlib.import_module(f".{name}", __name__)
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULES})
