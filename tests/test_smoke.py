from __future__ import annotations

import asyncio

import pytest

from ctxflask import g
from ctxflask import request
from tests.support import variant


def test_hello(app, client, kind):
    @app.before_request
    @variant(kind)
    def before():
        g.seen = "before"

    @app.get("/<name>")
    @variant(kind)
    def hello(name):
        return f"{g.seen} {name} {request.method}"

    response = client.get("/you")
    assert response.status_code == 200
    assert response.text == "before you GET"


@pytest.mark.asyncio
async def test_async_client_gathers_requests(app, async_client):
    @app.get("/<int:n>")
    async def square(n):
        await asyncio.sleep(0)
        return str(n * n)

    responses = await asyncio.gather(*(async_client.get(f"/{n}") for n in range(50)))
    assert [r.text for r in responses] == [str(n * n) for n in range(50)]
