"""Hostile and broken inputs answered through the app's error handling, under both entry
points (DESIGN.md section 6): JSON nested deep enough to exhaust recursion, a body
shorter than its Content-Length.
"""

from __future__ import annotations

import io
import sys
import typing as t

import pytest

from ctxflask import request
from tests.support import variant
from tests.test_asgi import Conversation
from tests.test_asgi import http_scope
from tests.test_asgi import serve

# -- JSON nested too deeply ------------------------------------------------------------

ARRAY_BOMB = "[" * 100_000 + "]" * 100_000
OBJECT_BOMB = '{"a":' * 50_000 + "1" + "}" * 50_000


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def depth_of(value: t.Any) -> int:
    depth = 0
    while isinstance(value, list) and value:
        value, depth = value[0], depth + 1
    return depth + isinstance(value, list)


@pytest.fixture
def json_app(app, kind):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    seen: list[str] = []
    app.config["seen"] = seen

    @app.post("/get_json")
    @variant(kind)
    def get_json():
        return {"depth": depth_of(request.get_json())}

    @app.post("/json")
    @variant(kind)
    def json_property():
        return {"depth": depth_of(request.json)}

    @app.post("/silent")
    @variant(kind)
    def silent():
        return {"value": request.get_json(silent=True)}

    @app.errorhandler(400)
    @variant(kind)
    def bad_request(e):
        seen.append(type(e).__name__)
        return "app's 400", 400

    return app


@pytest.mark.parametrize("bomb", [ARRAY_BOMB, OBJECT_BOMB], ids=["array", "object"])
@pytest.mark.parametrize("path", ["/get_json", "/json"])
def test_json_nested_too_deeply_is_the_apps_400(json_app, client, path, bomb):
    response = client.post(path, data=bomb, content_type="application/json")
    assert response.status_code == 400
    assert response.text == "app's 400"
    assert json_app.config["seen"] == ["BadRequest"]


def test_json_nested_too_deeply_is_none_when_silent(json_app, client):
    response = client.post("/silent", data=ARRAY_BOMB, content_type="application/json")
    assert response.status_code == 200
    assert response.json == {"value": None}


def test_deep_legal_json_still_parses_and_after_a_bomb_too(json_app, client):
    """500 levels parse; a bomb answered 400 leaves the thread and loop able to parse
    them again, and to recurse as deep as before."""

    def recurse(n: int) -> int:
        return 0 if n == 0 else 1 + recurse(n - 1)

    deep = nested(500)
    first = client.post("/get_json", data=deep, content_type="application/json")
    assert first.json == {"depth": 500}
    for bomb in (ARRAY_BOMB, OBJECT_BOMB, ARRAY_BOMB):
        assert client.post("/json", data=bomb, content_type="application/json")
        assert client.post(
            "/json", data=deep, content_type="application/json"
        ).json == {"depth": 500}
    assert recurse(sys.getrecursionlimit() - 100) == sys.getrecursionlimit() - 100


def test_json_nested_too_deeply_reaches_on_json_loading_failed(app, client):
    """A request class overriding ``on_json_loading_failed`` gets a ValueError, as for
    any invalid JSON."""
    failures: list[BaseException | None] = []

    class Request(app.request_class):
        def on_json_loading_failed(self, e):
            failures.append(e)
            return "replaced"

    app.request_class = Request

    @app.post("/")
    def index():
        return {"first": request.get_json(), "cached": request.get_json()}

    response = client.post("/", data=ARRAY_BOMB, content_type="application/json")
    assert response.json == {"first": "replaced", "cached": "replaced"}
    assert len(failures) == 1
    assert isinstance(failures[0], ValueError)
    assert "nested too deeply" in str(failures[0])


# -- a body shorter than its Content-Length --------------------------------------------

DECLARED = 100_000
SENT = 1_000

SHORT_BODIES = {
    "get_data": ("application/octet-stream", b"x" * SENT),
    "form": ("application/x-www-form-urlencoded", b"a=" + b"b" * (SENT - 2)),
    "files": (
        "multipart/form-data; boundary=xx",
        b'--xx\r\nContent-Disposition: form-data; name="f"; filename="f.txt"\r\n\r\n'
        + b"x" * SENT,
    ),
    "get_json": ("application/json", b"[" + b"1," * (SENT // 2)),
    "stream": ("application/octet-stream", b"x" * SENT),
}


def read_body(accessor: str) -> int:
    if accessor == "get_data":
        return len(request.get_data())
    if accessor == "form":
        return len(request.form)
    if accessor == "files":
        return len(request.files)
    if accessor == "get_json":
        return len(request.get_json())
    return len(request.stream.read())


@pytest.fixture
def body_app(app, kind):
    views_done: list[str] = []
    app.config["views_done"] = views_done

    @app.post("/<accessor>")
    @variant(kind)
    def read(accessor):
        size = read_body(accessor)
        views_done.append(accessor)
        return str(size)

    return app


def terminated_environ(accessor: str, body: bytes, declared: int) -> dict[str, t.Any]:
    """The environ gunicorn gives: its input ends where the client stopped sending and
    is marked ``wsgi.input_terminated``."""
    content_type, _ = SHORT_BODIES[accessor]
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": f"/{accessor}",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": True,
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(declared),
    }


def call_wsgi(app, environ) -> tuple[str, bytes]:
    started: list[str] = []
    body = app(environ, lambda status, headers, exc_info=None: started.append(status))
    try:
        data = b"".join(body)
    finally:
        getattr(body, "close", lambda: None)()
    return started[0], data


@pytest.mark.parametrize("limit", [None, 1024 * 1024], ids=["no-limit", "limit"])
@pytest.mark.parametrize("accessor", sorted(SHORT_BODIES))
def test_wsgi_terminated_input_shorter_than_declared_is_400(body_app, accessor, limit):
    body_app.config["MAX_CONTENT_LENGTH"] = limit
    _, body = SHORT_BODIES[accessor]
    status, _ = call_wsgi(body_app, terminated_environ(accessor, body, DECLARED))
    assert status == "400 BAD REQUEST"
    assert body_app.config["views_done"] == []


@pytest.mark.parametrize("accessor", ["get_data", "stream"])
def test_wsgi_terminated_input_of_the_declared_length_is_read_whole(body_app, accessor):
    _, body = SHORT_BODIES[accessor]
    status, data = call_wsgi(
        body_app, terminated_environ(accessor, body + b"trailing", len(body))
    )
    assert (status, data) == ("200 OK", str(len(body)).encode())


def test_wsgi_terminated_input_declared_over_the_limit_is_413(body_app):
    body_app.config["MAX_CONTENT_LENGTH"] = 10
    _, body = SHORT_BODIES["get_data"]
    status, _ = call_wsgi(body_app, terminated_environ("get_data", body, DECLARED))
    assert status == "413 REQUEST ENTITY TOO LARGE"


@pytest.mark.anyio
@pytest.mark.parametrize("accessor", sorted(SHORT_BODIES))
async def test_asgi_body_cut_short_by_the_client_is_400(body_app, accessor):
    content_type, body = SHORT_BODIES[accessor]
    conversation = Conversation(
        [
            {"type": "http.request", "body": body, "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    headers = [("content-type", content_type), ("content-length", str(DECLARED))]
    await serve(body_app, http_scope("POST", f"/{accessor}", headers), conversation)
    assert conversation.status == 400
    assert body_app.config["views_done"] == []
