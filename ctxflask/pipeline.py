"""The request pipeline, written once for every entry point.

    handle_request   push the contexts, full_dispatch, handle what it raised
      full_dispatch  request_started, preprocess, dispatch, finalize
      finalize       make_response, process_response, request_finished
    (the driver sends the response; a streamed body runs inside the contexts)
    handle_body_error  a streamed body failed before its first chunk: the error response
    finish_request   pop the contexts: teardown_request, teardown_appcontext
    run_background_tasks, start_serving, stop_serving

Each function is a coroutine of *steps* (:mod:`ctxflask.bridge`): it knows no protocol and
no event loop, and reads the request through its properties, never a WSGI environ. It runs
inside the request's context and hands every user callable to the driver through
:func:`~ctxflask.bridge.call`, so views, hooks, error handlers, teardowns and signal
receivers may each be sync or async. The drivers (:mod:`ctxflask.wsgi`,
:mod:`ctxflask.asgi`) call only the entry points above; the WSGI driver runs the steps
from a server thread, the ASGI driver from an event loop, and ``Flask``'s public methods
(``app.preprocess_request()`` and so on) from the caller's code: same steps, same
semantics.
"""

from __future__ import annotations

import types
import typing as t
import weakref
from itertools import chain

from werkzeug.exceptions import BadRequest
from werkzeug.exceptions import BadRequestKeyError
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import InternalServerError
from werkzeug.routing import RoutingException
from werkzeug.routing import WebsocketMismatch

from . import bridge
from .bridge import call
from .bridge import is_async_callable
from .bridge import Ready
from .bridge import shield_rest
from .core.ctx import _fresh_copies
from .core.errors import find_error_handler
from .core.errors import WebSocketDisconnect
from .core.globals import _cv_app
from .core.globals import _cv_request
from .core.sessions import needs_refresh
from .core.sessions import open_session
from .core.sessions import opens_eagerly
from .core.signals import got_request_exception
from .core.signals import request_finished
from .core.signals import request_started
from .core.signals import send_steps

T = t.TypeVar("T")

if t.TYPE_CHECKING:
    from .bridge import Steps
    from .core.app import App
    from .core.ctx import RequestContext
    from .core.typing import ResponseReturnValue
    from .core.wrappers import Response


def is_streamed(response: Response) -> bool:
    """Whether the response's body is an iterator to run inside the request's contexts
    (a generator, sync or async); a sequence or a file is not."""
    return not response.is_sequence and not response.direct_passthrough


async def handle_request(
    app: App,
    ctx: RequestContext,
    dispatch_steps: t.Callable[[App], t.Coroutine[t.Any, t.Any, Response | None]]
    | None = None,
) -> tuple[Response, BaseException | None, bool]:
    """Push ``ctx``, open the session if its interface may block, produce the response
    with ``dispatch_steps`` (:func:`full_dispatch` by default), and pop the contexts
    unless its body streams.

    Returns the response, the exception that was handled into it (an unhandled exception
    becomes a 500 response; it is returned for teardown), and whether the contexts are
    popped already; if not, the driver calls :func:`finish_request` once the body is
    sent. When the request ends in an exception instead (propagated in testing, or not an
    ``Exception``), the contexts are popped before it is raised.
    """
    error: BaseException | None = None
    response: t.Any
    try:
        try:
            signal = ctx._push()
            if signal is not None:
                await signal
            if ctx._session is None and opens_eagerly(app.session_interface):
                ctx._session = await call(open_session, app, ctx.request)
            response = await (dispatch_steps or full_dispatch)(app)
        except Exception as e:
            error = e
            response = await handle_exception(app, e)
        # A WebSocket handler's response (a rejection) never streams; nor does the usual
        # body, a list.
        if (
            response is not None
            and type(response.response) is not list
            and ctx._websocket is None
            and is_streamed(response)
        ):
            return response, error, False
        # A context pushed and left on top raises here: a bug, raised as it is.
        if error is None and ctx.request._context_preserver is None:
            rest = ctx._pop(None)  # as usual: without a call of its own
        else:
            rest = _pop_contexts(app, ctx, error)
        try:
            if rest is not None:
                await rest
        except Exception as e:
            if _propagates(app):
                raise
            # The response is made: a teardown callback failing after it is logged, and
            # the client still gets it (a streamed one's teardown runs after it is sent).
            app.logger.error(
                "Exception in teardown of %s [%s]; the response is sent",
                ctx.request.path,
                ctx.request.method,
                exc_info=e,
            )
    except BaseException as e:
        if ctx._tokens:
            # Raised on (testing), or cancelled: the contexts are popped all the same.
            await shield_rest()
            await finish_request(app, ctx, e)
        raise
    return response, error, True


async def finish_request(
    app: App, ctx: RequestContext, error: BaseException | None
) -> None:
    """Pop the request's contexts, running the teardown callbacks once."""
    rest = _pop_contexts(app, ctx, error)
    if rest is not None:
        await rest


def _pop_contexts(
    app: App, ctx: RequestContext, error: BaseException | None
) -> Steps[None] | None:
    # Pop at once when nothing is due, as usual; else return the steps that pop.
    preserve = ctx.request._context_preserver
    if preserve is not None:  # the test client keeps the contexts to inspect
        preserve(_cv_app.get())
        preserve(_cv_request.get())
    if error is not None and app.should_ignore_error(error):
        error = None
    return ctx._pop(error)


async def full_dispatch(app: App) -> Response:
    """Preprocess, dispatch and finalize the current request; user exceptions become
    responses through the error handlers."""
    app._got_first_request = True
    try:
        if request_started.receivers:
            await send_steps(request_started, app)
        rv = None
        if any(app.before_request_funcs.values()) or any(
            app.url_value_preprocessors.values()
        ):
            rv = await preprocess(app)
        if rv is None:
            rv = await dispatch(app)
    except Exception as e:
        rv = await handle_user_exception(app, e)
    return await finalize(app, rv)


def finalize(
    app: App,
    rv: ResponseReturnValue | HTTPException,
    from_error_handler: bool = False,
) -> t.Awaitable[Response]:
    """Turn a view's return value into the response, then run ``process_response`` and
    send ``request_finished``; to await. Without callbacks, a session or a signal
    receiver, that is all: then it needs no coroutine (every request runs it)."""
    response = app.make_response(rv)
    ctx = _cv_request.get()
    processed = bool(
        ctx._after_request_functions
        or any(app.after_request_funcs.values())
        or ctx._session is not None
        or ctx.request._has_cookies
    )
    if processed or request_finished.receivers:
        return _finalize_steps(app, response, processed, from_error_handler)
    return Ready(response)


async def _finalize_steps(
    app: App, response: Response, processed: bool, from_error_handler: bool
) -> Response:
    try:
        if processed:
            response = await process_response(app, response)
        if request_finished.receivers:
            await send_steps(request_finished, app, response=response)
    except Exception:
        if not from_error_handler:
            raise
        app.logger.exception(
            "Request finalizing failed with an error while handling an error"
        )
    return response


def _hook_keys(ctx: RequestContext) -> tuple[str | None, ...]:
    """The app (``None``) and the matched blueprints, outermost first."""
    blueprints = ctx.request.blueprints
    if not blueprints:
        return (None,)
    return (None, *reversed(blueprints))


async def preprocess(app: App) -> ResponseReturnValue | None:
    """Run URL value preprocessors, then ``before_request`` callbacks until one returns a
    value, which is then the response."""
    return await _preprocess(app, app.before_request_funcs)


async def _preprocess(
    app: App, before_funcs: dict[str | None, list[t.Any]]
) -> ResponseReturnValue | None:
    ctx = _cv_request.get()
    keys = _hook_keys(ctx)
    request = ctx.request
    for key in keys:
        if key in app.url_value_preprocessors:
            for f in app.url_value_preprocessors[key]:
                await call(f, request.endpoint, request.view_args)
    for key in keys:
        if key in before_funcs:
            for before in before_funcs[key]:
                rv = await call(before)
                if rv is not None:
                    return t.cast("ResponseReturnValue", rv)
    return None


def dispatch(app: App) -> t.Awaitable[ResponseReturnValue]:
    """The call of the matched rule's view with the URL arguments, to await (a routing
    error is raised here, and automatic OPTIONS answered). A plain function, not a
    coroutine: every request runs it, and it needs no frame of its own in the steps."""
    request = _cv_request.get().request
    if request.routing_exception is not None:
        if isinstance(request.routing_exception, WebsocketMismatch):
            raise _websocket_mismatch(_cv_request.get())
        app.raise_routing_exception(request)
    rule = request.url_rule
    if rule is None:  # no URL adapter could be built for this request
        raise InternalServerError("The request could not be routed.")
    if request.method == "OPTIONS" and getattr(
        rule, "provide_automatic_options", False
    ):
        return Ready(app.make_default_options_response())
    return call(app.view_functions[rule.endpoint], **(request.view_args or {}))


def _websocket_mismatch(ctx: RequestContext) -> BadRequest:
    if ctx._websocket is not None:
        return BadRequest(
            "This URL serves HTTP requests, not WebSocket connections. Fix: connect the"
            " WebSocket to a URL registered with @app.websocket(...)."
        )
    return BadRequest(
        "This URL is a WebSocket endpoint. WebSockets need the ASGI entry point"
        " (`uvicorn module:app.asgi`) and a WebSocket client; the WSGI entry point and"
        " plain HTTP requests cannot use it."
    )


async def handle_websocket(
    app: App, ctx: RequestContext
) -> tuple[Response | None, BaseException | None]:
    """Push ``ctx``, run the WebSocket handler between its hooks, and pop the contexts.

    Returns the response that rejects the handshake (``None`` when the handler accepted
    or closed the connection itself), and the unhandled exception that was turned into
    a 500, if any. A client that disconnected ends the handler normally.
    """
    response, error, _ = await handle_request(app, ctx, _websocket_dispatch)
    return response, error


async def _websocket_dispatch(app: App) -> Response | None:
    ctx = _cv_request.get()
    try:
        rv = await _preprocess(app, app.before_websocket_funcs)
        if rv is None:
            rv = await dispatch(app)
    except WebSocketDisconnect:
        rv = None  # the client left: a normal end of the conversation
    except Exception as e:
        rv = await handle_user_exception(app, e)
    response = None if rv is None else app.make_response(rv)
    for key in chain(ctx.request.blueprints, (None,)):
        if key in app.after_websocket_funcs:
            for f in reversed(app.after_websocket_funcs[key]):
                response = await call(f, response)
    return response


async def process_response(app: App, response: Response) -> Response:
    """Run ``after_this_request`` then ``after_request`` callbacks, and save the session."""
    ctx = _cv_request.get()
    for f in ctx._after_request_functions:
        response = await call(f, response)
    for key in chain(ctx.request.blueprints, (None,)):
        if key in app.after_request_funcs:
            for f in reversed(app.after_request_funcs[key]):
                response = await call(f, response)
    interface = app.session_interface
    session = ctx._session
    if session is None and needs_refresh(app, ctx.request):
        session = ctx._session = await call(open_session, app, ctx.request)
    if session is not None and not interface.is_null_session(session):
        await call(interface.save_session, app, session, response)
    return response


def _find_handler(app: App, e: BaseException) -> t.Any:
    return find_error_handler(app, e, _cv_request.get().request.blueprints)


async def handle_user_exception(
    app: App, e: Exception
) -> ResponseReturnValue | HTTPException:
    """Find and run the error handler for ``e``; with none, HTTP errors become their own
    response and other exceptions are raised again."""
    if isinstance(e, BadRequestKeyError) and (
        app.debug or app.config["TRAP_BAD_REQUEST_ERRORS"]
    ):
        e.show_exception = True
    if isinstance(e, HTTPException) and not app.trap_http_exception(e):
        return await handle_http_exception(app, e)
    handler = _find_handler(app, e)
    if handler is None:
        raise e
    return t.cast("ResponseReturnValue", await call(handler, e))


async def handle_http_exception(
    app: App, e: HTTPException
) -> ResponseReturnValue | HTTPException:
    """Run the handler registered for an HTTP error, or answer with the error itself.
    Redirects from routing and errors without a code are never handled."""
    if e.code is None or isinstance(e, RoutingException):
        return e
    handler = _find_handler(app, e)
    if handler is None:
        return e
    return t.cast("ResponseReturnValue", await call(handler, e))


async def handle_exception(app: App, e: Exception) -> Response:
    """An unhandled exception: send ``got_request_exception``, then raise it again when
    exceptions propagate (testing, debug), else log it and answer 500 through the
    ``InternalServerError`` handler, which gets ``original_exception``."""
    if got_request_exception.receivers:
        await send_steps(got_request_exception, app, exception=e)
    if _propagates(app):
        raise e
    app.log_exception((type(e), e, e.__traceback__))
    server_error: ResponseReturnValue | InternalServerError
    server_error = InternalServerError(original_exception=e)
    handler = _find_handler(app, server_error)
    if handler is not None:
        server_error = await call(handler, server_error)
    return await finalize(app, server_error, from_error_handler=True)


def _propagates(app: App) -> bool:
    """Whether exceptions propagate to the caller (testing, debug) rather than being
    logged (``PROPAGATE_EXCEPTIONS``)."""
    propagate = app.config["PROPAGATE_EXCEPTIONS"]
    if propagate is None:
        return app.testing or app.debug
    return bool(propagate)


async def handle_body_error(
    app: App, e: Exception
) -> tuple[Response, BaseException | None]:
    """A streamed body raised ``e`` before its first chunk, so nothing of the response
    has been sent: ``e`` is handled as the view's own exception would be (its error
    handler, else a logged 500), into the response to send instead. Returns it and the
    exception left unhandled, for teardown. ``after_request`` hooks run on it too, as on
    any error response: the response they saw before is never sent."""
    try:
        rv = await handle_user_exception(app, e)
        return await finalize(app, rv), None
    except Exception as unhandled:
        return await handle_exception(app, unhandled), unhandled


async def run_background_tasks(app: App, ctx: RequestContext) -> None:
    """Run the request's background tasks, in order, each with fresh copies of the
    contexts it was added in. A failure is logged and the next task runs."""
    tasks, ctx._background_tasks = ctx._background_tasks, []
    for contexts, fn, args, kwargs in tasks:
        copies = _fresh_copies(contexts)
        for copy in copies:
            copy.push()
        try:
            await call(fn, *args, **kwargs)
        except Exception:
            app.logger.exception("Background task %r failed", fn)
        finally:
            for copy in reversed(copies):
                rest = copy._pop(None)
                if rest is not None:
                    await rest


def start_serving(app: App) -> Steps[None] | None:
    """The steps running the ``before_serving`` callbacks in an app context; ``None``
    when there are none."""
    funcs = app.before_serving_funcs
    return _run_in_app_context(app, funcs) if funcs else None


def stop_serving(app: App) -> Steps[None] | None:
    """The steps running the ``after_serving`` callbacks in an app context; ``None``
    when there are none."""
    funcs = app.after_serving_funcs
    return _run_in_app_context(app, funcs) if funcs else None


async def _run_in_app_context(app: App, funcs: t.Iterable[t.Any]) -> None:
    # Each of ``funcs`` in turn inside a new app context; the context is popped, with its
    # teardown, whatever happens.
    app_ctx = app.app_context()
    signal = app_ctx._push()
    error: BaseException | None = None
    try:
        if signal is not None:
            await signal
        for f in funcs:
            await call(f)
    except BaseException as e:
        error = e
        raise
    finally:
        rest = app_ctx._pop(error)
        if rest is not None:
            await rest


def streams_request_body(app: App, ctx: RequestContext) -> bool:
    """Whether the request's view reads its body as it arrives (marked with
    :func:`~ctxflask.stream_request_body`), so that no step may receive it ahead."""
    rule = ctx.request.url_rule
    if rule is None:
        return False
    view = app.view_functions.get(rule.endpoint)
    return getattr(view, "__ctxflask_streams_body__", False) is True


class RequestWorkers:
    """Where one request's work for worker threads goes under ASGI, chosen at its first
    trip, once routing has matched its view.

    A request served by a sync view sends it to one pool of the app's, a request served
    by an async view to another (of the same size): slow sync views that fill their pool
    never hold up the sync hooks of async views. With ``async_in_thread``
    (``ASYNC_STEPS = "thread"``) all of a request's trips go to one thread, a pinned
    session, so that its async steps share that thread's event loop as they share the
    server's in "loop" mode; :meth:`aclose` ends the session when the request is done.
    """

    # Every request makes one, most never use it: only what the first trip needs is set.
    _runner: t.Any = None
    #: The worker session the request holds (in "thread" mode, from its first trip), to
    #: give back with :meth:`aclose`; ``None`` when it holds none.
    session: bridge.WorkerSession | None = None

    def __init__(
        self,
        ctx: RequestContext,
        lanes: tuple[bridge.Workers, bridge.Workers],
        async_in_thread: bool,
    ) -> None:
        self.ctx = ctx
        self.lanes = lanes  # (sync views, async views)
        self.async_in_thread = async_in_thread

    async def run(self, fn: t.Callable[..., T], /, *args: t.Any) -> T:
        """Call ``fn(*args)`` in a worker thread of this request's lane."""
        runner = self._runner
        if runner is None:
            runner = self._runner = self._choose()
        result: T = await runner.run(fn, *args)
        return result

    def _choose(self) -> t.Any:
        request = self.ctx.request
        view = (
            None
            if request.url_rule is None
            else self.ctx.app.view_functions.get(request.url_rule.endpoint)
        )
        workers = self.lanes[1 if view is not None and is_async_callable(view) else 0]
        if self.async_in_thread:
            session = self.session = workers.session()
            return session
        return workers

    async def aclose(self) -> None:
        """End the request's pinned session, if it has one (shielded: a cancelled
        request still gives its thread back)."""
        if self.session is not None:
            await self.session.aclose()


class StepNames:
    """What the loop watchdog calls the step a code object belongs to: ``view 'index'``,
    ``before_request hook 'load_user'``, ... (decorated functions by what they wrap). The
    names are collected from the app's registries when first asked for, once a loop has
    blocked (the app is set up by then)."""

    def __init__(self, app: App) -> None:
        # Weakly: the watchdog keeps the step names of the loops it watched.
        self._app = weakref.ref(app)
        self._names: dict[types.CodeType, str] | None = None

    def __call__(self, code: types.CodeType) -> str | None:
        names = self._names
        if names is None:
            names = self._names = self._collect()
        return names.get(code)

    def _collect(self) -> dict[types.CodeType, str]:
        app = self._app()
        names: dict[types.CodeType, str] = {}
        if app is None:
            return names

        def add(fn: t.Any, label: str) -> None:
            while fn is not None:  # the function, and what it decorates
                code = getattr(fn, "__code__", None)
                if code is not None:
                    names.setdefault(code, label)
                fn = getattr(fn, "__wrapped__", None)

        for endpoint, view in app.view_functions.items():
            add(view, f"view {endpoint!r}")
            view_class = getattr(view, "view_class", None)
            for method in ("dispatch_request", *_HTTP_METHODS):
                add(getattr(view_class, method, None), f"view {endpoint!r}")
        hooks: dict[str, t.Any] = {
            "before_request": app.before_request_funcs,
            "after_request": app.after_request_funcs,
            "teardown_request": app.teardown_request_funcs,
            "before_websocket": app.before_websocket_funcs,
            "after_websocket": app.after_websocket_funcs,
            "url_value_preprocessor": app.url_value_preprocessors,
            "context_processor": app.template_context_processors,
        }
        for kind, by_key in hooks.items():
            for funcs in by_key.values():
                for f in funcs:
                    add(f, f"{kind} hook {getattr(f, '__qualname__', f)!r}")
        for kind, funcs in (
            ("teardown_appcontext", app.teardown_appcontext_funcs),
            ("before_serving", app.before_serving_funcs),
            ("after_serving", app.after_serving_funcs),
        ):
            for f in funcs:
                add(f, f"{kind} hook {getattr(f, '__qualname__', f)!r}")
        for spec in app.error_handler_spec.values():
            for handlers in spec.values():
                for exc_class, handler in handlers.items():
                    add(handler, f"error handler for {exc_class.__name__}")
        return names


_HTTP_METHODS = ("get", "post", "put", "patch", "delete", "head", "options")
