"""WebSockets (ASGI only): routing, the ``websocket`` proxy and its context, hooks, ends
of a conversation, and isolation of many concurrent connections."""

from __future__ import annotations

import contextvars
import random
import typing as t

import anyio
import pytest

from ctxflask import g
from ctxflask import request
from ctxflask import session
from ctxflask import url_for
from ctxflask import websocket
from ctxflask import WebSocketDisconnect
from ctxflask.testing import websocket_connect
from ctxflask.testing import WebSocketRejected
from tests.support import variant

conn_id: contextvars.ContextVar[str] = contextvars.ContextVar("conn_id")


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param


pytestmark = pytest.mark.anyio


def _echo_app(app, kind):
    events = app.config.setdefault("events", [])

    @app.before_websocket
    @variant(kind)
    def before():
        g.who = request.args.get("who", "?")
        events.append(("before", g.who))

    if kind == "async":

        @app.websocket("/echo/<int:room>")
        async def echo(room):
            await websocket.accept()
            while True:
                try:
                    message = await websocket.receive()
                except WebSocketDisconnect as e:
                    events.append(("disconnect", e.code))
                    raise
                await websocket.send(f"{room}:{g.who}:{message}")

    else:

        @app.websocket("/echo/<int:room>")
        def echo(room):
            websocket.accept()
            while True:
                try:
                    message = websocket.receive()
                except WebSocketDisconnect as e:
                    events.append(("disconnect", e.code))
                    raise
                websocket.send(f"{room}:{g.who}:{message}")

    @app.after_websocket
    @variant(kind)
    def after(response):
        events.append(("after", response))
        return response

    @app.teardown_request
    @variant(kind)
    def teardown(exc):
        events.append(("teardown", exc))

    return events


async def test_echo_through_the_websocket_proxy_with_hooks(app, kind):
    events = _echo_app(app, kind)
    async with websocket_connect(app, "/echo/7", query_string="who=ann") as ws:
        await ws.send("hello")
        assert await ws.receive() == "7:ann:hello"
        await ws.send("again")
        assert await ws.receive() == "7:ann:again"
    assert events == [
        ("before", "ann"),
        ("disconnect", 1000),
        ("after", None),
        ("teardown", None),
    ]


async def test_accept_with_subprotocol_and_headers_and_json(app, kind):
    def sync_handler():
        websocket.accept(
            subprotocol=websocket.requested_subprotocols[-1],
            headers={"X-Hello": "there"},
        )
        data = websocket.receive_json()
        websocket.send_json({"got": data, "path": websocket.path})
        websocket.send(b"\x00raw")
        websocket.close(4000, "done")

    async def async_handler():
        await websocket.accept(
            subprotocol=websocket.requested_subprotocols[-1],
            headers={"X-Hello": "there"},
        )
        data = await websocket.receive_json()
        await websocket.send_json({"got": data, "path": websocket.path})
        await websocket.send(b"\x00raw")
        await websocket.close(4000, "done")

    app.add_url_rule(
        "/json",
        "handler",
        sync_handler if kind == "sync" else async_handler,
        websocket=True,
        methods=["GET"],
        provide_automatic_options=False,
    )

    async with websocket_connect(app, "/json", subprotocols=["a", "b"]) as ws:
        assert ws.subprotocol == "b"
        assert ws.headers["x-hello"] == "there"
        await ws.send_json([1, 2])
        assert await ws.receive_json() == {"got": [1, 2], "path": "/json"}
        assert await ws.receive() == b"\x00raw"
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive()
        assert closed.value.code == 4000


async def test_an_error_before_accept_rejects_the_handshake_with_500(app, kind):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    torn_down = []

    @app.websocket("/fail")
    @variant(kind)
    def fail():
        raise ValueError("before accept")

    @app.teardown_request
    def teardown(exc):
        torn_down.append(type(exc).__name__)

    with pytest.raises(WebSocketRejected) as rejected:
        async with websocket_connect(app, "/fail"):
            pass
    assert rejected.value.status == 500
    assert torn_down == ["ValueError"]


async def test_an_error_after_accept_closes_with_1011(app, kind):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    torn_down = []

    def sync_fail():
        websocket.accept()
        raise ValueError("after accept")

    async def async_fail():
        await websocket.accept()
        raise ValueError("after accept")

    app.add_url_rule(
        "/fail", "fail", sync_fail if kind == "sync" else async_fail, websocket=True
    )

    @app.teardown_request
    def teardown(exc):
        torn_down.append(type(exc).__name__)

    async with websocket_connect(app, "/fail") as ws:
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive()
    assert closed.value.code == 1011
    assert torn_down == ["ValueError"]


async def test_a_before_websocket_response_rejects_with_it(app, kind):
    @app.before_websocket
    @variant(kind)
    def guard():
        if request.args.get("token") != "ok":
            return "go away", 403
        return None

    @app.websocket("/guarded")
    async def guarded():
        await websocket.send("welcome")

    with pytest.raises(WebSocketRejected) as rejected:
        async with websocket_connect(app, "/guarded"):
            pass
    assert rejected.value.status == 403
    assert rejected.value.body == b"go away"
    async with websocket_connect(app, "/guarded", query_string="token=ok") as ws:
        assert await ws.receive() == "welcome"


async def test_unknown_and_http_only_urls_reject_the_handshake(app):
    @app.get("/page")
    def page():
        return "a page"

    for path, status in (("/nowhere", 404), ("/page", 400)):
        with pytest.raises(WebSocketRejected) as rejected:
            async with websocket_connect(app, path):
                pass
        assert rejected.value.status == status


async def test_session_and_url_for_inside_a_websocket(app):
    @app.websocket("/ws/<name>")
    async def ws_view(name):
        await websocket.send(
            f"{session.get('user', 'nobody')} {url_for('ws_view', name=name)}"
        )

    # WebSocket URLs are always built whole: their scheme differs from the page's.
    async with websocket_connect(app, "/ws/x") as ws:
        assert await ws.receive() == "nobody ws://localhost/ws/x"
    with app.test_request_context(base_url="https://example.test"):
        assert url_for("ws_view", name="y") == "wss://example.test/ws/y"


def test_websocket_proxy_outside_a_websocket_raises(app):
    with pytest.raises(RuntimeError, match="Working outside of WebSocket context"):
        websocket.send("x")
    with (
        app.test_request_context(),
        pytest.raises(RuntimeError, match="not a WebSocket"),
    ):
        websocket.send("x")


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
def test_under_wsgi_a_websocket_url_answers_400_naming_asgi(app, anyio_backend):
    """WSGI-specific: WebSockets need the ASGI entry point."""

    @app.websocket("/ws")
    async def ws():
        await websocket.send("never")

    response = app.test_client().get("/ws")
    assert response.status_code == 400
    assert b"ASGI entry point" in response.data


async def test_two_hundred_connections_each_see_only_their_own(app):
    seen: dict[str, list[tuple[str, str, str]]] = {}

    @app.before_websocket
    async def before():
        g.id = request.args["id"]
        conn_id.set(request.args["id"])
        await anyio.sleep(random.random() * 0.002)

    @app.websocket("/ws")
    async def echo():
        await websocket.accept()
        while True:
            try:
                message = await websocket.receive()
            except WebSocketDisconnect:
                return
            await anyio.sleep(random.random() * 0.002)
            seen.setdefault(g.id, []).append(
                (websocket.args["id"], conn_id.get(), message)
            )
            await websocket.send(f"{g.id}:{conn_id.get()}:{message}")

    replies: dict[str, list[str]] = {}

    async def client(i: int) -> None:
        cid = f"c{i}"
        async with websocket_connect(app, "/ws", query_string=f"id={cid}") as ws:
            for n in range(3):
                await ws.send(f"{cid}-{n}")
                replies.setdefault(cid, []).append(t.cast(str, await ws.receive()))

    async with anyio.create_task_group() as tg:
        for i in range(200):
            tg.start_soon(client, i)

    mismatches = [
        cid
        for cid, got in replies.items()
        if got != [f"{cid}:{cid}:{cid}-{n}" for n in range(3)]
    ]
    mismatches += [
        cid
        for cid, entries in seen.items()
        if any(e[:2] != (cid, cid) for e in entries)
    ]
    assert len(replies) == 200
    assert mismatches == []


async def test_blueprint_websocket_routes_and_hooks(app):
    from ctxflask import Blueprint

    bp = Blueprint("chat", __name__, url_prefix="/chat")
    events = []

    @bp.before_websocket
    async def bp_before():
        events.append(("before", request.blueprint))

    @bp.websocket("/<room>")
    async def room(room):
        await websocket.send(f"{room} {request.endpoint}")

    @bp.after_websocket
    def bp_after(response):
        events.append(("after", response))
        return response

    app.register_blueprint(bp)
    async with websocket_connect(app, "/chat/lobby") as ws:
        assert await ws.receive() == "lobby chat.room"
    assert events == [("before", "chat"), ("after", None)]
