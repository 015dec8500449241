"""A WebSocket echo app for the real-server test: each connection's id, from the query
string, comes back through ``websocket``, ``g`` and a ContextVar set in a hook."""

from __future__ import annotations

import contextvars

import anyio
import anyio.lowlevel

from ctxflask import Flask
from ctxflask import g
from ctxflask import websocket
from ctxflask import WebSocketDisconnect

app = Flask(__name__)
connection: contextvars.ContextVar[str] = contextvars.ContextVar("connection")


@app.before_websocket
async def remember() -> None:
    g.id = websocket.args["id"]
    connection.set(websocket.args["id"])


@app.websocket("/echo")
async def echo() -> None:
    await websocket.accept()
    while True:
        try:
            message = await websocket.receive()
        except WebSocketDisconnect:
            return
        await anyio.lowlevel.checkpoint()
        await websocket.send(
            f"{websocket.args['id']}|{g.id}|{connection.get()}|{message}"
        )


@app.websocket("/sync-echo")
def sync_echo() -> None:
    websocket.accept()
    while True:
        try:
            message = websocket.receive()
        except WebSocketDisconnect:
            return
        websocket.send(f"{websocket.args['id']}|{g.id}|{connection.get()}|{message}")


@app.get("/count")
def count() -> dict[str, int]:
    # The readiness probe of tests.test_servers.Server.
    return {"ready": 1}
