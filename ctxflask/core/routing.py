"""Matching requests to rules: werkzeug's routing, with what every request would
otherwise redo remembered.

- :func:`match` remembers matches by request line, for rules whose converters are
  werkzeug's own (pure functions of the path).
- :func:`bind_to_request` binds the URL map to a request without werkzeug's server-name
  logic in the common case that does not use it (no ``SERVER_NAME``, host or subdomain
  matching), and without building an ASGI request's environ.
"""

from __future__ import annotations

import typing as t
from urllib.parse import quote as _url_quote

from werkzeug.exceptions import BadHost
from werkzeug.routing import BuildError
from werkzeug.routing import Map
from werkzeug.routing import MapAdapter
from werkzeug.routing import Rule
from werkzeug.routing.converters import AnyConverter
from werkzeug.routing.converters import FloatConverter
from werkzeug.routing.converters import IntegerConverter
from werkzeug.routing.converters import PathConverter
from werkzeug.routing.converters import UnicodeConverter
from werkzeug.routing.converters import UUIDConverter
from werkzeug.sansio.utils import get_host as _sansio_get_host

from .globals import _cv_app
from .globals import _cv_request
from .wrappers import wsgi_str

if t.TYPE_CHECKING:
    from .app import App
    from .ctx import RequestContext
    from .wrappers import Request


class _Unbuilt:
    def __repr__(self) -> str:
        return "<URL adapter not built yet>"


#: A request context's URL adapter before it is built (with the default binding, matching
#: does without one until something needs it).
UNBUILT: t.Any = _Unbuilt()


class URLMap(Map):
    """werkzeug's ``Map``, counting its changes, so that remembered matches are forgotten
    when rules are added."""

    version = 0

    def add(self, rulefactory: t.Any) -> None:
        """Add a rule (or rule factory); see ``werkzeug.routing.Map.add``."""
        super().add(rulefactory)
        self.version += 1


def binds_lazily(app: App) -> bool:
    """Whether a request's URL adapter is the default one (no ``SERVER_NAME``,
    ``TRUSTED_HOSTS``, host or subdomain matching, nor an overridden
    :meth:`App.create_url_adapter`), which matching can do without."""
    config = app.config
    return (
        not app._custom_url_adapter
        and config["SERVER_NAME"] is None
        and config["TRUSTED_HOSTS"] is None
        and not app.subdomain_matching
        and not app.url_map.host_matching
    )


#: How many matches :func:`match` remembers per app; the oldest is forgotten first.
MATCHES_KEPT = 1024

#: werkzeug's converters, whose ``to_python`` depends on the path part alone. A subclass
#: may not (a converter loading a record, say), so the check is on the exact type.
_PURE_CONVERTERS = frozenset(
    {
        UnicodeConverter,
        IntegerConverter,
        FloatConverter,
        PathConverter,
        AnyConverter,
        UUIDConverter,
    }
)


def _is_pure(rule: Rule) -> bool:
    """Whether the same path always gives ``rule`` the same arguments (a rule without
    arguments too)."""
    return all(type(c) in _PURE_CONVERTERS for c in rule._converters.values())


def match(app: App, ctx: RequestContext) -> tuple[Rule, t.Mapping[str, t.Any]]:
    """``ctx.url_adapter.match(return_rule=True)``, remembering the matches of rules
    whose converters are werkzeug's own: for those, the same request line always gives
    the same match, and matching is a fifth to a third of the cost of a small request.
    With the default binding a remembered match needs no adapter at all. A rule with
    another converter is matched every time. Bounded (the oldest match is forgotten
    first: paths and hosts come from clients); forgotten when rules are added."""
    version = getattr(app.url_map, "version", None)
    if version is None:  # a map class that does not count its changes
        return ctx.url_adapter.match(return_rule=True)  # type: ignore[union-attr]
    key: tuple[t.Any, ...]
    if ctx._url_adapter is UNBUILT:
        request = ctx.request
        # What _bind_to_request binds from and matching reads: the server name comes
        # from the first three; the path as werkzeug's request normalises it, as
        # matching does.
        host, upgrade, connection = request._routing_headers()
        key = (
            request.scheme,
            host,
            request.server,
            request.path,
            request.method,
            upgrade,
            connection,
            version,
        )
    else:
        adapter = ctx.url_adapter
        key = (
            adapter.server_name,  # type: ignore[union-attr]
            adapter.subdomain,  # type: ignore[union-attr]
            adapter.path_info,  # type: ignore[union-attr]
            adapter.default_method,  # type: ignore[union-attr]
            adapter.websocket,  # type: ignore[union-attr]
            version,
        )
    cache = app._matches
    hit = cache.get(key)
    if hit is not None:
        return hit  # the caller copies the arguments
    if ctx._url_adapter is UNBUILT:  # the default binding: bind it directly
        ctx._url_adapter = bind_to_request(app.url_map, ctx.request)
    rule, args = ctx.url_adapter.match(return_rule=True)  # type: ignore[union-attr]
    if _is_pure(rule):
        if len(cache) >= MATCHES_KEPT:
            try:
                del cache[next(iter(cache))]
            except (KeyError, RuntimeError):  # another thread forgot it first
                pass
        cache[key] = (rule, dict(args))
    return rule, args


def _optional_wsgi_str(value: str | None) -> str | None:
    return None if value is None else wsgi_str(value)


_server_names: dict[tuple[t.Any, ...], tuple[str, str]] = {}


def _server_name(request: Request) -> str:
    """The request's host, validated by werkzeug (``request.host``), with its name
    IDNA-encoded as ``Map.bind`` does. Both are remembered for the few hosts a server sees
    (bounded: the Host header comes from clients)."""
    if "host" in request.__dict__:  # already validated against TRUSTED_HOSTS
        return _idna(request.host.lower())
    key = (request.scheme, request._environ_get("HTTP_HOST"), request.server)
    known = _server_names.get(key)
    if known is None:
        # request.host, from the Host header as the environ has it (not built for it).
        host = _sansio_get_host(key[0], key[1], key[2], request.trusted_hosts)
        known = (host, _idna(host.lower()))
        if len(_server_names) < 256:
            _server_names[key] = known
    request.__dict__["host"] = known[0]  # werkzeug's cached property, filled
    return known[1]


_idna_names: dict[str, str] = {}


def _idna(host: str) -> str:
    encoded = _idna_names.get(host)
    if encoded is None:
        name, sep, port = host.partition(":")
        try:
            encoded = f"{name.encode('idna').decode('ascii')}{sep}{port}"
        except UnicodeError as e:
            raise BadHost() from e
        if len(_idna_names) < 256:
            _idna_names[host] = encoded
    return encoded


def bind_to_request(url_map: Map, request: Request) -> MapAdapter:
    """``url_map.bind_to_environ(environ, subdomain=default)`` for the common case of no
    ``SERVER_NAME`` and no host or subdomain matching, without the server-name logic that
    case does not use. A test compares the two."""
    source = request._source
    if source is None:
        environ = request.environ
        method = environ["REQUEST_METHOD"]
        scheme = environ["wsgi.url_scheme"]
        script_name = _optional_wsgi_str(environ.get("SCRIPT_NAME"))
        path_info = _optional_wsgi_str(environ.get("PATH_INFO"))
        query = _optional_wsgi_str(environ.get("QUERY_STRING"))
    else:  # the same values, from where the environ would be built from
        method, scheme, script_name, path_info, query = source.url_parts()
    upgrade = request._environ_get("HTTP_UPGRADE")
    if upgrade is not None and upgrade.lower() == "websocket":
        connection = (request._environ_get("HTTP_CONNECTION") or "").lower().split(",")
        if any(v.strip() == "upgrade" for v in connection):
            scheme = "wss" if scheme == "https" else "ws"
    return MapAdapter(
        url_map,
        _server_name(request),
        "/" if script_name is None else script_name,
        url_map.default_subdomain or "",
        scheme,
        "/" if path_info is None else path_info,
        method,
        query,
    )


class FormDataRoutingRedirect(AssertionError):
    """In debug mode: a routing redirect would make the browser drop the form body."""

    def __init__(self, request: Request) -> None:
        exc = request.routing_exception
        new_url = getattr(exc, "new_url", "?")
        super().__init__(
            f"A request was sent to {request.url!r}, but routing issued a redirect to the"
            f" canonical URL {new_url!r}.\n\nThe URL was defined with a trailing slash and"
            " the request lacked it; a browser would follow the redirect without the form"
            f" data of this {request.method} request. Fix: send the request to the URL"
            " with the trailing slash, or use a 307/308 redirect. This check runs only in"
            " debug mode."
        )


def build_url(
    app: App,
    endpoint: str,
    values: dict[str, t.Any],
    anchor: str | None,
    method: str | None,
    scheme: str | None,
    external: bool | None,
) -> str:
    """``app.url_for(endpoint, **values)``: with the current request's adapter, else the
    app context's (which needs ``SERVER_NAME``); relative endpoints (``.name``) within
    the request's blueprint."""
    _anchor, _method, _scheme, _external = anchor, method, scheme, external
    req_ctx = _cv_request.get(None)
    if req_ctx is not None:
        url_adapter = req_ctx.url_adapter
        blueprint_name = req_ctx.request.blueprint
        if endpoint[:1] == ".":
            if blueprint_name is not None:
                endpoint = f"{blueprint_name}{endpoint}"
            else:
                endpoint = endpoint[1:]
        if _external is None:
            _external = _scheme is not None
    else:
        app_ctx = _cv_app.get(None)
        if app_ctx is not None:
            url_adapter = app_ctx.url_adapter
        else:
            url_adapter = app.create_url_adapter(None)
        if url_adapter is None:
            raise RuntimeError(
                "Unable to build URLs outside an active request without 'SERVER_NAME'"
                " configured.\n\nOutside a request there is no host to build from."
                " Fix: set SERVER_NAME (and APPLICATION_ROOT, PREFERRED_URL_SCHEME as"
                " needed), or build the URL inside `app.test_request_context()`."
            )
        if _external is None:
            _external = True
    if _scheme is not None and not _external:
        raise ValueError("When specifying '_scheme', '_external' must be True.")

    app.inject_url_defaults(endpoint, values)
    try:
        rv = url_adapter.build(  # type: ignore[union-attr]
            endpoint,
            values,
            method=_method,
            url_scheme=_scheme,
            force_external=_external,
        )
    except BuildError as error:
        values.update(
            _anchor=_anchor, _method=_method, _scheme=_scheme, _external=_external
        )
        return app.handle_url_build_error(error, endpoint, values)
    if _anchor is not None:
        rv = f"{rv}#{_url_quote(_anchor, safe='%!#$&()*+,/:;=?@')}"
    return rv
