"""An app for the real-server tests of broken inputs (tests/test_reliability_servers.py).

Served as ``tests.serverapp.reliability:app`` (WSGI, and ``gunicorn -k asgi``) or
``tests.serverapp.reliability:app.asgi``. ``/count`` tells how many requests were torn
down and which views ran to their end (reading a body, they must not when it is short).
Every response says in ``X-Port`` which client port (so which connection) it answered.
"""

from __future__ import annotations

import threading
import typing as t

import anyio
import anyio.lowlevel

from ctxflask import Flask
from ctxflask import request
from ctxflask import Response
from ctxflask import stream_with_context

MAX_CONTENT_LENGTH = 1024 * 1024

app = Flask(__name__)
app.config.update(MAX_CONTENT_LENGTH=MAX_CONTENT_LENGTH)

_lock = threading.Lock()
_teardowns = 0
_views_done: list[str] = []


@app.teardown_request
def count_teardown(exc: BaseException | None) -> None:
    global _teardowns
    with _lock:
        _teardowns += 1


@app.after_request
def tell_port(response: Response) -> Response:
    response.headers["X-Port"] = str(request.environ.get("REMOTE_PORT", ""))
    return response


@app.errorhandler(500)
def server_error(e: t.Any) -> tuple[str, int]:
    return f"app's 500 for {type(e.original_exception).__name__}", 500


@app.get("/count")
def count() -> dict[str, t.Any]:
    """Teardowns so far (not this request's) and the views that ran to their end."""
    with _lock:
        return {"teardowns": _teardowns, "views_done": list(_views_done)}


@app.get("/ping")
def ping() -> str:
    return "pong"


# -- bodies ----------------------------------------------------------------------------


def read_body(accessor: str) -> int:
    """Read the request body through one of the accessors."""
    if accessor == "get_data":
        return len(request.get_data())
    if accessor == "form":
        return len(request.form)
    if accessor == "files":
        return len(request.files)
    if accessor == "get_json":
        return len(request.get_json())
    return len(request.stream.read())


def _done(view: str, size: int) -> str:
    with _lock:
        _views_done.append(view)
    return str(size)


@app.post("/body/sync/<accessor>")
def body_sync(accessor: str) -> str:
    return _done(f"sync {accessor}", read_body(accessor))


@app.post("/body/async/<accessor>")
async def body_async(accessor: str) -> str:
    await anyio.lowlevel.checkpoint()
    return _done(f"async {accessor}", read_body(accessor))


@app.post("/json/sync")
def json_sync() -> str:
    return str(type(request.get_json()).__name__)


@app.post("/json/async")
async def json_async() -> str:
    await anyio.lowlevel.checkpoint()
    return str(type(request.json).__name__)


@app.post("/ignore/sync")
def ignore_sync() -> str:
    return "ignored"


@app.post("/ignore/async")
async def ignore_async() -> str:
    return "ignored"


# -- streams failing -------------------------------------------------------------------


def _sync_body(first: bool) -> t.Iterator[str]:
    if first:
        yield "first chunk\n"
    raise RuntimeError("the generator broke")


async def _async_body(first: bool) -> t.AsyncIterator[str]:
    await anyio.lowlevel.checkpoint()
    if first:
        yield "first chunk\n"
    raise RuntimeError("the generator broke")
    yield "never"


@app.get("/stream/sync/<when>")
def stream_sync(when: str) -> t.Iterator[str]:
    return _sync_body(when == "after")


@app.get("/stream/async/<when>")
async def stream_async(when: str) -> t.AsyncIterator[str]:
    return _async_body(when == "after")


@app.get("/stream/with-context/<when>")
def stream_in_context(when: str) -> t.Iterator[str]:
    return stream_with_context(_sync_body(when == "after"))
