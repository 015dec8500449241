"""The public application class: :class:`Flask` composes the protocol-free core
(:class:`ctxflask.core.app.App`) with the entry points, the test clients and the CLI.

- ``app(environ, start_response)`` and :meth:`Flask.wsgi_app`: the WSGI entry point
  (:mod:`ctxflask.wsgi`);
- :attr:`Flask.asgi`: the ASGI one (:mod:`ctxflask.asgi`);
- :meth:`Flask.run`: werkzeug's development server; :attr:`Flask.cli`: the app's commands;
- :meth:`Flask.test_client`, :meth:`Flask.test_cli_runner`,
  :meth:`Flask.test_request_context` (:mod:`ctxflask.testing`);
- Flask's pipeline methods (``preprocess_request()``, ``full_dispatch_request()``, ...),
  which run the pipeline's steps from the caller's code (:mod:`ctxflask.pipeline`).
"""

from __future__ import annotations

import collections.abc as cabc
import contextvars
import functools
import importlib.util
import os
import sys
import types
import typing as t
import weakref

from . import bridge
from . import pipeline
from .core import typing as ft
from .core.app import App
from .core.app import T_shell_context_processor as T_shell_context_processor
from .core.app import T_teardown as T_teardown
from .core.app import T_template_filter as T_template_filter
from .core.app import T_template_global as T_template_global
from .core.app import T_template_test as T_template_test
from .core.globals import _cv_request
from .core.signals import request_finished
from .core.wrappers import response_headers
from .wsgi import WSGIApp

if t.TYPE_CHECKING:
    from importlib.machinery import ModuleSpec

    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIApplication
    from _typeshed.wsgi import WSGIEnvironment

    from .asgi import ASGIApp
    from .asgi.wsgi_middleware import HandOff
    from .cli import AppGroup
    from .core.ctx import RequestContext
    from .core.wrappers import Request
    from .core.wrappers import Response
    from .testing import FlaskClient
    from .testing import FlaskCliRunner

_T = t.TypeVar("_T")


class _FlaskType(type):
    """The class of :class:`Flask`: a ``__call__`` assigned to the class after it is made
    (an integration's WSGI middleware: sentry-sdk's Flask integration patches
    ``Flask.__call__`` with a two-argument WSGI function) is wrapped so that the app
    stays its own ASGI entry point, ``app(scope, receive, send)``, and its ASGI requests
    pass that middleware too (see :meth:`Flask._wsgi_middleware`)."""

    def __setattr__(cls, name: str, value: t.Any) -> None:
        if name == "__call__" and callable(value) and not _is_dispatcher(value):
            value = _dispatcher(value)
        super().__setattr__(name, value)


def _is_dispatcher(fn: t.Any) -> bool:
    return getattr(fn, "__ctxflask_dispatcher__", False) is True


def _in_sentry_asgi_middleware() -> bool:
    """Whether sentry-sdk's ASGI middleware serves the request being called: its own
    transaction and scopes are there already, and the WSGI middleware that its Flask
    integration assigns to ``Flask.__call__`` would make a second transaction."""
    module = sys.modules.get("sentry_sdk.integrations.asgi")
    applied = getattr(module, "_asgi_middleware_applied", None)
    return applied is not None and applied.get(False) is True


def _dispatcher(wsgi_call: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
    """``wsgi_call`` as the app's ``__call__``: WSGI's two arguments go to it, ASGI's
    three to ``app.asgi``, which runs the request through it."""

    @functools.wraps(wsgi_call)
    def __call__(self: Flask, *args: t.Any) -> t.Any:
        if len(args) == 3:
            return self.asgi(*args)
        return wsgi_call(self, *args)

    _mark_dispatcher(__call__)
    return __call__


def _mark_dispatcher(fn: t.Any) -> None:
    fn.__ctxflask_dispatcher__ = True
    # ASGI servers tell ASGI 3 apps by ``asyncio.iscoroutinefunction(app.__call__)``
    # (uvicorn's "auto" interface): this marker makes ``uvicorn module:app`` and
    # ``uvicorn --factory`` take the app object as ASGI 3, while WSGI servers call it as
    # before. (Python < 3.14 reads the marker; later versions, use ``app.asgi``.) The
    # marker is asyncio's own object: until a server imports asyncio, it is set later.
    coroutines = sys.modules.get("asyncio.coroutines")
    if coroutines is not None:
        _set_coroutine_marker(fn, coroutines)
        return
    _unmarked.add(fn)
    if _MarkWhenAsyncioLoads not in sys.meta_path:
        sys.meta_path.insert(0, _MarkWhenAsyncioLoads)


def _set_coroutine_marker(fn: t.Any, coroutines: types.ModuleType) -> None:
    if hasattr(coroutines, "_is_coroutine"):
        fn._is_coroutine = coroutines._is_coroutine


#: Dispatchers made before asyncio was imported, marked when it is.
_unmarked: weakref.WeakSet[t.Any] = weakref.WeakSet()


class _MarkWhenAsyncioLoads:
    """A meta path finder (the class itself, never instantiated): when
    ``asyncio.coroutines`` is first imported, it marks the :data:`_unmarked` dispatchers
    once the module has run, and steps out of ``sys.meta_path``. Importing asyncio for
    its marker alone would cost every WSGI process about 8 ms."""

    @staticmethod
    def find_spec(
        name: str, path: t.Any = None, target: t.Any = None
    ) -> ModuleSpec | None:
        if name != "asyncio.coroutines":
            return None
        if _MarkWhenAsyncioLoads in sys.meta_path:
            sys.meta_path.remove(_MarkWhenAsyncioLoads)
        spec = importlib.util.find_spec(name)  # by the other finders
        loader = None if spec is None else spec.loader
        if loader is None:
            return spec
        run_module = loader.exec_module

        def exec_module(module: types.ModuleType) -> None:
            run_module(module)
            for fn in list(_unmarked):
                _set_coroutine_marker(fn, module)
            _unmarked.clear()

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


class Flask(App, metaclass=_FlaskType):
    """A ctxflask application: one object for the WSGI entry point (the app itself) and
    the ASGI one (``app.asgi``).

    :param import_name: the name of the application's module or package, usually
        ``__name__``; it locates resources, templates and static files.
    :param static_url_path: the URL prefix of static files (default: ``/static``).
    :param static_folder: the folder of static files, relative to ``root_path``
        (default: ``static``); ``None`` serves none.
    :param static_host: the host of the static route, with ``host_matching``.
    :param host_matching: match rules by host (werkzeug's ``Map(host_matching=True)``).
    :param subdomain_matching: match rules by subdomain of ``SERVER_NAME``.
    :param template_folder: the folder of templates, relative to ``root_path``.
    :param instance_path: the instance folder; found from the package when not given.
    :param instance_relative_config: load relative config paths from the instance folder.
    :param root_path: the application's folder, when ``import_name`` cannot tell.
    """

    #: The class of :meth:`test_client` (default: :class:`~ctxflask.testing.FlaskClient`).
    test_client_class: type[FlaskClient] | None = None
    #: The class of :meth:`test_cli_runner` (default: :class:`~ctxflask.testing.FlaskCliRunner`);
    #: it is created with the app as first argument.
    test_cli_runner_class: type[FlaskCliRunner] | None = None

    @functools.cached_property
    def cli(self) -> AppGroup:
        """The click group of the app's commands: ``@app.cli.command()``. They run inside
        the app's context under the ``ctxflask`` command."""
        from .cli import AppGroup  # click loads with the first use of the CLI

        # Named after the app, as in Flask (it shows in ``app.cli`` help).
        return AppGroup(self.name)

    @functools.cached_property
    def _wsgi(self) -> WSGIApp:
        return WSGIApp(self)

    # -- the pipeline, callable from code (tests, extensions) ----------------------------
    #
    # These run the same steps as the entry points, from the caller's code and context.

    def full_dispatch_request(self) -> Response:
        """Dispatch the current request, with pre- and post-processing and error handling."""
        return bridge.run_steps(pipeline.full_dispatch(self))

    def preprocess_request(self) -> ft.ResponseReturnValue | None:
        """Run URL value preprocessors and ``before_request`` callbacks; a value other than
        ``None`` is the response to send instead of calling the view."""
        return bridge.run_steps(pipeline.preprocess(self))

    def dispatch_request(self) -> ft.ResponseReturnValue:
        """Call the view matched for the current request and return its return value."""
        return bridge.run_steps(_awaited(pipeline.dispatch(self)))

    def finalize_request(
        self,
        rv: ft.ResponseReturnValue | BaseException,
        from_error_handler: bool = False,
    ) -> Response:
        """Make the response of ``rv`` and run ``process_response`` on it."""
        return bridge.run_steps(
            _awaited(pipeline.finalize(self, rv, from_error_handler))  # type: ignore[arg-type]
        )

    def process_response(self, response: Response) -> Response:
        """Run ``after_this_request`` and ``after_request`` callbacks; save the session."""
        return bridge.run_steps(pipeline.process_response(self, response))

    def handle_user_exception(
        self, e: Exception
    ) -> ft.ResponseReturnValue | BaseException:
        """Run the handler for an exception raised during dispatch, or raise it again."""
        return bridge.run_steps(pipeline.handle_user_exception(self, e))

    def handle_http_exception(self, e: t.Any) -> ft.ResponseReturnValue | BaseException:
        """Run the handler for an HTTP error, or return the error as the response."""
        return bridge.run_steps(pipeline.handle_http_exception(self, e))

    def handle_exception(self, e: Exception) -> Response:
        """Handle an exception no handler caught: propagate it in testing/debug, else log
        it and answer 500."""
        return bridge.run_steps(pipeline.handle_exception(self, e))

    # -- entry points, tests, serving -----------------------------------------------------

    def test_request_context(self, *args: t.Any, **kwargs: t.Any) -> RequestContext:
        """A request context for a request built from werkzeug ``EnvironBuilder``
        arguments (``path``, ``method``, ``json``, ``data``, ``headers``, ...), for tests:
        ``with app.test_request_context("/?a=1"): ...``."""
        from .testing import EnvironBuilder

        builder = EnvironBuilder(self, *args, **kwargs)
        try:
            return self.request_context(builder.get_environ())
        finally:
            builder.close()

    def test_client(
        self, use_cookies: bool = True, *, asgi: bool = False, **kwargs: t.Any
    ) -> FlaskClient:
        """A test client for this app: through its WSGI entry point, or with
        ``asgi=True`` through ``app.asgi`` (same API, see :class:`~ctxflask.testing.ASGIClient`)."""
        cls = self.test_client_class
        if asgi:
            from .testing import ASGIClient

            cls = (
                ASGIClient
                if cls is None
                else type("ASGI" + cls.__name__, (ASGIClient, cls), {})
            )
        elif cls is None:
            from .testing import FlaskClient

            cls = FlaskClient
        return cls(self, self.response_class, use_cookies=use_cookies, **kwargs)

    def test_cli_runner(self, **kwargs: t.Any) -> FlaskCliRunner:
        """A runner for the app's CLI commands in tests: ``runner.invoke(args=["cmd"])``
        runs ``app.cli`` with this app loaded (see :class:`~ctxflask.testing.FlaskCliRunner`).

        :param kwargs: arguments of ``click.testing.CliRunner``.
        """
        cls = self.test_cli_runner_class
        if cls is None:
            from .testing import FlaskCliRunner

            cls = FlaskCliRunner
        return cls(self, **kwargs)

    def wsgi_app(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> cabc.Iterable[bytes]:
        """The WSGI application. Wrap this one with middleware
        (``app.wsgi_app = Middleware(app.wsgi_app)``) to keep ``app`` itself; ASGI
        requests pass it too (see :mod:`ctxflask.asgi.wsgi_middleware`)."""
        handoff = _handoff_for(self)
        if handoff is None and self._wsgi_middleware() is None:
            return self._wsgi(environ, start_response)
        # Middleware is there: as in Flask, start the response inside the request's
        # contexts, before its teardown, for middleware whose start_response reads the
        # request (OpenTelemetry's Flask instrumentation).
        early = _EarlyStart(self, environ, start_response)
        token = _early_start.set(early)
        try:
            if handoff is not None:
                return handoff.serve(environ, early)
            return self._wsgi(environ, early)
        finally:
            _early_start.reset(token)

    def _wsgi_middleware(self) -> WSGIApplication | None:
        """The WSGI middleware around the app, to run ASGI requests through: the app
        itself as a WSGI callable (``app(environ, start_response)``) when a ``__call__``
        was assigned to its class or a ``wsgi_app`` to it; ``None`` when neither was."""
        call = type(self).__call__
        if call is _FLASK_CALL and "wsgi_app" not in self.__dict__:
            return None  # the usual case, on every request
        wsgi_app = self.__dict__.get("wsgi_app")
        wrapped: WSGIApplication | None = None
        if wsgi_app is not None and (
            getattr(wsgi_app, "__self__", None) is not self
            or getattr(wsgi_app, "__func__", None) is not _FLASK_WSGI_APP
        ):
            wrapped = wsgi_app  # not the app's own method put back (uninstrumented)
        if (
            call is not _FLASK_CALL
            and _is_dispatcher(call)
            and not _in_sentry_asgi_middleware()
        ):
            return self
        return wrapped

    @functools.cached_property
    def asgi(self) -> ASGIApp:
        """The ASGI 3 application of this app: ``uvicorn module:app.asgi``,
        ``hypercorn module:app.asgi``. (gunicorn's ASGI worker loads plain names only:
        ``gunicorn -k asgi module:app``, see :meth:`__call__`.)

        Assign to it to add ASGI middleware: ``app.asgi = Middleware(app.asgi)``.
        """
        from .asgi import ASGIApp  # the ASGI side (and anyio) loads with its first use

        return ASGIApp(self, self._wsgi_middleware)

    @t.overload
    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse, /
    ) -> cabc.Iterable[bytes]: ...

    @t.overload
    def __call__(
        self, scope: t.Any, receive: t.Any, send: t.Any, /
    ) -> cabc.Awaitable[None]: ...

    def __call__(self, *args: t.Any) -> t.Any:
        """The WSGI entry point, ``app(environ, start_response)``: calls :meth:`wsgi_app`.

        Called with ASGI's three arguments, ``app(scope, receive, send)``, it is the ASGI
        entry point (:attr:`asgi`) instead, for servers whose loader takes only a plain
        name: ``gunicorn -k asgi module:app``.
        """
        if len(args) == 3:
            return self.asgi(*args)
        return self.wsgi_app(*args)

    _mark_dispatcher(__call__)

    def run(
        self,
        host: str | None = None,
        port: int | None = None,
        debug: bool | None = None,
        load_dotenv: bool = True,
        **options: t.Any,
    ) -> None:
        """Serve the app with werkzeug's development server (WSGI). Not for production:
        use gunicorn, or an ASGI server with ``app.asgi``.

        Does nothing while a ``ctxflask`` command runs (``ctxflask run`` serves the app;
        a module calling ``app.run()`` outside an ``if __name__ == "__main__":`` guard
        would block any other command). Loads the dotenv files first, unless
        ``load_dotenv`` is false (see :func:`ctxflask.cli.load_dotenv`).
        """
        from werkzeug.serving import is_running_from_reloader
        from werkzeug.serving import run_simple

        from . import cli
        from .core.helpers import get_debug_flag
        from .core.helpers import get_load_dotenv

        if os.environ.get(cli.RUN_FROM_CLI_ENV) == "true":
            if not is_running_from_reloader():
                print(
                    " * Ignoring a call to 'app.run()': it would block the current"
                    " 'ctxflask' command.\n   Fix: call 'app.run()' only under an"
                    " 'if __name__ == \"__main__\":' guard.",
                    file=sys.stderr,
                )
            return
        if get_load_dotenv(load_dotenv):
            cli.load_dotenv()
            if "CTXFLASK_DEBUG" in os.environ or "FLASK_DEBUG" in os.environ:
                self.debug = get_debug_flag()
        if debug is not None:
            self.debug = bool(debug)
        server_name = self.config.get("SERVER_NAME")
        sn_host = sn_port = None
        if server_name:
            sn_host, _, sn_port = server_name.partition(":")
        host = host or sn_host or "127.0.0.1"
        port = int(port or sn_port or 5000)
        options.setdefault("use_reloader", self.debug)
        options.setdefault("use_debugger", self.debug)
        options.setdefault("threaded", True)
        cli.show_server_banner(self.debug, self.name)
        run_simple(host, port, self, **options)


def _handoff_for(app: Flask) -> HandOff | None:
    """The ASGI request whose WSGI middleware calls ``app.wsgi_app``, if any: only once the
    ASGI side is loaded (a WSGI server never loads it)."""
    middleware = sys.modules.get("ctxflask.asgi.wsgi_middleware")
    return None if middleware is None else middleware.handoff_for(app)


# Flask's own, whatever is assigned to the class later.
_FLASK_CALL = Flask.__call__
_FLASK_WSGI_APP = Flask.wsgi_app


async def _awaited(awaitable: t.Awaitable[_T]) -> _T:
    return await awaitable


class _EarlyStart:
    """The ``start_response`` of WSGI middleware around the app, called as the request
    finishes (``request_finished``), inside its contexts, as Flask calls it; the entry
    point's own call after that does nothing more."""

    __slots__ = ("_write", "app", "environ", "start_response")

    def __init__(
        self, app: Flask, environ: WSGIEnvironment, start_response: StartResponse
    ) -> None:
        self.app = app
        #: The environ the request is made from (a request the app makes meanwhile, from
        #: one of its own, is not this one).
        self.environ = environ
        self.start_response = start_response
        self._write: t.Any = None
        _receive_request_finished(app)

    def __call__(
        self, status: str, headers: list[tuple[str, str]], exc_info: t.Any = None
    ) -> t.Any:
        if self._write is None or exc_info is not None:
            self._write = self.start_response(status, headers, exc_info)
        return self._write

    def start(self, response: Response, request: Request) -> None:
        self(response.status, response_headers(response, request))


_early_start: contextvars.ContextVar[_EarlyStart | None] = contextvars.ContextVar(
    "ctxflask.early_start", default=None
)


# On the loop under ASGI: start_response only records the status and headers (PEP 3333
# forbids sending them there), so it does not block.
@bridge.nonblocking
def _start_early(sender: t.Any, response: Response, **extra: t.Any) -> None:
    early = _early_start.get()
    if early is not None and early.app is sender and early._write is None:
        request = _cv_request.get().request
        if request.environ is early.environ:
            early.start(response, request)


# The apps whose requests met WSGI middleware. While there is one, _start_early
# receives request_finished; then no more, so that other apps' requests skip the signal.
_apps_with_middleware: weakref.WeakSet[Flask] = weakref.WeakSet()


def _receive_request_finished(app: Flask) -> None:
    if app not in _apps_with_middleware:
        _apps_with_middleware.add(app)
        weakref.finalize(app, _stop_receiving)
    if id(_start_early) not in request_finished.receivers:
        request_finished.connect(_start_early, weak=False)


def _stop_receiving() -> None:
    if not any(True for _ in _apps_with_middleware):  # only dead apps left
        request_finished.disconnect(_start_early)
