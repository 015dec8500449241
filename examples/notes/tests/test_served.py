"""The application served: concurrent requests through ``app.asgi`` (asyncio and trio),
and a real server (uvicorn, gunicorn) on 127.0.0.1."""

from __future__ import annotations

import anyio
import httpx
import pytest

from ctxflask.testing import asgi_client


async def log_in(http, username):
    response = await http.post(
        "/auth/login", data={"username": username, "password": f"{username}-password"}
    )
    assert response.status_code == 302


@pytest.mark.anyio
async def test_two_users_writing_at_once_each_see_their_own_session(app, async_client):
    await log_in(async_client, "test")
    async with asgi_client(app) as other:
        await log_in(other, "other")
        written = []

        async def write(http, n):
            response = await http.post(
                "/api/notes", json={"title": f"note {n}", "body": "written at once"}
            )
            assert response.status_code == 201, response.text
            written.append((response.json()["author"], n))

        async with anyio.create_task_group() as tg:
            for n in range(20):
                tg.start_soon(write, async_client if n % 2 else other, n)

    assert sorted(written) == sorted(
        ("test" if n % 2 else "other", n) for n in range(20)
    )
    listed = (await async_client.get("/api/notes")).json()["notes"]
    assert len(listed) == 22
    assert {note["author"] for note in listed if note["title"] == "note 3"} == {"test"}


@pytest.mark.ctxflask_live_server(app="live_app:app")
def test_log_in_and_write_a_note_on_a_real_server(served):
    with httpx.Client(base_url=served.url) as http:
        assert http.get("/").headers["server"].startswith(served.server)
        assert (
            "Please log in first." in http.get("/notes/new", follow_redirects=True).text
        )
        response = http.post(
            "/auth/login", data={"username": "test", "password": "test-password"}
        )
        assert response.headers["location"] == "/"
        response = http.post(
            "/notes/new", data={"title": "Served", "body": "by a real server"}
        )
        assert response.status_code == 302
        page = http.get(response.headers["location"]).text
        assert "<title>Served - Test Notes</title>" in page
        assert "by a real server" in http.get("/").text
