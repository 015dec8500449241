"""The ASGI benchmark applications: the same routes on ctxflask, Starlette, Quart and Flask.

Every framework serves the same five routes with the same answers:

- ``GET /hello``: a *sync* view, text (Starlette and Quart run it in a worker thread,
  ctxflask in its worker pool; Flask runs everything in a thread under ``WsgiToAsgi``);
- ``GET /async``: an ``async`` view, text;
- ``GET /sleep``: an ``async`` view that awaits ``asyncio.sleep(0)`` once, text;
- ``GET /json/<int:item_id>``: an ``async`` view returning a JSON document;
- ``POST /echo``: an ``async`` view sending the JSON body back.

:data:`SCENARIOS` (the requests and their expected answers, shared by ``bench.asgi`` and
``bench.server``) reuses :class:`bench.apps.Scenario` and the answers of ``bench.apps``.
The ``*_asgi`` functions build a fresh ASGI app each; they also serve as uvicorn factories
(``uvicorn --factory bench.asgi_apps:ctxflask_asgi``). :func:`raw_asgi` answers the
same routes by hand, with no framework: the floor of them all.
"""

from __future__ import annotations

import asyncio
import importlib
import json
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import MutableMapping
from types import ModuleType
from typing import Any

from bench.apps import _item as item_document
from bench.apps import ASYNC_TEXT
from bench.apps import ECHO_PAYLOAD
from bench.apps import HELLO_TEXT
from bench.apps import JSON_ITEM_ID
from bench.apps import Scenario

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SLEEP_TEXT = "Hello, after sleep(0)!"

SCENARIOS: tuple[Scenario, ...] = (
    Scenario("async", "GET", "/async", "text", ASYNC_TEXT),
    Scenario("sleep", "GET", "/sleep", "text", SLEEP_TEXT),
    Scenario("sync", "GET", "/hello", "text", HELLO_TEXT),
    Scenario(
        "json", "GET", f"/json/{JSON_ITEM_ID}", "json", item_document(JSON_ITEM_ID)
    ),
    Scenario("echo", "POST", "/echo", "json", ECHO_PAYLOAD, json_body=ECHO_PAYLOAD),
    Scenario("concurrent", "GET", "/async", "text", ASYNC_TEXT),
)
#: How many requests of a scenario are in flight at once on the loop (1 when absent).
CONCURRENCY: dict[str, int] = {"concurrent": 100}


def make_flask_family_app(flask_module: ModuleType) -> Any:
    """The routes on ``flask`` or ``ctxflask`` (public API only)."""
    app = flask_module.Flask("bench_asgi_app")
    request = flask_module.request
    jsonify = flask_module.jsonify

    def hello() -> str:
        return HELLO_TEXT

    async def async_hello() -> str:
        return ASYNC_TEXT

    async def sleep_hello() -> str:
        await asyncio.sleep(0)
        return SLEEP_TEXT

    async def json_item(item_id: int) -> dict[str, Any]:
        return item_document(item_id)

    async def echo() -> Any:
        return jsonify(request.get_json())

    app.add_url_rule("/hello", view_func=hello, methods=["GET"])
    app.add_url_rule("/async", view_func=async_hello, methods=["GET"])
    app.add_url_rule("/sleep", view_func=sleep_hello, methods=["GET"])
    app.add_url_rule("/json/<int:item_id>", view_func=json_item, methods=["GET"])
    app.add_url_rule("/echo", view_func=echo, methods=["POST"])
    return app


def make_quart_app() -> Any:
    """The routes on Quart; its sync view runs in a thread (``run_sync``)."""
    quart = importlib.import_module("quart")
    app = quart.Quart("bench_asgi_quart")
    request = quart.request
    jsonify = quart.jsonify

    def hello() -> str:
        return HELLO_TEXT

    async def async_hello() -> str:
        return ASYNC_TEXT

    async def sleep_hello() -> str:
        await asyncio.sleep(0)
        return SLEEP_TEXT

    async def json_item(item_id: int) -> dict[str, Any]:
        return item_document(item_id)

    async def echo() -> Any:
        return jsonify(await request.get_json())

    app.add_url_rule("/hello", view_func=hello, methods=["GET"])
    app.add_url_rule("/async", view_func=async_hello, methods=["GET"])
    app.add_url_rule("/sleep", view_func=sleep_hello, methods=["GET"])
    app.add_url_rule("/json/<int:item_id>", view_func=json_item, methods=["GET"])
    app.add_url_rule("/echo", view_func=echo, methods=["POST"])
    return app


def make_starlette_app() -> Any:
    """The routes on Starlette; its sync endpoint runs in the thread pool."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse(HELLO_TEXT)

    async def async_hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse(ASYNC_TEXT)

    async def sleep_hello(request: Request) -> PlainTextResponse:
        await asyncio.sleep(0)
        return PlainTextResponse(SLEEP_TEXT)

    async def json_item(request: Request) -> JSONResponse:
        return JSONResponse(item_document(request.path_params["item_id"]))

    async def echo(request: Request) -> JSONResponse:
        return JSONResponse(await request.json())

    return Starlette(
        routes=[
            Route("/hello", hello, methods=["GET"]),
            Route("/async", async_hello, methods=["GET"]),
            Route("/sleep", sleep_hello, methods=["GET"]),
            Route("/json/{item_id:int}", json_item, methods=["GET"]),
            Route("/echo", echo, methods=["POST"]),
        ]
    )


def _text_start(body: bytes, content_type: bytes) -> Message:
    return {
        "type": "http.response.start",
        "status": 200,
        "headers": [
            (b"content-type", content_type),
            (b"content-length", str(len(body)).encode()),
        ],
    }


_TEXT = b"text/plain; charset=utf-8"
_JSON = b"application/json"


def _hello() -> bytes:
    return HELLO_TEXT.encode()


async def _read_body(receive: Receive) -> bytes:
    parts = []
    while True:
        message = await receive()
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


async def raw_asgi(scope: Scope, receive: Receive, send: Send) -> None:
    """The least an ASGI app can do for each route, by hand: the floor of every framework
    (``/hello`` makes the one trip to a worker thread and back that running a sync view
    off the loop takes, through anyio as Starlette does); ``lifespan`` handled."""
    kind = scope["type"]
    if kind == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if kind != "http":
        return
    path = scope["path"]
    content_type = _TEXT
    if path == "/async":
        body = ASYNC_TEXT.encode()
    elif path == "/sleep":
        await asyncio.sleep(0)
        body = SLEEP_TEXT.encode()
    elif path == "/hello":
        import anyio.to_thread

        body = await anyio.to_thread.run_sync(_hello)
    elif path.startswith("/json/"):
        body = json.dumps(item_document(int(path[6:]))).encode()
        content_type = _JSON
    elif path == "/echo":
        body = json.dumps(json.loads(await _read_body(receive))).encode()
        content_type = _JSON
    else:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    await send(_text_start(body, content_type))
    await send({"type": "http.response.body", "body": body})


def raw_asgi_factory() -> ASGIApp:
    """:func:`raw_asgi` (a factory, as the other apps have)."""
    return raw_asgi


def ctxflask_asgi() -> ASGIApp:
    """ctxflask's ASGI entry point, ``app.asgi``."""
    app = make_flask_family_app(importlib.import_module("ctxflask"))
    asgi: ASGIApp = app.asgi
    return asgi


def ctxflask_thread_asgi() -> ASGIApp:
    """ctxflask with ``ASYNC_STEPS = "thread"``: async views in worker threads."""
    app = make_flask_family_app(importlib.import_module("ctxflask"))
    app.config["ASYNC_STEPS"] = "thread"
    asgi: ASGIApp = app.asgi
    return asgi


def ctxflask_unwatched_asgi() -> ASGIApp:
    """ctxflask with the loop watchdog off (``LOOP_BLOCK_WARNING = None``), to measure
    what watching costs."""
    app = make_flask_family_app(importlib.import_module("ctxflask"))
    app.config["LOOP_BLOCK_WARNING"] = None
    asgi: ASGIApp = app.asgi
    return asgi


def starlette_asgi() -> ASGIApp:
    """The Starlette app (itself an ASGI app)."""
    asgi: ASGIApp = make_starlette_app()
    return asgi


def quart_asgi() -> ASGIApp:
    """The Quart app (itself an ASGI app)."""
    asgi: ASGIApp = make_quart_app()
    return asgi


def flask_asgi() -> ASGIApp:
    """Flask's WSGI app wrapped by ``asgiref.wsgi.WsgiToAsgi`` (each request in a thread)."""
    from asgiref.wsgi import WsgiToAsgi

    flask_app = make_flask_family_app(importlib.import_module("flask"))
    asgi: ASGIApp = WsgiToAsgi(flask_app)  # type: ignore[no-untyped-call]
    return asgi


#: Framework name -> factory of its ASGI app, in the order the tables show them.
FRAMEWORKS: dict[str, Callable[[], ASGIApp]] = {
    "ctxflask": ctxflask_asgi,
    "ctxflask-thread": ctxflask_thread_asgi,
    "ctxflask-unwatched": ctxflask_unwatched_asgi,
    "starlette": starlette_asgi,
    "quart": quart_asgi,
    "flask-wsgitoasgi": flask_asgi,
    "raw-asgi": raw_asgi_factory,
}
#: The distribution behind each framework name, for the versions reported.
DISTRIBUTIONS: dict[str, str] = {
    "ctxflask": "ctxflask",
    "ctxflask-thread": "ctxflask",
    "ctxflask-unwatched": "ctxflask",
    "starlette": "starlette",
    "quart": "quart",
    "flask-wsgitoasgi": "flask",
    "raw-asgi": "",
}
