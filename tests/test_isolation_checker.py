"""The isolation checker (``ctxflask.testing.check_isolation``): it finds the requests
that see each other's state in deliberately broken apps, naming the step and the pair of
requests, passes the correct versions of the same apps, and gives the app back as it was.

Each broken app also records, by itself, which request saw whose value (its own ground
truth, independent of the checker): the checker must report exactly those pairs.
"""

from __future__ import annotations

import contextvars
import importlib.util
import inspect
import sys
import threading
import time
from pathlib import Path

import anyio
import pytest
import sniffio
from werkzeug.security import generate_password_hash

from ctxflask import Flask
from ctxflask import g
from ctxflask import in_thread
from ctxflask import nonblocking
from ctxflask import request
from ctxflask import websocket
from ctxflask import WebSocketDisconnect
from ctxflask.bridge import callables
from ctxflask.isolation import TOKEN_HEADER
from ctxflask.testing import check_isolation
from ctxflask.testing import check_isolation_wsgi
from ctxflask.testing import IsolationReport
from ctxflask.testing import RequestSpec

ENTRIES = ["asyncio", "trio", "wsgi"]

user_var: contextvars.ContextVar[str] = contextvars.ContextVar("user")


def check(
    entry: str, app: Flask, specs: list[RequestSpec], **kwargs
) -> IsolationReport:
    """Run the checker through one entry point, in a bounded time."""
    started = time.monotonic()
    if entry == "wsgi":
        report = check_isolation_wsgi(app, specs, threads=16, timeout=30, **kwargs)
    else:

        async def run() -> IsolationReport:
            with anyio.fail_after(30):
                return await check_isolation(app, specs, concurrency=100, **kwargs)

        report = anyio.run(run, backend=entry)
    assert time.monotonic() - started < 30
    return report


def own_token() -> str:
    return request.headers[TOKEN_HEADER]


def index_of(report: IsolationReport, token: str) -> int:
    return next(r.index for r in report.requests if r.token == token)


def pairs(report: IsolationReport, step: str, kind: str) -> set[tuple[int, int]]:
    """(request, whose value it saw) for the findings of a step and kind."""
    return {
        (f.request, f.other)
        for f in report.of(kind, step)
        if f.request is not None and f.other is not None
    }


def truth(report: IsolationReport, seen: list[tuple[str, str]]) -> set[tuple[int, int]]:
    """The app's own record of (own token, token seen) as pairs of request indexes."""
    return {
        (index_of(report, own), index_of(report, other))
        for own, other in seen
        if own != other
    }


async def pause(seconds: float = 0.001) -> None:
    await anyio.sleep(seconds)


# -- a module-level cache keyed wrongly ------------------------------------------------


def cache_app(broken: bool, kind: str) -> tuple[Flask, list[tuple[str, str]]]:
    """A profile cache: the broken one is keyed by path alone, so every user gets the
    profile of whoever filled it first; the correct one by path and user."""
    app = Flask(__name__)
    cache: dict[object, dict[str, str]] = {}
    seen: list[tuple[str, str]] = []

    def key() -> object:
        user = request.headers["X-User"]
        return request.path if broken else (request.path, user)

    def answer() -> dict[str, str]:
        profile = cache[key()]
        seen.append((own_token(), profile["user"]))
        return profile

    if kind == "sync":

        @app.get("/profile")
        def profile():
            if key() not in cache:
                time.sleep(0.001)  # the database, slow enough for others to arrive
                cache[key()] = {"user": request.headers["X-User"]}
            return answer()

    else:

        @app.get("/profile")
        async def profile():
            if key() not in cache:
                await pause()
                cache[key()] = {"user": request.headers["X-User"]}
            return answer()

    return app, seen


PROFILE = RequestSpec("GET", "/profile", headers={"X-User": "{token}"}, status=200)


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("entry", ENTRIES)
def test_a_cache_keyed_wrongly_is_caught_in_the_view(entry, kind):
    app, seen = cache_app(True, kind)
    report = check(entry, app, [PROFILE] * 200)
    assert not report.ok
    found = pairs(report, "view 'profile'", "output")
    assert found, report
    assert found == truth(report, seen)
    # Whoever filled the cache (a few, racing) is seen by many.
    assert len({other for _, other in found}) < len(found)
    assert {f.kind for f in report.findings} == {"output"}
    # The report reads: who, in which step, saw whose value.
    first = min(report.findings, key=lambda f: f.request)
    token = report.requests[first.other].token
    assert (
        f"#{first.request} (GET /profile):\n  view 'profile': output: its output holds"
        f" '{token}': #{first.other} (GET /profile)'s, not #{first.request}'s"
    ) in str(report)


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("entry", ENTRIES)
def test_a_cache_keyed_by_user_passes(entry, kind):
    app, seen = cache_app(False, kind)
    report = check(entry, app, [PROFILE] * 200)
    assert report.ok, report
    assert truth(report, seen) == set()
    assert report.steps == 200


# -- a threading.local set in a sync hook, read in an async view ------------------------


def thread_local_app(broken: bool) -> tuple[Flask, list[tuple[str, str]]]:
    """The hook is cheap, so it is marked ``nonblocking``: under ASGI it runs on the
    loop's thread, which every request shares, and the async view reads the thread-local
    after awaiting, by when other requests' hooks have replaced it. The correct app
    keeps the user in ``g``."""
    app = Flask(__name__)
    local = threading.local()
    seen: list[tuple[str, str]] = []

    @app.before_request
    @nonblocking
    def remember_user():
        if broken:
            local.user = request.headers["X-User"]
        else:
            g.hook_user = request.headers["X-User"]

    @app.get("/me")
    async def me():
        await pause()
        g.user = local.user if broken else g.hook_user
        seen.append((own_token(), g.user))
        return {"user": g.user}

    return app, seen


ME = RequestSpec("GET", "/me", headers={"X-User": "{token}"}, status=200)


@pytest.mark.parametrize("entry", ["asyncio", "trio"])
def test_a_thread_local_read_in_an_async_view_is_caught_under_asgi(entry):
    app, seen = thread_local_app(True)
    report = check(entry, app, [ME] * 200)
    assert not report.ok
    expected = truth(report, seen)
    assert expected
    assert pairs(report, "view 'me'", "g") == expected
    assert pairs(report, "view 'me'", "output") == expected
    assert {f.step for f in report.findings} == {"view 'me'"}
    assert all("g.user" in f.detail for f in report.of("g"))


def test_a_thread_local_in_hooks_and_views_holds_under_wsgi():
    # Each request has its thread for all its steps, async ones included: the broken
    # app is right there, and the checker must not say otherwise.
    app, seen = thread_local_app(True)
    report = check("wsgi", app, [ME] * 200)
    assert report.ok, report
    assert truth(report, seen) == set()


@pytest.mark.parametrize("entry", ENTRIES)
def test_the_user_in_g_passes(entry):
    app, seen = thread_local_app(False)
    report = check(entry, app, [ME] * 200, context_vars=[user_var])
    assert report.ok, report
    assert truth(report, seen) == set()
    assert report.steps == 400


# -- a task started in a view that outlives the request and reads g later ---------------


def signing_app(broken: bool) -> tuple[Flask, list[tuple[str, str]]]:
    """The broken app signs notes in a task that the first request starts and that
    lives on to serve the later ones, reading ``g.user`` for each job: the first
    request's. The correct app signs in the view and audits after the response with a
    background task, which sees its own request's ``g``."""
    app = Flask(__name__)
    seen: list[tuple[str, str]] = []
    audit: list[str] = []
    state: dict[str, object] = {}

    async def signer(inbox) -> None:
        with inbox:
            async for text, box, done in inbox:
                await pause()
                box.append(f"{text} signed by {g.user}")
                done.set()

    def start(inbox) -> None:
        if sniffio.current_async_library() == "trio":
            import trio

            trio.lowlevel.spawn_system_task(
                signer, inbox, context=contextvars.copy_context()
            )
        else:
            import asyncio

            state["task"] = asyncio.get_running_loop().create_task(signer(inbox))

    def log_signature() -> None:
        audit.append(f"{own_token()} {g.user}")

    @app.post("/sign")
    async def sign():
        g.user = request.headers["X-User"]
        if broken:
            if "outbox" not in state:
                state["outbox"], inbox = anyio.create_memory_object_stream(100)
                start(inbox)
            box: list[str] = []
            done = anyio.Event()
            await state["outbox"].send(("note", box, done))
            await done.wait()
            g.signed = box[0]
        else:
            await pause()
            g.signed = f"note signed by {g.user}"
            app.add_background_task(log_signature)
        seen.append((own_token(), g.signed.rpartition(" ")[2]))
        return {"signed": g.signed}

    app.audit = audit
    app.signer = state
    return app, seen


SIGN = RequestSpec("POST", "/sign", headers={"X-User": "{token}"}, status=200)


@pytest.mark.parametrize("entry", ["asyncio", "trio"])
def test_a_task_that_outlives_its_request_and_reads_g_is_caught(entry):
    app, seen = signing_app(True)
    report = check(entry, app, [SIGN] * 100)
    app.signer["outbox"].close()
    assert not report.ok
    expected = truth(report, seen)
    assert len(expected) == 99  # all but the request that started the task
    assert pairs(report, "view 'sign'", "g") == expected
    assert pairs(report, "view 'sign'", "output") == expected
    if entry == "asyncio":
        # The task is still running when the run ends, named by the request that
        # started it (the one whose g every other request saw).
        (left,) = report.of("left active")
        assert {left.request} == {other for _, other in expected}
        assert "task" in left.detail


@pytest.mark.parametrize("entry", ENTRIES)
def test_a_background_task_reading_g_passes(entry):
    app, seen = signing_app(False)
    report = check(entry, app, [SIGN] * 100)
    assert report.ok, report
    assert truth(report, seen) == set()
    # view, and the background task: each saw its own request's g.
    assert report.steps == 200
    assert sorted(app.audit) == sorted(f"{r.token} {r.token}" for r in report.requests)


# -- a global mutated by a stream generator ---------------------------------------------


def feed_app(broken: bool, kind: str) -> tuple[Flask, list[tuple[str, str]]]:
    """A streamed feed whose generator keeps "whose feed this is" in a module-level
    dict: concurrent streams overwrite it between their chunks. The correct one keeps
    it in a local variable."""
    app = Flask(__name__)
    current: dict[str, str] = {}
    seen: list[tuple[str, str]] = []

    @app.get("/feed")
    def feed():
        user = request.headers["X-User"]
        token = own_token()

        def owner() -> str:
            return current["user"] if broken else user

        if kind == "sync":

            def body():
                for i in range(3):
                    current["user"] = user
                    time.sleep(0.001)
                    seen.append((token, owner()))
                    yield f"{i}: {owner()}\n"

        else:

            async def body():
                for i in range(3):
                    current["user"] = user
                    await pause()
                    seen.append((token, owner()))
                    yield f"{i}: {owner()}\n"

        return body()

    return app, seen


FEED = RequestSpec("GET", "/feed", headers={"X-User": "{token}"}, status=200)


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("entry", ENTRIES)
def test_a_global_mutated_by_a_stream_generator_is_caught_in_its_chunk(entry, kind):
    app, seen = feed_app(True, kind)
    report = check(entry, app, [FEED] * 100)
    assert not report.ok
    expected = truth(report, seen)
    assert expected
    found = pairs(report, "view 'feed': body chunk", "output")
    assert found == expected
    assert {f.kind for f in report.findings} == {"output"}
    assert all(": body chunk " in f.step for f in report.findings)


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("entry", ENTRIES)
def test_a_stream_generator_with_its_own_state_passes(entry, kind):
    app, seen = feed_app(False, kind)
    report = check(entry, app, [FEED] * 100)
    assert report.ok, report
    assert truth(report, seen) == set()
    # The view, and four resumptions of the generator (three chunks and its end).
    assert report.steps == 500


# -- the checker's other findings ----------------------------------------------------------


@pytest.mark.parametrize("entry", ENTRIES)
def test_a_teardown_run_twice_is_reported(entry):
    app = Flask(__name__)

    @app.get("/")
    def index():
        app.do_teardown_request()  # a view running the teardown itself: twice in all
        return "ok"

    @app.teardown_request
    def close(exc):
        pass

    report = check(entry, app, [RequestSpec("GET", "/")] * 20)
    assert len(report.of("teardown")) == 20
    assert {f.step for f in report.findings} == {"teardown_request 'close'"}
    assert "ran 2 times, expected once" in str(report)


@pytest.mark.parametrize("entry", ENTRIES)
def test_a_value_of_another_request_in_the_session_or_a_context_var_is_reported(
    entry,
):
    app = Flask(__name__)
    app.secret_key = "isolation"
    shared: dict[str, str] = {}

    @app.before_request
    def before():
        # A "last visitor" kept in a global, copied into each request's state.
        previous = shared.get("last")
        shared["last"] = own_token()
        if previous is not None:
            user_var.set(previous)

    @app.get("/")
    async def index():
        return "ok"

    specs = [RequestSpec("GET", "/", session={"me": "{token}"})] * 30
    report = check(entry, app, specs, context_vars=[user_var])
    found = report.of("context var", "before_request 'before'")
    assert len(found) >= 1
    assert all(
        "left ContextVar 'user'" in f.detail and f.other is not None for f in found
    )
    # The session holds only its own token: it is never reported.
    assert report.of("session") == []


@pytest.mark.parametrize("entry", ENTRIES)
def test_statuses_and_exceptions_are_reported(entry):
    app = Flask(__name__)
    app.testing = True  # exceptions propagate out of the entry point

    @app.get("/")
    def index():
        return "ok"

    @app.get("/boom")
    async def boom():
        raise LookupError("boom")

    report = check(
        entry,
        app,
        [
            RequestSpec("GET", "/", status=200),
            RequestSpec("GET", "/", status=201),
            RequestSpec("GET", "/boom"),
        ],
    )
    status, error = sorted(report.findings, key=lambda f: f.request)
    assert (status.request, status.kind, status.step) == (1, "status", "response")
    assert "status 200, expected 201" in str(report)
    assert (error.request, error.kind) == (2, "error")
    assert "LookupError('boom')" in error.detail
    assert isinstance(report.requests[2].error, LookupError)


def test_wsgi_requests_still_running_at_the_timeout_are_reported():
    app = Flask(__name__)

    @app.get("/slow")
    def slow():
        time.sleep(1)
        return "late"

    @app.get("/")
    def index():
        return "ok"

    started = time.monotonic()
    report = check_isolation_wsgi(
        app, [RequestSpec("GET", "/"), RequestSpec("GET", "/slow")], timeout=0.2
    )
    assert time.monotonic() - started < 0.9
    ((late, detail),) = [(f.request, f.detail) for f in report.of("error")]
    assert late == 1
    assert "still running after 0.2 s" in detail
    time.sleep(1)  # the slow request ends before the test does


def observed_callables(app: Flask) -> list[object]:
    return [
        *app.view_functions.values(),
        *(f for funcs in app.before_request_funcs.values() for f in funcs),
        *(f for funcs in app.after_request_funcs.values() for f in funcs),
        *(f for funcs in app.teardown_request_funcs.values() for f in funcs),
        *app.teardown_appcontext_funcs,
        *(
            h
            for spec in app.error_handler_spec.values()
            for handlers in spec.values()
            for h in handlers.values()
        ),
    ]


def marked_app() -> tuple[Flask, dict[str, object]]:
    app = Flask(__name__)
    seen: dict[str, object] = {}

    @app.before_request
    @nonblocking
    def cheap():
        pass

    @app.get("/thread")
    @in_thread
    async def in_a_thread():
        """Runs in a worker thread under ASGI."""
        view = app.view_functions["in_a_thread"]
        seen["thread"] = view
        return "ok"

    @app.get("/sync")
    def sync_view():
        seen["sync"] = app.view_functions["sync_view"]
        return "ok"

    @app.after_request
    async def after(response):
        return response

    @app.errorhandler(404)
    def missing(e):
        return "missing", 404

    @app.teardown_appcontext
    async def teardown(exc):
        pass

    return app, seen


@pytest.mark.parametrize("entry", ENTRIES)
def test_observed_callables_keep_their_nature_and_the_app_gets_its_own_back(entry):
    app, seen = marked_app()
    before = observed_callables(app)
    originals = dict(app.view_functions)
    first = app._got_first_request
    specs = [
        RequestSpec("GET", "/thread"),
        RequestSpec("GET", "/sync"),
        RequestSpec("GET", "/nowhere", status=404),
    ]
    report = check(entry, app, specs * 5)
    assert report.ok, report
    wrapped_async, wrapped_sync = seen["thread"], seen["sync"]
    assert wrapped_async is not originals["in_a_thread"]  # observed during the run
    assert inspect.iscoroutinefunction(wrapped_async)
    assert not inspect.iscoroutinefunction(wrapped_sync)
    assert callables.placement(wrapped_async) == callables.IN_WORKER_LOOP
    assert wrapped_async.__name__ == "in_a_thread"
    assert wrapped_async.__doc__ == "Runs in a worker thread under ASGI."
    assert inspect.signature(wrapped_sync) == inspect.signature(originals["sync_view"])
    # Given back exactly.
    assert observed_callables(app) == before
    assert all(a is b for a, b in zip(observed_callables(app), before, strict=True))
    assert "add_background_task" not in vars(app)
    assert app._got_first_request == first


def test_the_app_gets_its_own_callables_back_when_the_run_fails(monkeypatch):
    import ctxflask.isolation.run

    app, _ = marked_app()
    before = observed_callables(app)

    class Interrupted(BaseException):
        pass

    def broken_send(*args):
        raise Interrupted

    monkeypatch.setattr(ctxflask.isolation.run, "send_http", broken_send)
    with pytest.raises(BaseExceptionGroup) as caught:
        check("asyncio", app, [RequestSpec("GET", "/sync")])
    assert caught.group_contains(Interrupted)
    assert all(a is b for a, b in zip(observed_callables(app), before, strict=True))
    assert "add_background_task" not in vars(app)


# -- the example application ------------------------------------------------------------

NOTES = Path(__file__).resolve().parent.parent / "examples" / "notes"


@pytest.fixture
def notes_app(tmp_path):
    """examples/notes made by its factory, with a database of two users and two notes.
    Its package is loaded from its folder without putting the folder on ``sys.path``
    (its ``wsgi.py`` must stay out of the CLI's app discovery), and unloaded after."""
    spec = importlib.util.spec_from_file_location(
        "notes",
        NOTES / "notes" / "__init__.py",
        submodule_search_locations=[str(NOTES / "notes")],
    )
    assert spec is not None
    assert spec.loader is not None
    package = importlib.util.module_from_spec(spec)
    sys.modules["notes"] = package
    try:
        spec.loader.exec_module(package)
        app = package.create_app(
            {
                "TESTING": True,
                "SECRET_KEY": "isolation",
                "DATABASE": str(tmp_path / "notes.sqlite"),
            }
        )
        from notes.db import get_db
        from notes.db import init_db

        with app.app_context():
            init_db()
            db = get_db()
            db.executemany(
                "INSERT INTO user (username, password) VALUES (?, ?)",
                [
                    (name, generate_password_hash(name, method="pbkdf2:sha256:1000"))
                    for name in ("ann", "bob")
                ],
            )
            db.executemany(
                "INSERT INTO note (title, body, author_id) VALUES (?, ?, ?)",
                [("Groceries", "eggs milk", 1), ("Thoughts", "one two three", 2)],
            )
            db.commit()
        yield app
    finally:
        for name in [n for n in sys.modules if n == "notes" or n.startswith("notes.")]:
            del sys.modules[name]


def notes_requests() -> list[RequestSpec]:
    """Reads, writes, logged-in users with sessions (each session holding its
    request's token), failed validations and errors, sync and async views. Writes put
    the token in the note's title: the lists that show every note are the only
    requests allowed to show other requests' tokens."""
    ann = {"user_id": 1, "nonce": "{token}"}
    bob = {"user_id": 2, "nonce": "{token}"}
    note = {"title": "by {token}", "body": "written by {token}"}
    mix = [
        RequestSpec("GET", "/?ref={token}", status=200, scan_output=False),
        RequestSpec("GET", "/", session=ann, status=200, scan_output=False),
        RequestSpec("GET", "/notes/1?ref={token}", status=200),
        RequestSpec("GET", "/notes/999", session=bob, status=404),
        RequestSpec("GET", "/api/notes", status=200, scan_output=False),
        RequestSpec("GET", "/api/notes/1?ref={token}", session=ann, status=200),
        RequestSpec("GET", "/api/notes/999", status=404),
        RequestSpec("GET", "/api/stats", session=bob, status=200),
        RequestSpec("GET", "/static/style.css", status=200),
        RequestSpec("GET", "/notes/new", status=302),
        RequestSpec("GET", "/notes/new", session=ann, status=200),
        RequestSpec("POST", "/notes/new", session=ann, data=note, status=302),
        RequestSpec("POST", "/notes/new", session=bob, data={"body": "x"}, status=200),
        RequestSpec("POST", "/api/notes", session=bob, json=note, status=201),
        RequestSpec("POST", "/api/notes", json=note, status=401),
        RequestSpec("POST", "/api/notes", session=ann, json={"title": ""}, status=400),
        RequestSpec(
            "POST",
            "/auth/login",
            data={"username": "ann", "password": "ann"},
            status=302,
        ),
        RequestSpec(
            "POST",
            "/auth/login",
            data={"username": "bob", "password": "no"},
            status=200,
        ),
        RequestSpec("GET", "/auth/logout", session=bob, status=302),
        RequestSpec("DELETE", "/api/notes/2", session=ann, status=403),
    ]
    return [mix[i % len(mix)] for i in range(1000)]


# The example's async views await asyncio.sleep: it is an asyncio application.
@pytest.mark.parametrize("entry", ["asyncio", "wsgi"])
def test_the_notes_example_passes_a_thousand_mixed_requests(notes_app, entry):
    before = observed_callables(notes_app)
    report = check(entry, notes_app, notes_requests())
    assert report.ok, report
    assert len(report.requests) == 1000
    assert all(r.error is None for r in report.requests)
    assert report.steps > 3000  # each request: hooks, view, teardown at least
    # close_db, counted for each request: it ran exactly once for each.
    assert report.teardowns == ["teardown_appcontext 'close_db'"]
    assert "each of 1 teardown callback(s) ran once per request" in str(report)
    assert all(
        a is b for a, b in zip(observed_callables(notes_app), before, strict=True)
    )


# -- WebSockets, and a framework that loses a step's changes ----------------------------


def chat_app(broken: bool) -> tuple[Flask, list[tuple[str, str]]]:
    """A WebSocket handler that answers each message with its sender's name; the broken
    one keeps "the current speaker" in a module-level dict while it awaits."""
    app = Flask(__name__)
    speaker: dict[str, str] = {}
    seen: list[tuple[str, str]] = []

    @app.before_websocket
    def who():
        g.user = request.headers["X-User"]

    @app.websocket("/chat")
    async def chat():
        await websocket.accept()
        while True:
            try:
                message = await websocket.receive()
            except WebSocketDisconnect:
                return
            speaker["user"] = g.user
            await pause()
            name = speaker["user"] if broken else g.user
            seen.append((own_token(), name))
            g.last = f"{name}: {message}"
            await websocket.send(g.last)

    return app, seen


CHAT = RequestSpec(
    "GET", "/chat", headers={"X-User": "{token}"}, websocket=["hi", "there"], status=101
)


@pytest.mark.parametrize("entry", ["asyncio", "trio"])
@pytest.mark.parametrize("broken", [True, False])
def test_websocket_handlers_are_observed(entry, broken):
    app, seen = chat_app(broken)
    report = check(entry, app, [CHAT] * 100)
    expected = truth(report, seen)
    # Each message the handler sends is its output; g is seen when the handler ends.
    assert pairs(report, "view 'chat': message", "output") == expected
    assert pairs(report, "view 'chat'", "g") <= expected
    if broken:
        assert expected
        assert not report.ok
        assert {f.step.partition(":")[0] for f in report.findings} == {"view 'chat'"}
    else:
        assert report.ok, report
        assert report.steps == 200  # before_websocket and the handler


def test_websocket_requests_are_skipped_under_wsgi():
    app, _ = chat_app(False)
    report = check("wsgi", app, [CHAT, RequestSpec("GET", "/nowhere", status=404)])
    assert report.ok, report
    assert [r.skipped for r in report.requests] == [True, False]
    assert "1 requests" in str(report)


def test_a_step_whose_context_variable_changes_are_lost_is_reported(monkeypatch):
    """A framework that runs each step in a copy of the request's context, as Quart
    runs sync steps, loses what a step sets in a ``ContextVar``: the next step begins
    with the value from before. Simulated on the WSGI driver, every step through it."""
    import ctxflask.bridge.drivers

    original = ctxflask.bridge.drivers.call_in

    def in_a_copy(ctx, fn, *args, **kwargs):
        return original(None if ctx is None else ctx.copy(), fn, *args, **kwargs)

    app = Flask(__name__)

    @app.before_request
    def before():
        user_var.set(request.headers["X-User"])

    @app.get("/")
    async def index():
        return user_var.get("nobody")

    specs = [RequestSpec("GET", "/", headers={"X-User": "{token}"})] * 20
    assert check("wsgi", app, specs, context_vars=[user_var]).ok
    monkeypatch.setattr(ctxflask.bridge.drivers, "call_in", in_a_copy)
    monkeypatch.setattr(ctxflask.bridge.drivers, "_SYNC_DRIVER_INLINE", ())
    report = check("wsgi", app, specs, context_vars=[user_var])
    lost = report.of("lost change")
    assert len(lost) == 20
    assert {f.step for f in lost} == {"view 'index'"}
    assert all(
        f"before_request 'before' set ContextVar 'user' = '{report.requests[f.request].token}'"
        in f.detail
        and "began with <unset>" in f.detail
        for f in lost
    )


def counted_teardowns(app: Flask) -> list[str]:
    """Teardown callbacks on ``app`` that note each of their runs."""
    calls: list[str] = []

    @app.teardown_request
    def request_done(exc):
        calls.append("request")

    @app.teardown_appcontext
    def app_done(exc):
        calls.append("app")

    return calls


@pytest.mark.parametrize("entry", ENTRIES)
def test_the_checker_runs_nothing_of_the_app_beyond_its_requests(entry):
    # Session cookies are signed with no context pushed: the app's teardown callbacks
    # run once per request sent, and for nothing else.
    app = Flask(__name__)
    app.secret_key = "isolation"

    @app.get("/")
    def index():
        return "ok"

    calls = counted_teardowns(app)

    specs = [RequestSpec("GET", "/", session={"me": "{token}"}, status=200)] * 30
    report = check(entry, app, specs)
    assert report.ok, report
    assert sorted(calls) == ["app"] * 30 + ["request"] * 30


@pytest.mark.parametrize("entry", ENTRIES)
def test_a_context_pushed_in_a_view_and_never_popped_is_left_active(entry):
    app = Flask(__name__)

    @app.get("/")
    def index():
        app.test_request_context("/other").push()  # never popped
        return "ok"

    report = check(entry, app, [RequestSpec("GET", "/")] * 5)
    assert not report.ok
    for i in range(5):
        kinds = {f.kind for f in report.findings if f.request == i}
        # The view ends inside the other request's context; the request's own pop
        # then fails, and its contexts stay pushed.
        assert kinds == {"request", "error", "left active"}
        left = [f.detail for f in report.of("left active") if f.request == i]
        assert any("<RequestContext 'http://localhost/' [GET]" in d for d in left)
        assert any("<RequestContext 'http://localhost/other'" in d for d in left)
    assert report.of("request", "view 'index'")[0].detail == (
        f"request carries {TOKEN_HEADER} None"
    )


@pytest.mark.parametrize(
    ("make", "spec", "step"),
    [
        (lambda broken: cache_app(broken, "async"), PROFILE, "view 'profile'"),
        (lambda broken: feed_app(broken, "sync"), FEED, "view 'feed': body chunk"),
        (lambda broken: feed_app(broken, "async"), FEED, "view 'feed': body chunk"),
        (chat_app, CHAT, "view 'chat': message"),
    ],
    ids=["cache", "sync-feed", "async-feed", "chat"],
)
@pytest.mark.parametrize("broken", [True, False])
def test_async_steps_in_worker_threads_are_observed_too(make, spec, step, broken):
    # ASYNC_STEPS = "thread": async steps run in worker threads, each on its own loop.
    app, seen = make(broken)
    app.config["ASYNC_STEPS"] = "thread"
    report = check("asyncio", app, [spec] * 200)
    expected = truth(report, seen)
    assert pairs(report, step, "output") == expected
    assert bool(expected) is broken
    assert report.ok is not broken, report


@pytest.mark.parametrize("entry", ENTRIES)
def test_a_hook_that_passes_the_response_on_is_not_blamed(entry):
    app, seen = cache_app(True, "sync")

    @app.after_request
    def passed_on(response):
        return response

    report = check(entry, app, [PROFILE] * 200)
    assert pairs(report, "view 'profile'", "output") == truth(report, seen)
    assert {f.step for f in report.findings} == {"view 'profile'"}

    # A streamed body goes through the hook once: its chunks are watched once.
    app, seen = feed_app(False, "async")

    @app.after_request
    async def stream_passed_on(response):
        return response

    report = check(entry, app, [FEED] * 100)
    assert report.ok, report
    assert report.steps == 600  # view, after_request, four resumptions of the body


@pytest.mark.parametrize("entry", ENTRIES)
def test_contexts_a_view_pushes_and_pops_are_not_the_requests_steps(entry):
    app = Flask(__name__)

    @app.get("/")
    def index():
        # Their teardown callbacks run inside the view, for contexts of their own.
        with app.app_context():
            g.inner = "inner"
        with app.test_request_context("/elsewhere"):
            pass
        return "ok"

    calls = counted_teardowns(app)

    report = check(entry, app, [RequestSpec("GET", "/", status=200)] * 30)
    assert report.ok, report
    assert report.steps == 90  # the view and the request's own two teardowns
    assert len(calls) == 30 * 4  # the request's own two, and one for each inner context
