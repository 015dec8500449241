"""The apps of ``bench.memory``: the same three routes on ctxflask, Starlette and Quart.

- ``GET /ping``: text, to see that the server is up;
- ``GET /slow``: an ``async def`` view that awaits ``asyncio.sleep`` for
  ``BENCH_SLOW_SECONDS`` (2 s by default) and answers ``slow``;
- WebSocket ``/ws``: accepts, then sends every text message back until the client
  leaves.

Served with ``uvicorn --factory bench.memory_apps:<framework>_asgi``.
"""

from __future__ import annotations

import asyncio
import importlib
import os
from typing import Any

PING_TEXT = "pong"
SLOW_TEXT = "slow"


def slow_seconds() -> float:
    """How long ``/slow`` waits (``BENCH_SLOW_SECONDS``, 2 s by default)."""
    return float(os.environ.get("BENCH_SLOW_SECONDS", "2"))


def ctxflask_asgi() -> Any:
    """ctxflask's ``app.asgi``."""
    ctxflask = importlib.import_module("ctxflask")
    app = ctxflask.Flask("bench_memory")
    websocket = ctxflask.websocket
    seconds = slow_seconds()

    @app.get("/ping")
    def ping() -> str:
        return PING_TEXT

    @app.get("/slow")
    async def slow() -> str:
        await asyncio.sleep(seconds)
        return SLOW_TEXT

    @app.websocket("/ws")
    async def echo() -> None:
        await websocket.accept()
        while True:
            try:
                message = await websocket.receive()
            except ctxflask.WebSocketDisconnect:
                return
            await websocket.send(message)

    return app.asgi


def starlette_asgi() -> Any:
    """The Starlette app."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket
    from starlette.websockets import WebSocketDisconnect

    seconds = slow_seconds()

    def ping(request: Request) -> PlainTextResponse:
        return PlainTextResponse(PING_TEXT)

    async def slow(request: Request) -> PlainTextResponse:
        await asyncio.sleep(seconds)
        return PlainTextResponse(SLOW_TEXT)

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                await websocket.send_text(await websocket.receive_text())
        except WebSocketDisconnect:
            return

    return Starlette(
        routes=[
            Route("/ping", ping),
            Route("/slow", slow),
            WebSocketRoute("/ws", echo),
        ]
    )


def quart_asgi() -> Any:
    """The Quart app (its WebSocket is accepted by the first ``receive``)."""
    quart = importlib.import_module("quart")
    app = quart.Quart("bench_memory_quart")
    websocket = quart.websocket
    seconds = slow_seconds()

    @app.get("/ping")
    async def ping() -> str:
        return PING_TEXT

    @app.get("/slow")
    async def slow() -> str:
        await asyncio.sleep(seconds)
        return SLOW_TEXT

    @app.websocket("/ws")
    async def echo() -> None:
        while True:
            await websocket.send(await websocket.receive())

    return app


FRAMEWORKS: dict[str, str] = {
    "ctxflask": "bench.memory_apps:ctxflask_asgi",
    "starlette": "bench.memory_apps:starlette_asgi",
    "quart": "bench.memory_apps:quart_asgi",
}
