"""Sync and async callables mixed in one request: DESIGN.md sections 4.2, 4.5 and 5."""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import threading

import pytest

from ctxflask import g
from ctxflask import request
from ctxflask import session
from tests.support import variant

trail: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "trail", default=()
)

KINDS = ("sync", "async")


@pytest.mark.parametrize(
    ("before_kind", "view_kind", "after_kind", "teardown_kind"),
    list(itertools.product(KINDS, repeat=4)),
)
def test_each_step_sees_what_the_steps_before_it_changed(
    app, client, before_kind, view_kind, after_kind, teardown_kind
):
    seen = {}

    def step(name):
        seen[name] = (trail.get(), g.get("trail", ()), tuple(session.get("trail", ())))
        trail.set((*trail.get(), name))
        g.trail = (*g.get("trail", ()), name)
        session["trail"] = [*session.get("trail", ()), name]

    @app.before_request
    @variant(before_kind)
    def before():
        step("before")

    @app.get("/")
    @variant(view_kind)
    def view():
        step("view")
        return "ok"

    @app.after_request
    @variant(after_kind)
    def after(response):
        step("after")
        return response

    @app.teardown_request
    @variant(teardown_kind)
    def teardown(exc):
        step("teardown")

    assert client.get("/").text == "ok"
    expected = {
        "before": (),
        "view": ("before",),
        "after": ("before", "view"),
        "teardown": ("before", "view", "after"),
    }
    assert seen == {name: (value, value, value) for name, value in expected.items()}


def test_async_views_of_one_thread_share_its_event_loop(app, client):
    @app.get("/")
    async def loop_id():
        return str(id(asyncio.get_running_loop()))

    first, second = client.get("/").text, client.get("/").text
    assert first == second

    other = []
    thread = threading.Thread(
        target=lambda: other.append(app.test_client().get("/").text)
    )
    thread.start()
    thread.join()
    assert other[0] != first


def test_tasks_created_in_an_async_view_inherit_the_request(app, client):
    @app.get("/")
    async def spawn():
        trail.set(("view",))

        async def child():
            await asyncio.sleep(0)
            return f"{request.args['q']} {g.get('x')} {trail.get()}"

        g.x = "gx"
        return await asyncio.create_task(child())

    assert client.get("/?q=hi").text == "hi gx ('view',)"


@pytest.mark.asyncio
async def test_sync_test_client_works_inside_a_running_event_loop(app, client):
    """The WSGI test client called from an async test: the async view runs on a helper
    thread's loop, since this thread's loop is busy running the test."""

    @app.get("/")
    async def view():
        await asyncio.sleep(0)
        return request.args["q"]

    assert client.get("/?q=from-async-test").text == "from-async-test"


def test_sync_decorator_around_an_async_view_still_awaits_it(app, client):
    """A decorator written for sync views (no ``async`` wrapper) around an async view:
    ctxflask awaits the coroutine it returns instead of failing like Flask."""

    def plain_decorator(f):
        def wrapper(*args, **kwargs):
            return f(*args, **kwargs)

        wrapper.__name__ = f.__name__
        return wrapper

    @app.get("/<int:n>")
    @plain_decorator
    async def double(n):
        await asyncio.sleep(0)
        return str(n * 2)

    assert client.get("/21").text == "42"
