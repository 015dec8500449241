"""Request and response objects: werkzeug's, with the app's configuration applied."""

from __future__ import annotations

import contextlib
import io
import typing as t
from collections.abc import AsyncGenerator
from collections.abc import AsyncIterator

from werkzeug.datastructures import EnvironHeaders
from werkzeug.datastructures import Headers
from werkzeug.exceptions import BadRequest
from werkzeug.exceptions import ClientDisconnected
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.sansio.request import Request as _SansIORequest
from werkzeug.sansio.utils import get_content_length
from werkzeug.utils import cached_property
from werkzeug.utils import get_content_type
from werkzeug.wrappers import Request as _WerkzeugRequest
from werkzeug.wrappers import Response as _WerkzeugResponse
from werkzeug.wsgi import LimitedStream

from . import json
from .debug_errors import attach_enctype_error_multidict
from .globals import _cv_app

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment
    from werkzeug.routing import Rule


_PRESERVE_CONTEXT = "werkzeug.debug.preserve_context"


class EnvironSource:
    """Where a request made without a WSGI environ gets one (under ASGI: from the scope),
    built on first use. Until then it answers, without building it, the few environ
    values every request reads (:attr:`scanned`) and the parts routing binds from."""

    __slots__ = ()

    #: The environ, once built; ``None`` before.
    environ: WSGIEnvironment | None
    #: The body: the environ's ``wsgi.input``.
    body: t.Any
    #: The environ values known without building it, by key (a key absent: not set).
    scanned: dict[str, t.Any]
    #: The keys :attr:`scanned` answers for, set or not.
    scanned_keys: t.ClassVar[frozenset[str]] = frozenset()

    def get(self) -> WSGIEnvironment:
        """The environ, built now if it was not yet."""
        raise NotImplementedError

    def url_parts(self) -> tuple[str, str, str, str, str]:
        """The method, scheme, script name, path info and query string, as
        ``Map.bind_to_environ`` reads them from the environ."""
        raise NotImplementedError


class AsyncBody(io.RawIOBase):
    """A request body an entry point receives as it is read (under ASGI): a readable
    stream for werkzeug's parsers like any ``wsgi.input``, which async code can also read
    chunk by chunk (:meth:`Request.iter_body`)."""

    #: The declared length, or ``None`` for a chunked body.
    content_length: int | None = None

    def iter_chunks(self) -> AsyncGenerator[bytes, None]:
        """The body, piece by piece as it arrives, without keeping it."""
        raise NotImplementedError


class DisconnectProbe(t.Protocol):
    """What an entry point tells a request about its client leaving, where it can."""

    def is_disconnected(self) -> bool:
        """Whether the client is known to have left."""
        ...

    def on_disconnect(
        self, callback: t.Callable[[], object]
    ) -> t.Callable[[], None] | None:
        """Have ``callback()`` called once the client leaves (at once if it left); the
        function returned removes it. ``None``: leaving cannot be told now."""
        ...


def _read_declared(body: t.IO[bytes] | io.RawIOBase, length: int) -> bytes:
    """``length`` bytes read from ``body``; a body that ends or fails sooner means the
    client left (400), as werkzeug's stream of a declared length tells it."""
    parts = []
    remaining = length
    while remaining > 0:
        try:
            chunk = body.read(remaining)
        except (OSError, ValueError) as e:
            raise ClientDisconnected() from e
        if not chunk:
            raise ClientDisconnected()
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts) if len(parts) != 1 else parts[0]


class Request(_WerkzeugRequest):
    """The request object of ctxflask, available as :data:`ctxflask.request`.

    Body limits (``MAX_CONTENT_LENGTH``, ``MAX_FORM_MEMORY_SIZE``, ``MAX_FORM_PARTS``) come
    from the app's config unless set on the request itself.
    """

    json_module: t.Any = json

    #: The rule that matched, set during routing; ``None`` when routing failed.
    url_rule: Rule | None = None
    #: The matched URL arguments; ``None`` when routing failed.
    view_args: dict[str, t.Any] | None = None
    #: The routing error (404, 405, redirect), raised again at dispatch.
    routing_exception: HTTPException | None = None

    #: What the entry point tells about the client leaving (``None``: nothing).
    _disconnect: DisconnectProbe | None = None

    _max_content_length: int | None = None
    _max_form_memory_size: int | None = None
    _max_form_parts: int | None = None

    # A request made without an environ (under ASGI, from the scope) builds it from
    # its source on first use.
    _source: EnvironSource | None = None
    _environ: WSGIEnvironment | None = None

    @property
    def environ(self) -> WSGIEnvironment:
        """The WSGI environ of the request; under ASGI, built from the scope when first
        read."""
        environ = self._environ
        if environ is None:
            if self._source is None:
                raise AttributeError("This request was made without an environ.")
            environ = self._environ = self._source.get()
            environ["werkzeug.request"] = self  # as werkzeug's own requests do
        return environ

    @environ.setter
    def environ(self, environ: WSGIEnvironment) -> None:
        self._environ = environ

    def _routing_headers(self) -> tuple[str | None, str | None, str | None]:
        """The Host, Upgrade and Connection headers as the environ has them (under ASGI,
        without building it)."""
        environ = self._environ
        get = self._environ_get if environ is None else environ.get
        return get("HTTP_HOST"), get("HTTP_UPGRADE"), get("HTTP_CONNECTION")

    def _environ_get(self, key: str) -> t.Any:
        """``self.environ.get(key)``; for a request made without an environ, without
        building it for the values every request reads (:attr:`EnvironSource.scanned`)."""
        environ = self._environ
        if environ is not None:
            return environ.get(key)
        source = self._source
        if source is None:
            return self.environ.get(key)  # raises: no environ, no source
        if source.environ is None and key in source.scanned_keys:
            return source.scanned.get(key)
        return source.get().get(key)

    @cached_property
    def content_length(self) -> int | None:
        """The declared body length (``Content-Length``); ``None`` if absent or with
        ``Transfer-Encoding: chunked``, 0 if invalid, as werkzeug reads it."""
        # werkzeug reads both headers through ``self.headers``, built for it. The usual
        # value, plain digits without Transfer-Encoding, is read here directly.
        environ = self._environ
        if environ is not None and "HTTP_TRANSFER_ENCODING" not in environ:
            value = environ.get("CONTENT_LENGTH")
            if value is None:
                return None
            if value.isdigit() and value.isascii():
                return int(value)
        return get_content_length(
            self._environ_get("CONTENT_LENGTH"),
            self._environ_get("HTTP_TRANSFER_ENCODING"),
        )

    def _parse_content_type(self) -> None:
        if "_parsed_content_type" not in self.__dict__:
            # What werkzeug parses, without building the headers (nor, under ASGI, the
            # environ).
            value = self._environ_get("CONTENT_TYPE")
            self._parsed_content_type = parse_options_header(value or "")

    # The two below are read on every request (under ASGI without building the environ).

    @property
    def _has_cookies(self) -> bool:
        """Whether the request has a Cookie header (read without parsing it)."""
        return self._environ_get("HTTP_COOKIE") is not None

    @property
    def _context_preserver(self) -> t.Any:
        """What keeps this request's contexts for inspection after it ends, if anything:
        the test client's ``werkzeug.debug.preserve_context``, a callable."""
        return self._environ_get(_PRESERVE_CONTEXT)

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> t.IO[bytes]:
        stream = super()._get_file_stream(
            total_content_length, content_type, filename, content_length
        )
        self.__dict__.setdefault("_parsed_files", []).append(stream)
        return stream

    def _load_form_data(self) -> None:
        try:
            super()._load_form_data()
        except BaseException:
            # A body that fails mid-part (cut short, too large): werkzeug's parser
            # leaves the files it opened for the parts open.
            for stream in self.__dict__.pop("_parsed_files", ()):
                stream.close()
            raise
        self.__dict__.pop("_parsed_files", None)
        # In debug mode a missing file explains the usual cause: a form sent without
        # enctype="multipart/form-data" carries file names only.
        ctx = _cv_app.get(None)
        if (
            ctx is not None
            and ctx.app.debug
            and self.mimetype != "multipart/form-data"
            and not self.files
        ):
            attach_enctype_error_multidict(self)

    @property
    def max_content_length(self) -> int | None:
        """The largest body accepted, in bytes: this request's own limit if set, else
        ``MAX_CONTENT_LENGTH``. Over it, reading the body raises 413."""
        if self._max_content_length is not None:
            return self._max_content_length
        ctx = _cv_app.get(None)
        if ctx is None:
            return super().max_content_length
        return t.cast("int | None", ctx.app.config["MAX_CONTENT_LENGTH"])

    @max_content_length.setter
    def max_content_length(self, value: int | None) -> None:
        self._max_content_length = value

    @property
    def max_form_memory_size(self) -> int | None:
        """The largest non-file form field, in bytes (``MAX_FORM_MEMORY_SIZE``)."""
        if self._max_form_memory_size is not None:
            return self._max_form_memory_size
        ctx = _cv_app.get(None)
        if ctx is None:
            return super().max_form_memory_size
        return t.cast("int | None", ctx.app.config["MAX_FORM_MEMORY_SIZE"])

    @max_form_memory_size.setter
    def max_form_memory_size(self, value: int | None) -> None:
        self._max_form_memory_size = value

    @property  # type: ignore[override]
    def max_form_parts(self) -> int | None:
        """The largest number of multipart parts (``MAX_FORM_PARTS``)."""
        if self._max_form_parts is not None:
            return self._max_form_parts
        ctx = _cv_app.get(None)
        if ctx is None:
            return super().max_form_parts
        return t.cast("int | None", ctx.app.config["MAX_FORM_PARTS"])

    @max_form_parts.setter
    def max_form_parts(self, value: int | None) -> None:
        self._max_form_parts = value

    _blueprints: list[str] | None = None

    @property
    def endpoint(self) -> str | None:
        """The endpoint that matched the request, ``None`` if routing failed."""
        if self.url_rule is not None:
            return t.cast(str, self.url_rule.endpoint)
        return None

    @property
    def blueprint(self) -> str | None:
        """The dotted name of the blueprint of the matched endpoint, if any."""
        endpoint = self.endpoint
        if endpoint is not None and "." in endpoint:
            return endpoint.rpartition(".")[0]
        return None

    @property
    def blueprints(self) -> list[str]:
        """The matched blueprint and its parents, innermost first."""
        # Read several times per request by the pipeline; the rule is set once.
        blueprints = self._blueprints
        if blueprints is None or self.url_rule is None:
            name = self.blueprint
            blueprints = [] if name is None else _blueprint_chain(name)
            if self.url_rule is not None:
                self._blueprints = blueprints
        return blueprints

    def is_disconnected(self) -> bool:
        """Whether the client has gone away, as far as the server can tell; for a long
        view, poll or stream to stop early. A plain method: call it from sync and async
        steps alike.

        Under ASGI it tells whether the server sent ``http.disconnect``, once the request
        body is all received (before that a client leaving makes reading the body fail
        with 400). The first call starts a watch on the server's loop that lasts until
        the request ends; from a sync step it returns once the watch has taken what the
        server had already sent, while the first call from an async step on the loop
        answers from what was known before it and the watch runs from its next
        ``await``. Under WSGI it is told from the client's socket where the server
        exposes it (gunicorn, werkzeug's development server): the peer closed it and
        sent nothing more. Elsewhere (granian's WSGI interface, the test clients while a
        request runs) it is ``False``.
        """
        probe = self._disconnect
        return probe is not None and probe.is_disconnected()

    async def iter_body(self) -> AsyncIterator[bytes]:
        """The request body, piece by piece as it arrives, for async views.

        Under ASGI, in a view marked :func:`~ctxflask.stream_request_body`, the body is
        received as it is read and never kept whole. ``MAX_CONTENT_LENGTH`` applies: a
        declared length over it raises 413 before reading, a chunked body as soon as it
        passes it. Read the body once, with this or with the sync accessors.
        """
        stream = self.environ.get("wsgi.input")
        if not isinstance(stream, AsyncBody):
            # WSGI: the server's stream, limited by werkzeug; reads block this thread only.
            source = self.stream
            while chunk := source.read(64 * 1024):
                yield chunk
            return
        limit = self.max_content_length
        declared = stream.content_length
        if limit is not None and declared is not None and declared > limit:
            raise RequestEntityTooLarge()
        received = 0
        async with contextlib.aclosing(stream.iter_chunks()) as chunks:
            async for chunk in chunks:
                received += len(chunk)
                if limit is not None and received > limit:
                    raise RequestEntityTooLarge()
                yield chunk

    @cached_property
    def stream(self) -> t.IO[bytes]:
        """The body stream, limited by ``MAX_CONTENT_LENGTH`` and the declared length.

        werkzeug's stream for a body without Content-Length (chunked) stops silently at
        the limit; this one raises 413 as soon as the body passes it, under both entry
        points. A body that ends before its Content-Length is a 400
        (:exc:`~werkzeug.exceptions.ClientDisconnected`), also from a WSGI server that
        ends the input itself (``wsgi.input_terminated``, as gunicorn does: its input
        ends where the client stopped sending, and werkzeug then trusts it).
        """
        declared = self._declared_body()
        if declared is not None:
            stream = LimitedStream(*declared)
            if self._body_read:  # by get_data: at its end, as werkzeug leaves it
                stream._pos = stream.limit
            return t.cast(t.IO[bytes], stream)
        source = self._source
        if source is not None and source.environ is None and not self.shallow:
            # An ASGI body, read before the environ was built: the stream werkzeug
            # makes of an input that ends itself (or the one below), without building it.
            return self._terminated_stream(source.body)
        environ = self.environ
        limit = self.max_content_length
        if (
            limit is not None
            and self.content_length is None
            and environ.get("wsgi.input_terminated")
        ):
            return t.cast(t.IO[bytes], _BoundedBody(environ["wsgi.input"], limit))
        return super().stream

    def _terminated_stream(self, body: t.IO[bytes]) -> t.IO[bytes]:
        """The stream of a body that ends by itself (``wsgi.input_terminated``): itself,
        or limited by ``MAX_CONTENT_LENGTH`` (413 past it)."""
        limit = self.max_content_length
        if limit is None:
            return body
        length = self.content_length
        if length is None:
            return t.cast(t.IO[bytes], _BoundedBody(body, limit))
        if length > limit:
            raise RequestEntityTooLarge()
        return t.cast(t.IO[bytes], LimitedStream(body, limit, is_max=True))

    #: Whether :meth:`get_data` read the body from the input without making the stream.
    _body_read = False

    def _declared_body(self) -> tuple[t.IO[bytes], int] | None:
        """The input and length of a WSGI body read to its declared length (the usual
        body, and that of a server that ends the input itself); 413 if that length is
        over the limit. ``None`` for any other body (an ASGI body knows its own end)."""
        if self._source is not None or self.shallow:
            return None
        length = self.content_length
        if length is None:
            return None
        environ = self.environ
        body = environ["wsgi.input"]
        if "wsgi.input_terminated" in environ and not (
            environ["wsgi.input_terminated"] and not isinstance(body, AsyncBody)
        ):
            return None
        limit = self.max_content_length
        if limit is not None and length > limit:
            raise RequestEntityTooLarge()
        return body, length

    def get_data(  # type: ignore[override]
        self, cache: bool = True, as_text: bool = False, parse_form_data: bool = False
    ) -> bytes | str:
        """The body as bytes (or text); see werkzeug's ``Request.get_data``."""
        if getattr(self, "_cached_data", None) is None and not parse_form_data:
            rv: bytes | None = None
            if (
                "stream" not in self.__dict__
                and not self._body_read
                and type(self).stream is _stream_property
            ):
                # A body of declared length is read from the input, without the stream
                # werkzeug would make for it (made if asked for later, read to its end).
                declared = self._declared_body()
                if declared is not None:
                    rv = _read_declared(*declared)
                    self._body_read = True
            else:
                stream: t.Any = self.stream
                if type(stream) is LimitedStream and not stream._limit_is_max:
                    # Read in as few reads as it takes, not werkzeug's 64 KiB rounds
                    # (the same bytes; a short body still raises).
                    rv = _read_declared(stream, stream.limit - stream.tell())
            if rv is not None:
                if cache:
                    self._cached_data = rv
                return rv.decode(errors="replace") if as_text else rv
        return super().get_data(cache, as_text, parse_form_data)  # type: ignore[call-overload, no-any-return]

    def get_json(
        self, force: bool = False, silent: bool = False, cache: bool = True
    ) -> t.Any | None:
        """Parse the body as JSON; see werkzeug's ``Request.get_json``.

        A document nested deeper than the parser can follow (the recursion limit, less
        the stack in use: some 950 levels by default; a "JSON bomb") fails as invalid
        JSON does, with 400 (or ``None`` when ``silent``), not a ``RecursionError``.
        """
        if cache:
            cached = self._cached_json[silent]
            if cached is not Ellipsis:
                return cached
        if not (force or self.is_json):
            return None if silent else self.on_json_loading_failed(None)
        data = self.get_data(cache=cache)
        try:
            rv = self.json_module.loads(data)
        except ValueError as e:
            return self._json_failed(e, silent, cache)
        except RecursionError:
            pass  # handled below, once the parser's frames are gone
        else:
            if cache:
                self._cached_json = (rv, rv)
            return rv
        error = ValueError("The JSON document is nested too deeply.")
        return self._json_failed(error, silent, cache)

    def _json_failed(self, error: ValueError, silent: bool, cache: bool) -> t.Any:
        """:meth:`get_json`'s answer to a body that is not valid JSON; as werkzeug's, it is
        kept (per ``silent``) when ``cache`` is set."""
        rv = None if silent else self.on_json_loading_failed(error)
        if cache:
            normal, quiet = self._cached_json
            self._cached_json = (normal, rv) if silent else (rv, quiet)
        return rv

    def on_json_loading_failed(self, e: ValueError | None) -> t.Any:
        """Called when the body is not valid JSON (400) or not JSON at all (415).

        The parser's message is shown only in debug mode.
        """
        try:
            return super().on_json_loading_failed(e)
        except BadRequest as error:
            ctx = _cv_app.get(None)
            if ctx is not None and ctx.app.debug:
                raise
            raise BadRequest() from error


_stream_property = Request.__dict__["stream"]


class _BoundedBody(io.RawIOBase):
    """A body without declared length, read to its end; 413 once it passes ``limit``."""

    def __init__(self, stream: t.IO[bytes], limit: int) -> None:
        super().__init__()
        self._stream = stream
        self._limit = limit
        self._read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: t.Any) -> int:
        remaining = self._limit - self._read
        if remaining <= 0:
            # At the limit: one more byte means too large; none means the body ended.
            if self._stream.read(1):
                raise RequestEntityTooLarge()
            return 0
        data = self._stream.read(min(len(buffer), remaining))
        size = len(data)
        buffer[:size] = data
        self._read += size
        return size


# The Content-Type header of each mimetype a response was built with (few: set in code).
_content_types: dict[str | None, str | None] = {}
_UNKNOWN: t.Any = object()


def _blueprint_chain(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]


class Response(_WerkzeugResponse):
    """The response object of ctxflask: werkzeug's, with ``text/html`` as the default
    mimetype and the app's JSON provider for :attr:`json`.

    Its body may also be an async iterable (an async generator a view returned): the entry
    points iterate it inside the request's contexts.
    """

    default_mimetype: str | None = "text/html"
    json_module = json
    autocorrect_location_header = False

    @classmethod
    def _from_bytes(cls, body: bytes, mimetype: str | None = None) -> t.Self:
        """``cls(body, mimetype=mimetype)`` for a 200 response (of the default mimetype if
        none is given), without werkzeug's general argument handling: the most common
        responses (text, JSON), built in a quarter of the time. A test checks that both
        give the same response."""
        if mimetype is None:
            mimetype = cls.default_mimetype
        content_type = _content_types.get(mimetype, _UNKNOWN)
        if content_type is _UNKNOWN:
            content_type = (
                None if mimetype is None else get_content_type(mimetype, "utf-8")
            )
            if len(_content_types) < 64:
                _content_types[mimetype] = content_type
        self = cls.__new__(cls)
        headers = Headers.__new__(Headers)  # its list is set below
        length = ("Content-Length", str(len(body)))
        headers._list = (
            [length]
            if content_type is None
            else [("Content-Type", content_type), length]
        )
        self.headers = headers
        self._status = "200 OK"
        self._status_code = 200
        self.direct_passthrough = False
        self._on_close = []
        self.response = [body]
        return self

    #: Whether :meth:`_from_bytes` builds what ``cls(body)`` would: false for subclasses
    #: that change how a response is built.
    _fast_init: t.ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: t.Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._fast_init = (
            cls.__init__ is Response.__init__
            and cls.set_data is Response.set_data
            and cls.default_status == 200
            and cls.automatically_set_content_length
        )

    @property
    def max_cookie_size(self) -> int:  # type: ignore[override]
        """``MAX_COOKIE_SIZE`` of the current app, else werkzeug's default."""
        ctx = _cv_app.get(None)
        if ctx is not None:
            return t.cast(int, ctx.app.config["MAX_COOKIE_SIZE"])
        return super().max_cookie_size


_get_wsgi_headers = Response.get_wsgi_headers


def builds_like_werkzeug(cls: type[_WerkzeugRequest]) -> bool:
    """Whether ``cls`` is a ctxflask request class that keeps werkzeug's ``__init__``, so
    that :func:`request_from_environ` (or, under ASGI, ``request_from_scope``) may make
    its requests."""
    return cls.__init__ is _WerkzeugRequest.__init__ and issubclass(cls, Request)


def request_from_environ(cls: type[Request], environ: WSGIEnvironment) -> Request:
    """``cls(environ)`` for a class that keeps werkzeug's ``__init__``, made without its
    general decoding where the environ needs none: every WSGI request is made so. A
    test compares the two."""
    request = cls.__new__(cls)
    name = environ.get("SERVER_NAME")
    server: tuple[str, int | None] | None = None
    if name is not None:
        try:
            server = (name, int(environ.get("SERVER_PORT")))  # type: ignore[arg-type]
        except (TypeError, ValueError):  # a unix socket
            server = (name, None)
    root_path = environ.get("SCRIPT_NAME") or ""
    path = environ.get("PATH_INFO") or ""
    _SansIORequest.__init__(
        request,
        method=environ.get("REQUEST_METHOD", "GET"),
        scheme=environ.get("wsgi.url_scheme", "http"),
        server=server,
        root_path=wsgi_str(root_path),
        path=wsgi_str(path),
        query_string=environ.get("QUERY_STRING", "").encode("latin1"),
        headers=EnvironHeaders(environ),
        remote_addr=environ.get("REMOTE_ADDR"),
    )
    request.environ = environ
    request.shallow = False
    environ["werkzeug.request"] = request
    return request


def wsgi_str(value: str) -> str:
    """A WSGI string (bytes as latin-1) as the UTF-8 text it holds, as werkzeug decodes
    paths; ASCII, the usual case, is the same either way."""
    if value.isascii():
        return value
    return value.encode("latin1").decode(errors="replace")


def sends_body(method: str, code: int) -> bool:
    """Whether a response of status ``code`` to a ``method`` request sends its body: not
    for HEAD, 1xx, 204 and 304."""
    return not (method == "HEAD" or 100 <= code < 200 or code in (204, 304))


# Header names as they are checked (lowercase) and as ASGI sends them (lowercase bytes);
# bounded, since views may make up names.
_header_names: dict[str, tuple[str, bytes]] = {}


def _header_name(name: str) -> tuple[str, bytes]:
    names = _header_names.get(name)
    if names is None:
        lower = name.lower()
        names = (lower, lower.encode("latin-1"))
        if len(_header_names) < 512:
            _header_names[name] = names
    return names


@t.overload
def response_headers(
    response: Response, request: Request, raw: t.Literal[False] = False
) -> list[tuple[str, str]]: ...
@t.overload
def response_headers(
    response: Response, request: Request, raw: t.Literal[True]
) -> list[tuple[bytes, bytes]]: ...
def response_headers(
    response: Response, request: Request, raw: bool = False
) -> list[tuple[str, str]] | list[tuple[bytes, bytes]]:
    """``response.get_wsgi_headers(request.environ).to_wsgi_list()``, for either entry
    point: ``raw=True`` gives ASGI's lowercase latin-1 bytes.

    It skips werkzeug's copy of the headers in the common case where it would change
    nothing: no location to make absolute, a status that keeps its entity headers, and a
    length already set or not computable."""
    code = response.status_code
    if (
        code >= 200
        and code != 204
        and code != 304
        and type(response).get_wsgi_headers is _get_wsgi_headers
    ):
        items: list[t.Any] = []
        has_length = False
        for item in response.headers._list:
            names = _header_names.get(item[0]) or _header_name(item[0])
            lower = names[0]
            if lower == "content-length":
                has_length = True
            elif lower == "location" or lower == "content-location":
                break
            items.append((names[1], item[1].encode("latin-1")) if raw else item)
        else:
            if has_length or not response.is_sequence:
                return items
    headers = response.get_wsgi_headers(request.environ).to_wsgi_list()
    if raw:
        return [(_header_name(k)[1], v.encode("latin-1")) for k, v in headers]
    return headers
