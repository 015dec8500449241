"""The checks: :func:`check_isolation` sends a run's requests through the ASGI entry
point, :func:`check_isolation_wsgi` through the WSGI one; each run has its tokens,
prepared requests and observer."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import re
import secrets
import time
import typing as t
import weakref
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence

import anyio
import anyio.lowlevel
import sniffio

from ..bridge.fanout import fan_out
from ..core.globals import _cv_app
from ..core.globals import _cv_request
from .instrument import Instrumented
from .observer import Observer
from .observer import serving
from .report import IsolationReport
from .report import RequestSpec
from .report import SentRequest
from .sending import fill
from .sending import prepare
from .sending import send_http
from .sending import send_websocket
from .sending import send_wsgi

if t.TYPE_CHECKING:
    from ..app import Flask


class _Run:
    """One run: tokens, prepared requests, and the observer."""

    def __init__(
        self,
        app: Flask,
        requests: Iterable[RequestSpec],
        context_vars: Sequence[contextvars.ContextVar[t.Any]],
        observe: bool,
    ) -> None:
        specs = list(requests)
        if not specs:
            raise ValueError("check_isolation needs at least one request to send.")
        run = secrets.token_hex(3)
        tokens = [f"tk{run}n{i:06d}z" for i in range(len(specs))]
        self.app = app
        self.sent = [
            SentRequest(i, token, spec)
            for i, (token, spec) in enumerate(zip(tokens, specs, strict=True))
        ]
        self.prepared = [prepare(app, r.spec, r.token) for r in self.sent]
        self.observer = Observer(
            app,
            tokens,
            re.compile(rf"tk{run}n(\d{{6}})z"),
            context_vars,
            [spec.scan_output for spec in specs],
        )
        self.observe = observe
        self.outer = (_cv_app.get(None), _cv_request.get(None))
        self.instrumented: Instrumented | None = None
        self.started = self.duration = 0.0

    def __enter__(self) -> _Run:
        if self.observe:
            self.instrumented = Instrumented(self.app, self.observer)
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.duration = time.perf_counter() - self.started
        if self.instrumented is not None:
            self.instrumented.restore()

    def outcome(self, index: int, result: int | BaseException) -> None:
        request = self.sent[index]
        if isinstance(result, BaseException):
            request.error = result
            self.observer.add(
                index, "entry point", "error", f"the request failed: {result!r}"
            )
            return
        request.status = result
        expected = request.spec.status
        if expected is not None and result != expected:
            self.observer.add(
                index, "response", "status", f"status {result}, expected {expected}"
            )

    def report(self, entry: str) -> IsolationReport:
        observer = self.observer
        if self.observe:
            observer.finish(self.sent)
        outer = (_cv_app.get(None), _cv_request.get(None))
        if outer != self.outer:
            observer.add(
                None,
                "end of run",
                "left active",
                f"the caller's contexts were {self.outer!r} and are {outer!r} after the run",
            )
        return IsolationReport(
            entry=entry,
            requests=self.sent,
            findings=observer.findings,
            steps=sum(state.steps for state in observer.states),
            duration=self.duration,
            observed=self.observe,
            teardowns=[
                *observer.teardown_request_labels,
                *observer.teardown_appcontext_labels,
            ],
        )


async def check_isolation(
    app: Flask,
    requests: Iterable[RequestSpec],
    *,
    concurrency: int = 100,
    context_vars: Sequence[contextvars.ContextVar[t.Any]] = (),
    observe: bool = True,
) -> IsolationReport:
    """Send ``requests`` through the ASGI entry point, ``concurrency`` at a time, as
    tasks of the running event loop (asyncio or trio), with every step of the app
    observed; return what each step saw (see :mod:`ctxflask.isolation` for what counts
    as a violation)::

        report = await check_isolation(app, [RequestSpec("GET", "/")] * 500)
        assert report.ok, report

    The app's callables are its own again when this returns, or raises. The lifespan
    protocol is not run: when the app needs ``before_serving``, check inside a serving
    context.

    :param app: the application.
    :param requests: the requests to send (:class:`RequestSpec`): a list, or any
        iterable, such as ``(make_spec(i) for i in range(1000))``.
    :param concurrency: how many are in flight at once.
    :param context_vars: context variables whose values are checked like ``g``'s.
    :param observe: ``False`` sends the same requests without observing them (to time
        the app alone); only exceptions and statuses are then checked.
    """
    run = _Run(app, requests, context_vars, observe)
    backend = sniffio.current_async_library()
    restore_factory: Callable[[], None] | None = None
    if observe and backend == "asyncio":
        restore_factory = _watch_tasks(run.observer)
    asgi = app.asgi
    try:
        with run:
            taken = iter(range(len(run.sent)))

            async def worker() -> None:
                for i in taken:
                    # Each task has a context of its own; each request a copy of it.
                    serving.set(i)
                    spec = run.sent[i].spec
                    result: int | BaseException
                    try:
                        if spec.websocket is not None:
                            result = await send_websocket(
                                asgi,
                                run.prepared[i],
                                [fill(m, run.sent[i].token) for m in spec.websocket],
                                functools.partial(run.observer.message, i)
                                if observe
                                else None,
                            )
                        else:
                            result = await send_http(asgi, run.prepared[i])
                    except Exception as e:
                        result = e
                    run.outcome(i, result)

            async with anyio.create_task_group() as tg:
                for _ in range(max(1, min(concurrency, len(run.sent)))):
                    tg.start_soon(worker)
            await anyio.lowlevel.checkpoint()  # tasks cancelled at the end finish
    finally:
        if restore_factory is not None:
            restore_factory()
    return run.report(f"ASGI ({backend})")


def _watch_tasks(observer: Observer) -> Callable[[], None]:
    """Note every task a request starts on the running asyncio loop, to find those
    still running at the end; returns what restores the loop's task factory."""
    loop = asyncio.get_running_loop()
    previous = loop.get_task_factory()

    def factory(
        loop: asyncio.AbstractEventLoop, coro: t.Any, **kwargs: t.Any
    ) -> asyncio.Future[t.Any]:
        if previous is not None:
            task = previous(loop, coro, **kwargs)
        else:
            task = asyncio.Task(coro, loop=loop, **kwargs)
        owner = serving.get(None)
        if owner is not None and isinstance(task, asyncio.Task):
            observer.tasks.append((owner, weakref.ref(task)))
        return task

    loop.set_task_factory(factory)
    return lambda: loop.set_task_factory(previous)


def check_isolation_wsgi(
    app: Flask,
    requests: Iterable[RequestSpec],
    *,
    threads: int = 16,
    context_vars: Sequence[contextvars.ContextVar[t.Any]] = (),
    observe: bool = True,
    timeout: float | None = None,
) -> IsolationReport:
    """Send ``requests`` through the WSGI entry point from ``threads`` threads at once,
    as a threaded WSGI server would, with every step of the app observed; the
    counterpart of :func:`check_isolation` (same findings). WebSocket requests are
    skipped (WSGI has none).

    :param timeout: seconds after which it returns, the requests still running then
        reported as failed (their threads are left to finish). Under ASGI, wrap the
        call in ``anyio.fail_after`` instead: the requests are cancelled.
    """
    run = _Run(app, requests, context_vars, observe)
    todo = [r.index for r in run.sent if r.spec.websocket is None]
    for r in run.sent:
        r.skipped = r.spec.websocket is not None

    def one(i: int) -> int:
        token = serving.set(i)
        try:
            return send_wsgi(app, run.prepared[i])
        finally:
            serving.reset(token)

    with run:
        results = fan_out(one, todo, threads, timeout)
    for i, result in zip(todo, results, strict=True):
        run.outcome(i, result)
    return run.report(f"WSGI ({threads} threads)")
