"""What an app and a blueprint share: registering views, hooks and error handlers.

Every callable registered here may be ``def`` or ``async def``. The pipeline looks them up
by the key of the app (``None``) or of a blueprint (its dotted name).
"""

from __future__ import annotations

import functools
import os
import typing as t
from collections import defaultdict
from collections.abc import Callable

from werkzeug.exceptions import default_exceptions
from werkzeug.exceptions import HTTPException

from . import typing as ft
from .helpers import get_root_path

if t.TYPE_CHECKING:
    from jinja2 import BaseLoader

F = t.TypeVar("F", bound=Callable[..., t.Any])
T_after_request = t.TypeVar("T_after_request", bound=ft.AfterRequestCallable[t.Any])
T_before_request = t.TypeVar("T_before_request", bound=ft.BeforeRequestCallable)
T_error_handler = t.TypeVar("T_error_handler", bound=ft.ErrorHandlerCallable)
T_teardown = t.TypeVar("T_teardown", bound=ft.TeardownCallable)
T_template_context_processor = t.TypeVar(
    "T_template_context_processor", bound=ft.TemplateContextProcessorCallable
)
T_url_defaults = t.TypeVar("T_url_defaults", bound=ft.URLDefaultCallable)
T_url_value_preprocessor = t.TypeVar(
    "T_url_value_preprocessor", bound=ft.URLValuePreprocessorCallable
)
T_route = t.TypeVar("T_route", bound=ft.RouteCallable)
T_after_websocket = t.TypeVar("T_after_websocket", bound=ft.AfterWebsocketCallable)

_sentinel = object()


def setupmethod(f: F) -> F:
    """Mark a registration method: calling it once the app served a request is an error."""
    name = f.__name__

    def wrapper_func(self: Scaffold, *args: t.Any, **kwargs: t.Any) -> t.Any:
        self._check_setup_finished(name)
        return f(self, *args, **kwargs)

    return t.cast(F, _update_wrapper(wrapper_func, f))


def _update_wrapper(
    wrapper: Callable[..., t.Any], f: Callable[..., t.Any]
) -> Callable[..., t.Any]:

    return functools.update_wrapper(wrapper, f)


def registering(register: Callable[..., None], name_or_function: t.Any) -> t.Any:
    """The body of a decorator usable bare or with a name, such as ``@template_filter``
    and ``@template_filter("name")``: ``register(function, name=...)`` does the work."""
    if callable(name_or_function):
        register(name_or_function)
        return name_or_function

    def decorator(f: F) -> F:
        register(f, name=name_or_function)
        return f

    return decorator


class Scaffold:
    """Registration of views, hooks, error handlers and URL processors.

    :param import_name: the name of the module the app or blueprint is defined in, used to
        find its root path (for resources, templates and static files).
    :param static_folder: a folder of static files, relative to ``root_path``.
    :param static_url_path: the URL prefix of those files; defaults to the folder's name.
    :param template_folder: a folder of templates, relative to ``root_path``.
    :param root_path: the folder the other paths are relative to; found from
        ``import_name`` when not given.
    """

    if t.TYPE_CHECKING:

        @property
        def name(self) -> str: ...

    _static_folder: str | None = None
    _static_url_path: str | None = None

    def __init__(
        self,
        import_name: str,
        static_folder: str | os.PathLike[str] | None = None,
        static_url_path: str | None = None,
        template_folder: str | os.PathLike[str] | None = None,
        root_path: str | None = None,
    ) -> None:
        self.import_name = import_name
        self.static_folder = static_folder
        self.static_url_path = static_url_path
        self.template_folder = template_folder
        if root_path is None:
            root_path = get_root_path(self.import_name)
        self.root_path = root_path

        self.view_functions: dict[str, ft.RouteCallable] = {}
        self.error_handler_spec: dict[
            ft.AppOrBlueprintKey,
            dict[int | None, dict[type[BaseException], ft.ErrorHandlerCallable]],
        ] = defaultdict(lambda: defaultdict(dict))
        self.before_request_funcs: dict[
            ft.AppOrBlueprintKey, list[ft.BeforeRequestCallable]
        ] = defaultdict(list)
        self.after_request_funcs: dict[
            ft.AppOrBlueprintKey, list[ft.AfterRequestCallable[t.Any]]
        ] = defaultdict(list)
        self.teardown_request_funcs: dict[
            ft.AppOrBlueprintKey, list[ft.TeardownCallable]
        ] = defaultdict(list)
        self.template_context_processors: dict[
            ft.AppOrBlueprintKey, list[ft.TemplateContextProcessorCallable]
        ] = defaultdict(list)
        self.url_value_preprocessors: dict[
            ft.AppOrBlueprintKey, list[ft.URLValuePreprocessorCallable]
        ] = defaultdict(list)
        self.url_default_functions: dict[
            ft.AppOrBlueprintKey, list[ft.URLDefaultCallable]
        ] = defaultdict(list)
        self.before_websocket_funcs: dict[
            ft.AppOrBlueprintKey, list[ft.BeforeRequestCallable]
        ] = defaultdict(list)
        self.after_websocket_funcs: dict[
            ft.AppOrBlueprintKey, list[ft.AfterWebsocketCallable]
        ] = defaultdict(list)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    def _check_setup_finished(self, f_name: str) -> None:
        raise NotImplementedError

    # -- static files and resources ------------------------------------------------------

    @property
    def static_folder(self) -> str | None:
        """The absolute path of the static folder, if one is configured."""
        if self._static_folder is not None:
            return os.path.join(self.root_path, self._static_folder)
        return None

    @static_folder.setter
    def static_folder(self, value: str | os.PathLike[str] | None) -> None:
        if value is not None:
            value = os.fspath(value).rstrip(r"\/")
        self._static_folder = value

    @property
    def has_static_folder(self) -> bool:
        """Whether a static folder is configured."""
        return self.static_folder is not None

    @property
    def static_url_path(self) -> str | None:
        """The URL prefix of static files; by default ``/`` and the folder's name."""
        if self._static_url_path is not None:
            return self._static_url_path
        if self.static_folder is not None:
            basename = os.path.basename(self.static_folder)
            return f"/{basename}".rstrip("/")
        return None

    @static_url_path.setter
    def static_url_path(self, value: str | None) -> None:
        if value is not None:
            value = value.rstrip("/")
        self._static_url_path = value

    @functools.cached_property
    def jinja_loader(self) -> BaseLoader | None:
        """The Jinja loader of this object's own templates: a ``FileSystemLoader`` of
        :attr:`template_folder` (relative to :attr:`root_path`), or ``None`` without one.
        The app's environment asks the app's loader first, then each blueprint's."""
        if self.template_folder is None:
            return None
        from jinja2 import FileSystemLoader  # Jinja loads with the first template use

        return FileSystemLoader(os.path.join(self.root_path, self.template_folder))

    def open_resource(
        self, resource: str, mode: str = "rb", encoding: str | None = None
    ) -> t.IO[t.AnyStr]:
        """Open a file relative to :attr:`root_path` for reading (``r``, ``rt`` or ``rb``)."""
        if mode not in {"r", "rt", "rb"}:
            raise ValueError(
                f"Resources can only be opened for reading, not with mode {mode!r}."
            )
        path = os.path.join(self.root_path, resource)
        if mode == "rb":
            return open(path, mode)
        return open(path, mode, encoding=encoding)

    # -- routes --------------------------------------------------------------------------

    def _method_route(
        self, method: str, rule: str, options: dict[str, t.Any]
    ) -> Callable[[T_route], T_route]:
        if "methods" in options:
            raise TypeError(
                f"Use the 'route' decorator to pass 'methods': '{method.lower()}' already sets"
                f" the method to {method}."
            )
        return self.route(rule, methods=[method], **options)

    @setupmethod
    def get(self, rule: str, **options: t.Any) -> Callable[[T_route], T_route]:
        """``route(rule, methods=["GET"], **options)``."""
        return self._method_route("GET", rule, options)

    @setupmethod
    def post(self, rule: str, **options: t.Any) -> Callable[[T_route], T_route]:
        """``route(rule, methods=["POST"], **options)``."""
        return self._method_route("POST", rule, options)

    @setupmethod
    def put(self, rule: str, **options: t.Any) -> Callable[[T_route], T_route]:
        """``route(rule, methods=["PUT"], **options)``."""
        return self._method_route("PUT", rule, options)

    @setupmethod
    def delete(self, rule: str, **options: t.Any) -> Callable[[T_route], T_route]:
        """``route(rule, methods=["DELETE"], **options)``."""
        return self._method_route("DELETE", rule, options)

    @setupmethod
    def patch(self, rule: str, **options: t.Any) -> Callable[[T_route], T_route]:
        """``route(rule, methods=["PATCH"], **options)``."""
        return self._method_route("PATCH", rule, options)

    @setupmethod
    def route(self, rule: str, **options: t.Any) -> Callable[[T_route], T_route]:
        """Decorate a view function (``def`` or ``async def``) to serve URL ``rule``.

        :param rule: the URL rule, with werkzeug converters: ``/user/<int:user_id>``.
        :param options: ``endpoint`` (default: the function's name), ``methods``
            (default: ``["GET"]``; HEAD and OPTIONS are added), and werkzeug ``Rule``
            options such as ``defaults``, ``strict_slashes``, ``subdomain``, ``host``.
        """

        def decorator(f: T_route) -> T_route:
            endpoint = options.pop("endpoint", None)
            self.add_url_rule(rule, endpoint, f, **options)
            return f

        return decorator

    def add_url_rule(
        self,
        rule: str,
        endpoint: str | None = None,
        view_func: ft.RouteCallable | None = None,
        provide_automatic_options: bool | None = None,
        **options: t.Any,
    ) -> None:
        """Register a URL rule; see :meth:`route`."""
        raise NotImplementedError

    @setupmethod
    def endpoint(self, endpoint: str) -> Callable[[F], F]:
        """Decorate a view function for an endpoint added with :meth:`add_url_rule` without
        a view function."""

        def decorator(f: F) -> F:
            self.view_functions[endpoint] = f
            return f

        return decorator

    @setupmethod
    def websocket(self, rule: str, **options: t.Any) -> Callable[[T_route], T_route]:
        """Decorate a WebSocket handler (``def`` or ``async def``) for URL ``rule``.

        Served by the ASGI entry point only; over WSGI, a request to the URL answers 400.
        The handler uses the :data:`~ctxflask.websocket` proxy (``accept``, ``receive``,
        ``send``, ``close``). A value it returns before accepting is the HTTP response that
        rejects the handshake.
        """

        def decorator(f: T_route) -> T_route:
            endpoint = options.pop("endpoint", None)
            self.add_url_rule(
                rule,
                endpoint,
                f,
                websocket=True,
                methods=["GET"],
                provide_automatic_options=False,
                **options,
            )
            return f

        return decorator

    # -- hooks ---------------------------------------------------------------------------

    @setupmethod
    def before_websocket(self, f: T_before_request) -> T_before_request:
        """Run ``f()`` (sync or async) before each WebSocket handler. A return value other
        than ``None`` rejects the handshake with that response."""
        self.before_websocket_funcs[None].append(f)
        return f

    @setupmethod
    def after_websocket(self, f: T_after_websocket) -> T_after_websocket:
        """Run ``f(response)`` (sync or async) after each WebSocket handler returns;
        ``response`` is the handshake's rejection, or ``None`` when the connection was
        accepted. It returns the response (or ``None``)."""
        self.after_websocket_funcs[None].append(f)
        return f

    @setupmethod
    def before_request(self, f: T_before_request) -> T_before_request:
        """Run ``f()`` before each request's view. A return value other than ``None``
        becomes the response and the view is skipped."""
        self.before_request_funcs[None].append(f)
        return f

    @setupmethod
    def after_request(self, f: T_after_request) -> T_after_request:
        """Run ``f(response)`` after each request's view; it returns the response to send.
        Callbacks run in the reverse order of registration. Not run when an unhandled
        exception ends the request (teardown callbacks are)."""
        self.after_request_funcs[None].append(f)
        return f

    @setupmethod
    def teardown_request(self, f: T_teardown) -> T_teardown:
        """Run ``f(error)`` when each request's context is popped, even after an error;
        ``error`` is the unhandled exception or ``None``. Every teardown runs even if one
        raises. For a streamed response this is after its last chunk."""
        self.teardown_request_funcs[None].append(f)
        return f

    @setupmethod
    def context_processor(
        self, f: T_template_context_processor
    ) -> T_template_context_processor:
        """Register a function returning names to add to every template's context."""
        self.template_context_processors[None].append(f)
        return f

    @setupmethod
    def url_value_preprocessor(
        self, f: T_url_value_preprocessor
    ) -> T_url_value_preprocessor:
        """Run ``f(endpoint, view_args)`` before ``before_request`` callbacks; it may
        change ``view_args`` in place (to pop values into ``g``, say)."""
        self.url_value_preprocessors[None].append(f)
        return f

    @setupmethod
    def url_defaults(self, f: T_url_defaults) -> T_url_defaults:
        """Run ``f(endpoint, values)`` when building a URL; it may fill in ``values``."""
        self.url_default_functions[None].append(f)
        return f

    @setupmethod
    def errorhandler(
        self, code_or_exception: type[BaseException] | int
    ) -> Callable[[T_error_handler], T_error_handler]:
        """Decorate a function handling an HTTP status code or an exception class.

        The handler gets the exception and returns a response value. For an exception
        class, the most specific registered class wins.
        """

        def decorator(f: T_error_handler) -> T_error_handler:
            self.register_error_handler(code_or_exception, f)
            return f

        return decorator

    @setupmethod
    def register_error_handler(
        self, code_or_exception: type[BaseException] | int, f: ft.ErrorHandlerCallable
    ) -> None:
        """Register ``f`` as the handler of a status code or exception class."""
        exc_class, code = self._get_exc_class_and_code(code_or_exception)
        self.error_handler_spec[None][code][exc_class] = f

    @staticmethod
    def _get_exc_class_and_code(
        exc_class_or_code: type[BaseException] | int,
    ) -> tuple[type[BaseException], int | None]:
        exc_class: type[BaseException]
        if isinstance(exc_class_or_code, int):
            try:
                exc_class = default_exceptions[exc_class_or_code]
            except KeyError:
                raise ValueError(
                    f"'{exc_class_or_code}' is not a recognized HTTP error code. Use a"
                    " subclass of HTTPException with that code instead."
                ) from None
        else:
            exc_class = exc_class_or_code

        if isinstance(exc_class, BaseException):
            raise TypeError(
                f"{exc_class!r} is an instance, not a class. Handlers can only be"
                " registered for exception classes or HTTP error codes."
            )
        if not isinstance(exc_class, type) or not issubclass(exc_class, Exception):
            raise ValueError(
                f"'{getattr(exc_class, '__name__', exc_class)}' is not a subclass of"
                " Exception. Handlers can only be registered for exception classes or HTTP"
                " error codes."
            )
        if issubclass(exc_class, HTTPException):
            return exc_class, exc_class.code
        return exc_class, None


def _endpoint_from_view_func(view_func: Callable[..., t.Any]) -> str:
    if view_func is None:
        raise TypeError("expected view func if endpoint is not provided.")
    return view_func.__name__
