"""Hostile and broken inputs answered through the app's error handling, under both entry
points (DESIGN.md section 6): JSON nested deep enough to exhaust recursion.
"""

from __future__ import annotations

import sys
import typing as t

import pytest

from ctxflask import request
from tests.support import variant

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
