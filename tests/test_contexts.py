"""Application and request contexts (DESIGN.md section 3, and 4.5 for the copies)."""

from __future__ import annotations

import asyncio
import threading
import typing as t
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar

import anyio
import anyio.lowlevel
import pytest

import ctxflask
from ctxflask import after_this_request
from ctxflask import copy_current_app_context
from ctxflask import copy_current_request_context
from ctxflask import current_app
from ctxflask import g
from ctxflask import has_app_context
from ctxflask import has_request_context
from ctxflask import request
from ctxflask import session
from ctxflask.ctx import AppContext
from ctxflask.ctx import RequestContext
from ctxflask.globals import app_ctx
from ctxflask.globals import request_ctx
from tests.support import variant


def make_app(name: str) -> ctxflask.Flask:
    app = ctxflask.Flask(name, root_path=__file__.rsplit("/", 1)[0])
    app.config.update(TESTING=True, SECRET_KEY="test key")
    return app


def top_app_ctx() -> AppContext:
    return app_ctx._get_current_object()  # type: ignore[attr-defined,no-any-return]


def top_request_ctx() -> RequestContext:
    return request_ctx._get_current_object()  # type: ignore[attr-defined,no-any-return]


def the_app() -> ctxflask.Flask:
    return current_app._get_current_object()  # type: ignore[attr-defined,no-any-return]


# -- pushing and popping ---------------------------------------------------------------


def test_app_context_with_block_makes_app_current_and_pops_it(app):
    assert not has_app_context()
    with app.app_context() as ctx:
        assert isinstance(ctx, AppContext)
        assert ctx.app is app
        assert the_app() is app
        assert top_app_ctx() is ctx
        assert has_app_context()
        assert not has_request_context()
    assert not has_app_context()


def test_app_context_explicit_push_and_pop(app):
    ctx = app.app_context()
    assert not has_app_context()
    ctx.push()
    try:
        assert the_app() is app
        assert top_app_ctx() is ctx
    finally:
        ctx.pop()
    assert not has_app_context()


def test_request_context_with_block_makes_request_current_and_pops_it(app):
    with app.test_request_context("/hello?name=ada") as ctx:
        assert isinstance(ctx, RequestContext)
        assert top_request_ctx() is ctx
        assert request.path == "/hello"
        assert request.args["name"] == "ada"
        assert has_request_context()
    assert not has_request_context()
    assert not has_app_context()


def test_request_context_explicit_push_and_pop(app):
    ctx = app.test_request_context("/explicit")
    ctx.push()
    try:
        assert request.path == "/explicit"
        assert the_app() is app
    finally:
        ctx.pop()
    assert not has_request_context()
    assert not has_app_context()


def test_request_context_pushes_and_pops_an_implicit_app_context(app):
    popped = []
    app.teardown_appcontext(lambda exc: popped.append(exc))
    with app.test_request_context():
        implicit = top_app_ctx()
        assert implicit.app is app
        assert popped == []
    assert popped == [None]
    assert not has_app_context()


def test_request_context_reuses_the_active_app_context_of_the_same_app(app):
    popped = []
    app.teardown_appcontext(lambda exc: popped.append(exc))
    with app.app_context() as outer:
        g.marker = "outer"
        with app.test_request_context():
            assert top_app_ctx() is outer
            assert g.marker == "outer"
        # The request context did not pop the app context it did not push.
        assert top_app_ctx() is outer
        assert has_app_context()
        assert popped == []
    assert popped == [None]


def test_request_context_of_another_app_pushes_that_apps_context():
    app_a = make_app("app_a")
    app_b = make_app("app_b")
    with app_a.app_context() as ctx_a:
        g.owner = "a"
        with app_b.test_request_context():
            assert the_app() is app_b
            assert top_app_ctx() is not ctx_a
            assert top_app_ctx().app is app_b
            assert "owner" not in g
        assert the_app() is app_a
        assert top_app_ctx() is ctx_a
        assert g.owner == "a"


def test_nested_request_contexts_inner_is_current_then_outer_again(app):
    with app.test_request_context("/outer") as outer:
        with app.test_request_context("/inner") as inner:
            assert top_request_ctx() is inner
            assert request.path == "/inner"
        assert top_request_ctx() is outer
        assert request.path == "/outer"
    assert not has_request_context()


def test_nested_app_contexts_inner_is_current_then_outer_again(app):
    with app.app_context() as outer:
        g.level = "outer"
        with app.app_context() as inner:
            assert top_app_ctx() is inner
            assert "level" not in g
            g.level = "inner"
        assert top_app_ctx() is outer
        assert g.level == "outer"
    assert not has_app_context()


def test_nested_app_contexts_of_two_apps():
    app_a = make_app("app_a")
    app_b = make_app("app_b")
    with app_a.app_context():
        with app_b.app_context():
            assert the_app() is app_b
        assert the_app() is app_a


def test_a_view_calling_another_app_leaves_its_own_contexts_intact(app, client, kind):
    other = make_app("other_app")

    @other.get("/inner")
    @variant(kind)
    def inner():
        seen = [the_app().name, request.path, "owner" in g]
        g.owner = "other"
        return seen

    @app.get("/outer")
    @variant(kind)
    def outer():
        g.owner = "outer"
        original = top_request_ctx()
        inner_seen = other.test_client().get("/inner").get_json()
        after = [the_app().name, request.path, g.owner, top_request_ctx() is original]
        return {"inner": inner_seen, "after": after}

    response = client.get("/outer")
    assert response.status_code == 200
    assert response.get_json() == {
        "inner": ["other_app", "/inner", False],
        "after": ["flask_test", "/outer", "outer", True],
    }


def test_popping_an_app_context_that_is_not_the_top_raises_and_keeps_the_stack():
    app_a = make_app("app_a")
    app_b = make_app("app_b")
    torn_down = []
    app_a.teardown_appcontext(lambda exc: torn_down.append("a"))
    outer = app_a.app_context()
    inner = app_b.app_context()
    outer.push()
    inner.push()
    try:
        with pytest.raises(RuntimeError) as info:
            outer.pop()
        message = str(info.value)
        assert repr(outer) in message
        assert repr(inner) in message
        assert repr(outer) != repr(inner)
        assert top_app_ctx() is inner
        assert torn_down == []
    finally:
        inner.pop()
        assert top_app_ctx() is outer
        outer.pop()
    assert torn_down == ["a"]


def test_popping_a_request_context_that_is_not_the_top_raises_and_keeps_the_stack(app):
    torn_down = []
    app.teardown_request(lambda exc: torn_down.append(request.path))
    outer = app.test_request_context("/outer")
    inner = app.test_request_context("/inner")
    outer.push()
    inner.push()
    try:
        with pytest.raises(RuntimeError) as info:
            outer.pop()
        message = str(info.value)
        assert repr(outer) in message
        assert repr(inner) in message
        assert repr(outer) != repr(inner)
        assert top_request_ctx() is inner
        assert request.path == "/inner"
        assert torn_down == []
    finally:
        inner.pop()
        assert request.path == "/outer"
        outer.pop()
    assert torn_down == ["/inner", "/outer"]


def test_popping_a_request_context_under_a_newer_app_context_raises_and_keeps_the_stack(
    app,
):
    """The request context is the top of its stack, but the app context it pushed is
    not: popping it would pop something that is not the top, so nothing is popped."""
    other = make_app("other_app")
    torn_down = []
    app.teardown_request(lambda exc: torn_down.append("request"))
    ctx = app.test_request_context("/r")
    newer = other.app_context()
    ctx.push()
    implicit = top_app_ctx()
    newer.push()
    try:
        with pytest.raises(RuntimeError) as info:
            ctx.pop()
        assert repr(newer) in str(info.value)
        assert top_request_ctx() is ctx
        assert top_app_ctx() is newer
        assert torn_down == []
    finally:
        newer.pop()
        if has_request_context():
            ctx.pop()
        while has_app_context():  # whatever a half-done pop left behind
            top_app_ctx().pop()
    assert implicit.app is app


def test_same_context_pushed_twice_needs_two_pops(app):
    ctx = app.app_context()
    ctx.push()
    ctx.push()
    ctx.pop()
    assert top_app_ctx() is ctx
    ctx.pop()
    assert not has_app_context()


# -- the proxies outside their context ---------------------------------------------------


def assert_three_part_message(message: str, headline: str, fix: str) -> None:
    parts = message.split("\n\n")
    assert len(parts) == 3, message
    assert parts[0] == headline
    assert parts[1].strip() != ""
    assert fix in parts[2]


@pytest.mark.parametrize(
    "use",
    [
        pytest.param(lambda: current_app.name, id="current_app"),
        pytest.param(lambda: g.anything, id="g-attribute"),
        pytest.param(lambda: g.get("anything"), id="g-get"),
    ],
)
def test_app_globals_outside_app_context_raise_explained_error(use):
    with pytest.raises(RuntimeError) as info:
        use()
    assert_three_part_message(
        str(info.value), "Working outside of application context.", "app.app_context()"
    )


@pytest.mark.parametrize(
    "use",
    [
        pytest.param(lambda: request.path, id="request"),
        pytest.param(lambda: session.get("user"), id="session"),
    ],
)
def test_request_globals_outside_request_context_raise_explained_error(use):
    with pytest.raises(RuntimeError) as info:
        use()
    assert_three_part_message(
        str(info.value),
        "Working outside of request context.",
        "app.test_request_context()",
    )


def test_request_globals_in_an_app_context_only_still_raise(app_ctx):
    with pytest.raises(RuntimeError) as info:
        request.method  # noqa: B018
    assert str(info.value).startswith("Working outside of request context.\n\n")


class _Strict:
    """A proxied object whose lookups fail in the ways the proxies must pass on."""

    value = "v"

    @property
    def missing_key(self):
        raise KeyError("a LookupError from the object, not an unbound proxy")

    @property
    def gone(self):
        raise AttributeError("gone")


_PROXY_USES = {
    "public": lambda p: p.value,
    "missing": lambda p: p.nothing_here,
    "empty name": lambda p: getattr(p, ""),
    "lookup error": lambda p: p.missing_key,
    "attribute error": lambda p: p.gone,
    "hasattr": lambda p: (hasattr(p, "value"), hasattr(p, "nothing_here")),
    "current object": lambda p: p._get_current_object(),
    "class": lambda p: p.__class__.__name__,  # unbound: the proxy type, of one name
    "isinstance": lambda p: isinstance(p, _Strict),
    "repr": repr,
    "bool": bool,
    "dir": lambda p: "value" in dir(p),
    "wrapped": lambda p: type(p.__wrapped__),
}


def _used(proxy, use):
    try:
        return use(proxy)
    except Exception as e:
        return type(e), str(e)


@pytest.mark.parametrize("bound", [True, False], ids=["bound", "unbound"])
@pytest.mark.parametrize("name", [None, "inner"])
def test_the_proxies_behave_as_werkzeugs_local_proxy(bound, name):
    # Entry-point independent: a proxy reads a context variable, whoever set it; the
    # suite's requests use the proxies through both entry points.
    from werkzeug.local import LocalProxy

    from ctxflask.core.globals import _proxy

    var: ContextVar[t.Any] = ContextVar("proxied")
    ours = _proxy(var, name, "unbound here")
    theirs = LocalProxy(var, name, unbound_message="unbound here")
    assert isinstance(ours, LocalProxy)
    assert type(ours).__name__ == "LocalProxy"
    if bound:
        holder = type("Holder", (), {"inner": _Strict()})()
        var.set(holder if name else _Strict())
    for what, use in _PROXY_USES.items():
        assert _used(ours, use) == _used(theirs, use), what


def test_every_context_proxy_is_a_local_proxy(app):
    from werkzeug.local import LocalProxy

    from ctxflask import globals as names

    proxies = ("app_ctx", "current_app", "g", "request_ctx", "request", "session")
    with app.test_request_context("/p", method="POST"):
        for name in proxies:
            assert isinstance(getattr(names, name), LocalProxy), name
        assert (request.method, request.path) == ("POST", "/p")
        assert current_app.name == app.name
        assert request_ctx.request is request._get_current_object()


def test_has_context_functions(app):
    assert (has_app_context(), has_request_context()) == (False, False)
    with app.app_context():
        assert (has_app_context(), has_request_context()) == (True, False)
        with app.test_request_context():
            assert (has_app_context(), has_request_context()) == (True, True)
        assert (has_app_context(), has_request_context()) == (True, False)
    assert (has_app_context(), has_request_context()) == (False, False)


# -- g -----------------------------------------------------------------------------------


def test_g_get_returns_value_or_default(app_ctx):
    g.name = "ada"
    assert g.get("name") == "ada"
    assert g.get("missing") is None
    assert g.get("missing", 7) == 7


def test_g_pop_removes_and_returns(app_ctx):
    g.name = "ada"
    assert g.pop("name") == "ada"
    assert "name" not in g
    assert g.pop("name", "fallback") == "fallback"
    with pytest.raises(KeyError):
        g.pop("name")


def test_g_setdefault_sets_only_when_missing(app_ctx):
    assert g.setdefault("count", 1) == 1
    assert g.setdefault("count", 2) == 1
    assert g.count == 1
    assert g.setdefault("nothing") is None
    assert "nothing" in g


def test_g_contains_and_iterates_over_names(app_ctx):
    g.a = 1
    g.b = 2
    assert "a" in g
    assert "c" not in g
    assert sorted(g) == ["a", "b"]


def test_g_missing_attribute_raises_attribute_error(app_ctx):
    with pytest.raises(AttributeError):
        g.missing  # noqa: B018
    assert getattr(g, "missing", "default") == "default"
    assert not hasattr(g, "missing")


def test_g_attribute_can_be_deleted(app_ctx):
    g.temp = 1
    del g.temp
    assert "temp" not in g


def test_each_app_context_gets_a_fresh_g(app):
    with app.app_context():
        g.value = "first"
    with app.app_context():
        assert "value" not in g
        assert list(g) == []


def test_each_request_context_gets_a_fresh_g(app):
    with app.test_request_context():
        g.value = "first"
    with app.test_request_context():
        assert "value" not in g


def test_g_is_per_request_through_the_client(app, client, kind):
    @app.get("/")
    @variant(kind)
    def index():
        seen = g.get("value", "unset")
        g.value = "set"
        return seen

    assert client.get("/").text == "unset"
    assert client.get("/").text == "unset"


# -- teardown ------------------------------------------------------------------------------


def register_recorders(app, kind, calls):
    @app.teardown_request
    @variant(kind)
    def request_teardown(exc):
        calls.append(("request", exc))

    @app.teardown_appcontext
    @variant(kind)
    def app_teardown(exc):
        calls.append(("app", exc))


def test_teardown_gets_none_after_a_clean_with_block(app, kind):
    calls = []
    register_recorders(app, kind, calls)
    with app.test_request_context():
        assert calls == []
    assert calls == [("request", None), ("app", None)]


def test_teardown_gets_the_exception_raised_in_a_with_block(app, kind):
    calls = []
    register_recorders(app, kind, calls)
    error = ValueError("boom")
    with pytest.raises(ValueError, match="boom") as info, app.test_request_context():
        raise error
    assert info.value is error
    assert calls == [("request", error), ("app", error)]


def test_app_teardown_gets_the_exception_raised_in_an_app_context_block(app, kind):
    calls = []
    register_recorders(app, kind, calls)
    error = KeyError("boom")
    with pytest.raises(KeyError), app.app_context():
        raise error
    assert calls == [("app", error)]


def test_teardown_gets_the_exception_passed_to_pop(app, kind):
    calls = []
    register_recorders(app, kind, calls)
    error = LookupError("given")
    ctx = app.test_request_context()
    ctx.push()
    ctx.pop(error)
    assert calls == [("request", error), ("app", error)]


def test_app_teardown_gets_the_exception_passed_to_app_context_pop(app, kind):
    calls = []
    register_recorders(app, kind, calls)
    error = LookupError("given")
    ctx = app.app_context()
    ctx.push()
    ctx.pop(error)
    assert calls == [("app", error)]


def test_pop_without_argument_passes_the_exception_being_handled(app, kind):
    calls = []
    register_recorders(app, kind, calls)
    ctx = app.test_request_context()
    ctx.push()
    try:
        raise ValueError("handled")
    except ValueError as e:
        error = e
        ctx.pop()
    assert calls == [("request", error), ("app", error)]


def test_pop_with_explicit_none_passes_none_while_handling(app, kind):
    calls = []
    register_recorders(app, kind, calls)
    ctx = app.test_request_context()
    ctx.push()
    try:
        raise ValueError("handled")
    except ValueError:
        ctx.pop(None)
    assert calls == [("request", None), ("app", None)]


def test_teardown_callbacks_run_in_reverse_registration_order(app, kind):
    order = []
    for name in ("first", "second", "third"):

        @app.teardown_request
        @variant(kind)
        def request_teardown(exc, name=name):
            order.append(f"request-{name}")

        @app.teardown_appcontext
        @variant(kind)
        def app_teardown(exc, name=name):
            order.append(f"app-{name}")

    with app.test_request_context():
        pass
    assert order == [
        "request-third",
        "request-second",
        "request-first",
        "app-third",
        "app-second",
        "app-first",
    ]


def test_every_request_teardown_runs_when_one_raises_and_its_error_is_raised(app, kind):
    ran = []
    error = ValueError("teardown failed")

    @app.teardown_request
    @variant(kind)
    def last(exc):
        ran.append("last")

    @app.teardown_request
    @variant(kind)
    def failing(exc):
        ran.append("failing")
        raise error

    @app.teardown_request
    @variant(kind)
    def first(exc):
        ran.append("first")

    @app.teardown_appcontext
    @variant(kind)
    def app_teardown(exc):
        ran.append("app")

    with (
        pytest.raises(ValueError, match="teardown failed") as info,
        app.test_request_context(),
    ):
        pass
    assert info.value is error
    assert ran == ["first", "failing", "last", "app"]
    assert not has_request_context()
    assert not has_app_context()


def test_every_app_teardown_runs_when_one_raises_and_its_error_is_raised(app, kind):
    ran = []
    error = ValueError("teardown failed")

    @app.teardown_appcontext
    @variant(kind)
    def last(exc):
        ran.append("last")

    @app.teardown_appcontext
    @variant(kind)
    def failing(exc):
        ran.append("failing")
        raise error

    @app.teardown_appcontext
    @variant(kind)
    def first(exc):
        ran.append("first")

    with pytest.raises(ValueError, match="teardown failed") as info, app.app_context():
        pass
    assert info.value is error
    assert ran == ["first", "failing", "last"]
    assert not has_app_context()


def test_several_failing_teardowns_raise_an_exception_group_of_all(app, kind):
    ran = []
    errors = [ValueError("one"), KeyError("two"), RuntimeError("three")]
    for i, error in enumerate(errors):

        @app.teardown_request
        @variant(kind)
        def failing(exc, i=i, error=error):
            ran.append(i)
            raise error

    with pytest.raises(BaseExceptionGroup) as info, app.test_request_context():
        pass
    assert ran == [2, 1, 0]
    assert list(info.value.exceptions) == [errors[2], errors[1], errors[0]]
    assert isinstance(info.value, ExceptionGroup)
    assert not has_request_context()
    assert not has_app_context()


def test_several_failing_app_teardowns_raise_an_exception_group_of_all(app, kind):
    errors = [ValueError("one"), KeyError("two")]
    for error in errors:

        @app.teardown_appcontext
        @variant(kind)
        def failing(exc, error=error):
            raise error

    with pytest.raises(BaseExceptionGroup) as info, app.app_context():
        pass
    assert set(map(id, info.value.exceptions)) == set(map(id, errors))
    assert len(info.value.exceptions) == 2
    assert not has_app_context()


def test_request_and_app_teardowns_that_both_raise_are_raised_together(app, kind):
    # The request context's pop does not stop at its own teardown's error: the app
    # context is popped too, its teardown runs, and both errors come out in one group.
    request_error, app_error = ValueError("request"), KeyError("app")
    ran = []

    @app.teardown_request
    @variant(kind)
    def request_teardown(exc):
        ran.append("request")
        raise request_error

    @app.teardown_appcontext
    @variant(kind)
    def app_teardown(exc):
        ran.append("app")
        raise app_error

    ctx = app.test_request_context()
    with pytest.raises(BaseExceptionGroup) as info, ctx:
        pass
    assert list(info.value.exceptions) == [request_error, app_error]
    assert ran == ["request", "app"]
    assert not has_request_context()
    assert not has_app_context()
    assert ctx.request.environ.get("werkzeug.request") is None  # released all the same


def test_app_context_popped_is_sent_after_a_teardown_that_raises(app, kind):
    popped = []
    error = ValueError("teardown")

    @app.teardown_appcontext
    @variant(kind)
    def failing(exc):
        raise error

    def on_popped(sender, **extra):
        popped.append(has_app_context())

    with (
        ctxflask.appcontext_popped.connected_to(on_popped, app),
        pytest.raises(ValueError, match="teardown") as info,
        app.app_context(),
    ):
        pass
    assert info.value is error
    assert popped == [False]
    assert not has_app_context()


def test_teardown_errors_of_a_request_reach_the_test_client_together(app, client, kind):
    # Through either entry point: both teardowns run once, and their errors are raised
    # in one group where the request ends (the test client propagates them).
    ran = []

    @app.get("/")
    @variant(kind)
    def index():
        return "ok"

    @app.teardown_request
    @variant(kind)
    def request_teardown(exc):
        ran.append("request")
        raise ValueError("request")

    @app.teardown_appcontext
    @variant(kind)
    def app_teardown(exc):
        ran.append("app")
        raise KeyError("app")

    with pytest.raises(BaseExceptionGroup) as info:
        client.get("/")
    assert [type(e) for e in info.value.exceptions] == [ValueError, KeyError]
    assert ran == ["request", "app"]


@pytest.mark.parametrize("body", ["whole", "streamed"])
def test_without_propagation_a_failing_teardown_is_logged_and_the_response_sent(
    app, client, kind, caplog, body
):
    # Not testing nor debug: the response is made when teardown runs (after the last
    # chunk for a streamed one), so the client gets it; the error goes to the log.
    app.config.update(TESTING=False, DEBUG=False)
    ran = []

    @app.get("/")
    @variant(kind)
    def index():
        if body == "whole":
            return "made before teardown"
        return iter([b"made before ", b"teardown"])

    @app.teardown_request
    @variant(kind)
    def request_teardown(exc):
        ran.append("request")
        raise ValueError("teardown failed")

    @app.teardown_appcontext
    @variant(kind)
    def app_teardown(exc):
        ran.append("app")

    with caplog.at_level("ERROR", logger=app.logger.name):
        if body == "streamed":
            # A streamed body's teardown runs after it is sent: its error reaches the
            # server, as before.
            with pytest.raises(ValueError, match="teardown failed"):
                client.get("/")
            assert ran == ["request", "app"]
            return
        response = client.get("/")
    assert (response.status_code, response.text) == (200, "made before teardown")
    assert ran == ["request", "app"]
    [record] = caplog.records
    assert record.getMessage() == (
        "Exception in teardown of / [GET]; the response is sent"
    )
    assert isinstance(record.exc_info[1], ValueError)


def test_teardown_runs_once_for_a_context_pushed_twice(app, kind):
    calls = []
    register_recorders(app, kind, calls)
    ctx = app.test_request_context()
    ctx.push()
    ctx.push()
    ctx.pop()
    assert calls == []
    ctx.pop()
    assert calls == [("request", None), ("app", None)]


def test_teardown_runs_once_per_request_through_the_client(app, client, kind):
    calls = []
    register_recorders(app, kind, calls)

    @app.get("/")
    @variant(kind)
    def index():
        return "ok"

    assert client.get("/").status_code == 200
    assert calls == [("request", None), ("app", None)]
    assert client.get("/").status_code == 200
    assert calls == [("request", None), ("app", None)] * 2


def test_teardown_gets_the_exception_a_view_raised(app, client, kind):
    calls = []
    register_recorders(app, kind, calls)
    error = ZeroDivisionError("in view")

    @app.get("/fail")
    @variant(kind)
    def fail():
        raise error

    # TESTING propagates the exception out of the client, after teardown.
    with pytest.raises(ZeroDivisionError, match="in view") as info:
        client.get("/fail")
    assert info.value is error
    assert calls == [("request", error), ("app", error)]
    assert not has_request_context()
    assert not has_app_context()


def test_teardown_sees_the_request_and_g(app, kind):
    seen = []

    @app.teardown_request
    @variant(kind)
    def request_teardown(exc):
        seen.append((request.path, g.value))

    @app.teardown_appcontext
    @variant(kind)
    def app_teardown(exc):
        seen.append((the_app().name, g.value))

    with app.test_request_context("/seen"):
        g.value = "from block"
    assert seen == [("/seen", "from block"), ("flask_test", "from block")]


# -- after_this_request ------------------------------------------------------------------


def test_after_this_request_runs_before_after_request_callbacks(app, client, kind):
    order = []

    @app.after_request
    @variant(kind)
    def after(response):
        order.append("after_request")
        response.headers["X-After"] = response.headers.get("X-This", "missing")
        return response

    @app.get("/")
    @variant(kind)
    def index():
        @after_this_request
        @variant(kind)
        def this_one(response):
            order.append("after_this_request")
            response.headers["X-This"] = request.path
            return response

        order.append("view")
        return "ok"

    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["X-This"] == "/"
    assert response.headers["X-After"] == "/"
    assert order == ["view", "after_this_request", "after_request"]


def test_after_this_request_callbacks_run_in_registration_order(app, client, kind):
    order = []

    @app.get("/")
    @variant(kind)
    def index():
        for name in ("one", "two"):

            @after_this_request
            @variant(kind)
            def cb(response, name=name):
                order.append(name)
                return response

        return "ok"

    assert client.get("/").status_code == 200
    assert order == ["one", "two"]


def test_after_this_request_callback_can_replace_the_response(app, client, kind):
    @app.get("/")
    @variant(kind)
    def index():
        @after_this_request
        @variant(kind)
        def replace(response):
            return app.response_class("replaced", status=202)

        return "original"

    response = client.get("/")
    assert response.status_code == 202
    assert response.text == "replaced"


def test_after_this_request_is_only_for_one_request(app, client, kind):
    calls = []

    @app.get("/<int:n>")
    @variant(kind)
    def index(n):
        if n == 1:

            @after_this_request
            def cb(response):
                calls.append(n)
                return response

        return "ok"

    client.get("/1")
    client.get("/2")
    assert calls == [1]


def test_after_this_request_outside_a_request_raises(app):
    with pytest.raises(RuntimeError):
        after_this_request(lambda r: r)
    with app.app_context(), pytest.raises(RuntimeError):
        after_this_request(lambda r: r)


# -- copying contexts to other threads and tasks -------------------------------------------


def call_kind(fn: t.Callable[[], t.Any], callable_kind: str) -> t.Any:
    """Call a sync function, or run an async one to completion with ``asyncio.run``."""
    if callable_kind == "async":
        return asyncio.run(fn())
    return fn()


def run_elsewhere(runner: str, fn: t.Callable[[], t.Any]) -> t.Any:
    """Run ``fn`` in another thread, which does not inherit the caller's context."""
    if runner == "thread":
        outcome: dict[str, t.Any] = {}

        def target() -> None:
            try:
                outcome["value"] = fn()
            except BaseException as e:  # reported in the caller's thread
                outcome["error"] = e

        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn).result()


def snapshot() -> tuple[t.Any, ...]:
    return (
        request.path,
        request.args.get("q"),
        session.get("user"),
        g.get("value"),
        the_app(),
    )


@pytest.mark.parametrize("runner", ["thread", "executor"])
@pytest.mark.parametrize("callable_kind", ["sync", "async"])
def test_copied_request_context_sees_request_session_g_and_app(
    app, client, kind, callable_kind, runner
):
    results = {}

    @app.teardown_request
    @variant(kind)
    def teardown(exc):
        results.setdefault("teardowns", []).append(request.path)

    @app.get("/work")
    @variant(kind)
    def work():
        session["user"] = "ada"
        g.value = 42
        original = top_request_ctx()
        job = copy_current_request_context(variant(callable_kind)(snapshot))
        results["copy"] = run_elsewhere(runner, lambda: call_kind(job, callable_kind))
        # The original request is unaffected by the copy's push and pop.
        results["after"] = (top_request_ctx() is original, *snapshot())
        return "done"

    response = client.get("/work?q=search")
    assert response.status_code == 200
    assert response.text == "done"
    assert results["copy"] == ("/work", "search", "ada", 42, app)
    assert results["after"] == (True, "/work", "search", "ada", 42, app)
    assert results["teardowns"] == ["/work"]


@pytest.mark.parametrize("callable_kind", ["sync", "async"])
def test_copied_request_context_shares_g_and_session_with_the_request(
    app, client, kind, callable_kind
):
    @app.get("/")
    @variant(kind)
    def index():
        session["user"] = "ada"

        @copy_current_request_context
        @variant(callable_kind)
        def job():
            g.from_copy = "yes"
            session["from_copy"] = "yes"

        run_elsewhere("thread", lambda: call_kind(job, callable_kind))
        return {"g": g.get("from_copy"), "session": session.get("from_copy")}

    response = client.get("/")
    assert response.get_json() == {"g": "yes", "session": "yes"}


def test_copied_request_context_with_asyncio_run_from_a_sync_view(app, client):
    """Specific to sync views: ``asyncio.run`` needs a thread without a running loop."""

    @app.get("/")
    def index():
        g.value = 1
        session["user"] = "ada"
        job = copy_current_request_context(variant("async")(snapshot))
        return repr(asyncio.run(job())[:4])

    response = client.get("/?q=x")
    assert response.text == repr(("/", "x", "ada", 1))


def test_copied_request_context_in_an_anyio_task_from_an_async_view(app, client):
    """Specific to async views: starts a task on the view's event loop."""
    results = []

    @app.get("/")
    async def index():
        g.value = 2
        session["user"] = "ada"
        original = top_request_ctx()
        job = copy_current_request_context(variant("async")(snapshot))

        async def runner():
            results.append(await job())

        async with anyio.create_task_group() as tg:
            tg.start_soon(runner)
        return repr((top_request_ctx() is original, request.path))

    response = client.get("/?q=y")
    assert response.text == repr((True, "/"))
    assert results == [("/", "y", "ada", 2, app)]


@pytest.mark.parametrize("callable_kind", ["sync", "async"])
def test_copied_request_context_works_after_the_request_ended(
    app, client, kind, callable_kind
):
    saved = []
    teardowns = []

    @app.teardown_request
    @variant(kind)
    def teardown(exc):
        teardowns.append(request.path)

    @app.get("/later")
    @variant(kind)
    def later():
        g.value = "kept"
        session["user"] = "ada"
        saved.append(copy_current_request_context(variant(callable_kind)(snapshot)))
        return "ok"

    assert client.get("/later?q=1").status_code == 200
    assert not has_request_context()
    assert call_kind(saved[0], callable_kind) == ("/later", "1", "ada", "kept", app)
    # In another thread too, and more than once.
    result = run_elsewhere("executor", lambda: call_kind(saved[0], callable_kind))
    assert result == ("/later", "1", "ada", "kept", app)
    assert not has_request_context()
    assert not has_app_context()
    assert teardowns == ["/later"]


def app_snapshot() -> tuple[t.Any, ...]:
    return (the_app(), g.get("value"), has_request_context())


@pytest.mark.parametrize("runner", ["thread", "executor"])
@pytest.mark.parametrize("callable_kind", ["sync", "async"])
def test_copied_app_context_sees_app_and_g(app, callable_kind, runner):
    torn_down = []
    app.teardown_appcontext(lambda exc: torn_down.append(exc))
    with app.app_context() as ctx:
        g.value = 5
        job = copy_current_app_context(variant(callable_kind)(app_snapshot))
        result = run_elsewhere(runner, lambda: call_kind(job, callable_kind))
        assert result == (app, 5, False)
        assert top_app_ctx() is ctx
        assert g.value == 5
        assert torn_down == []
    assert torn_down == [None]


@pytest.mark.parametrize("runner", ["thread", "executor"])
@pytest.mark.parametrize("callable_kind", ["sync", "async"])
def test_copied_app_context_from_a_view(app, client, kind, callable_kind, runner):
    results = {}

    @app.get("/")
    @variant(kind)
    def index():
        g.value = "view"
        job = copy_current_app_context(variant(callable_kind)(app_snapshot))
        results["copy"] = run_elsewhere(runner, lambda: call_kind(job, callable_kind))
        results["after"] = (request.path, g.value)
        return "ok"

    assert client.get("/").status_code == 200
    # An app context copy carries no request.
    assert results["copy"] == (app, "view", False)
    assert results["after"] == ("/", "view")


def test_copied_app_context_in_an_anyio_task(app):
    """Specific to async callables: awaited in a task of an event loop."""
    results = []

    async def main(job):
        async with anyio.create_task_group() as tg:
            tg.start_soon(job)

    with app.app_context():
        g.value = 3

        @copy_current_app_context
        async def job():
            await anyio.lowlevel.checkpoint()
            results.append(app_snapshot())

    # The app context has ended: the copy still works.
    anyio.run(main, job)
    assert results == [(app, 3, False)]
    assert not has_app_context()


@pytest.mark.parametrize("callable_kind", ["sync", "async"])
def test_copied_app_context_works_after_the_context_ended(app, callable_kind):
    torn_down = []
    app.teardown_appcontext(lambda exc: torn_down.append(exc))
    with app.app_context():
        g.value = 9
        job = copy_current_app_context(variant(callable_kind)(app_snapshot))
    assert torn_down == [None]
    assert call_kind(job, callable_kind) == (app, 9, False)
    assert torn_down == [None]
    assert not has_app_context()


def test_copy_current_request_context_outside_a_request_raises(app):
    with pytest.raises(RuntimeError):
        copy_current_request_context(lambda: None)
    with app.app_context(), pytest.raises(RuntimeError):
        copy_current_request_context(lambda: None)


def test_copy_current_app_context_outside_an_app_context_raises():
    with pytest.raises(RuntimeError):
        copy_current_app_context(lambda: None)


@pytest.mark.parametrize("callable_kind", ["sync", "async"])
def test_copied_callable_keeps_name_and_returns_value_and_raises(app, callable_kind):
    def compute(a, b=0):
        if a < 0:
            raise ValueError("negative")
        return a + b + g.value

    with app.test_request_context():
        g.value = 100
        job = copy_current_request_context(variant(callable_kind)(compute))
    assert job.__name__ == "compute"
    assert call_kind(lambda: job(1, b=2), callable_kind) == 103
    with pytest.raises(ValueError, match="negative"):
        call_kind(lambda: job(-1), callable_kind)
    assert not has_request_context()
    assert not has_app_context()


# -- ensure_sync / async_to_sync -----------------------------------------------------------


def test_ensure_sync_runs_an_async_function_from_sync_code(app):
    async def add(a, b):
        await anyio.lowlevel.checkpoint()
        return a + b

    assert app.ensure_sync(add)(2, b=3) == 5


def test_ensure_sync_returns_a_sync_function_unchanged(app):
    def f():
        return 1

    assert app.ensure_sync(f) is f


def test_async_to_sync_runs_in_the_callers_contexts(app):
    async def read():
        await anyio.lowlevel.checkpoint()
        return the_app(), g.value, request.path

    with app.test_request_context("/here"):
        g.value = "caller"
        assert app.async_to_sync(read)() == (app, "caller", "/here")


def test_async_to_sync_raises_the_functions_exception(app):
    error = ValueError("from async")

    async def fail():
        await anyio.lowlevel.checkpoint()
        raise error

    with pytest.raises(ValueError, match="from async") as info:
        app.async_to_sync(fail)()
    assert info.value is error


probe: ContextVar[str] = ContextVar("probe")


def test_async_to_sync_keeps_context_var_changes(app):
    async def set_probe():
        await anyio.lowlevel.checkpoint()
        probe.set("set by async")

    token = probe.set("before")
    try:
        app.async_to_sync(set_probe)()
        assert probe.get() == "set by async"
    finally:
        probe.reset(token)


@pytest.mark.anyio
async def test_ensure_sync_works_when_an_event_loop_is_running(app):
    async def double(x):
        await anyio.lowlevel.checkpoint()
        return x * 2

    assert app.ensure_sync(double)(21) == 42


# -- a fresh contextvars.Context per request -------------------------------------------------


request_var: ContextVar[str] = ContextVar("request_var")


def test_context_var_set_in_a_view_is_not_seen_by_the_next_request(app, client, kind):
    @app.get("/<value>")
    @variant(kind)
    def view(value):
        seen = request_var.get("unset")
        request_var.set(value)
        return seen

    assert client.get("/one").text == "unset"
    assert client.get("/two").text == "unset"
    assert request_var.get("unset") == "unset"


def test_context_var_set_in_a_view_is_not_seen_by_the_test_afterwards(
    app, client, kind
):
    @app.get("/")
    @variant(kind)
    def view():
        request_var.set("leaked?")
        return request_var.get()

    assert client.get("/").text == "leaked?"
    assert request_var.get("unset") == "unset"
    assert not has_request_context()
    assert not has_app_context()
