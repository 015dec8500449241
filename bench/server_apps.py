"""The apps the server benchmarks load by name, and the raw ASGI floor.

Servers import an app as ``module:name``. gunicorn takes a plain name or a call (its ASGI
worker too), so the apps here are module attributes, each built on first access (module
``__getattr__``) so that a server process imports only the framework it serves:

- ``ctxflask_wsgi`` / ``flask_wsgi``: ``bench.apps.make_app`` on ctxflask and on Flask
  (WSGI: gunicorn's sync and gthread workers, granian's WSGI interface);
- ``ctxflask_app``: ctxflask's app object given to ``gunicorn -k asgi`` (called with
  ASGI's three arguments it serves ASGI); ``starlette_app``: the Starlette app of
  ``bench.asgi_apps``;
- ``raw_asgi`` (from ``bench.asgi_apps``): a hand-written ASGI app that answers the
  routes with the same text as the frameworks and handles ``lifespan``: what the server
  itself costs, the floor of every framework under it. ``raw_asgi_factory`` returns it
  (uvicorn's and granian's ``--factory``);
- :func:`raw_wsgi`: its WSGI twin, answering ``GET /hello``: the floor of the WSGI
  servers (gunicorn's sync and gthread workers, granian's WSGI interface).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from bench.apps import HELLO_TEXT
from bench.apps import make_app
from bench.asgi_apps import make_flask_family_app
from bench.asgi_apps import make_starlette_app
from bench.asgi_apps import raw_asgi as raw_asgi
from bench.asgi_apps import raw_asgi_factory as raw_asgi_factory

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
