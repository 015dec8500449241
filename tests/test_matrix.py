"""One semantics for every combination: entry point x view kind x hook kind.

Each combination serves the same request; the response and what every step saw of the
request's contexts must be the same for all of them.
"""

from __future__ import annotations

import contextvars
import itertools

import anyio
import anyio.lowlevel
import pytest

from ctxflask import current_app
from ctxflask import Flask
from ctxflask import g
from ctxflask import request
from ctxflask import session
from tests.support import variant

VIEW_KINDS = ("sync", "async", "sync generator", "async generator")
HOOK_KINDS = ("sync", "async")
#: ASGI in both modes of ASYNC_STEPS: async steps on the loop, or in worker threads.
ENTRY_POINTS = ("wsgi", "asgi", "asgi-thread")

step_var: contextvars.ContextVar[str] = contextvars.ContextVar(
    "step_var", default="unset"
)


def _snapshot(step: str) -> tuple[str, ...]:
    return (
        step,
        current_app.name,
        request.method,
        request.path,
        request.args.get("who", "?"),
        g.get("who", "-"),
        session.get("who", "-"),
        step_var.get(),
    )


def build_app(view_kind: str, hook_kind: str, seen: list[tuple[str, ...]]) -> Flask:
    app = Flask("matrix")
    app.secret_key = "matrix"

    @app.before_request
    @variant(hook_kind)
    def before():
        seen.append(_snapshot("before"))
        g.who = request.args["who"]
        session["who"] = request.args["who"]
        step_var.set(f"set for {request.args['who']}")

    @app.get("/hello")
    def hello():
        raise AssertionError("replaced below")

    def body_lines():
        seen.append(_snapshot("body"))
        return [
            f"hello {g.who}\n",
            f"session {session['who']}\n",
            f"{step_var.get()}\n",
        ]

    if view_kind in ("sync", "async"):

        @variant(view_kind)
        def view():
            seen.append(_snapshot("view"))
            return "".join(body_lines())

    elif view_kind == "sync generator":

        def view():
            seen.append(_snapshot("view"))

            def stream():
                yield from body_lines()

            return stream()

    else:

        def view():
            seen.append(_snapshot("view"))

            async def stream():
                for line in body_lines():
                    await anyio.lowlevel.checkpoint()
                    yield line

            return stream()

    app.view_functions["hello"] = view

    @app.after_request
    @variant(hook_kind)
    def after(response):
        seen.append(_snapshot("after"))
        response.headers["X-Who"] = g.who
        return response

    @app.teardown_request
    @variant(hook_kind)
    def teardown(exc):
        seen.append(_snapshot("teardown"))

    return app


def _expected(streamed: bool) -> list[tuple[str, ...]]:
    set_by_before = ("ann", "ann", "set for ann")
    steps = [
        ("before", "matrix", "GET", "/hello", "ann", "-", "-", "unset"),
        ("view", "matrix", "GET", "/hello", "ann", *set_by_before),
        ("body", "matrix", "GET", "/hello", "ann", *set_by_before),
        ("after", "matrix", "GET", "/hello", "ann", *set_by_before),
        ("teardown", "matrix", "GET", "/hello", "ann", *set_by_before),
    ]
    if streamed:
        # A streamed body runs after after_request, still inside the contexts.
        steps[2], steps[3] = steps[3], steps[2]
    return steps


@pytest.mark.parametrize(
    ("entry_point", "view_kind", "hook_kind"),
    list(itertools.product(ENTRY_POINTS, VIEW_KINDS, HOOK_KINDS)),
)
def test_every_combination_serves_the_same_request_the_same_way(
    entry_point, view_kind, hook_kind
):
    seen: list[tuple[str, ...]] = []
    app = build_app(view_kind, hook_kind, seen)
    if entry_point == "asgi-thread":
        app.config["ASYNC_STEPS"] = "thread"
    client = app.test_client(asgi=entry_point != "wsgi")

    response = client.get("/hello?who=ann", buffered=True)

    assert response.status_code == 200
    assert response.text == "hello ann\nsession ann\nset for ann\n"
    assert response.headers["X-Who"] == "ann"
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "session=" in response.headers["Set-Cookie"]
    assert seen == _expected(streamed="generator" in view_kind)
