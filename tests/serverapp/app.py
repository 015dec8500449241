"""An app for real-server tests (tests/test_servers.py, DESIGN.md section 7).

Served as ``tests.serverapp.app:app`` (WSGI) or ``tests.serverapp.app:app.asgi`` (ASGI).

Every request carries an id in its query string (``?id=...``). The sync before_request
hook copies it into ``g.id``, ``session["id"]`` and the ``request_id`` ContextVar; the
async one into ``g.aid``, ``session["aid"]`` and ``async_id``. Every later step reports
what it sees of all seven places (:func:`seen`): the body is one JSON object per line
(``{"step": ..., "seen": ...}``, streamed bodies yield one line per chunk), the after_request
hooks add ``X-After-Sync``/``X-After-Async`` headers, and the teardown hooks count
themselves and keep what they saw when it was not the request's own id, for ``/count``.

Lifespan: ``before_serving`` and ``after_serving`` (one sync and one async function
each) append a JSON line to ``before_serving``/``after_serving`` in the folder named by the
``CTXFLASK_SERVER_STATE`` environment variable; the ``after_serving`` line carries the
teardown counts of the process, so it can be read after the server stopped.
"""

from __future__ import annotations

import contextvars
import json
import os
import random
import threading
import time
import typing as t

import anyio
import anyio.lowlevel

from ctxflask import current_app
from ctxflask import Flask
from ctxflask import g
from ctxflask import request
from ctxflask import Response
from ctxflask import session

STATE_ENV = "CTXFLASK_SERVER_STATE"
MAX_CONTENT_LENGTH = 64 * 1024

app = Flask(__name__)
app.config.update(SECRET_KEY="real server tests", MAX_CONTENT_LENGTH=MAX_CONTENT_LENGTH)

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id")
async_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("async_id")

_lock = threading.Lock()
_counts = {
    "before_serving_sync": 0,
    "before_serving_async": 0,
    "teardown_sync": 0,
    "teardown_async": 0,
}
_mismatches: list[str] = []


def seen() -> str:
    """Where this step finds the request's id: query, g, session, ContextVar (set by the
    sync hook), then g, session, ContextVar (set by the async hook)."""
    return ",".join(
        str(value)
        for value in (
            request.args.get("id"),
            g.get("id"),
            session.get("id"),
            request_id.get(None),
            g.get("aid"),
            session.get("aid"),
            async_id.get(None),
        )
    )


def _pause() -> None:
    # A short random sleep (the GIL is released) so that threads interleave.
    time.sleep(random.random() * 0.001)


async def _apause() -> None:
    await anyio.sleep(random.random() * 0.001)


def _line(step: str, value: str) -> str:
    return json.dumps({"step": step, "seen": value}) + "\n"


def _record(file: str, entry: dict[str, t.Any]) -> None:
    folder = os.environ.get(STATE_ENV)
    if not folder:
        return
    with _lock, open(os.path.join(folder, file), "a") as f:
        f.write(json.dumps(entry) + "\n")


def _serving_entry(kind: str) -> dict[str, t.Any]:
    g.serving = kind  # an app context is active: g works
    with _lock:
        counts = dict(_counts)
    return {
        "kind": kind,
        "pid": os.getpid(),
        "app": current_app.name,
        "g": g.serving,
        **counts,
    }


# -- lifespan ----------------------------------------------------------------------


@app.before_serving
def before_serving_sync() -> None:
    with _lock:
        _counts["before_serving_sync"] += 1
    _record("before_serving", _serving_entry("sync"))


@app.before_serving
async def before_serving_async() -> None:
    await anyio.lowlevel.checkpoint()
    with _lock:
        _counts["before_serving_async"] += 1
    _record("before_serving", _serving_entry("async"))


@app.after_serving
def after_serving_sync() -> None:
    _record("after_serving", _serving_entry("sync"))


@app.after_serving
async def after_serving_async() -> None:
    await anyio.lowlevel.checkpoint()
    _record("after_serving", _serving_entry("async"))


# -- request hooks -----------------------------------------------------------------


@app.before_request
def before_sync() -> None:
    _pause()
    rid = request.args.get("id")
    g.id = rid
    session["id"] = rid
    request_id.set(rid)
    with _lock:
        serving = f"{_counts['before_serving_sync']},{_counts['before_serving_async']}"
    g.trail = [_line("serving", serving), _line("before_sync", seen())]


@app.before_request
async def before_async() -> None:
    await _apause()
    rid = request.args.get("id")
    g.aid = rid
    session["aid"] = rid
    async_id.set(rid)
    g.trail.append(_line("before_async", seen()))


@app.after_request
def after_sync(response: Response) -> Response:
    _pause()
    response.headers["X-After-Sync"] = seen()
    return response


@app.after_request
async def after_async(response: Response) -> Response:
    await _apause()
    response.headers["X-After-Async"] = seen()
    return response


def _check_teardown(kind: str) -> None:
    rid = request.args.get("id")
    value = seen()
    with _lock:
        _counts[f"teardown_{kind}"] += 1
        if rid is not None and value != ",".join([rid] * 7):
            _mismatches.append(f"teardown_{kind} of {rid}: {value}")


@app.teardown_request
def teardown_sync(exc: BaseException | None) -> None:
    _pause()
    _check_teardown("sync")


@app.teardown_request
async def teardown_async(exc: BaseException | None) -> None:
    await _apause()
    _check_teardown("async")


# -- views -------------------------------------------------------------------------


@app.get("/sync")
def view_sync() -> str:
    _pause()
    return "".join([*g.trail, _line("view", seen())])


@app.get("/async")
async def view_async() -> str:
    await _apause()
    return "".join([*g.trail, _line("view", seen())])


@app.get("/stream/sync")
def stream_sync() -> t.Iterator[str]:
    def body() -> t.Iterator[str]:
        yield from g.trail
        yield _line("view", seen())
        for i in range(3):
            _pause()
            yield _line(f"chunk{i}", seen())

    return body()


@app.get("/stream/async")
async def stream_async() -> t.AsyncIterator[str]:
    async def body() -> t.AsyncIterator[str]:
        for line in g.trail:
            yield line
        yield _line("view", seen())
        for i in range(3):
            await _apause()
            yield _line(f"chunk{i}", seen())

    return body()


@app.post("/upload/sync")
def upload_sync() -> str:
    data = request.get_data()
    _pause()
    return "".join(
        [
            *g.trail,
            _line("view", seen()),
            _line("upload", f"{len(data)},{data[:16].decode()}"),
        ]
    )


@app.post("/upload/async")
async def upload_async() -> str:
    data = request.get_data()
    await _apause()
    return "".join(
        [
            *g.trail,
            _line("view", seen()),
            _line("upload", f"{len(data)},{data[:16].decode()}"),
        ]
    )


@app.get("/count")
def count() -> dict[str, t.Any]:
    """The counts of this process so far (this request's teardown not included)."""
    with _lock:
        return {"pid": os.getpid(), **_counts, "mismatches": list(_mismatches)}


#: What ``gunicorn -k asgi`` needs: it takes a name (or a call) only, not ``app.asgi``.
asgi_app = app.asgi
