"""Observability under both entry points.

ctxflask's own part runs here: WSGI middleware around the app (``app.wsgi_app`` wrapped
on the app, a ``__call__`` assigned to the class) passed by ASGI requests too, its
``start_response`` called inside the request's contexts, and ``scope["route"]``.

OpenTelemetry's Flask and ASGI instrumentations and sentry-sdk's Flask integration run in
processes of their own (``tests/observability/``): they need ``install_as_flask()``, which
cannot be undone and which other tests' import of the real Flask forbids, and they patch
global state for good (Flask's class, signal receivers, sentry's client).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import subprocess
import sys
from pathlib import Path

import anyio
import httpx
import pytest
import uvicorn.config
from werkzeug.middleware.proxy_fix import ProxyFix

import ctxflask
import ctxflask.asgi.app
from ctxflask import g
from ctxflask import request
from ctxflask.asgi.scope import Route
from ctxflask.testing import asgi_client
from tests.support import variant


def recording_middleware(wsgi_app, log):
    """WSGI middleware that records what its ``start_response`` sees of the request, and
    when its body is closed."""

    def middleware(environ, start_response):
        def recording_start(status, headers, exc_info=None):
            log.append(("start", status, request.endpoint if request else None))
            return start_response(status, headers, exc_info)

        body = wsgi_app(environ, recording_start)
        return _Closing(body, lambda: log.append(("close",)))

    return middleware


class _Closing:
    """A body that closes ``body`` and then calls ``on_close``; its chunks go through
    ``change``."""

    def __init__(self, body, on_close, change=lambda chunk: chunk):
        self.body, self.on_close, self.change = body, on_close, change

    def __iter__(self):
        return (self.change(chunk) for chunk in self.body)

    def close(self):
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            self.on_close()


def test_proxy_fix_applies_to_asgi_requests_too(app, client):
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)

    @app.get("/where")
    def where():
        return {"addr": request.remote_addr, "url": request.url}

    response = client.get(
        "/where",
        headers={
            "X-Forwarded-For": "203.0.113.7",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "example.org",
        },
    )
    assert response.json == {"addr": "203.0.113.7", "url": "https://example.org/where"}


def test_middleware_starts_the_response_inside_the_request_before_teardown(
    app, client, kind
):
    log: list[tuple[str, ...]] = []
    app.wsgi_app = recording_middleware(app.wsgi_app, log)

    @app.get("/hello")
    @variant(kind)
    def hello():
        return "hello"

    @app.get("/fails")
    @variant(kind)
    def fails():
        raise ValueError("no")

    @app.teardown_request
    @variant(kind)
    def teardown(error):
        log.append(("teardown", type(error).__name__))

    assert client.get("/hello").text == "hello"
    assert log == [("start", "200 OK", "hello"), ("teardown", "NoneType"), ("close",)]
    log.clear()
    app.testing = False
    assert client.get("/fails").status_code == 500
    assert log == [
        ("start", "500 INTERNAL SERVER ERROR", "fails"),
        ("teardown", "ValueError"),
        ("close",),
    ]
    log.clear()
    assert client.get("/nowhere").status_code == 404
    assert log == [
        ("start", "404 NOT FOUND", None),
        ("teardown", "NoneType"),
        ("close",),
    ]


def test_a_request_the_view_makes_starts_its_own_response_only(app, client, kind):
    log: list[tuple[str, ...]] = []
    app.wsgi_app = recording_middleware(app.wsgi_app, log)

    @app.get("/inner")
    def inner():
        return "inner"

    @app.get("/outer")
    @variant(kind)
    def outer():
        # Requests of the same app, made by the view: through its WSGI entry point, and
        # dispatched in a request context of their own, past the middleware.
        through = app.test_client().get("/inner").text
        with app.test_request_context("/inner"):
            past = app.full_dispatch_request().get_data(as_text=True)
        return f"{through} {past} outer", 201

    assert client.get("/outer").text == "inner inner outer"
    assert log == [
        ("start", "200 OK", "inner"),
        ("close",),
        ("start", "201 CREATED", "outer"),
        ("close",),
    ]


def test_an_error_propagates_out_through_the_middleware(app, client):
    seen: list[str] = []

    def middleware(environ, start_response):
        try:
            return inner(environ, start_response)
        except LookupError as e:
            seen.append(str(e))
            raise

    inner = app.wsgi_app
    app.wsgi_app = middleware

    @app.get("/fails")
    def fails():
        raise LookupError("propagated")

    with pytest.raises(LookupError, match="propagated"):
        client.get("/fails")
    assert seen == ["propagated"]


def test_context_the_middleware_sets_is_seen_by_every_step(app, client, kind):
    tag: contextvars.ContextVar[str] = contextvars.ContextVar("tag")
    seen: list[tuple[str, str]] = []

    def middleware(environ, start_response):
        token = tag.set(environ["PATH_INFO"])
        try:
            return inner(environ, start_response)
        finally:
            tag.reset(token)

    inner = app.wsgi_app
    app.wsgi_app = middleware

    def receiver(sender, **extra):
        seen.append(("request_started", tag.get()))

    ctxflask.request_started.connect(receiver, app)

    @app.before_request
    @variant(kind)
    def before():
        g.before = tag.get()

    @app.get("/<name>")
    @variant(kind)
    def view(name):
        return {"before": g.before, "view": tag.get()}

    @app.teardown_request
    @variant(kind)
    def teardown(error):
        seen.append(("teardown", tag.get()))

    try:
        assert client.get("/one").json == {"before": "/one", "view": "/one"}
    finally:
        ctxflask.request_started.disconnect(receiver, app)
    assert seen == [("request_started", "/one"), ("teardown", "/one")]


def test_streamed_and_posted_bodies_pass_the_middleware(app, client, kind):
    log: list[tuple[str, ...]] = []

    def upper(environ, start_response):
        body = inner(environ, start_response)
        return _Closing(body, lambda: log.append(("close",)), bytes.upper)

    inner = app.wsgi_app
    app.wsgi_app = upper

    @app.post("/echo")
    @variant(kind)
    def echo():
        return request.get_json()["text"]

    @app.get("/stream")
    def stream():
        if kind == "sync":

            def chunks():
                yield "one "
                yield "two"
        else:

            async def chunks():
                yield "one "
                yield "two"

        return chunks()

    @app.teardown_request
    def teardown(error):
        log.append(("teardown",))

    assert client.post("/echo", json={"text": "posted"}).text == "POSTED"
    assert client.get("/stream").text == "ONE TWO"
    assert log == [("teardown",), ("close",)] * 2


def test_body_limits_hold_through_the_middleware(app, client, kind):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    app.wsgi_app = ProxyFix(app.wsgi_app)

    @app.post("/size")
    @variant(kind)
    def size():
        return str(len(request.get_data()))

    assert client.post("/size", data=b"a" * 1000).text == "1000"
    assert client.post("/size", data=b"a" * 1001).status_code == 413


def test_concurrent_asgi_requests_through_middleware_stay_apart(app, kind):
    tag: contextvars.ContextVar[str] = contextvars.ContextVar("tag")
    inner = app.wsgi_app

    def middleware(environ, start_response):
        tag.set(environ["QUERY_STRING"])
        return inner(environ, start_response)

    app.wsgi_app = middleware

    @app.get("/tagged")
    @variant(kind)
    def tagged():
        return {"tag": tag.get(), "arg": request.args["n"]}

    async def main():
        async with asgi_client(app) as client:
            return await asyncio.gather(
                *(client.get(f"/tagged?n={n}") for n in range(200))
            )

    responses = asyncio.run(main())
    assert [r.json() for r in responses] == [
        {"tag": f"n={n}", "arg": str(n)} for n in range(200)
    ]


def test_middleware_may_answer_without_the_app(app, client):
    inner = app.wsgi_app

    def guard(environ, start_response):
        if environ["PATH_INFO"] == "/private":
            start_response("403 FORBIDDEN", [("Content-Type", "text/plain")])
            return [b"no"]
        return inner(environ, start_response)

    app.wsgi_app = guard

    @app.get("/<name>")
    def view(name):
        return name

    assert client.get("/public").text == "public"
    response = client.get("/private")
    assert (response.status_code, response.text) == (403, "no")
    assert client.head("/public").data == b""


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_middleware_under_both_event_loop_libraries(app, backend):
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1)

    @app.post("/echo")
    def echo():
        return {"addr": request.remote_addr, "data": request.get_data(as_text=True)}

    @app.get("/stream")
    async def stream():
        async def chunks():
            yield "a"
            yield "b"

        return chunks()

    async def main():
        async with asgi_client(app) as client:
            posted = await client.post(
                "/echo", content="x" * 100_000, headers={"X-Forwarded-For": "192.0.2.1"}
            )
            streamed = await client.get("/stream")
        return posted.json(), streamed.text

    posted, streamed = anyio.run(main, backend=backend)
    assert posted == {"addr": "192.0.2.1", "data": "x" * 100_000}
    assert streamed == "ab"


def test_a_client_gone_mid_stream_closes_it_and_tears_down_once(app, kind):
    log: list[str] = []
    app.wsgi_app = recording_middleware(app.wsgi_app, [])

    @app.get("/stream")
    def stream():
        def chunks():
            try:
                for n in range(100):
                    yield f"{n} "
            finally:
                log.append("closed")

        return chunks()

    @app.teardown_request
    @variant(kind)
    def teardown(error):
        log.append("teardown")

    sent: list[dict] = []

    async def receive():
        await anyio.sleep_forever()

    async def send(message):
        if len(sent) == 2:
            raise OSError("gone")
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/stream",
        "headers": [],
        "query_string": b"",
    }
    asyncio.run(app.asgi(scope, receive, send))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert log == ["closed", "teardown"]


class PatchedFlask(ctxflask.Flask):
    """A class of its own to patch: Flask's stays as it is for the other tests."""


def test_a_call_assigned_to_the_class_keeps_the_app_an_asgi_app():
    seen: list[str] = []
    original = PatchedFlask.__call__

    def first(self, environ, start_response):
        seen.append(f"first {environ['PATH_INFO']}")
        return original(self, environ, start_response)

    PatchedFlask.__call__ = first
    second_inner = PatchedFlask.__call__

    def second(self, environ, start_response):
        seen.append(f"second {environ['PATH_INFO']}")
        return second_inner(self, environ, start_response)

    PatchedFlask.__call__ = second
    app = PatchedFlask("patched")

    @app.get("/<name>")
    def index(name):
        return name

    config = uvicorn.config.Config(app)
    config.load()
    assert config.interface == "asgi3"

    assert app.test_client().get("/wsgi").text == "wsgi"

    async def main():
        for target, path in ((app, "/object"), (app.asgi, "/asgi")):
            transport = httpx.ASGITransport(app=target)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                assert (await c.get(path)).text == path[1:]

    asyncio.run(main())
    assert seen == [
        f"{which} {path}"
        for path in ("/wsgi", "/object", "/asgi")
        for which in ("second", "first")
    ]
    # Put back, Flask's own __call__ leaves no middleware behind.
    assert app._wsgi_middleware() is app
    PatchedFlask.__call__ = original
    assert app._wsgi_middleware() is None
    seen.clear()
    assert app.test_client(asgi=True).get("/back").text == "back"
    assert seen == []


def test_without_middleware_asgi_requests_take_the_usual_path(app, monkeypatch):
    def not_here(*args):
        raise AssertionError("an app without WSGI middleware went through it")

    monkeypatch.setattr(ctxflask.asgi.app, "serve_through", not_here)

    @app.get("/")
    def index():
        return "usual"

    client = app.test_client(asgi=True)
    assert app._wsgi_middleware() is None
    assert client.get("/").text == "usual"
    # Middleware removed by putting the app's own method back (as uninstrumenting does).
    original = app.wsgi_app
    app.wsgi_app = ProxyFix(app.wsgi_app)
    assert app._wsgi_middleware() is not None
    app.wsgi_app = original
    assert app._wsgi_middleware() is None
    assert client.get("/").text == "usual"


def test_scope_route_is_the_matched_rule(app):
    scopes = []

    @app.get("/items/<int:item_id>")
    def item(item_id):
        return str(item_id)

    inner = app.asgi

    async def keep_scope(scope, receive, send):
        scopes.append(scope)
        await inner(scope, receive, send)

    async def main():
        transport = httpx.ASGITransport(app=keep_scope)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            assert (await c.get("/items/7")).text == "7"
            assert (await c.get("/nothing")).status_code == 404

    asyncio.run(main())
    route = scopes[0]["route"]
    assert type(route) is Route
    assert route == route.path == route.path_format == "/items/<int:item_id>"
    assert "route" not in scopes[1]


def test_span_details_name_a_request_by_its_rule(app):
    @app.route("/items/<int:item_id>", methods=["GET", "POST"])
    def item(item_id):
        return str(item_id)

    def scope(path, method="GET"):
        return {"type": "http", "method": method, "path": path, "headers": []}

    details = app.asgi.span_details
    assert details(scope("/items/7")) == (
        "GET /items/<int:item_id>",
        {"http.route": "/items/<int:item_id>"},
    )
    assert details(scope("/items/7", "POST"))[0] == "POST /items/<int:item_id>"
    assert details(scope("/items/x")) == ("GET", {})
    assert details(scope("/items/7", "DELETE")) == ("DELETE", {})


# -- OpenTelemetry and Sentry, each check in a process of its own -----------------------

ROOT = Path(__file__).resolve().parent.parent


def run_check(name: str, *args: str) -> dict:
    """Run one check of ``tests/observability/checks.py`` in a fresh interpreter
    (warnings are errors, as in this suite) and return what it saw."""
    result = subprocess.run(
        [
            sys.executable,
            "-W",
            "error",
            "-m",
            "tests.observability.checks",
            name,
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def rule_of(target: str) -> str:
    kind = target.split("/")[1]
    return f"/{kind}/<int:n>"


@pytest.mark.parametrize("async_steps", ["loop", "thread"])
def test_flask_instrumentor_records_every_request_under_both_entry_points(
    async_steps,
):
    seen = run_check("flask_instrumentor", async_steps)
    assert seen["wsgi"] == seen["asgi"] == [200, 200, 500, 200, 404]
    assert seen["call"] == [200, 200]
    assert seen["concurrent"] == [200] * 200
    servers = seen["servers"]
    assert len(servers) == 12 + 200
    for span in servers:
        status = {"boom": 500, "aboom": 500, "no": 404}.get(
            span["target"].split("/")[1], 200
        )
        assert span["status"] == status, span
        if status == 404:
            assert span["route"] is None
        else:
            assert span["route"] == rule_of(span["target"]), span
            assert span["name"] == f"GET {span['route']}"
    # Each view's span is a child of its own request's span, at 200 concurrent requests.
    assert seen["children"] == {"checked": 4 + 2 + 2 + 200, "wrong": []}
    # The duration histogram counts every request, by route and status.
    durations: dict[tuple[str | None, int], int] = {}
    for target, status, count in seen["metrics"]["duration"]:
        durations[target, status] = durations.get((target, status), 0) + count
    assert durations == {
        ("/sync/<int:n>", 200): 1 + 1 + 1 + 100,
        ("/async/<int:n>", 200): 1 + 1 + 1 + 100,
        ("/boom/<int:n>", 500): 1,
        ("/aboom/<int:n>", 500): 1,
        ("/stream/<int:n>", 200): 2,
        (None, 404): 2,
    }
    # The active requests went up and came back down, under each entry point.
    assert seen["metrics"]["active"] == [0, 0]
    # Uninstrumented, the app is back on the usual ASGI path.
    assert seen["after"] == [200]
    assert seen["servers_after"] == 0
    assert seen["middleware_after"] is False


def test_flask_instrumentor_of_the_flask_class_instruments_apps_made_after():
    seen = run_check("flask_instrumentor_global")
    assert seen["instrumented"] is True
    assert seen["wsgi"] == [200]
    assert seen["asgi"] == [200, 200]
    assert sorted((s["route"], s["status"]) for s in seen["servers"]) == [
        ("/async/<int:n>", 200),
        ("/sync/<int:n>", 200),
        ("/sync/<int:n>", 200),
    ]
    assert seen["children"] == {"checked": 3, "wrong": []}
    assert seen["restored"] is True


@pytest.mark.parametrize("span_details", ["app.asgi.span_details", ""])
def test_opentelemetry_asgi_middleware_reads_the_route(span_details):
    seen = run_check("asgi_middleware", span_details)
    assert seen["concurrent"] == [200] * 200
    assert seen["asgi"] == [404]
    assert seen["children"] == {"checked": 200, "wrong": []}
    # scope["route"]: the middleware's duration histogram is by rule, not by path.
    assert sorted(seen["metrics"]["duration"], key=repr) == sorted(
        [["/async/<int:n>", 200, 100], ["/sync/<int:n>", 200, 100], [None, 404, 1]],
        key=repr,
    )
    for span in seen["servers"]:
        if span["status"] == 404:
            expected = "GET" if span_details else "GET /no/1000"
            assert span["name"] == expected
        elif span_details:  # named by rule, with http.route
            assert span["name"] == f"GET {rule_of(span['target'])}"
            assert span["route"] == rule_of(span["target"])
        else:  # the middleware's default: the path
            assert span["name"] == f"GET {span['target']}"


@pytest.mark.parametrize("entry", ["wsgi", "asgi", "call", "asgi-middleware"])
def test_sentry_sees_each_request_once_with_its_url_and_endpoint(entry):
    seen = run_check("sentry", entry)
    # Sentry's patch of Flask.__call__ keeps the app an ASGI 3 app.
    assert seen["asgi3"] is True
    assert seen["status"] == [500, 500] + [200] * 20
    host = "http://localhost" if entry == "wsgi" else "http://t"
    assert seen["events"] == [
        {
            "transaction": "aboom",
            "url": f"{host}/aboom/2",
            "error": "aboom 2",
            "tag": "/aboom/2",
        },
        {
            "transaction": "boom",
            "url": f"{host}/boom/1",
            "error": "boom 1",
            "tag": "/boom/1",
        },
    ]
    expected = [
        {"name": "aboom", "url": f"{host}/aboom/2", "status": "internal_error"},
        {"name": "boom", "url": f"{host}/boom/1", "status": "internal_error"},
    ] + [
        {"name": "sync_view", "url": f"{host}/sync/{n}", "status": "ok"}
        for n in range(3, 23)
    ]
    for transaction in expected:
        transaction["tag"] = transaction["url"].removeprefix(host)
    assert seen["transactions"] == sorted(expected, key=repr)


@pytest.mark.parametrize("server", ["uvicorn", "gunicorn-asgi"])
def test_servers_load_the_app_object_after_sentry_patched_flask(server, tmp_path):
    """``uvicorn module:app`` and ``gunicorn -k asgi module:app`` once sentry-sdk's Flask
    integration assigned its WSGI function to ``Flask.__call__``."""
    from tests.test_servers import Server
    from tests.test_servers import SERVERS

    command = [
        "tests.observability.served:app" if part.startswith("tests.serverapp") else part
        for part in SERVERS[server]
    ]
    srv = Server(server, command, tmp_path)
    try:
        srv.wait_ready()
        with httpx.Client(base_url=srv.base_url, timeout=10) as client:
            hello = client.get("/hello/world")
            boom = client.get("/boom")
        srv.stop()
    finally:
        srv.terminate()
    assert (hello.status_code, hello.text) == (200, "hello world"), srv.log_tail()
    assert boom.status_code == 500
    items = [
        json.loads(line)
        for line in (srv.state / "envelopes.jsonl").read_text().splitlines()
    ]
    base = srv.base_url
    assert sorted((i["type"], i["transaction"], i["url"]) for i in items) == [
        ("event", "boom", f"{base}/boom"),
        ("transaction", "boom", f"{base}/boom"),
        ("transaction", "count", f"{base}/count"),
        ("transaction", "hello", f"{base}/hello/world"),
    ]


def test_the_early_start_receiver_lasts_as_long_as_apps_with_middleware(monkeypatch):
    import gc
    import weakref

    import ctxflask.app as facade

    monkeypatch.setattr(facade, "_apps_with_middleware", weakref.WeakSet())
    receiving = lambda: id(facade._start_early) in ctxflask.request_finished.receivers  # noqa: E731

    app = ctxflask.Flask("short-lived")
    # The loop watchdog keeps what names the steps of the apps it watched, and so them.
    app.config["LOOP_BLOCK_WARNING"] = None
    app.wsgi_app = ProxyFix(app.wsgi_app)

    @app.get("/")
    def index():
        return "ok"

    for asgi in (False, True):
        assert app.test_client(asgi=asgi).get("/").text == "ok"
        assert receiving()
    del app, index
    gc.collect()
    assert not receiving()
