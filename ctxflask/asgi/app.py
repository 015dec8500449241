"""``app.asgi``: the ASGI 3 application of an app, one connection class per scope type."""

from __future__ import annotations

import typing as t

from .. import bridge
from .. import pipeline
from ..core.app import App
from ..core.ctx import RequestContext
from ..core.wrappers import builds_like_werkzeug
from ..core.wrappers import Request
from .http import HTTPConnection
from .lifespan import Lifespan
from .scope import request_from_scope
from .scope import ScopeEnviron
from .types import Receive
from .types import Scope
from .types import Send
from .websocket import WebsocketConnection
from .wsgi_middleware import serve_through

if t.TYPE_CHECKING:
    import anyio
    from _typeshed.wsgi import WSGIApplication

# The environ argument of a request context whose request is made already.
_NO_ENVIRON: t.Any = None


class ASGIApp:
    """The ASGI 3 application of a :class:`~ctxflask.Flask` app: ``uvicorn module:app.asgi``.

    Serves the ``http``, ``websocket`` and ``lifespan`` scopes, each with its connection
    class (swap one by subclassing and setting the class attribute). Sync steps run in a
    pool of worker threads of ``WORKER_THREADS`` (config, default 40) per app and event
    loop.
    """

    http_connection_class: type[HTTPConnection] = HTTPConnection
    websocket_connection_class: type[WebsocketConnection] = WebsocketConnection
    lifespan_class: type[Lifespan] = Lifespan

    def __init__(
        self,
        app: App,
        wsgi_middleware: t.Callable[[], WSGIApplication | None] | None = None,
    ) -> None:
        self.app = app
        #: Tells, at each request, the WSGI middleware around the app to run ``http``
        #: requests through (see :mod:`.wsgi_middleware`); ``None`` when there is none.
        self.wsgi_middleware = wsgi_middleware
        #: Background tasks running now, in this process (lifespan shutdown waits).
        self.running_tasks = 0
        self._tasks_done: anyio.Event | None = None
        #: The app's worker threads, by lane (sync views, async views), and whether
        #: async steps run in them: read from the config at the first request.
        self.lanes: tuple[bridge.Workers, bridge.Workers] | None = None
        self.async_in_thread = False
        #: The loop watchdog's threshold (``LOOP_BLOCK_WARNING``), and its step names.
        self.loop_block_warning: float | None = None
        self.step_names = pipeline.StepNames(app)
        # The request class, and whether requests of a scope may skip the environ.
        self._fast_requests: tuple[type[Request], bool] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            find = self.wsgi_middleware
            middleware = None if find is None else find()
            if middleware is None:
                await self.http_connection_class(self, scope, receive, send).run()
            else:
                await serve_through(self, middleware, scope, receive, send)
        elif kind == "lifespan":
            await self.lifespan_class(self, receive, send).run()
        elif kind == "websocket":
            await self.websocket_connection_class(self, scope, receive, send).run()
        else:
            raise ValueError(
                f"Unsupported ASGI scope type {kind!r}: ctxflask serves 'http', 'websocket'"
                " and 'lifespan' scopes."
            )

    def configure(self) -> tuple[bridge.Workers, bridge.Workers]:
        """Read how the app runs its steps from its config (``WORKER_THREADS``,
        ``ASYNC_STEPS``): once, when it starts serving."""
        app = self.app
        self.async_in_thread = app._async_steps_in_thread()
        self.loop_block_warning = app._loop_block_warning()
        lanes = self.lanes = (app._workers("sync views"), app._workers("async views"))
        return lanes

    def request_context(self, source: ScopeEnviron) -> RequestContext:
        """The request context of a scope. Its request is made without building its
        environ, unless the app's ``request_context`` or the request class's construction
        is customised: then ``app.request_context(environ)`` makes it, as under WSGI."""
        app = self.app
        cls = app.request_class
        fast = self._fast_requests
        if fast is None or fast[0] is not cls:
            fast = self._fast_requests = (
                cls,
                type(app).request_context is App.request_context
                and builds_like_werkzeug(cls),
            )
        if fast[1]:
            request = request_from_scope(cls, source)
            request.json_module = app.json
            return RequestContext(app, _NO_ENVIRON, request)
        return app.request_context(source.get())

    def span_details(self, scope: Scope) -> tuple[str, dict[str, str]]:
        """A request's span name and attributes, from the rule its path matches, for
        OpenTelemetry's ASGI middleware, which names a span before the app sees the
        request: ``OpenTelemetryMiddleware(app.asgi,
        default_span_details=app.asgi.span_details)`` names spans ``GET
        /items/<int:item_id>``, as its Flask instrumentation does, with ``http.route``.
        A path that matches no rule gives the method alone, not the path (a name per
        path would make one per URL scanned)."""
        method = scope.get("method", "")
        rule = self.match(scope)
        if rule is None:
            return method or scope.get("path", ""), {}
        name = f"{method} {rule}" if method else rule
        return name, {"http.route": rule}

    def match(self, scope: Scope) -> str | None:
        """The rule an ``http`` or ``websocket`` scope's path matches, or ``None``
        (routed as the request would be: host, subdomain, method)."""
        try:
            request = request_from_scope(Request, ScopeEnviron(scope))
            adapter = self.app.create_url_adapter(request)
            if adapter is None:
                return None
            rule, _ = adapter.match(
                return_rule=True, websocket=scope["type"] == "websocket"
            )
        except Exception:  # no match (404, 405, a redirect), an untrusted host, ...
            return None
        return rule.rule

    def __repr__(self) -> str:
        return f"<ASGIApp of {self.app.name!r}>"
