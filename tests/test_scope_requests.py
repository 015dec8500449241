"""Requests made from an ASGI scope (ASGI only): the request is the one werkzeug would make
from the scope's WSGI environ, which is built only when something reads it."""

from __future__ import annotations

import io

import pytest
from werkzeug.exceptions import BadHost
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RoutingException

import ctxflask
from ctxflask import request
from ctxflask.asgi.body import NO_BODY
from ctxflask.asgi.scope import build_environ
from ctxflask.asgi.scope import request_from_scope
from ctxflask.asgi.scope import ScopeEnviron
from ctxflask.core.routing import bind_to_request
from ctxflask.core.wrappers import AsyncBody
from ctxflask.wrappers import Request


def _scope(path: str = "/user/ada", **changes: object) -> dict[str, object]:
    scope: dict[str, object] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"example.test:8000"), (b"accept", b"*/*")],
        "client": ("10.0.0.7", 51000),
        "server": ("127.0.0.1", 8000),
    }
    scope.update(changes)
    return scope


_WS_HEADERS = [
    (b"host", b"example.test"),
    (b"upgrade", b"websocket"),
    (b"connection", b"keep-alive, Upgrade"),
]

_SCOPES = [
    pytest.param(_scope(), id="plain"),
    pytest.param(_scope(method="post"), id="lower-case-method"),
    pytest.param(_scope(query_string=b"q=%C3%BC&a=1&a=2"), id="query"),
    pytest.param(_scope(query_string="q=ü".encode()), id="raw-utf8-query"),
    pytest.param(_scope(query_string=b"q=\xff"), id="invalid-utf8-query"),
    pytest.param(_scope("/app/user/ada", root_path="/app"), id="root-path"),
    pytest.param(_scope("/äpp/user/日本", root_path="/äpp"), id="non-ascii-root"),
    pytest.param(_scope("/folder"), id="slash-redirect"),
    pytest.param(_scope("//user//ada"), id="double-slashes"),
    pytest.param(_scope("/nowhere"), id="not-found"),
    pytest.param(_scope(scheme="https", server=("10.1.1.1", 443)), id="https"),
    pytest.param(_scope(server=None), id="no-server"),
    pytest.param(_scope(server=("/run/app.sock", None)), id="unix-socket"),
    pytest.param(_scope(client=None), id="no-client"),
    pytest.param(_scope(http_version="1.0"), id="http-1.0"),
    pytest.param(_scope(http_version="2"), id="http-2"),
    pytest.param(_scope(headers=[]), id="no-headers"),
    pytest.param(_scope(headers=[(b"host", b"m\xc3\xbcnchen.test")]), id="idna-host"),
    pytest.param(_scope(headers=[(b"host", b"a..test")]), id="bad-host"),
    pytest.param(
        _scope(
            headers=[
                (b"host", b"example.test"),
                (b"cookie", b"a=1"),
                (b"cookie", b"b=2"),
                (b"accept", b"text/html"),
                (b"accept", b"*/*"),
                (b"x-under_score", b"u"),
                (b"content-type", b"application/json"),
                (b"content-length", b"2"),
            ]
        ),
        id="repeated-and-special-headers",
    ),
    pytest.param(_scope("/ws", type="websocket", headers=_WS_HEADERS), id="websocket"),
    pytest.param(_scope("/ws", headers=_WS_HEADERS), id="upgrade-headers-on-http"),
]


def _fields(req: Request) -> dict[str, object]:
    return {
        "method": req.method,
        "scheme": req.scheme,
        "server": req.server,
        "root_path": req.root_path,
        "path": req.path,
        "full_path": _or_error(lambda: req.full_path),
        "query_string": req.query_string,
        "args": _or_error(lambda: req.args.to_dict(flat=False)),
        "headers": list(req.headers),
        "remote_addr": req.remote_addr,
        "cookies": req.cookies.to_dict(flat=False),
        "content_length": req.content_length,
        "mimetype": req.mimetype,
        "url": _or_error(lambda: req.url),
        "host": _or_error(lambda: req.host),
    }


def _or_error(read):
    try:
        return read()
    except (HTTPException, UnicodeDecodeError) as e:
        return type(e)


@pytest.mark.parametrize("scope", _SCOPES)
def test_a_request_from_the_scope_equals_werkzeugs_from_the_environ(scope):
    made = request_from_scope(Request, ScopeEnviron(scope, b"body"))
    reference = Request(build_environ(scope, b"body"))
    assert _fields(made) == _fields(reference)
    # The environ, once read, is the same as well, and the headers read the same one.
    assert made.environ["werkzeug.request"] is made
    assert reference.environ["werkzeug.request"] is reference
    del made.environ["werkzeug.request"], reference.environ["werkzeug.request"]
    assert made.environ == reference.environ
    assert made.headers.environ is made.environ


def _adapter_app() -> ctxflask.Flask:
    app = ctxflask.Flask("scope_adapters", static_folder=None)

    def view(**kwargs):
        return ""

    app.add_url_rule("/", "index", view)
    app.add_url_rule("/user/<name>", "user", view)
    app.add_url_rule("/folder/", "folder", view)
    app.add_url_rule("/ws", "ws", view, websocket=True)
    return app


def _adapter_facts(bind):
    try:
        adapter = bind()
    except BadHost as e:
        return type(e)
    try:
        matched = adapter.match(return_rule=True)
        match = (matched[0].endpoint, matched[1])
    except (HTTPException, RoutingException) as e:
        match = (type(e), getattr(e, "new_url", None))
    return (
        adapter.server_name,
        adapter.script_name,
        adapter.url_scheme,
        adapter.path_info,
        adapter.default_method,
        adapter.query_args,
        match,
        adapter.build("user", {"name": "ü x"}, force_external=True),
    )


@pytest.mark.parametrize("scope", _SCOPES)
def test_binding_a_scope_request_equals_bind_to_environ(scope):
    app = _adapter_app()
    made = request_from_scope(Request, ScopeEnviron(scope))
    fast = _adapter_facts(lambda: bind_to_request(app.url_map, made))
    ref = _adapter_facts(
        lambda: app.url_map.bind_to_environ(build_environ(scope, None), subdomain="")
    )
    assert fast == ref
    assert made._source.environ is None  # binding did not need it


@pytest.mark.anyio
async def test_a_request_that_reads_nothing_never_builds_an_environ(app):
    built: list[bool] = []

    @app.get("/")
    async def index():
        return "hello"

    @app.after_request
    async def check(response):
        built.append(request._source.environ is not None)
        return response

    for _ in range(2):  # the second request takes the remembered match
        async with ctxflask.testing.asgi_client(app) as client:
            assert (await client.get("/", headers={"Cookie": "a=1"})).text == "hello"
    assert built == [False, False]


@pytest.mark.anyio
async def test_the_environ_and_the_headers_are_one_whoever_builds_it(app):
    @app.get("/")
    async def index():
        seen = request.headers["X-Trace"]  # the headers build it first
        request.environ["HTTP_X_TRACE"] = "changed"
        return f"{seen} {request.headers['X-Trace']}"

    async with ctxflask.testing.asgi_client(app) as client:
        response = await client.get("/", headers={"X-Trace": "sent"})
    assert response.text == "sent changed"


class _CountingRequest(ctxflask.Request):
    made = 0

    def __init__(self, environ, *args, **kwargs):
        super().__init__(environ, *args, **kwargs)
        type(self).made += 1


@pytest.mark.anyio
async def test_a_request_class_with_its_own_init_is_made_from_the_environ(app):
    app.request_class = _CountingRequest
    _CountingRequest.made = 0

    @app.get("/")
    async def index():
        return type(request._get_current_object()).__name__

    async with ctxflask.testing.asgi_client(app) as client:
        assert (await client.get("/")).text == "_CountingRequest"
    assert _CountingRequest.made == 1


@pytest.mark.anyio
async def test_an_overridden_request_context_is_used_under_asgi():
    made: list[str] = []

    class App(ctxflask.Flask):
        def request_context(self, environ):
            made.append(environ["PATH_INFO"])
            return super().request_context(environ)

    app = App(__name__)
    app.get("/here")(lambda: "ok")
    async with ctxflask.testing.asgi_client(app) as client:
        assert (await client.get("/here")).text == "ok"
    assert made == ["/here"]


_BODY = b'{"a": [1, 2]}'
_BODY_HEADERS = [
    pytest.param([(b"content-type", b"application/json")], id="json-chunked"),
    pytest.param(
        [(b"content-type", b"application/json"), (b"content-length", b"13")],
        id="json-declared",
    ),
    pytest.param(
        [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"4")],
        id="text-declared-short",
    ),
    pytest.param(
        [(b"content-type", b"application/vnd.x+json"), (b"content-type", b"a/b")],
        id="repeated-content-type",
    ),
    pytest.param([(b"transfer-encoding", b"chunked")], id="no-content-type"),
    pytest.param([(b"content-length", b"0")], id="empty"),
]


class _ReceivedBody(AsyncBody):
    """An ASGI body already received, as the entry point's is for an async view."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer):  # type: ignore[no-untyped-def]
        return self._data.readinto(buffer)


@pytest.mark.parametrize("headers", _BODY_HEADERS)
@pytest.mark.parametrize("limit", [None, 100, 5])
def test_a_scope_requests_body_reads_the_same_without_building_the_environ(
    headers, limit
):
    scope = _scope(method="POST", headers=[(b"host", b"example.test"), *headers])
    empty = headers == [(b"content-length", b"0")]

    def made(build: bool) -> Request:
        body = NO_BODY if empty else _ReceivedBody(_BODY)
        req = request_from_scope(Request, ScopeEnviron(scope, body))
        if build:
            assert req.environ["wsgi.input"] is body
        return req

    def reads(req: Request) -> dict[str, object]:
        req.max_content_length = limit
        stream = _or_error(lambda: req.stream)
        return {
            "content_length": req.content_length,
            "mimetype": req.mimetype,
            "mimetype_params": req.mimetype_params,
            "is_json": req.is_json,
            "stream": stream if isinstance(stream, type) else type(stream).__name__,
            "limit": getattr(stream, "limit", None),
            "json": _or_error(lambda: req.get_json(silent=True)),
            "data": _or_error(req.get_data),
        }

    fast = made(build=False)
    assert reads(fast) == reads(made(build=True))
    assert fast._source.environ is None  # read without it
