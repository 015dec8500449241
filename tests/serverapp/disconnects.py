"""The application that tests/test_disconnect_servers.py serves with real servers: views
that see their client leave (``request.is_disconnected()``, ``@cancel_on_disconnect``)
and a server-sent event stream, each recording what happened for ``/events``."""

from __future__ import annotations

import time
import typing as t

import anyio

import ctxflask
from ctxflask import request
from ctxflask.sse import event_stream
from ctxflask.sse import ServerSentEvent

app = ctxflask.Flask(__name__)

#: What the views, streams and teardowns saw, in this worker process.
events: list[dict[str, t.Any]] = []

#: How long a view waits for its client to leave before it gives up.
POLL_SECONDS = 5.0


@app.teardown_request
def record_teardown(exc: BaseException | None) -> None:
    if request.path != "/events":
        events.append(
            {
                "teardown": request.path,
                "exc": None if exc is None else type(exc).__name__,
            }
        )


@app.get("/count")
def count() -> dict[str, t.Any]:
    return {"events": len(events)}


@app.get("/events")
def list_events() -> list[dict[str, t.Any]]:
    return events


@app.get("/poll/async")
async def poll_async() -> str:
    started = time.monotonic()
    while time.monotonic() - started < POLL_SECONDS:
        if request.is_disconnected():
            events.append({"view": request.path, "gone": True})
            return "gone"
        await anyio.sleep(0.02)
    events.append({"view": request.path, "gone": False})
    return "stayed"


@app.get("/poll/sync")
def poll_sync() -> str:
    started = time.monotonic()
    while time.monotonic() - started < POLL_SECONDS:
        if request.is_disconnected():
            events.append({"view": request.path, "gone": True})
            return "gone"
        time.sleep(0.02)
    events.append({"view": request.path, "gone": False})
    return "stayed"


@app.get("/cancel")
@ctxflask.cancel_on_disconnect
async def cancelled() -> str:
    try:
        await anyio.sleep(float(request.args.get("seconds", POLL_SECONDS)))
    except anyio.get_cancelled_exc_class():
        events.append({"view": request.path, "cancelled": True})
        raise
    events.append({"view": request.path, "cancelled": False})
    return "done"


@app.get("/sse")
async def sse() -> ctxflask.Response:
    async def source() -> t.AsyncIterator[ServerSentEvent]:
        try:
            yield ServerSentEvent("first", event="hello", id="1")
            await anyio.sleep(0.35)  # idle: heartbeats go out
            for i in range(2, 200):
                yield ServerSentEvent(f"event {i}", id=str(i))
                await anyio.sleep(0.02)
        finally:
            events.append({"stream": request.path, "closed": True})

    return event_stream(source(), heartbeat=0.1)


#: What ``gunicorn -k asgi`` needs: it takes a name (or a call) only, not ``app.asgi``.
asgi_app = app.asgi
