"""The app's callables wrapped for a run: views, hooks, error handlers, teardown
callbacks, background tasks and the chunks of streamed bodies report each step to the
observer; the app gets its own callables back when the run ends."""

from __future__ import annotations

import functools
import inspect
import itertools
import types
import typing as t
from collections.abc import Callable

from werkzeug.wrappers import Response as _BaseResponse

from ..bridge import callables
from .observer import Observer
from .report import NOTHING

if t.TYPE_CHECKING:
    from ..app import Flask


class _Slot:
    """What a wrapper reports to: emptied when the run ends, so that a wrapper that
    something keeps (a cache keyed by function) keeps no report alive."""

    __slots__ = ("observer",)

    def __init__(self, observer: Observer) -> None:
        self.observer: Observer | None = observer


def _wrap(fn: Callable[..., t.Any], slot: _Slot, label: str, kind: str) -> t.Any:
    """``fn`` observed: sync stays sync, async stays async, with its name, signature,
    attributes and placement marks (``nonblocking``, ``in_thread``)."""
    streams = kind in ("view", "error handler", "before_request", "after_request")

    def finish(observer: Observer, owner: int | None, rv: t.Any) -> t.Any:
        if streams:
            rv = _watch_body(rv, slot, label)
        observer.output(owner, label, rv)
        return rv

    if callables.is_async_callable(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
            observer = slot.observer
            if observer is None:
                return await fn(*args, **kwargs)
            owner = observer.enter(label, kind)
            try:
                return finish(observer, owner, await fn(*args, **kwargs))
            finally:
                observer.exit(owner, label, kind)

        wrapper: Callable[..., t.Any] = async_wrapper
    else:

        @functools.wraps(fn)
        def sync_wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
            observer = slot.observer
            if observer is None:
                return fn(*args, **kwargs)
            owner = observer.enter(label, kind)
            rv = NOTHING
            try:
                rv = fn(*args, **kwargs)
                if type(rv) is types.CoroutineType:
                    # A sync callable returning a coroutine for the bridge to await (a
                    # class-based view with async handlers): the step ends with it.
                    return _finish_awaited(rv, observer, owner, finish)
                return finish(observer, owner, rv)
            finally:
                if type(rv) is not types.CoroutineType:
                    observer.exit(owner, label, kind)

        async def _finish_awaited(
            coro: t.Awaitable[t.Any],
            observer: Observer,
            owner: int | None,
            then: Callable[[Observer, int | None, t.Any], t.Any],
        ) -> t.Any:
            try:
                return then(observer, owner, await coro)
            finally:
                observer.exit(owner, label, kind)

        wrapper = sync_wrapper
    where = callables.placement(fn)
    if where == callables.NONBLOCKING:
        callables.nonblocking(wrapper)
    elif where == callables.IN_WORKER_LOOP:
        callables.in_thread(wrapper)
    return wrapper


def _watch_body(rv: t.Any, slot: _Slot, label: str) -> t.Any:
    """A view's return value with a generator body replaced by one that observes each
    chunk (a generator of the same kind, closing the original when closed)."""
    if inspect.isgenerator(rv):
        if rv.gi_code is _watch_sync_chunks.__code__:
            return rv  # watched already: a hook returning the view's response
        return _watch_sync_chunks(rv, slot, label)
    if inspect.isasyncgen(rv):
        if rv.ag_code is _watch_async_chunks.__code__:
            return rv
        return _watch_async_chunks(rv, slot, label)
    if (
        isinstance(rv, tuple)
        and rv
        and (inspect.isgenerator(rv[0]) or inspect.isasyncgen(rv[0]))
    ):
        return (_watch_body(rv[0], slot, label), *rv[1:])
    if (
        isinstance(rv, _BaseResponse)
        and not rv.direct_passthrough
        and (inspect.isgenerator(rv.response) or inspect.isasyncgen(rv.response))
    ):
        rv.response = _watch_body(rv.response, slot, label)
    return rv


def _watch_sync_chunks(
    gen: t.Generator[t.Any, t.Any, t.Any], slot: _Slot, label: str
) -> t.Generator[t.Any, None, None]:
    try:
        for n in itertools.count(1):
            observer = slot.observer
            if observer is None:
                yield from gen
                return
            step = f"{label}: body chunk {n}"
            owner = observer.enter(step, "body")
            try:
                chunk = next(gen)
            except StopIteration:
                return
            else:
                observer.output(owner, step, chunk)
            finally:
                observer.exit(owner, step, "body")
            yield chunk
    finally:
        gen.close()


async def _watch_async_chunks(
    gen: t.AsyncGenerator[t.Any, t.Any], slot: _Slot, label: str
) -> t.AsyncGenerator[t.Any, None]:
    try:
        for n in itertools.count(1):
            observer = slot.observer
            step = f"{label}: body chunk {n}"
            owner = None if observer is None else observer.enter(step, "body")
            try:
                chunk = await gen.__anext__()
            except StopAsyncIteration:
                return
            else:
                if observer is not None:
                    observer.output(owner, step, chunk)
            finally:
                if observer is not None:
                    observer.exit(owner, step, "body")
            yield chunk
    finally:
        await gen.aclose()


def _name(fn: t.Any) -> str:
    return str(getattr(fn, "__name__", None) or fn)


class Instrumented:
    """The app with its callables wrapped; :meth:`restore` puts the originals back."""

    def __init__(self, app: Flask, observer: Observer) -> None:
        self.app = app
        self.slot = _Slot(observer)
        self._undo: list[Callable[[], None]] = []
        self._labels: dict[str, int] = {}
        self._got_first_request = app._got_first_request
        try:
            self._wrap_all(observer)
        except BaseException:
            self.restore()
            raise

    def _wrap_all(self, observer: Observer) -> None:
        app, slot = self.app, self.slot
        for endpoint, view in list(app.view_functions.items()):
            self._set(
                app.view_functions,
                endpoint,
                _wrap(view, slot, f"view {endpoint!r}", "view"),
            )
        hooks: dict[str, dict[t.Any, list[t.Any]]] = {
            "url_value_preprocessor": app.url_value_preprocessors,
            "before_request": app.before_request_funcs,
            "after_request": app.after_request_funcs,
            "teardown_request": app.teardown_request_funcs,
            "before_websocket": app.before_websocket_funcs,
            "after_websocket": app.after_websocket_funcs,
        }
        for kind, by_key in hooks.items():
            for key, funcs in list(by_key.items()):
                where = "" if key is None else f" of {key!r}"
                for n, f in enumerate(list(funcs)):
                    label = self._label(f"{kind} {_name(f)!r}{where}")
                    if kind == "teardown_request":
                        observer.teardown_request_labels[label] = key is None
                    self._set(funcs, n, _wrap(f, slot, label, kind))
        funcs = app.teardown_appcontext_funcs
        for n, f in enumerate(list(funcs)):
            label = self._label(f"teardown_appcontext {_name(f)!r}")
            observer.teardown_appcontext_labels.append(label)
            self._set(funcs, n, _wrap(f, slot, label, "teardown_appcontext"))
        for by_code in list(app.error_handler_spec.values()):
            for code, handlers in list(by_code.items()):
                for exc_class, handler in list(handlers.items()):
                    where = f"{code}" if code else exc_class.__name__
                    label = f"error handler {_name(handler)!r} ({where})"
                    self._set(
                        handlers,
                        exc_class,
                        _wrap(handler, slot, label, "error handler"),
                    )
        original = app.add_background_task

        @functools.wraps(original)
        def add_background_task(
            fn: Callable[..., t.Any], /, *args: t.Any, **kwargs: t.Any
        ) -> None:
            label = f"background task {_name(fn)!r}"
            original(_wrap(fn, slot, label, "background task"), *args, **kwargs)

        had_own = "add_background_task" in vars(app)
        app.add_background_task = add_background_task  # type: ignore[method-assign]
        self._undo.append(
            (lambda: setattr(app, "add_background_task", original))
            if had_own
            else (lambda: delattr(app, "add_background_task"))
        )

    def _label(self, label: str) -> str:
        # Two callables of one name would share a teardown count: number the later.
        n = self._labels[label] = self._labels.get(label, 0) + 1
        return label if n == 1 else f"{label} #{n}"

    def _set(self, container: t.Any, key: t.Any, value: t.Any) -> None:
        original = container[key]
        container[key] = value

        def undo() -> None:
            container[key] = original

        self._undo.append(undo)

    def restore(self) -> None:
        """Give the app its own callables back, and forget that it served."""
        self.slot.observer = None
        while self._undo:
            self._undo.pop()()
        self.app._got_first_request = self._got_first_request
