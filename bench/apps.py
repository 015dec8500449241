"""The benchmark application, built identically on ``flask`` or ``ctxflask``.

The app only touches the public API (``module.Flask``, ``module.request``,
``module.jsonify``), so the same factory serves both frameworks. :data:`SCENARIOS`
describes the requests the benchmarks send and what a correct answer looks like; the
WSGI (``bench.inprocess``) and ASGI harnesses share it.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any
from typing import Literal

HELLO_TEXT = "Hello, World!"
ASYNC_TEXT = "Hello, async!"
JSON_ITEM_ID = 42
ECHO_PAYLOAD: dict[str, Any] = {
    "name": "widget",
    "count": 3,
    "tags": ["a", "b", "c"],
    "nested": {"ok": True, "ratio": 0.5},
}


def _item(item_id: int) -> dict[str, Any]:
    """The document served by ``GET /json/<item_id>``."""
    return {"id": item_id, "tags": ["red", "green", "blue"], "active": True}


def make_app(flask_module: ModuleType) -> Any:
    """Build the benchmark app with *flask_module* (``flask`` or ``ctxflask``)."""
    app = flask_module.Flask("bench_app")
    request = flask_module.request
    jsonify = flask_module.jsonify

    def hello() -> str:
        return HELLO_TEXT

    def json_item(item_id: int) -> dict[str, Any]:
        return _item(item_id)

    def echo() -> Any:
        return jsonify(request.get_json())

    async def async_view() -> str:
        return ASYNC_TEXT

    # add_url_rule rather than decorators: same routing, and typed code stays typed.
    app.add_url_rule("/hello", view_func=hello, methods=["GET"])
    app.add_url_rule("/json/<int:item_id>", view_func=json_item, methods=["GET"])
    app.add_url_rule("/echo", view_func=echo, methods=["POST"])
    app.add_url_rule("/async", view_func=async_view, methods=["GET"])
    return app


@dataclass(frozen=True)
class Scenario:
    """One kind of request, and the answer any correct app gives to it."""

    name: str
    method: str
    path: str
    kind: Literal["text", "json"]
    expected: Any
    json_body: Any = None


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("hello", "GET", "/hello", "text", HELLO_TEXT),
    Scenario("json", "GET", f"/json/{JSON_ITEM_ID}", "json", _item(JSON_ITEM_ID)),
    Scenario("echo", "POST", "/echo", "json", ECHO_PAYLOAD, json_body=ECHO_PAYLOAD),
    Scenario("async", "GET", "/async", "text", ASYNC_TEXT),
)
