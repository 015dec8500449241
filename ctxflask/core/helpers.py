"""Helpers used from views: URLs, redirects, aborts, responses, files, flashed messages."""

from __future__ import annotations

import contextvars
import functools
import importlib.util
import os
import sys
import typing as t
from collections.abc import Callable
from collections.abc import Iterator

import werkzeug.utils
from werkzeug.exceptions import abort as _wz_abort
from werkzeug.utils import redirect as _wz_redirect
from werkzeug.wrappers import Response as BaseResponse

from .. import bridge
from .ctx import _fresh_copies
from .errors import HTTPDisconnect
from .globals import _cv_app
from .globals import _cv_request
from .globals import current_app
from .globals import request
from .globals import request_ctx
from .globals import session
from .signals import message_flashed
from .signals import send_steps

F = t.TypeVar("F", bound=Callable[..., t.Any])

if t.TYPE_CHECKING:
    from .ctx import AppContext
    from .ctx import RequestContext
    from .wrappers import Response


def get_debug_flag() -> bool:
    """Whether ``CTXFLASK_DEBUG`` (or ``FLASK_DEBUG``) asks for debug mode."""
    value = os.environ.get("CTXFLASK_DEBUG", os.environ.get("FLASK_DEBUG"))
    return (
        value is not None and value != "" and value.lower() not in {"0", "false", "no"}
    )


def get_load_dotenv(default: bool = True) -> bool:
    """Whether to load ``.env`` files: false when ``CTXFLASK_SKIP_DOTENV`` (or
    ``FLASK_SKIP_DOTENV``) is set to a true value."""
    value = os.environ.get("CTXFLASK_SKIP_DOTENV", os.environ.get("FLASK_SKIP_DOTENV"))
    if not value:
        return default
    return value.lower() in {"0", "false", "no"}


@t.overload
def stream_with_context(
    generator_or_function: Iterator[t.AnyStr],
) -> Iterator[t.AnyStr]: ...


@t.overload
def stream_with_context(
    generator_or_function: Callable[..., Iterator[t.AnyStr]],
) -> Callable[..., Iterator[t.AnyStr]]: ...


def stream_with_context(
    generator_or_function: Iterator[t.AnyStr] | Callable[..., Iterator[t.AnyStr]],
) -> Iterator[t.AnyStr] | Callable[..., Iterator[t.AnyStr]]:
    """Keep the current request's contexts around a generator (kept for compatibility).

    ctxflask already runs a streamed body inside its request's contexts until the last
    chunk, so a generator returned from a view does not need this. It still helps a
    generator that is iterated elsewhere (another thread, after the request): it then runs
    with copies of the request and app contexts, in a context of its own.
    """
    if not isinstance(generator_or_function, Iterator):
        function = generator_or_function

        @functools.wraps(function)
        def decorator(*args: t.Any, **kwargs: t.Any) -> Iterator[t.AnyStr]:
            return stream_with_context(function(*args, **kwargs))

        return decorator

    ctx = _cv_request.get(None)
    if ctx is None:
        raise RuntimeError(
            "'stream_with_context' can only be used while a request is handled.\n\n"
            "It keeps the current request's context around a generator, and none is active."
            " Fix: call it from a view."
        )
    return _StreamInContext(generator_or_function, ctx)


class _StreamInContext(Iterator[t.Any]):
    """Iterate ``gen`` within the request context it was created in."""

    def __init__(self, gen: Iterator[t.Any], ctx: RequestContext) -> None:
        self._gen = gen
        self._ctx = ctx
        self._contexts: list[AppContext | RequestContext] = [_cv_app.get(), ctx]
        self._own: contextvars.Context | None = None
        self._pushed: list[t.Any] = []

    def __iter__(self) -> _StreamInContext:
        return self

    def __next__(self) -> t.Any:
        if self._own is None and _cv_request.get(None) is self._ctx:
            return next(self._gen)  # already inside its request, as ctxflask streams
        if self._own is None:
            # Elsewhere: run in a context of our own, so the copies pushed for the
            # generator never show in the caller's context between chunks.
            self._own = contextvars.Context()
            self._pushed = _fresh_copies(self._contexts)
            for c in self._pushed:
                self._own.run(c.push)
        try:
            return self._own.run(next, self._gen)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        close = getattr(self._gen, "close", None)
        own, self._own = self._own, None
        try:
            if close is not None:
                if own is None:
                    close()
                else:
                    own.run(close)
        finally:
            if own is not None:
                for c in reversed(self._pushed):
                    own.run(c.pop, None)
            self._pushed = []


def stream_request_body(view: F) -> F:
    """Mark an async view that reads its request body with ``request.iter_body()``.

    Under ASGI, ctxflask receives a request's whole body before its first async step, so
    that sync accessors (``request.get_json()``, ``form``, ...) work in async code. A view
    with this mark gets the body as it arrives instead, without it being kept whole (an
    upload to relay, say). Its async hooks must not read the body. Under WSGI the mark
    changes nothing: the body is read from the server's stream either way.
    """
    view.__ctxflask_streams_body__ = True  # type: ignore[attr-defined]
    return view


def cancel_on_disconnect(view: F) -> F:
    """Cancel an async view when its client goes away (under ASGI), instead of letting it
    run to its end: a long poll, a slow computation nobody waits for any more.

    Once the request body is all received (the entry point receives it before async
    steps, unless the view is marked :func:`stream_request_body`), the view is cancelled
    at its next ``await`` when the server sends ``http.disconnect``. The request then
    ends with :class:`~ctxflask.HTTPDisconnect`: no error handler runs, nothing is
    sent, teardown functions run once and receive it, and the app logs one debug line.
    In ``ASYNC_STEPS = "thread"`` mode (or with :func:`in_thread`) the view is cancelled
    on its worker thread's loop. Under WSGI the view runs to its end; so does any sync
    view, which cannot be interrupted (poll ``request.is_disconnected()`` instead).

    :raises TypeError: ``view`` is sync.
    """
    if not bridge.is_async_callable(view):
        raise TypeError(
            f"@cancel_on_disconnect marks async views, and {view!r} is sync: a sync view"
            " cannot be interrupted. Fix: make it `async def`, or poll"
            " `request.is_disconnected()` in it and return early."
        )

    @functools.wraps(view)
    async def cancelling(*args: t.Any, **kwargs: t.Any) -> t.Any:
        ctx = _cv_request.get(None)
        probe = None if ctx is None else ctx.request._disconnect
        if probe is None:
            return await view(*args, **kwargs)
        cancelled, rv = await bridge.cancellable(
            probe.on_disconnect, view, *args, **kwargs
        )
        if cancelled:
            raise HTTPDisconnect("The client went away; the view was cancelled.")
        return rv

    cancelling.__ctxflask_cancel_on_disconnect__ = True  # type: ignore[attr-defined]
    return t.cast(F, cancelling)


def make_response(*args: t.Any) -> Response:
    """Turn view return values into a response object, to add headers before returning:
    ``make_response(body, 404)``; with no arguments, an empty response."""
    if not args:
        return current_app.response_class()
    if len(args) == 1:
        args = args[0]
    return current_app.make_response(args)


def url_for(
    endpoint: str,
    *,
    _anchor: str | None = None,
    _method: str | None = None,
    _scheme: str | None = None,
    _external: bool | None = None,
    **values: t.Any,
) -> str:
    """The URL of ``endpoint`` with the given values.

    :param endpoint: an endpoint name; ``.name`` is relative to the current blueprint.
    :param _anchor: appended as ``#anchor``.
    :param _method: build the URL of the rule for this method.
    :param _scheme: the scheme of an external URL.
    :param _external: build an absolute URL (the default outside a request).
    :param values: the rule's variables; unknown ones become the query string.
    """
    return current_app.url_for(
        endpoint,
        _anchor=_anchor,
        _method=_method,
        _scheme=_scheme,
        _external=_external,
        **values,
    )


def redirect(
    location: str, code: int = 302, Response: type[BaseResponse] | None = None
) -> BaseResponse:
    """A response redirecting to ``location`` with status ``code``."""
    if _cv_app.get(None) is not None:
        return current_app.redirect(location, code=code)
    return _wz_redirect(location, code=code, Response=Response)


def abort(code: int | BaseResponse, *args: t.Any, **kwargs: t.Any) -> t.NoReturn:
    """Raise the HTTP error for ``code`` (or a response to send as is)."""
    if _cv_app.get(None) is not None:
        current_app.aborter(code, *args, **kwargs)
    _wz_abort(code, *args, **kwargs)


def flash(message: str, category: str = "message") -> None:
    """Store a message in the session, to show on a later request with
    :func:`get_flashed_messages`.

    :param message: the message.
    :param category: its category: ``"message"``, ``"error"``, ``"info"``, ...
    """
    flashes = session.get("_flashes", [])
    flashes.append((category, message))
    session["_flashes"] = flashes
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if message_flashed.receivers:
        bridge.run_steps(
            send_steps(message_flashed, app, message=message, category=category)
        )


def get_template_attribute(template_name: str, attribute: str) -> t.Any:
    """A macro or variable a template defines, to use from Python:
    ``get_template_attribute("_macros.html", "hello")("World")``.

    :param template_name: the template's name, as for ``render_template``.
    :param attribute: the name of the macro or variable.
    """
    template = current_app.jinja_env.get_template(template_name)
    return getattr(template.module, attribute)


def get_flashed_messages(
    with_categories: bool = False, category_filter: t.Iterable[str] = ()
) -> list[str] | list[tuple[str, str]]:
    """The messages flashed so far, taken out of the session on the first call of the
    request (later calls in the request return the same).

    :param with_categories: return ``(category, message)`` pairs.
    :param category_filter: return only these categories.
    """
    ctx = request_ctx._get_current_object()  # type: ignore[attr-defined]
    flashes = ctx.flashes
    if flashes is None:
        flashes = session.pop("_flashes") if "_flashes" in session else []
        ctx.flashes = flashes
    if category_filter:
        wanted = set(category_filter)
        flashes = [f for f in flashes if f[0] in wanted]
    if not with_categories:
        return [message for _, message in flashes]
    return [(category, message) for category, message in flashes]


def _send_file_kwargs(**kwargs: t.Any) -> dict[str, t.Any]:
    if kwargs.get("max_age") is None:
        kwargs["max_age"] = current_app.get_send_file_max_age
    kwargs.update(
        environ=request.environ,
        use_x_sendfile=current_app.config["USE_X_SENDFILE"],
        response_class=current_app.response_class,
        _root_path=current_app.root_path,
    )
    return kwargs


def send_file(
    path_or_file: os.PathLike[t.AnyStr] | str | t.BinaryIO,
    mimetype: str | None = None,
    as_attachment: bool = False,
    download_name: str | None = None,
    conditional: bool = True,
    etag: bool | str = True,
    last_modified: t.Any = None,
    max_age: int | Callable[[str | None], int | None] | None = None,
) -> Response:
    """Send a file's contents, with conditional requests, ETag and Range support.

    Relative paths are relative to the app's root path. Never pass a path taken from the
    request: use :func:`send_from_directory`, which refuses paths leaving its folder.
    """
    return werkzeug.utils.send_file(  # type: ignore[return-value]
        **_send_file_kwargs(
            path_or_file=path_or_file,
            mimetype=mimetype,
            as_attachment=as_attachment,
            download_name=download_name,
            conditional=conditional,
            etag=etag,
            last_modified=last_modified,
            max_age=max_age,
        )
    )


def send_from_directory(
    directory: os.PathLike[str] | str,
    path: os.PathLike[str] | str,
    **kwargs: t.Any,
) -> Response:
    """Send ``path`` from inside ``directory``; a path leaving it is a 404 (werkzeug's
    ``safe_join``)."""
    return werkzeug.utils.send_from_directory(  # type: ignore[return-value]
        directory, path, **_send_file_kwargs(**kwargs)
    )


def get_root_path(import_name: str) -> str:
    """The folder of the module or package ``import_name`` (the working directory when it
    cannot be found, as for an interactive session)."""
    mod = sys.modules.get(import_name)
    filename: str | None = getattr(mod, "__file__", None) if mod is not None else None
    if filename is None:
        try:
            spec = importlib.util.find_spec(import_name)
        except (ImportError, ValueError):
            spec = None
        if spec is None or spec.origin in (None, "namespace", "built-in", "frozen"):
            return os.getcwd()
        filename = spec.origin
    return os.path.dirname(os.path.abspath(filename))


def find_instance_path(import_name: str, root_path: str, name: str) -> str:
    """The ``instance`` folder beside the package (or module) ``import_name``, as in
    Flask; for an installed package, ``<prefix>/var/<name>-instance``."""
    location = _package_parent(import_name)
    if location is None:
        return os.path.join(root_path, "instance")
    prefix = _installed_prefix(location)
    if prefix is not None:
        return os.path.join(prefix, "var", f"{name}-instance")
    return os.path.join(location, "instance")


def _package_parent(import_name: str) -> str | None:
    """The folder holding the top-level package (or module) of ``import_name``."""
    try:
        spec = importlib.util.find_spec(import_name.partition(".")[0])
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin in ("built-in", "frozen"):
        return None
    if spec.origin is None or spec.origin == "namespace":
        parts = spec.submodule_search_locations
        return _namespace_part(import_name, list(parts)) if parts else None
    location = os.path.dirname(os.path.abspath(spec.origin))
    if spec.submodule_search_locations:  # a package: its parent folder
        return os.path.dirname(location)
    return location


def _namespace_part(import_name: str, parts: list[str]) -> str | None:
    """The folder holding the part of a namespace package that has ``import_name``: a
    namespace spreads over several folders, and the app's instance sits beside its own."""
    try:
        spec = importlib.util.find_spec(import_name)
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin in (None, "namespace"):  # the namespace itself
        return os.path.dirname(parts[0])
    where = spec.origin
    if spec.submodule_search_locations:
        where = os.path.commonpath(list(spec.submodule_search_locations))
    for part in parts:
        if _is_within(where, part):
            return os.path.dirname(part)
    return None


def _is_within(path: str, folder: str) -> bool:
    return os.path.commonpath([os.path.abspath(path), os.path.abspath(folder)]) == (
        os.path.abspath(folder)
    )


def _installed_prefix(location: str) -> str | None:
    """The installation prefix of a package folder in ``site-packages``, else None."""
    parent, folder = os.path.split(location)
    if folder.lower() != "site-packages":
        return None
    lib_parent, lib = os.path.split(parent)
    if lib.lower() == "lib":  # prefix/lib/site-packages
        return lib_parent
    if (
        os.path.basename(lib_parent).lower() == "lib"
    ):  # prefix/lib/pythonX.Y/site-packages
        return os.path.dirname(lib_parent)
    return parent
