"""Application and request contexts, kept on ``ContextVar`` stacks (see :mod:`.globals`).

Pushing a context sets its variable and keeps the token; popping checks that the context is
the top one and resets the variable with that token. A context may be pushed more than once
(the test client pushes a finished request's contexts again for inspection); its teardown
callbacks run once, when it is popped for the first time after its request.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import sys
import typing as t
from collections.abc import Callable
from collections.abc import Iterator
from itertools import chain
from types import TracebackType

from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request as _Request

from .. import bridge
from .globals import _cv_app
from .globals import _cv_request
from .routing import binds_lazily
from .routing import match
from .routing import UNBUILT
from .sessions import open_session
from .signals import appcontext_popped
from .signals import appcontext_pushed
from .signals import appcontext_tearing_down
from .signals import request_tearing_down
from .signals import send_steps
from .wrappers import builds_like_werkzeug
from .wrappers import request_from_environ

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment
    from werkzeug.routing import MapAdapter

    from ..asgi.websocket import Websocket
    from .app import App
    from .sessions import SessionMixin
    from .typing import AfterRequestCallable
    from .wrappers import Request

F = t.TypeVar("F", bound=Callable[..., t.Any])


class _Sentinel:
    def __repr__(self) -> str:
        return "<no exception given>"


_sentinel: t.Any = _Sentinel()


class _AppCtxGlobals:
    """The ``g`` namespace: a plain object for data that lives as long as an app context.

    Every request gets its own, inside its own application context.
    """

    def get(self, name: str, default: t.Any | None = None) -> t.Any:
        """Return attribute ``name``, or ``default`` when it is not set."""
        return self.__dict__.get(name, default)

    def pop(self, name: str, default: t.Any = _sentinel) -> t.Any:
        """Remove attribute ``name`` and return it; ``default`` when missing, else KeyError."""
        if default is _sentinel:
            return self.__dict__.pop(name)
        return self.__dict__.pop(name, default)

    def setdefault(self, name: str, default: t.Any = None) -> t.Any:
        """Return attribute ``name``, setting it to ``default`` first when it is missing."""
        return self.__dict__.setdefault(name, default)

    def __getattr__(self, name: str) -> t.Any:
        # Only called for names not set; a clear AttributeError beats a silent None.
        raise AttributeError(
            f"'g' has no attribute {name!r}: nothing set it in this context"
        )

    def __contains__(self, item: str) -> bool:
        return item in self.__dict__

    def __iter__(self) -> Iterator[str]:
        return iter(self.__dict__)

    def __repr__(self) -> str:
        ctx = _cv_app.get(None)
        if ctx is not None:
            return f"<ctxflask.g of '{ctx.app.name}'>"
        return object.__repr__(self)


def _wrong_top(kind: str, popped: object, top: object | None) -> RuntimeError:
    return RuntimeError(
        f"Popped wrong {kind} context: {popped!r} is not the top ({top!r}).\n\n"
        f"Contexts must be popped in the reverse order of their pushes, in the same thread or"
        f" task that pushed them. Fix: use `with` blocks, or pop the inner context first."
    )


class _PushedInWith:
    """``with ctx:`` pushes the context and pops it, with the exception if one was raised."""

    def push(self) -> None:
        raise NotImplementedError

    def pop(self, exc: BaseException | None = _sentinel) -> None:
        raise NotImplementedError

    def __enter__(self) -> t.Self:
        self.push()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.pop(exc_value)


class AppContext(_PushedInWith):
    """The application context: the app, ``g`` and an app-level URL adapter.

    It is active during every request, CLI command and lifespan hook, and wherever code
    pushes one: ``with app.app_context(): ...``.
    """

    def __init__(self, app: App) -> None:
        self.app = app
        # Without SERVER_NAME there is no adapter to build: skip the call, it is per request.
        self.url_adapter: MapAdapter | None = (
            None
            if app.config["SERVER_NAME"] is None and not app._custom_url_adapter
            else app.create_url_adapter(None)
        )
        self.g: _AppCtxGlobals = app.app_ctx_globals_class()
        self._tokens: list[contextvars.Token[AppContext]] = []
        self._torn_down = False

    def push(self) -> None:
        """Make this the current application context."""
        signal = self._push()
        if signal is not None:
            bridge.run_steps(signal)

    def _push(self) -> bridge.Steps[None] | None:
        """Push; return the steps sending ``appcontext_pushed``, if anyone listens."""
        self._tokens.append(_cv_app.set(self))
        if appcontext_pushed.receivers:
            return send_steps(appcontext_pushed, self.app)
        return None

    def pop(self, exc: BaseException | None = _sentinel) -> None:
        """Pop this context, running the app's teardown callbacks the first time."""
        if exc is _sentinel:
            exc = sys.exc_info()[1]
        rest = self._pop(exc)
        if rest is not None:
            bridge.run_steps(rest)

    def _pop(
        self, exc: BaseException | None, checked: bool = False
    ) -> bridge.Steps[None] | None:
        """Pop, if it is the top context (``checked``: the caller saw it is). With no
        teardown callback or signal due, it is popped now and nothing is returned (no
        coroutine: every request pops); else the steps that run them and pop, to run."""
        if not checked:
            top = _cv_app.get(None)
            if top is not self:
                raise _wrong_top("app", self, top)
        last = len(self._tokens) == 1 and not self._torn_down
        app = self.app
        if appcontext_popped.receivers or (
            last
            and (app.teardown_appcontext_funcs or appcontext_tearing_down.receivers)
        ):
            return self._pop_steps(exc, last)
        if last:
            self._torn_down = True
        _cv_app.reset(self._tokens.pop())
        return None

    async def _pop_steps(self, exc: BaseException | None, last: bool) -> None:
        errors: list[BaseException] = []
        if last:
            self._torn_down = True
            await _run_collecting(teardown_appcontext(self.app, exc), errors)
        _cv_app.reset(self._tokens.pop())
        if appcontext_popped.receivers:
            await _run_collecting(send_steps(appcontext_popped, self.app), errors)
        _raise_together(errors, "popping the app context")

    def _copy(self) -> AppContext:
        """A context sharing this one's ``g``, for another thread or task; its pop does not
        run the teardown callbacks (this context's own pop does)."""
        copy = object.__new__(type(self))
        copy.__dict__.update(self.__dict__)
        copy._tokens = []
        copy._torn_down = True
        return copy

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self.app.name!r}>"


class RequestContext(_PushedInWith):
    """The request context: the request, its session, its URL adapter and flashed messages.

    Pushing it pushes an application context for its app when none is active for that app,
    and popping it pops that one too. Create one with ``app.test_request_context(...)`` or
    ``app.request_context(environ)``.
    """

    def __init__(
        self,
        app: App,
        environ: WSGIEnvironment,
        request: Request | None = None,
        session: SessionMixin | None = None,
    ) -> None:
        self.app = app
        if request is None:
            cls = app.request_class
            if builds_like_werkzeug(cls):
                request = request_from_environ(cls, environ)
            else:
                request = cls(environ)
            request.json_module = app.json
        self.request: Request = request
        # With the default binding, matching can do without an adapter: it is built
        # when something needs it (url_for, a route not matched before).
        self._url_adapter: t.Any = (
            UNBUILT if binds_lazily(app) else self._build_url_adapter()
        )
        self.flashes: list[tuple[str, str]] | None = None
        self._session: SessionMixin | None = session
        self._after_request_functions: list[AfterRequestCallable[t.Any]] = []
        #: ``(contexts, fn, args, kwargs)`` to run once the response is sent.
        self._background_tasks: list[
            tuple[
                list[t.Any], t.Callable[..., t.Any], tuple[t.Any, ...], dict[str, t.Any]
            ]
        ] = []
        self._tokens: list[
            tuple[contextvars.Token[RequestContext], AppContext | None]
        ] = []
        self._torn_down = False

    def _build_url_adapter(self) -> MapAdapter | None:
        try:
            return self.app.create_url_adapter(self.request)
        except HTTPException as e:
            self.request.routing_exception = e
            return None

    @property
    def url_adapter(self) -> MapAdapter | None:
        """The URL adapter bound to this request (``None`` if it could not be built)."""
        adapter = self._url_adapter
        if adapter is UNBUILT:
            adapter = self._url_adapter = self._build_url_adapter()
        return t.cast("MapAdapter | None", adapter)

    @url_adapter.setter
    def url_adapter(self, value: MapAdapter | None) -> None:
        self._url_adapter = value

    def copy(self) -> RequestContext:
        """A new context for the same request and session object, to push elsewhere."""
        return type(self)(
            self.app, self.request.environ, request=self.request, session=self._session
        )

    def match_request(self) -> None:
        """Match the request against the URL map; a routing error is kept for dispatch."""
        try:
            result = match(self.app, self)
            self.request.url_rule, view_args = result
            self.request.view_args = dict(view_args)
        except HTTPException as e:
            self.request.routing_exception = e

    #: The WebSocket connection, in the context of a WebSocket handshake.
    _websocket: Websocket | None = None

    @property
    def websocket(self) -> Websocket:
        """The WebSocket connection of this context (the ``websocket`` proxy)."""
        if self._websocket is not None:
            return self._websocket
        raise RuntimeError(
            "Working outside of WebSocket context.\n\nThis is an HTTP request, not a"
            " WebSocket connection. Fix: use `request` here, and `websocket` only in"
            " handlers registered with `@app.websocket(...)`."
        )

    @property
    def session(self) -> SessionMixin:
        """The session of this request, opened on first use; marks it as accessed."""
        session = self._session
        if session is None:
            session = self._session = open_session(self.app, self.request)
        session.accessed = True
        return session

    def push(self) -> None:
        """Make this the current request context (and its app's context, if needed)."""
        signal = self._push()
        if signal is not None:
            bridge.run_steps(signal)

    def _push(self) -> bridge.Steps[None] | None:
        """Push, with an app context for this app if none is active; return the steps
        sending ``appcontext_pushed`` for that one, if anyone listens."""
        app_ctx = _cv_app.get(None)
        signal = None
        if app_ctx is None or app_ctx.app is not self.app:
            app_ctx = self.app.app_context()
            signal = app_ctx._push()
        else:
            app_ctx = None
        self._tokens.append((_cv_request.set(self), app_ctx))
        if self._url_adapter is not None and self.request.url_rule is None:
            self.match_request()
        return signal

    def pop(self, exc: BaseException | None = _sentinel) -> None:
        """Pop this context, running teardown callbacks the first time; pops the app
        context that :meth:`push` pushed."""
        if exc is _sentinel:
            exc = sys.exc_info()[1]
        rest = self._pop(exc)
        if rest is not None:
            bridge.run_steps(rest)

    def _pop(self, exc: BaseException | None) -> bridge.Steps[None] | None:
        """Pop, if it is the top context (and the app context it pushed, the one below).
        With no teardown callback or signal due, both are popped now and nothing is
        returned (no coroutine: every request pops); else the steps that run them and
        pop, to run."""
        top = _cv_request.get(None)
        if top is not self:
            raise _wrong_top("request", self, top)
        app_ctx = self._tokens[-1][1]
        if app_ctx is not None and _cv_app.get(None) is not app_ctx:
            raise _wrong_top("app", app_ctx, _cv_app.get(None))
        last = len(self._tokens) == 1 and not self._torn_down
        if last and self._teardown_due():
            return self._pop_steps(exc, app_ctx)
        if last:
            self._torn_down = True
            self._release_request()
        token, _ = self._tokens.pop()
        _cv_request.reset(token)
        if app_ctx is None:
            return None
        return app_ctx._pop(exc, checked=True)

    async def _pop_steps(
        self, exc: BaseException | None, app_ctx: AppContext | None
    ) -> None:
        # The last pop of a request with teardown callbacks: run them, then pop both
        # contexts; every error is raised, together, at the end.
        errors: list[BaseException] = []
        self._torn_down = True
        await _run_collecting(teardown_request(self.app, exc), errors)
        self._release_request()
        token, _ = self._tokens.pop()
        _cv_request.reset(token)
        if app_ctx is not None:
            try:
                rest = app_ctx._pop(exc)
            except BaseException as e:
                errors.append(e)
            else:
                if rest is not None:
                    await _run_collecting(rest, errors)
        _raise_together(errors, "popping the request context")

    def _teardown_due(self) -> bool:
        app = self.app
        return bool(
            request_tearing_down.receivers or any(app.teardown_request_funcs.values())
        )

    def _release_request(self) -> None:
        request = self.request
        # Closing releases uploaded files; skip the call when none were parsed.
        if "files" in request.__dict__ or type(request).close is not _Request.close:
            request.close()
        # The request and its environ refer to each other: break the cycle so that both
        # go as soon as the request is done with.
        environ = request._environ  # None: never built (ASGI)
        if environ is not None and environ.get("werkzeug.request") is request:
            environ["werkzeug.request"] = None

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.request.url!r}"
            f" [{self.request.method}] of {self.app.name!r}>"
        )


# -- teardown: every callback runs; their errors are raised together -------------------------


async def _run_collecting(
    steps: bridge.Steps[None], errors: list[BaseException]
) -> None:
    try:
        await steps
    except BaseExceptionGroup as group:
        errors.extend(group.exceptions)
    except BaseException as e:
        errors.append(e)


def _raise_together(errors: list[BaseException], doing: str) -> None:
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise BaseExceptionGroup(f"several callbacks raised while {doing}", errors)


Calls = list[tuple[t.Any, tuple[t.Any, ...], dict[str, t.Any]]]


async def _run_all(calls: Calls) -> None:
    """Run every call even when some raise; then raise what they raised, together."""
    errors: list[BaseException] = []
    for f, args, kwargs in calls:
        try:
            await bridge.call(f, *args, **kwargs)
        except BaseException as e:
            errors.append(e)
    _raise_together(errors, "tearing down")


async def teardown_request(app: App, exc: BaseException | None) -> None:
    """Run every ``teardown_request`` callback (blueprints' first, each list in reverse
    order of registration), then send ``request_tearing_down``."""
    if not (any(app.teardown_request_funcs.values()) or request_tearing_down.receivers):
        return
    ctx = _cv_request.get()
    calls: Calls = [
        (f, (exc,), {})
        for key in chain(ctx.request.blueprints, (None,))
        if key in app.teardown_request_funcs
        for f in reversed(app.teardown_request_funcs[key])
    ]
    calls.extend(
        (r, (app,), {"exc": exc}) for r in request_tearing_down.receivers_for(app)
    )
    if calls:
        await _run_all(calls)


async def teardown_appcontext(app: App, exc: BaseException | None) -> None:
    """Run every ``teardown_appcontext`` callback in reverse order of registration, then
    send ``appcontext_tearing_down``."""
    if not (app.teardown_appcontext_funcs or appcontext_tearing_down.receivers):
        return
    calls: Calls = [(f, (exc,), {}) for f in reversed(app.teardown_appcontext_funcs)]
    calls.extend(
        (r, (app,), {"exc": exc}) for r in appcontext_tearing_down.receivers_for(app)
    )
    if calls:
        await _run_all(calls)


def has_app_context() -> bool:
    """Whether an application context is active in the current context."""
    return _cv_app.get(None) is not None


def has_request_context() -> bool:
    """Whether a request context is active in the current context."""
    return _cv_request.get(None) is not None


def after_this_request(f: AfterRequestCallable[t.Any]) -> AfterRequestCallable[t.Any]:
    """Run ``f(response)`` after the current request's view, before ``after_request``
    callbacks; ``f`` may be sync or async and must return the response."""
    ctx = _cv_request.get(None)
    if ctx is None:
        raise RuntimeError(
            "'after_this_request' can only be used while a request is handled.\n\n"
            "It registers a callback for the response of the current request, and none is"
            " active. Fix: call it from a view or a before_request hook."
        )
    ctx._after_request_functions.append(f)
    return f


def copy_current_app_context(f: F) -> F:
    """Wrap ``f`` (sync or async) to run inside the current application context.

    Use it to hand work to another thread or task: the wrapper pushes the captured context,
    calls ``f`` and pops it, so ``current_app`` and ``g`` are those of the caller.
    """
    ctx = _cv_app.get(None)
    if ctx is None:
        raise RuntimeError(
            "'copy_current_app_context' needs an active application context.\n\n"
            "There is no context to copy here. Fix: call it inside a request, a CLI command"
            " or a `with app.app_context():` block."
        )
    return _wrap_with([ctx], f)


def copy_current_request_context(f: F) -> F:
    """Wrap ``f`` (sync or async) to run inside a copy of the current request context.

    The copy shares the request and session objects. The wrapper may run in another thread
    or task, even after the request has ended.
    """
    ctx = _cv_request.get(None)
    if ctx is None:
        raise RuntimeError(
            "'copy_current_request_context' needs an active request context.\n\n"
            "There is no request to copy here. Fix: call it from a view or a hook, or in tests"
            " inside `with app.test_request_context(): ...`."
        )
    # Copies share the request, session and ``g``; the request's own contexts run the
    # teardown callbacks, never the copies.
    return _wrap_with([_cv_app.get(), ctx], f)


def _fresh_copies(contexts: list[AppContext | RequestContext]) -> list[t.Any]:
    """Copies of ``contexts`` to push elsewhere: they share the request, session and ``g``,
    and their pops never run teardown callbacks (the originals' pops do). Each use takes
    fresh copies, so that concurrent uses never share a context's push tokens."""
    copies: list[AppContext | RequestContext] = []
    for c in contexts:
        if isinstance(c, AppContext):
            copies.append(c._copy())
        else:
            copy = c.copy()
            copy._torn_down = True
            copies.append(copy)
    return copies


def _wrap_with(contexts: list[AppContext | RequestContext], f: F) -> F:
    """Wrap ``f`` to run with fresh copies of ``contexts`` pushed."""
    if bridge.is_async_callable(f):

        @functools.wraps(f)
        async def async_wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
            with contextlib.ExitStack() as stack:
                for c in _fresh_copies(contexts):
                    stack.enter_context(c)
                return await f(*args, **kwargs)

        return t.cast(F, async_wrapper)

    @functools.wraps(f)
    def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
        with contextlib.ExitStack() as stack:
            for c in _fresh_copies(contexts):
                stack.enter_context(c)
            return f(*args, **kwargs)

    return t.cast(F, wrapper)
