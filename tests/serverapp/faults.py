"""An app for the real-server fault tests (tests/test_faults.py).

Served as ``tests.serverapp.faults:app`` (WSGI and gunicorn's ASGI worker) or
``tests.serverapp.faults:app.asgi`` (ASGI).

A request that carries an id (``?id=...``) is recorded: ``before_request`` appends a line
``<id>`` to ``begin-<pid>`` and the teardown to ``teardown-<pid>``, in the folder named by
``CTXFLASK_SERVER_STATE``, so the tests can count teardowns per request across worker
processes, also for requests whose client went away. Views that read a body record what
they got in ``body-<pid>`` (``<id> <length>``); streams record how they ended in
``stream-<pid>`` (``<id> end`` or ``<id> closed``).

The app's own 500 page says ``app-500``; the paths under ``/err/`` raise in the step they
name.
"""

from __future__ import annotations

import contextvars
import os
import threading
import time
import typing as t
from pathlib import Path

import anyio
import anyio.lowlevel

from ctxflask import Flask
from ctxflask import g
from ctxflask import redirect
from ctxflask import request
from ctxflask import send_from_directory
from ctxflask import session
from ctxflask import url_for

STATE_ENV = "CTXFLASK_SERVER_STATE"
FILES = Path(__file__).resolve().parent / "faults_files"
#: What the tests check that no response ever carries (a file beside the served folders).
SECRET = (FILES / "secret.txt").read_text().strip()
MAX_CONTENT_LENGTH = 64 * 1024
MAX_FORM_PARTS = 20
MAX_FORM_MEMORY_SIZE = 4 * 1024
SECRET_KEY = "fault tests"

app = Flask(__name__, static_folder=str(FILES / "static"))
app.config.update(
    SECRET_KEY=SECRET_KEY,
    MAX_CONTENT_LENGTH=MAX_CONTENT_LENGTH,
    MAX_FORM_PARTS=MAX_FORM_PARTS,
    MAX_FORM_MEMORY_SIZE=MAX_FORM_MEMORY_SIZE,
)

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id")

_lock = threading.Lock()
_files: dict[tuple[str, int], t.TextIO] = {}


def record(kind: str, line: str) -> None:
    """Append ``line`` to ``<kind>-<pid>`` in the state folder (flushed at once: the
    tests read it while the server runs)."""
    folder = os.environ.get(STATE_ENV)
    if not folder:
        return
    key = (kind, os.getpid())
    with _lock:
        f = _files.get(key)
        if f is None:
            f = _files[key] = open(  # noqa: SIM115 (kept for the process)
                os.path.join(folder, f"{kind}-{key[1]}"), "a"
            )
        f.write(line + "\n")
        f.flush()


def rid() -> str | None:
    return request.args.get("id")


# -- lifespan ------------------------------------------------------------------------

#: Set (to any value) to make the app's startup fail.
FAIL_STARTUP_ENV = "CTXFLASK_FAULTS_FAIL_STARTUP"
STARTUP_FAILURE = "the fault app refuses to start"


@app.before_serving
async def before_serving() -> None:
    await anyio.lowlevel.checkpoint()
    if os.environ.get(FAIL_STARTUP_ENV):
        raise RuntimeError(STARTUP_FAILURE)


# -- hooks -------------------------------------------------------------------------


@app.teardown_request
async def teardown(exc: BaseException | None) -> None:
    await anyio.lowlevel.checkpoint()
    if (value := rid()) is not None:
        record("teardown", value)
    if request.path.startswith("/err/teardown"):
        raise RuntimeError("teardown fails")


@app.before_request
def before_sync() -> None:
    value = rid()
    if value is not None:
        record("begin", value)
    g.id = value
    request_id.set(value)
    if request.path == "/err/before":
        raise RuntimeError("before_request fails")


@app.before_request
async def before_async() -> None:
    await anyio.lowlevel.checkpoint()
    if request.path.startswith("/mix/"):
        session["id"] = g.id


class HandlerFails(LookupError):
    """Its error handler raises."""


@app.errorhandler(HandlerFails)
def handler_fails(e: HandlerFails) -> str:
    raise RuntimeError("the error handler fails")


@app.errorhandler(500)
def app_500(e: Exception) -> tuple[str, int]:
    record(
        "error", f"{request.path} {type(getattr(e, 'original_exception', e)).__name__}"
    )
    if request.path == "/err/in-500-handler":
        raise RuntimeError("the 500 handler fails")
    return "app-500", 500


# -- plain views, HEAD and OPTIONS -----------------------------------------------------


@app.get("/hello")
def hello() -> str:
    return "hello"


@app.post("/hello")
def hello_post() -> str:
    return "posted"


@app.get("/pid")
@app.get("/count")
def pid() -> dict[str, int]:
    return {"pid": os.getpid()}


@app.get("/headers")
def headers() -> dict[str, t.Any]:
    """What the app sees of the request's headers, host and an external URL."""
    return {
        "host": request.host,
        "url": request.url,
        "external": url_for("hello", _external=True),
        "headers": [[k, v] for k, v in request.headers.items()],
    }


@app.get("/redirect")
def go() -> t.Any:
    return redirect(request.args.get("next", "/hello"))


# -- bodies ------------------------------------------------------------------------


@app.post("/upload/sync")
def upload_sync() -> dict[str, t.Any]:
    data = request.get_data()
    record("body", f"{rid()} {len(data)}")
    return {"id": rid(), "length": len(data)}


@app.post("/upload/async")
async def upload_async() -> dict[str, t.Any]:
    data = request.get_data()
    await anyio.lowlevel.checkpoint()
    record("body", f"{rid()} {len(data)}")
    return {"id": rid(), "length": len(data)}


@app.post("/form")
def form() -> dict[str, t.Any]:
    fields = request.form
    return {"fields": len(fields), "files": len(request.files)}


@app.post("/json")
def json_view() -> dict[str, t.Any]:
    data = request.get_json()
    return {"type": type(data).__name__}


# -- sessions ----------------------------------------------------------------------


@app.get("/session")
def session_view() -> dict[str, t.Any]:
    before = dict(session)
    session["visits"] = session.get("visits", 0) + 1
    return {"before": before}


# -- files -------------------------------------------------------------------------


@app.get("/files/<path:name>")
def files(name: str) -> t.Any:
    return send_from_directory(FILES / "public", name)


@app.get("/download")
def download() -> t.Any:
    return send_from_directory(FILES / "public", request.args.get("name", ""))


# -- errors ------------------------------------------------------------------------


@app.get("/err/before")
def err_before() -> str:
    return "the view ran"


@app.get("/err/handler")
def err_handler() -> str:
    raise HandlerFails("a view error whose handler fails")


@app.get("/err/in-500-handler")
def err_in_500_handler() -> str:
    raise RuntimeError("a view error whose 500 handler fails too")


@app.get("/err/teardown")
def err_teardown() -> str:
    return "delivered before the teardown failed"


@app.get("/err/teardown-stream")
def err_teardown_stream() -> t.Iterator[str]:
    def body() -> t.Iterator[str]:
        yield "streamed, "
        yield "then the teardown failed"

    return body()


@app.get("/err/stream-first/sync")
def err_stream_first_sync() -> t.Iterator[str]:
    def body() -> t.Iterator[str]:
        raise RuntimeError("before the first chunk")
        yield "never"

    return body()


@app.get("/err/stream-first/async")
async def err_stream_first_async() -> t.AsyncIterator[str]:
    async def body() -> t.AsyncIterator[str]:
        raise RuntimeError("before the first chunk")
        yield "never"

    return body()


@app.get("/err/stream-later/sync")
def err_stream_later_sync() -> t.Iterator[str]:
    def body() -> t.Iterator[str]:
        yield "first chunk\n"
        raise RuntimeError("after the first chunk")

    return body()


@app.get("/err/stream-later/async")
async def err_stream_later_async() -> t.AsyncIterator[str]:
    async def body() -> t.AsyncIterator[str]:
        yield "first chunk\n"
        await anyio.lowlevel.checkpoint()
        raise RuntimeError("after the first chunk")

    return body()


# -- long streams (the client leaves) ----------------------------------------------

#: A long stream's chunk and its count: about 2 s in all, unless the client leaves.
CHUNK = "x" * 16 * 1024 + "\n"
CHUNKS = 200


@app.get("/long/sync")
def long_sync() -> t.Iterator[str]:
    value = rid()

    def body() -> t.Iterator[str]:
        try:
            for _ in range(CHUNKS):
                yield CHUNK
                time.sleep(0.01)
        except GeneratorExit:
            record("stream", f"{value} closed")
            raise
        record("stream", f"{value} end")

    return body()


@app.get("/long/async")
async def long_async() -> t.AsyncIterator[str]:
    value = rid()

    async def body() -> t.AsyncIterator[str]:
        try:
            for _ in range(CHUNKS):
                yield CHUNK
                await anyio.sleep(0.01)
        except (GeneratorExit, anyio.get_cancelled_exc_class()):
            record("stream", f"{value} closed")
            raise
        record("stream", f"{value} end")

    return body()


# -- mixed load ----------------------------------------------------------------------


def _mine() -> dict[str, t.Any]:
    """Where this step finds the request's id: query, g, ContextVar, session, and the
    id the request's own cookie carried (``sent``)."""
    return {
        "id": rid(),
        "g": g.get("id"),
        "var": request_id.get(None),
        "session": session.get("id"),
        "sent": session.get("sent"),
    }


@app.get("/mix/sync")
def mix_sync() -> dict[str, t.Any]:
    return _mine()


@app.get("/mix/async")
async def mix_async() -> dict[str, t.Any]:
    await anyio.lowlevel.checkpoint()
    return _mine()


@app.get("/mix/stream")
async def mix_stream() -> t.AsyncIterator[str]:
    async def body() -> t.AsyncIterator[str]:
        for i in range(3):
            await anyio.lowlevel.checkpoint()
            mine = _mine()
            yield f"{i} {mine['id']} {mine['g']} {mine['var']} {mine['session']}\n"

    return body()


@app.get("/mix/stream-sync")
def mix_stream_sync() -> t.Iterator[str]:
    def body() -> t.Iterator[str]:
        for i in range(3):
            mine = _mine()
            yield f"{i} {mine['id']} {mine['g']} {mine['var']} {mine['session']}\n"

    return body()


@app.post("/mix/upload")
async def mix_upload() -> dict[str, t.Any]:
    data = request.get_data()
    await anyio.lowlevel.checkpoint()
    return {**_mine(), "length": len(data), "head": data[:12].decode()}
