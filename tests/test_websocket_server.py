"""A WebSocket echo through a real uvicorn, with a WebSocket client library, many
connections at once: each sees only its own id."""

from __future__ import annotations

import asyncio

import pytest
import websockets

from tests.test_servers import HOST
from tests.test_servers import Server

UVICORN_WS = [
    "uvicorn",
    "tests.serverapp.ws:app.asgi",
    "--host",
    HOST,
    "--port",
    "{port}",
    "--lifespan",
    "on",
    "--no-access-log",
]


@pytest.fixture(scope="module")
def ws_server(tmp_path_factory: pytest.TempPathFactory):
    server = Server("uvicorn-ws", UVICORN_WS, tmp_path_factory.mktemp("ws"))
    try:
        server.wait_ready()
        yield server
    finally:
        server.terminate()


@pytest.mark.parametrize("path", ["/echo", "/sync-echo"])
def test_echo_over_a_real_server_keeps_connections_apart(ws_server: Server, path: str):
    base = ws_server.base_url.replace("http://", "ws://")

    async def one(i: int) -> list[str]:
        cid = f"w{i}"
        async with websockets.connect(f"{base}{path}?id={cid}", open_timeout=10) as ws:
            replies = []
            for n in range(3):
                await ws.send(f"m{n}")
                replies.append(await asyncio.wait_for(ws.recv(), 10))
            return replies

    async def all_of_them() -> list[list[str]]:
        return await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(50))), 60)

    results = asyncio.run(all_of_them())
    mismatches = [
        i
        for i, replies in enumerate(results)
        if replies != [f"w{i}|w{i}|w{i}|m{n}" for n in range(3)]
    ]
    assert mismatches == []
    assert "Traceback" not in ws_server.log()
