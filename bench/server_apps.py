"""The apps the server benchmarks load by name, and the raw ASGI floor.

Servers import an app as ``module:name``. gunicorn takes a plain name or a call (its ASGI
worker too), so the apps here are module attributes, each built on first access (module
``__getattr__``) so that a server process imports only the framework it serves:

- ``ctxflask_wsgi`` / ``flask_wsgi``: ``bench.apps.make_app`` on ctxflask and on Flask
  (WSGI: gunicorn's sync and gthread workers, granian's WSGI interface);
- ``ctxflask_app``: ctxflask's app object given to ``gunicorn -k asgi`` (called with
  ASGI's three arguments it serves ASGI); ``starlette_app``: the Starlette app of
  ``bench.asgi_apps``;
- :func:`raw_asgi`: a hand-written ASGI app that answers ``GET /async`` with the same
  text as the frameworks and handles ``lifespan``: what the server itself costs, the
  floor of every framework under it. ``raw_asgi_factory`` returns it (uvicorn's and
  granian's ``--factory``);
- :func:`raw_wsgi`: its WSGI twin, answering ``GET /hello``: the floor of the WSGI
  servers (gunicorn's sync and gthread workers, granian's WSGI interface).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from bench.apps import ASYNC_TEXT
from bench.apps import HELLO_TEXT
from bench.apps import make_app
from bench.asgi_apps import make_flask_family_app
from bench.asgi_apps import make_starlette_app
from bench.asgi_apps import Message
from bench.asgi_apps import Receive
from bench.asgi_apps import Scope
from bench.asgi_apps import Send

_BODY = ASYNC_TEXT.encode()
_START: Message = {
    "type": "http.response.start",
    "status": 200,
    "headers": [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(_BODY)).encode()),
    ],
}
_BODY_MESSAGE: Message = {"type": "http.response.body", "body": _BODY}
_NOT_FOUND: Message = {
    "type": "http.response.start",
    "status": 404,
    "headers": [(b"content-length", b"0")],
}


async def raw_asgi(scope: Scope, receive: Receive, send: Send) -> None:
    """The least an ASGI app can do: ``GET /async`` -> 200 text, anything else 404."""
    kind = scope["type"]
    if kind == "http":
        if scope["path"] == "/async":
            await send(_START)
            await send(_BODY_MESSAGE)
        else:
            await send(_NOT_FOUND)
            await send({"type": "http.response.body", "body": b""})
    elif kind == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


def raw_asgi_factory() -> Callable[[Scope, Receive, Send], Any]:
    """:func:`raw_asgi`, for ``--factory``."""
    return raw_asgi


_HELLO = HELLO_TEXT.encode()
_HELLO_HEADERS = [
    ("Content-Type", "text/html; charset=utf-8"),
    ("Content-Length", str(len(_HELLO))),
]


def raw_wsgi(
    environ: dict[str, Any], start_response: Callable[..., Any]
) -> list[bytes]:
    """The least a WSGI app can do: ``GET /hello`` -> 200 text, anything else 404."""
    if environ["PATH_INFO"] == "/hello":
        start_response("200 OK", _HELLO_HEADERS)
        return [_HELLO]
    start_response("404 Not Found", [("Content-Length", "0")])
    return []


_BUILDERS: dict[str, Callable[[], Any]] = {
    "ctxflask_wsgi": lambda: make_app(importlib.import_module("ctxflask")),
    "flask_wsgi": lambda: make_app(importlib.import_module("flask")),
    "ctxflask_app": lambda: make_flask_family_app(importlib.import_module("ctxflask")),
    "starlette_app": make_starlette_app,
}
_BUILT: dict[str, Any] = {}


def __getattr__(name: str) -> Any:
    """Build the app called *name* on first access (once per process)."""
    if name not in _BUILDERS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name not in _BUILT:
        _BUILT[name] = _BUILDERS[name]()
    return _BUILT[name]
