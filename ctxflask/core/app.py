"""The protocol-free application: configuration, routing and registration, templates,
error lookup, ``make_response`` and sessions.

:class:`App` knows no entry point, no CLI and no test client: the public
:class:`ctxflask.Flask` composes it with those (see ``ctxflask/app.py``), as Flask's
``flask.Flask`` builds on ``flask.sansio.app.App``.
"""

from __future__ import annotations

import collections.abc as cabc
import functools
import logging
import os
import sys
import typing as t
import weakref
from collections.abc import Callable
from datetime import timedelta
from itertools import chain
from types import TracebackType

from werkzeug.exceptions import Aborter
from werkzeug.exceptions import BadRequest
from werkzeug.exceptions import BadRequestKeyError
from werkzeug.routing import BuildError
from werkzeug.routing import Map
from werkzeug.routing import MapAdapter
from werkzeug.routing import RequestRedirect
from werkzeug.routing import Rule
from werkzeug.utils import redirect as _wz_redirect
from werkzeug.wrappers import Response as BaseResponse
from werkzeug.wsgi import get_host

from .. import bridge
from . import routing
from . import typing as ft
from .config import Config
from .config import ConfigAttribute
from .config import DEFAULT_CONFIG
from .config import make_timedelta
from .ctx import _AppCtxGlobals
from .ctx import AppContext
from .ctx import RequestContext
from .ctx import teardown_appcontext
from .ctx import teardown_request
from .errors import find_error_handler
from .globals import _cv_app
from .globals import _cv_request
from .helpers import find_instance_path
from .helpers import get_debug_flag
from .json.provider import DefaultJSONProvider
from .json.provider import JSONProvider
from .logging import create_logger
from .rendering import update_context_steps
from .responses import to_response
from .routing import build_url
from .routing import FormDataRoutingRedirect
from .routing import URLMap
from .scaffold import _endpoint_from_view_func
from .scaffold import registering
from .scaffold import Scaffold
from .scaffold import setupmethod
from .sessions import SecureCookieSessionInterface
from .sessions import SessionInterface
from .wrappers import _blueprint_chain
from .wrappers import Request
from .wrappers import Response

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

    from .blueprints import Blueprint
    from .templating import DispatchingJinjaLoader
    from .templating import Environment

T_teardown = t.TypeVar("T_teardown", bound=ft.TeardownCallable)
T_serving = t.TypeVar("T_serving", bound=ft.ServingCallable)
T_shell_context_processor = t.TypeVar(
    "T_shell_context_processor", bound=ft.ShellContextProcessorCallable
)
T_template_filter = t.TypeVar("T_template_filter", bound=ft.TemplateFilterCallable)
T_template_test = t.TypeVar("T_template_test", bound=ft.TemplateTestCallable)
T_template_global = t.TypeVar("T_template_global", bound=ft.TemplateGlobalCallable)


class _EnvironmentClass:
    """``App.jinja_environment`` until a subclass or an app sets its own: the core's
    :class:`~.templating.Environment`, imported (with Jinja) when first asked for."""

    def __get__(self, obj: object, owner: type | None = None) -> type[Environment]:
        from .templating import Environment

        return Environment


class App(Scaffold):
    """The protocol-free part of a ctxflask application: configuration, routing and
    registration, templates, error lookup, responses and sessions.
    :class:`ctxflask.Flask` is the public class, and its docstring lists the arguments.
    """

    request_class: type[Request] = Request
    response_class: type[Response] = Response
    aborter_class = Aborter
    app_ctx_globals_class = _AppCtxGlobals
    config_class = Config
    json_provider_class: type[JSONProvider] = DefaultJSONProvider
    url_rule_class = Rule
    url_map_class: type[Map] = URLMap
    session_interface: SessionInterface = SecureCookieSessionInterface()
    #: The class of :attr:`jinja_env`.
    if t.TYPE_CHECKING:
        jinja_environment: type[Environment]
    else:
        jinja_environment = _EnvironmentClass()
    #: Options for the Jinja environment, read when :attr:`jinja_env` is first used.
    jinja_options: dict[str, t.Any] = {}

    testing = ConfigAttribute[bool]("TESTING")
    secret_key = ConfigAttribute["str | bytes | None"]("SECRET_KEY")
    permanent_session_lifetime = ConfigAttribute[timedelta](
        "PERMANENT_SESSION_LIFETIME", get_converter=make_timedelta
    )

    default_config = DEFAULT_CONFIG

    #: Whether a subclass overrides :meth:`create_url_adapter` (then always called).
    _custom_url_adapter: t.ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: t.Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._custom_url_adapter = cls.create_url_adapter is not App.create_url_adapter

    def __init__(
        self,
        import_name: str,
        static_url_path: str | None = None,
        static_folder: str | os.PathLike[str] | None = "static",
        static_host: str | None = None,
        host_matching: bool = False,
        subdomain_matching: bool = False,
        template_folder: str | os.PathLike[str] | None = "templates",
        instance_path: str | None = None,
        instance_relative_config: bool = False,
        root_path: str | None = None,
    ) -> None:
        super().__init__(
            import_name=import_name,
            static_folder=static_folder,
            static_url_path=static_url_path,
            template_folder=template_folder,
            root_path=root_path,
        )
        if instance_path is None:
            instance_path = self.auto_find_instance_path()
        elif not os.path.isabs(instance_path):
            raise ValueError(
                f"The instance path must be absolute, got {instance_path!r}. Fix: pass"
                " os.path.abspath(...) or leave it out to use the default."
            )
        self.instance_path = instance_path
        self.config = self.make_config(instance_relative_config)
        self.aborter = self.make_aborter()
        #: The JSON provider of this app: ``app.json.dumps(...)``, ``jsonify`` use it.
        self.json: JSONProvider = self.json_provider_class(self)
        #: Called with ``(error, endpoint, values)`` when ``url_for`` fails to build.
        self.url_build_error_handlers: list[
            Callable[[Exception, str, dict[str, t.Any]], str]
        ] = []
        self.teardown_appcontext_funcs: list[ft.TeardownCallable] = []
        self.before_serving_funcs: list[ft.ServingCallable] = []
        self.after_serving_funcs: list[ft.ServingCallable] = []
        self.shell_context_processors: list[ft.ShellContextProcessorCallable] = []
        #: The registered blueprints by dotted name, in the order of registration.
        self.blueprints: dict[str, Blueprint] = {}
        #: Storage for extensions' per-app state, by extension name.
        self.extensions: dict[str, t.Any] = {}
        self.url_map = self.url_map_class(host_matching=host_matching)
        self.subdomain_matching = subdomain_matching
        self._got_first_request = False
        #: Routing's remembered matches, by request line (see routing.match).
        self._matches: dict[tuple[t.Any, ...], tuple[Rule, dict[str, t.Any]]] = {}

        if self.has_static_folder:
            if bool(static_host) != host_matching:
                raise ValueError(
                    "Invalid static_host/host_matching combination: 'static_host' is"
                    " required with 'host_matching=True' and not allowed without it."
                )
            self_ref = weakref.ref(self)
            self.add_url_rule(
                f"{self.static_url_path}/<path:filename>",
                endpoint="static",
                host=static_host,
                view_func=lambda **kw: self_ref().send_static_file(**kw),  # type: ignore[union-attr]
            )

    # -- identity, config, logging -------------------------------------------------------

    @functools.cached_property
    def name(self) -> str:
        """The application's name: ``import_name``, or the script's name for ``__main__``
        (read once: at exit, ``__main__`` may have lost its ``__file__``)."""
        if self.import_name == "__main__":
            fn: str | None = getattr(sys.modules["__main__"], "__file__", None)
            if fn is None:
                return "__main__"
            return os.path.splitext(os.path.basename(fn))[0]
        return self.import_name

    @property
    def logger(self) -> logging.Logger:
        """The ``logging`` logger named after the app (see :mod:`ctxflask.logging`)."""
        try:
            return self.__dict__["_logger"]  # type: ignore[no-any-return]
        except KeyError:
            logger = self.__dict__["_logger"] = create_logger(self)
            return logger

    @property
    def debug(self) -> bool:
        """Debug mode (``DEBUG``): exceptions propagate, JSON is indented."""
        return bool(self.config["DEBUG"])

    @debug.setter
    def debug(self, value: bool) -> None:
        self.config["DEBUG"] = value
        # Auto-reload follows debug mode unless TEMPLATES_AUTO_RELOAD says otherwise.
        if (
            self.config["TEMPLATES_AUTO_RELOAD"] is None
            and "jinja_env" in self.__dict__
        ):
            self.jinja_env.auto_reload = bool(value)

    def make_config(self, instance_relative: bool = False) -> Config:
        """Create the config, filled from :attr:`default_config` and ``CTXFLASK_DEBUG``
        or ``FLASK_DEBUG`` from the environment."""
        root_path = self.instance_path if instance_relative else self.root_path
        defaults = dict(self.default_config)
        defaults["DEBUG"] = get_debug_flag()
        return self.config_class(root_path, defaults)

    def make_aborter(self) -> Aborter:
        """Create the :class:`~werkzeug.exceptions.Aborter` behind ``abort``."""
        return self.aborter_class()

    def auto_find_instance_path(self) -> str:
        """The ``instance`` folder beside the app's package (or module), as in Flask; for
        an installed package, ``<prefix>/var/<name>-instance``."""
        return find_instance_path(self.import_name, self.root_path, self.name)

    def _check_setup_finished(self, f_name: str) -> None:
        if self._got_first_request:
            raise AssertionError(
                f"The setup method '{f_name}' can no longer be called on the application."
                " It has already handled its first request, any changes will not be"
                " applied consistently.\nMake sure all imports, decorators, functions, etc."
                " needed to set up the application are done before running it."
            )

    # -- routing -------------------------------------------------------------------------

    @setupmethod
    def add_url_rule(
        self,
        rule: str,
        endpoint: str | None = None,
        view_func: ft.RouteCallable | None = None,
        provide_automatic_options: bool | None = None,
        **options: t.Any,
    ) -> None:
        """Register URL ``rule`` for ``endpoint`` and its view function (sync or async).

        :param rule: the URL rule, with werkzeug converters.
        :param endpoint: the endpoint name; defaults to the view function's name.
        :param view_func: the view; may be given later with :meth:`endpoint`.
        :param provide_automatic_options: answer OPTIONS automatically (default: when
            the rule does not list OPTIONS and ``PROVIDE_AUTOMATIC_OPTIONS`` is set).
        :param options: ``methods`` and werkzeug ``Rule`` options.
        """
        if endpoint is None:
            endpoint = _endpoint_from_view_func(view_func)  # type: ignore[arg-type]
        options["endpoint"] = endpoint
        methods = options.pop("methods", None)
        if methods is None:
            methods = getattr(view_func, "methods", None) or ("GET",)
        if isinstance(methods, str):
            raise TypeError(
                f"Allowed methods must be a list of strings, not the string {methods!r}."
                f' Fix: methods=["{methods}"].'
            )
        methods = {item.upper() for item in methods}
        required_methods: set[str] = set(getattr(view_func, "required_methods", ()))
        if provide_automatic_options is None:
            provide_automatic_options = getattr(
                view_func, "provide_automatic_options", None
            )
        if provide_automatic_options is None:
            if "OPTIONS" not in methods and self.config["PROVIDE_AUTOMATIC_OPTIONS"]:
                provide_automatic_options = True
                required_methods.add("OPTIONS")
            else:
                provide_automatic_options = False
        methods |= required_methods

        rule_obj = self.url_rule_class(rule, methods=methods, **options)
        rule_obj.provide_automatic_options = provide_automatic_options  # type: ignore[attr-defined]
        self.url_map.add(rule_obj)
        if view_func is not None:
            old_func = self.view_functions.get(endpoint)
            if old_func is not None and old_func != view_func:
                raise AssertionError(
                    f"View function mapping is overwriting an existing endpoint function:"
                    f" {endpoint}. Fix: give one of the views another endpoint name."
                )
            self.view_functions[endpoint] = view_func

    def create_url_adapter(self, request: Request | None) -> MapAdapter | None:
        """The URL adapter for ``request``, or for building URLs outside a request (which
        needs ``SERVER_NAME``). Checks the host against ``TRUSTED_HOSTS``."""
        if request is not None:
            trusted_hosts = self.config["TRUSTED_HOSTS"]
            if trusted_hosts is not None:
                request.trusted_hosts = trusted_hosts
                # Raises SecurityError (400) for a host that is not trusted.
                request.host = get_host(request.environ, request.trusted_hosts)
            subdomain = None
            server_name = self.config["SERVER_NAME"]
            if (
                server_name is None
                and not self.url_map.host_matching
                and not (self.subdomain_matching)
            ):
                return routing.bind_to_request(self.url_map, request)
            if self.url_map.host_matching:
                server_name = None  # match the request's own host
            elif not self.subdomain_matching:
                subdomain = self.url_map.default_subdomain or ""
            return self.url_map.bind_to_environ(
                request.environ, server_name=server_name, subdomain=subdomain
            )
        if self.config["SERVER_NAME"] is not None:
            return self.url_map.bind(
                self.config["SERVER_NAME"],
                script_name=self.config["APPLICATION_ROOT"],
                url_scheme=self.config["PREFERRED_URL_SCHEME"],
            )
        return None

    def raise_routing_exception(self, request: Request) -> t.NoReturn:
        """Raise the routing error of ``request``. In debug mode, a redirect that would
        drop a form body (301/302 for a non-GET method) is an explained error instead."""
        exc = request.routing_exception
        if (
            self.debug
            and isinstance(exc, RequestRedirect)
            and exc.code not in {307, 308}
            and request.method not in {"GET", "HEAD", "OPTIONS"}
        ):
            raise FormDataRoutingRedirect(request)
        raise exc  # type: ignore[misc]

    def url_for(
        self,
        /,
        endpoint: str,
        *,
        _anchor: str | None = None,
        _method: str | None = None,
        _scheme: str | None = None,
        _external: bool | None = None,
        **values: t.Any,
    ) -> str:
        """Build the URL of ``endpoint`` with ``values``; see :func:`ctxflask.url_for`."""
        return build_url(self, endpoint, values, _anchor, _method, _scheme, _external)

    def inject_url_defaults(self, endpoint: str, values: dict[str, t.Any]) -> None:
        """Let the ``url_defaults`` functions of the app and of the endpoint's blueprints
        fill in ``values``."""
        keys: t.Iterable[str | None] = (None,)
        if "." in endpoint:
            keys = chain(keys, reversed(_blueprint_chain(endpoint.rpartition(".")[0])))
        for key in keys:
            if key in self.url_default_functions:
                for func in self.url_default_functions[key]:
                    func(endpoint, values)

    def handle_url_build_error(
        self, error: BuildError, endpoint: str, values: dict[str, t.Any]
    ) -> str:
        """Ask :attr:`url_build_error_handlers` for a URL; raise ``error`` if none gives one."""
        for handler in self.url_build_error_handlers:
            try:
                rv = handler(error, endpoint, values)
            except BuildError as e:
                error = e
            else:
                if rv is not None:
                    return rv
        raise error

    def redirect(self, location: str, code: int = 302) -> BaseResponse:
        """A redirect response to ``location``; :func:`ctxflask.redirect` calls this."""
        return _wz_redirect(location, code=code, Response=self.response_class)

    # -- registration specific to the app ------------------------------------------------

    @setupmethod
    def register_blueprint(self, blueprint: Blueprint, **options: t.Any) -> None:
        """Register ``blueprint`` (and the blueprints nested in it) on the app.

        :param blueprint: the :class:`~ctxflask.Blueprint`.
        :param options: override the blueprint's own settings for this registration:
            ``url_prefix``, ``subdomain``, ``url_defaults``, and ``name`` (the name it is
            registered under, needed to register the same blueprint twice). Other
            options are kept in :attr:`BlueprintSetupState.options
            <ctxflask.blueprints.BlueprintSetupState.options>` for its deferred functions.
        """
        blueprint.register(self, options)

    def iter_blueprints(self) -> t.ValuesView[Blueprint]:
        """The registered blueprints, in the order of registration."""
        return self.blueprints.values()

    @setupmethod
    def teardown_appcontext(self, f: T_teardown) -> T_teardown:
        """Run ``f(error)`` (sync or async) when each app context is popped: after every
        request, CLI command and ``with app.app_context()`` block."""
        self.teardown_appcontext_funcs.append(f)
        return f

    @setupmethod
    def before_serving(self, f: T_serving) -> T_serving:
        """Run ``f()`` (sync or async) in an app context before the first request is
        served: at ASGI lifespan startup, or before a WSGI process's first request."""
        self.before_serving_funcs.append(f)
        return f

    @setupmethod
    def after_serving(self, f: T_serving) -> T_serving:
        """Run ``f()`` (sync or async) in an app context when serving ends: at ASGI
        lifespan shutdown, or when a WSGI process exits."""
        self.after_serving_funcs.append(f)
        return f

    @setupmethod
    def shell_context_processor(
        self, f: T_shell_context_processor
    ) -> T_shell_context_processor:
        """Register a function returning names for the interactive shell."""
        self.shell_context_processors.append(f)
        return f

    def make_shell_context(self) -> dict[str, t.Any]:
        """The namespace of ``ctxflask shell``: ``app`` and ``g``, updated with what each
        shell context processor (sync or async) returns, in order."""
        from .globals import g

        rv: dict[str, t.Any] = {"app": self, "g": g}
        for processor in self.shell_context_processors:
            rv.update(bridge.call_in(None, processor))
        return rv

    # -- templates -----------------------------------------------------------------------

    @functools.cached_property
    def jinja_env(self) -> Environment:
        """The Jinja environment of the app's templates, made by
        :meth:`create_jinja_environment` on first use (:attr:`jinja_options` changed later
        have no effect)."""
        return self.create_jinja_environment()

    def create_jinja_environment(self) -> Environment:
        """Create the Jinja environment from :attr:`jinja_options`: autoescaping chosen by
        :meth:`select_jinja_autoescape`, auto-reload from ``TEMPLATES_AUTO_RELOAD`` (debug
        mode when unset), and the globals ``url_for``, ``get_flashed_messages``,
        ``config``, ``request``, ``session`` and ``g``."""
        from .templating import create_environment  # Jinja loads with the environment

        return create_environment(self)

    def create_global_jinja_loader(self) -> DispatchingJinjaLoader:
        """The loader of :attr:`jinja_env`: the app's :attr:`jinja_loader`, then each
        blueprint's. Override :attr:`jinja_loader` rather than this to change where the
        app's own templates come from."""
        from .templating import DispatchingJinjaLoader

        return DispatchingJinjaLoader(self)

    def select_jinja_autoescape(self, filename: str | None) -> bool:
        """Whether to autoescape the template ``filename``: for ``.html``, ``.htm``,
        ``.xml``, ``.xhtml`` and ``.svg`` files, and for templates from strings
        (``filename`` is ``None``)."""
        if filename is None:
            return True
        return filename.endswith((".html", ".htm", ".xml", ".xhtml", ".svg"))

    def update_template_context(self, context: dict[str, t.Any]) -> None:
        """Add ``g``, ``request`` and what the context processors (sync or async) of the
        app and of the current request's blueprints return to ``context``, in place;
        values already in ``context`` are kept."""
        bridge.run_steps(update_context_steps(self, context))

    @t.overload
    def template_filter(self, name: T_template_filter) -> T_template_filter: ...

    @t.overload
    def template_filter(
        self, name: str | None = None
    ) -> Callable[[T_template_filter], T_template_filter]: ...

    @setupmethod
    def template_filter(self, name: t.Any = None) -> t.Any:
        """Decorate a function to use as a Jinja filter: ``@app.template_filter()``,
        ``@app.template_filter("name")`` (or bare, ``@app.template_filter``).

        :param name: the filter's name; defaults to the function's name.
        """
        return registering(self.add_template_filter, name)

    @setupmethod
    def add_template_filter(
        self, f: ft.TemplateFilterCallable, name: str | None = None
    ) -> None:
        """Register ``f`` as a Jinja filter, named ``name`` or after the function."""
        self.jinja_env.filters[name or f.__name__] = f

    @t.overload
    def template_test(self, name: T_template_test) -> T_template_test: ...

    @t.overload
    def template_test(
        self, name: str | None = None
    ) -> Callable[[T_template_test], T_template_test]: ...

    @setupmethod
    def template_test(self, name: t.Any = None) -> t.Any:
        """Decorate a function to use as a Jinja test (``{% if x is name %}``):
        ``@app.template_test()``, ``@app.template_test("name")`` (or bare).

        :param name: the test's name; defaults to the function's name.
        """
        return registering(self.add_template_test, name)

    @setupmethod
    def add_template_test(
        self, f: ft.TemplateTestCallable, name: str | None = None
    ) -> None:
        """Register ``f`` as a Jinja test, named ``name`` or after the function."""
        self.jinja_env.tests[name or f.__name__] = f

    @t.overload
    def template_global(self, name: T_template_global) -> T_template_global: ...

    @t.overload
    def template_global(
        self, name: str | None = None
    ) -> Callable[[T_template_global], T_template_global]: ...

    @setupmethod
    def template_global(self, name: t.Any = None) -> t.Any:
        """Decorate a function to make it a global of every template:
        ``@app.template_global()``, ``@app.template_global("name")`` (or bare).

        :param name: the global's name; defaults to the function's name.
        """
        return registering(self.add_template_global, name)

    @setupmethod
    def add_template_global(
        self, f: ft.TemplateGlobalCallable, name: str | None = None
    ) -> None:
        """Register ``f`` as a global of every template, named ``name`` or after the
        function."""
        self.jinja_env.globals[name or f.__name__] = f

    # -- errors --------------------------------------------------------------------------

    def _find_error_handler(
        self, e: BaseException, blueprints: list[str]
    ) -> ft.ErrorHandlerCallable | None:
        # Flask's name for it, which some extensions call.
        return find_error_handler(self, e, blueprints)

    def trap_http_exception(self, e: Exception) -> bool:
        """Whether an HTTP error should propagate like any exception instead of going to
        its handler (``TRAP_HTTP_EXCEPTIONS``, ``TRAP_BAD_REQUEST_ERRORS``)."""
        if self.config["TRAP_HTTP_EXCEPTIONS"]:
            return True
        trap_bad_request = self.config["TRAP_BAD_REQUEST_ERRORS"]
        if (
            trap_bad_request is None
            and self.debug
            and isinstance(e, BadRequestKeyError)
        ):
            return True
        if trap_bad_request:
            return isinstance(e, BadRequest)
        return False

    def should_ignore_error(self, error: BaseException | None) -> bool:
        """Whether teardown callbacks get ``None`` instead of ``error``."""
        return False

    def log_exception(
        self,
        exc_info: tuple[type, BaseException, TracebackType | None]
        | tuple[None, None, None],
    ) -> None:
        """Log an unhandled exception to :attr:`logger`, with the request's path."""
        req_ctx = _cv_request.get(None)
        where = f" [{req_ctx.request.method}]" if req_ctx is not None else ""
        path = req_ctx.request.path if req_ctx is not None else "?"
        self.logger.error(f"Exception on {path}{where}", exc_info=exc_info)

    # -- responses -----------------------------------------------------------------------

    def make_response(self, rv: ft.ResponseReturnValue | BaseException) -> Response:
        """Turn a view's return value into a :attr:`response_class` instance.

        Accepted: ``str``, ``bytes``, a ``dict`` or ``list`` (as JSON), an iterator or
        generator (sync or async; streamed), a response object, a WSGI callable, or a
        tuple ``(body, status)``, ``(body, headers)`` or ``(body, status, headers)``.
        """
        # The usual return values first, without a call.
        if type(rv) is str:
            response_class = self.response_class
            if response_class._fast_init:
                return response_class._from_bytes(rv.encode())
        elif type(rv) is dict:
            return self.json.response(rv)
        elif type(rv) is self.response_class:
            return rv  # jsonify(), make_response(): made already
        return to_response(self, rv)

    def make_default_options_response(self) -> Response:
        """The response to an automatic OPTIONS request: empty, with ``Allow``."""
        adapter = _cv_request.get().url_adapter
        methods = adapter.allowed_methods()  # type: ignore[union-attr]
        rv = self.response_class()
        rv.allow.update(methods)
        return rv

    def send_static_file(self, filename: str) -> Response:
        """Serve ``filename`` from :attr:`static_folder` (the ``static`` endpoint)."""
        if not self.has_static_folder:
            raise RuntimeError("'static_folder' must be set to serve static_files.")
        from .helpers import send_from_directory

        max_age = self.get_send_file_max_age(filename)
        return send_from_directory(
            t.cast(str, self.static_folder), filename, max_age=max_age
        )

    def open_instance_resource(
        self, resource: str, mode: str = "rb", encoding: str | None = "utf-8"
    ) -> t.IO[t.Any]:
        """Open a file relative to :attr:`instance_path`, for reading or writing."""
        path = os.path.join(self.instance_path, resource)
        if "b" in mode:
            return open(path, mode)
        return open(path, mode, encoding=encoding)

    def get_send_file_max_age(self, filename: str | None) -> int | None:
        """The cache max age of a static file: ``SEND_FILE_MAX_AGE_DEFAULT``."""
        value = self.config["SEND_FILE_MAX_AGE_DEFAULT"]
        if value is None:
            return None
        if isinstance(value, timedelta):
            return int(value.total_seconds())
        return t.cast(int, value)

    def do_teardown_request(self, exc: BaseException | None = None) -> None:
        """Run the ``teardown_request`` callbacks for the current request."""
        bridge.run_steps(teardown_request(self, exc))

    def do_teardown_appcontext(self, exc: BaseException | None = None) -> None:
        """Run the ``teardown_appcontext`` callbacks."""
        bridge.run_steps(teardown_appcontext(self, exc))

    def ensure_sync(self, func: Callable[..., t.Any]) -> Callable[..., t.Any]:
        """``func`` as a sync callable: async functions run on the thread's event loop."""
        if bridge.is_async_callable(func):
            return self.async_to_sync(func)
        return func

    def async_to_sync(
        self, func: Callable[..., cabc.Coroutine[t.Any, t.Any, t.Any]]
    ) -> Callable[..., t.Any]:
        """Wrap an async function to be called from sync code, in the caller's context."""

        def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
            return bridge.call_in(None, func, *args, **kwargs)

        return wrapper

    def add_background_task(
        self, fn: Callable[..., t.Any], /, *args: t.Any, **kwargs: t.Any
    ) -> None:
        """Run ``fn(*args, **kwargs)`` (sync or async) once the current request's
        response is sent, with copies of the request's contexts: ``request``, ``g`` and
        ``current_app`` are readable there, but the session is no longer saved.

        Under ASGI it runs in the request's task after the last byte went out (sync
        functions in a worker thread), and lifespan shutdown waits for running tasks up to
        ``BACKGROUND_TASK_SHUTDOWN_TIMEOUT`` seconds; under WSGI it runs when the server
        closes the response, before the worker takes its next request. A task that raises
        is logged to :attr:`logger`; the response is not affected.
        """
        req_ctx = _cv_request.get(None)
        if req_ctx is None:
            raise RuntimeError(
                "'add_background_task' can only be used while a request is handled.\n\n"
                "A background task runs after the current request's response is sent, and"
                " no request is active. Fix: call it from a view or a hook."
            )
        req_ctx._background_tasks.append(([_cv_app.get(), req_ctx], fn, args, kwargs))

    # -- contexts and entry points -------------------------------------------------------

    def app_context(self) -> AppContext:
        """A new application context: ``with app.app_context(): ...``."""
        return AppContext(self)

    def request_context(self, environ: WSGIEnvironment) -> RequestContext:
        """A new request context for a WSGI environment."""
        return RequestContext(self, environ)

    def _workers(self, lane: str = "sync views") -> bridge.Workers:
        """The app's worker threads on the running event loop for the sync work of its
        requests under ASGI: ``WORKER_THREADS`` of them in each lane (requests served by
        sync views, by async views; see :class:`ctxflask.pipeline.RequestWorkers`)."""
        return bridge.Workers(
            (id(self), lane), int(self.config.get("WORKER_THREADS") or 40)
        )

    def _loop_block_warning(self) -> float | None:
        """After how many seconds of a stalled event loop the watchdog warns
        (``LOOP_BLOCK_WARNING``; ``None``: never)."""
        value = self.config.get("LOOP_BLOCK_WARNING", 0.1)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ValueError(
                f"LOOP_BLOCK_WARNING must be a number of seconds over 0, or None to turn"
                f" the loop watchdog off, not {value!r}."
            )
        return float(value)

    def _async_steps_in_thread(self) -> bool:
        """Whether async callables run in worker threads under ASGI (``ASYNC_STEPS``:
        ``"loop"`` or ``"thread"``)."""
        mode = self.config.get("ASYNC_STEPS", "loop")
        if mode not in ("loop", "thread"):
            raise ValueError(
                f"ASYNC_STEPS must be 'loop' or 'thread', not {mode!r}: 'loop' awaits"
                " async views and hooks on the server's event loop, 'thread' runs them in"
                " worker threads, each on its thread's own loop."
            )
        return bool(mode == "thread")
