"""The request of an ASGI scope.

The ASGI entry point makes werkzeug's request from the scope itself: the request line, the
server and client addresses are all there. The WSGI environ that werkzeug's request also
carries (``request.environ``, and through it the headers and the body stream) is built from
the scope only when something reads it. The few environ values the pipeline reads on every
request (the Host and Cookie headers, the upgrade headers, the body length) come from one
pass over the scope's headers instead: a request that reads nothing else never builds one.
"""

from __future__ import annotations

import sys
import typing as t

from werkzeug.datastructures import EnvironHeaders
from werkzeug.sansio.request import Request as _SansIORequest

from ..core.wrappers import EnvironSource
from ..core.wrappers import Request
from .types import Scope

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

#: The scope extension the test client uses to keep a request's contexts for inspection.
PRESERVE_CONTEXT = "ctxflask.preserve_context"

# Header names seen so far and their environ keys (bounded: names come from clients).
_environ_keys: dict[bytes, str] = {}


def _environ_key(raw_name: bytes) -> str:
    key = _environ_keys.get(raw_name)
    if key is None:
        key = raw_name.decode("latin-1").upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = f"HTTP_{key}"
        if len(_environ_keys) < 512:
            _environ_keys[raw_name] = key
    return key


def _latin1(text: str) -> str:
    # WSGI carries bytes as latin-1 strings: the UTF-8 bytes of a non-ASCII path.
    return text if text.isascii() else text.encode().decode("latin-1")


def split_path(scope: Scope) -> tuple[str, str]:
    """The scope's ``root_path``, and its path below it (``SCRIPT_NAME``, ``PATH_INFO``)."""
    root_path: str = scope.get("root_path", "")
    path: str = scope["path"]
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :]
    return root_path, path


def server_address(scope: Scope) -> tuple[str, int | None]:
    """The scope's ``server`` (host, port), or the default a missing one stands for."""
    server = scope.get("server") or ("localhost", 80)
    return server[0], server[1]


def build_environ(scope: Scope, body: t.Any) -> dict[str, t.Any]:
    """The WSGI environ of an ASGI ``http`` or ``websocket`` scope, with ``body`` as
    ``wsgi.input``."""
    root_path, path = split_path(scope)
    server = server_address(scope)
    client = scope.get("client")
    environ: dict[str, t.Any] = {
        "REQUEST_METHOD": scope.get("method", "GET"),
        "SCRIPT_NAME": _latin1(root_path),
        "PATH_INFO": _latin1(path),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": server[0],
        "SERVER_PORT": "" if server[1] is None else str(server[1]),
        "SERVER_PROTOCOL": _PROTOCOLS.get(scope.get("http_version", "1.1"), "HTTP/1.1"),
        "REMOTE_ADDR": client[0] if client else "",
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": body,
        "asgi.scope": scope,
        "wsgi.errors": sys.stderr,  # read now: it may have been replaced since import
        **_WSGI_CONSTANTS,
    }
    if client:
        environ["REMOTE_PORT"] = str(client[1])
    # The request line's target, as WSGI servers give it (werkzeug's and gunicorn's):
    # instrumentations report it.
    raw_path = scope.get("raw_path")
    target = (
        raw_path.decode("latin-1")
        if raw_path
        else environ["SCRIPT_NAME"] + environ["PATH_INFO"]
    )
    if environ["QUERY_STRING"]:
        target = f"{target}?{environ['QUERY_STRING']}"
    environ["REQUEST_URI"] = environ["RAW_URI"] = target
    for raw_name, raw_value in scope["headers"]:
        name = _environ_key(raw_name)
        value = raw_value.decode("latin-1")
        if name in environ:
            separator = "; " if name == "HTTP_COOKIE" else ","
            value = f"{environ[name]}{separator}{value}"
        environ[name] = value
    extensions = scope.get("extensions")
    if extensions and PRESERVE_CONTEXT in extensions:
        environ["werkzeug.debug.preserve_context"] = extensions[PRESERVE_CONTEXT]
    return environ


_PROTOCOLS = {"1.0": "HTTP/1.0", "1.1": "HTTP/1.1", "2": "HTTP/2", "3": "HTTP/3"}
_WSGI_CONSTANTS: dict[str, t.Any] = {
    "wsgi.version": (1, 0),
    "wsgi.multithread": True,
    "wsgi.multiprocess": True,
    "wsgi.run_once": False,
    # Every ASGI body has an end (more_body=False): read to it, within the limits.
    "wsgi.input_terminated": True,
}


# The environ values read on every request, and the header each comes from.
_SCANNED_HEADERS: dict[bytes, str] = {
    b"host": "HTTP_HOST",
    b"cookie": "HTTP_COOKIE",
    b"upgrade": "HTTP_UPGRADE",
    b"connection": "HTTP_CONNECTION",
    b"content-length": "CONTENT_LENGTH",
    b"content-type": "CONTENT_TYPE",
    b"transfer-encoding": "HTTP_TRANSFER_ENCODING",
}
_PRESERVE_KEY = "werkzeug.debug.preserve_context"
#: The environ keys a :class:`ScopeEnviron` knows before its environ is built.
SCANNED = frozenset((*_SCANNED_HEADERS.values(), _PRESERVE_KEY))


class ScopeEnviron(EnvironSource):
    """The WSGI environ of a scope, built on first use, and the values scanned before it.

    A request made from the scope and its headers share one: they see the same environ,
    whichever of them builds it.
    """

    __slots__ = ("body", "environ", "scanned", "scope")

    scanned_keys = SCANNED

    def __init__(self, scope: Scope, body: t.Any = None) -> None:
        self.scope = scope
        #: The ``wsgi.input`` of the environ (settable until it is built).
        self.body = body
        self.environ: dict[str, t.Any] | None = None
        scanned: dict[str, t.Any] = {}
        for raw_name, raw_value in scope["headers"]:
            key = _SCANNED_HEADERS.get(raw_name)
            if key is not None:
                value = raw_value.decode("latin-1")
                if key in scanned:  # joined as in the environ
                    separator = "; " if key == "HTTP_COOKIE" else ","
                    value = f"{scanned[key]}{separator}{value}"
                scanned[key] = value
        extensions = scope.get("extensions")
        if extensions and PRESERVE_CONTEXT in extensions:
            scanned[_PRESERVE_KEY] = extensions[PRESERVE_CONTEXT]
        self.scanned = scanned

    def get(self) -> dict[str, t.Any]:
        """The environ, built now if it was not yet."""
        environ = self.environ
        if environ is None:
            environ = self.environ = build_environ(self.scope, self.body)
        return environ

    def url_parts(self) -> tuple[str, str, str, str, str]:
        """The method, scheme, script name, path info and query string, from the scope
        the environ would be built from."""
        scope = self.scope
        script_name, path_info = split_path(scope)
        return (
            scope.get("method", "GET"),
            scope.get("scheme", "http"),
            script_name,
            path_info,
            scope.get("query_string", b"").decode(errors="replace"),
        )

    def content_length(self) -> int | None:
        """The declared body length; 0 when HTTP/1 says there is no body; None if
        unknown."""
        length = self.scanned.get("CONTENT_LENGTH")
        if length is not None:
            try:
                return max(int(length), 0)
            except ValueError:
                return None
        if "HTTP_TRANSFER_ENCODING" not in self.scanned and self.scope.get(
            "http_version", "1.1"
        ) in ("1.0", "1.1"):
            return 0
        return None


class ScopeHeaders(EnvironHeaders):
    """The headers of a request made from an ASGI scope: werkzeug's headers of its
    environ, which they build on first use."""

    def __init__(self, source: ScopeEnviron) -> None:
        self._list = []  # what Headers.__init__ sets; these headers read the environ
        self._source = source

    @property
    def environ(self) -> WSGIEnvironment:  # type: ignore[override]
        return self._source.get()


def request_from_scope(cls: type[Request], source: ScopeEnviron) -> Request:
    """The request of an ASGI scope, made without building its WSGI environ: what
    ``cls(environ)`` would make from it. Only for classes that keep werkzeug's
    ``__init__``; a test compares the two."""
    scope = source.scope
    root_path, path = split_path(scope)
    server = server_address(scope)
    client = scope.get("client")
    request = cls.__new__(cls)
    _SansIORequest.__init__(
        request,
        method=scope.get("method", "GET"),
        scheme=scope.get("scheme", "http"),
        server=server,
        root_path=root_path,
        path=path,
        query_string=scope.get("query_string", b""),
        headers=ScopeHeaders(source),
        remote_addr=client[0] if client else "",
    )
    request._source = source
    request.shallow = False
    return request


class Route(str):
    """``scope["route"]``: the rule the request matched (``/items/<int:item_id>``), set
    before the response starts, for ASGI middleware that names requests by route.

    It is the rule's string, and answers the attributes that such middleware reads from
    the route objects other frameworks put there: ``path_format`` (OpenTelemetry's ASGI
    instrumentation) and ``path`` (sentry-sdk's, with ``transaction_style="url"``).
    """

    __slots__ = ()

    @property
    def path(self) -> str:
        return str(self)

    @property
    def path_format(self) -> str:
        return str(self)


def set_route(scope: Scope, request: Request) -> None:
    """Put the rule ``request`` matched in ``scope["route"]``, if it matched one."""
    rule = request.url_rule
    if rule is not None:
        route = getattr(rule, "_asgi_route", None)
        if route is None:  # made once per rule: every request sets it
            route = rule._asgi_route = Route(rule.rule)  # type: ignore[attr-defined]
        scope["route"] = route
