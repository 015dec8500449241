"""Concurrent requests never see each other's request, session, g or context variables,
and a request leaves nothing behind: DESIGN.md sections 3 and 4."""

from __future__ import annotations

import contextvars
import random
import threading
import time

import pytest

from ctxflask import Flask
from ctxflask import g
from ctxflask import request
from ctxflask import session
from ctxflask.globals import _cv_app
from ctxflask.globals import _cv_request
from tests.support import variant

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")


def _pause() -> None:
    # Random sleeps (GIL released) so that threads interleave inside every step.
    time.sleep(random.random() * 0.0005)


def _seen() -> tuple[str, str, str, str]:
    return (request.args["id"], g.id, session["id"], request_id.get())


def isolation_app(
    hook_kind: str, view_kind: str, log: dict[str, list[tuple[str, ...]]]
) -> Flask:
    """Each request carries its id in the query string; before_request copies it to g,
    the session and a ContextVar; every later step records what it sees of all four."""
    app = Flask(__name__)
    app.secret_key = "isolation"

    @app.before_request
    @variant(hook_kind)
    def before():
        _pause()
        rid = request.args["id"]
        g.id = rid
        session["id"] = rid
        request_id.set(rid)

    @app.get("/")
    @variant(view_kind)
    def view():
        _pause()
        log.setdefault(request.args["id"], []).append(("view", *_seen()))
        return request.args["id"]

    @app.after_request
    @variant(hook_kind)
    def after(response):
        _pause()
        log.setdefault(request.args["id"], []).append(("after", *_seen()))
        return response

    @app.teardown_request
    @variant(hook_kind)
    def teardown(exc):
        _pause()
        log.setdefault(request.args["id"], []).append(("teardown", *_seen()))

    return app


@pytest.mark.parametrize(
    ("hook_kind", "view_kind"), [("sync", "async"), ("async", "sync")]
)
def test_threads_each_see_only_their_own_request(hook_kind, view_kind):
    threads, per_thread = 16, 200
    log: dict[str, list[tuple[str, ...]]] = {}
    app = isolation_app(hook_kind, view_kind, log)
    bodies: dict[str, str] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def worker(t: int) -> None:
        client = app.test_client(use_cookies=False)
        start.wait()
        try:
            for i in range(per_thread):
                rid = f"{t}-{i}"
                bodies[rid] = client.get(f"/?id={rid}").text
        except BaseException as e:
            errors.append(e)

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()

    assert errors == []
    assert len(bodies) == threads * per_thread
    mismatches = [rid for rid, body in bodies.items() if body != rid]
    for rid, entries in log.items():
        if [step for step, *_ in entries] != ["view", "after", "teardown"]:
            mismatches.append(rid)
        mismatches.extend(rid for _, *seen in entries if seen != [rid] * 4)
    assert len(log) == threads * per_thread
    assert mismatches == []


def test_a_request_that_raises_leaves_nothing_for_the_next_on_the_thread(
    app, client, kind
):
    @app.get("/fail")
    @variant(kind)
    def fail():
        g.leftover = "from the failed request"
        request_id.set("from the failed request")
        raise RuntimeError("boom")

    @app.get("/check")
    @variant(kind)
    def check():
        return {"g": g.get("leftover"), "var": request_id.get("unset")}

    with pytest.raises(RuntimeError, match="boom"):
        client.get("/fail")
    assert _cv_app.get(None) is None
    assert _cv_request.get(None) is None
    assert client.get("/check").json == {"g": None, "var": "unset"}


def test_a_failing_teardown_leaves_nothing_for_the_next_request(app, client, kind):
    calls = []

    @app.get("/")
    def index():
        request_id.set("set by the request")
        return "ok"

    @app.teardown_request
    @variant(kind)
    def broken_teardown(exc):
        calls.append("broken")
        raise OSError("teardown failed")

    @app.teardown_appcontext
    @variant(kind)
    def later_teardown(exc):
        calls.append("appcontext")

    with pytest.raises(OSError, match="teardown failed"):
        client.get("/")
    # Every teardown ran, and the contexts were popped despite the failure.
    assert calls == ["broken", "appcontext"]
    assert _cv_app.get(None) is None
    assert _cv_request.get(None) is None
    assert request_id.get("unset") == "unset"
    with pytest.raises(OSError, match="teardown failed"):
        client.get("/")
    assert calls == ["broken", "appcontext"] * 2


def test_a_view_sees_no_context_variable_of_the_server_thread_request_before(
    app, client
):
    @app.get("/set")
    def set_var():
        request_id.set("first")
        return request_id.get()

    @app.get("/get")
    def get_var():
        return request_id.get("unset")

    assert client.get("/set").text == "first"
    assert client.get("/get").text == "unset"
