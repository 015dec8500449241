"""The request path's shortcuts give what the general code would: route matches kept for
rules whose converters are werkzeug's own, and response headers built without werkzeug's copy."""

from __future__ import annotations

import io

import pytest
from werkzeug.exceptions import ClientDisconnected
from werkzeug.routing import Rule
from werkzeug.routing.converters import IntegerConverter
from werkzeug.test import EnvironBuilder
from werkzeug.utils import cached_property
from werkzeug.wrappers import Request as WerkzeugRequest

from ctxflask import g
from ctxflask import request
from ctxflask.core import routing
from ctxflask.core.wrappers import request_from_environ
from ctxflask.wrappers import Request
from ctxflask.wrappers import Response
from ctxflask.wrappers import response_headers


def test_view_args_of_a_remembered_match_are_fresh_per_request(app, client):
    @app.url_value_preprocessor
    def take(endpoint, values):
        g.taken = values.pop("lang", None) if values else None

    @app.get("/fixed", defaults={"lang": "en"})
    def fixed(lang=None):
        return f"{g.taken}|{lang}|{request.view_args}"

    # The second request must see the rule's defaults again, not the popped dict.
    assert client.get("/fixed").text == "en|None|{}"
    assert client.get("/fixed").text == "en|None|{}"


def test_a_rule_added_later_to_the_map_is_matched(app, client):
    @app.get("/<path:anything>")
    def catch_all(anything):
        return f"catch-all {anything}"

    assert client.get("/later").text == "catch-all later"
    app.url_map.add(Rule("/later", endpoint="later"))
    app.view_functions["later"] = lambda: "the later rule"
    assert client.get("/later").text == "the later rule"


def test_matches_differ_by_method_and_host(app, client):
    @app.get("/x")
    def get_x():
        return "get"

    @app.post("/x")
    def post_x():
        return "post"

    assert client.get("/x").text == "get"
    assert client.post("/x").text == "post"
    assert client.get("/x").text == "get"
    assert client.put("/x").status_code == 405


def test_arguments_of_werkzeugs_converters_are_remembered_per_path(app, client):
    @app.get("/n/<int:n>/<path:rest>")
    def number(n, rest):
        return f"{n!r} {rest}"

    paths = [f"/n/{i}/a/{i}" for i in range(3)] * 2
    assert [client.get(p).text for p in paths] == [f"{i} a/{i}" for i in range(3)] * 2
    assert sorted(args["n"] for _, args in app._matches.values()) == [0, 1, 2]


def test_a_rule_with_another_converter_is_matched_every_time(app, client):
    calls = []

    class Counted(IntegerConverter):
        # A subclass may look something up: its result is never remembered.
        def to_python(self, value):
            calls.append(value)
            return super().to_python(value)

    app.url_map.converters["counted"] = Counted

    @app.get("/c/<counted:n>")
    def counted(n):
        return str(n)

    assert [client.get("/c/7").text for _ in range(3)] == ["7"] * 3
    assert calls == ["7"] * 3
    assert app._matches == {}


def test_remembered_matches_are_bounded_oldest_first(app, client, monkeypatch):
    monkeypatch.setattr(routing, "MATCHES_KEPT", 4)

    @app.get("/n/<int:n>")
    def number(n):
        return str(n)

    assert [client.get(f"/n/{i}").text for i in range(10)] == [
        str(i) for i in range(10)
    ]
    kept = [args["n"] for _, args in app._matches.values()]
    assert kept == [6, 7, 8, 9]
    assert client.get("/n/0").text == "0"  # forgotten, matched again


@pytest.mark.parametrize(
    "make",
    [
        lambda: Response("text"),
        lambda: Response(b"bytes", status=201, headers={"X-A": "1"}),
        lambda: Response(["a", "b"]),
        lambda: Response(iter([b"streamed"])),
        lambda: Response("moved", status=302, headers={"Location": "/elsewhere"}),
        lambda: Response("x", headers={"Content-Location": "/über"}),
        lambda: Response("gone", status=204),
        lambda: Response(
            "same", status=304, headers={"ETag": "x", "Content-Type": "a/b"}
        ),
        lambda: Response("early", status=101),
        lambda: Response._from_bytes(b"fast"),
    ],
)
def test_response_headers_equal_werkzeugs(make):
    environ = EnvironBuilder("/here", base_url="http://example.test/app").get_environ()
    expected = make().get_wsgi_headers(environ).to_wsgi_list()
    assert response_headers(make(), Request(environ)) == expected
    # ASGI's form: the same headers, as lowercase latin-1 bytes.
    assert response_headers(make(), Request(environ), raw=True) == [
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in expected
    ]


BODY_HEADERS = [
    {"Content-Type": "application/json", "Content-Length": "7"},
    {"Content-Type": "text/plain; charset=latin-1", "Content-Length": "3"},
    {"Content-Type": "application/x-www-form-urlencoded", "Content-Length": "x7"},
    {"Content-Length": "-4"},
    {"Content-Length": "12", "Transfer-Encoding": "chunked"},
    {"Content-Type": "APPLICATION/Vnd.A+JSON ; q=1"},
    {},
    {"Content-Length": "0"},
    {"Content-Length": " 7\t"},
    {"Content-Length": "007"},
    {"Content-Length": "+7"},
    {"Content-Length": "\u00b2"},  # a digit to str.isdigit, not to HTTP
    {"Content-Length": "15"},  # the whole input
    {"Content-Length": "20"},  # more than the input holds: the client left
]


class _FailingInput(io.BytesIO):
    """An input whose reads fail, as a socket reset mid-body does."""

    def read(self, size=-1):
        raise OSError("connection reset")

    readinto = read  # type: ignore[assignment]


def _outcome(read):
    """What ``read()`` returns, or the type of what it raises."""
    try:
        return read()
    except Exception as e:
        return type(e)


@pytest.mark.parametrize("headers", BODY_HEADERS)
def test_body_reading_equals_werkzeugs(headers):
    # WSGI-specific: an ASGI request's body is compared with the environ-built one in
    # test_scope_requests. An input the server marks terminated is read to its
    # Content-Length, unlike werkzeug's (test_reliability); here, the usual input.
    def environ():
        env = EnvironBuilder("/", method="POST").get_environ()
        env.pop("CONTENT_TYPE", None)
        env.pop("CONTENT_LENGTH", None)
        for name, value in headers.items():
            key = name.upper().replace("-", "_")
            env[key if key.startswith("CONTENT_") else f"HTTP_{key}"] = value
        env["wsgi.input"] = io.BytesIO(b'{"a":1}trailing')
        return env

    def seen(request):
        return (
            request.content_length,
            request.mimetype,
            request.mimetype_params,
            _outcome(lambda: request.get_data(cache=False)),
            _outcome(lambda: request.get_data(as_text=True)),
            _outcome(request.get_data),
            _outcome(request.stream.read),
        )

    def stream_after_data(request):
        # The stream asked for after the body was read: at its end, of the same limit.
        data = _outcome(request.get_data)
        stream = request.stream
        return data, type(stream), getattr(stream, "limit", None), _outcome(stream.read)

    for look in (seen, stream_after_data):
        assert look(Request(environ())) == look(WerkzeugRequest(environ()))


def test_a_failing_input_is_a_client_that_left_as_in_werkzeug():
    def environ():
        env = EnvironBuilder("/", method="POST", data=b"0123456789").get_environ()
        env["wsgi.input"] = _FailingInput(b"0123456789")
        return env

    for cls in (Request, WerkzeugRequest):
        assert _outcome(cls(environ()).get_data) is ClientDisconnected


def test_get_data_reads_through_a_subclass_stream():
    class Upper(Request):
        @cached_property
        def stream(self):
            return io.BytesIO(self.environ["wsgi.input"].read().upper())

    env = EnvironBuilder("/", method="POST", data=b"quiet").get_environ()
    request = Upper(env)
    assert request.get_data() == b"QUIET"


def _environs():
    base = EnvironBuilder("/p/ä/x", "http://example.test/app", query_string="a=1&b=é")
    yield base.get_environ()
    env = EnvironBuilder("/plain", headers={"X-A": "1"}).get_environ()
    yield env
    unix = dict(env, SERVER_PORT="")  # a unix socket: no port
    yield unix
    bare = dict(env)
    for key in ("SERVER_NAME", "SCRIPT_NAME", "QUERY_STRING", "REMOTE_ADDR"):
        bare.pop(key, None)
    yield bare
    yield dict(env, PATH_INFO="", REQUEST_METHOD="post", SCRIPT_NAME="/root/")


@pytest.mark.parametrize("environ", list(_environs()))
def test_a_request_made_from_an_environ_equals_werkzeugs(environ):
    def seen(request):
        return (
            request.method,
            request.scheme,
            request.server,
            request.root_path,
            request.path,
            request.query_string,
            request.args,
            list(request.headers),
            request.remote_addr,
            request.url,
            request.shallow,
            request.environ["werkzeug.request"] is request,
        )

    made = request_from_environ(Request, dict(environ))
    assert type(made) is Request
    assert seen(made) == seen(Request(dict(environ)))


def test_a_request_class_with_its_own_init_is_made_by_it_under_wsgi(app):
    # WSGI's twin of test_scope_requests' ASGI test: the shortcut is for classes that
    # keep werkzeug's constructor only.
    made = []

    class Counting(Request):
        def __init__(self, environ, *args, **kwargs):
            super().__init__(environ, *args, **kwargs)
            made.append(environ["PATH_INFO"])

    app.request_class = Counting

    @app.get("/")
    def index():
        return type(request._get_current_object()).__name__

    environ = EnvironBuilder("/").get_environ()
    body = app(environ, lambda status, headers, exc_info=None: None)
    assert b"".join(body) == b"Counting"
    assert made == ["/"]
