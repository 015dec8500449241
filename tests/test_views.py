"""Class-based views: ``View`` and ``MethodView``, with sync and async methods."""

from __future__ import annotations

import functools
import inspect
import threading
import typing as t

import pytest

import ctxflask
from ctxflask import Blueprint
from ctxflask import g
from ctxflask import request
from ctxflask import url_for
from ctxflask.views import MethodView
from ctxflask.views import View
from tests.support import variant

# -- View ------------------------------------------------------------------------------


def test_view_dispatches_with_url_variables(app, client, kind):
    class Greet(View):
        @variant(kind)
        def dispatch_request(self, name):
            return f"hello {name} via {request.method}"

    app.add_url_rule("/greet/<name>", view_func=Greet.as_view("greet"))

    response = client.get("/greet/ada")
    assert (response.status_code, response.text) == (200, "hello ada via GET")


def test_view_defaults_to_get_only(app, client):
    class Plain(View):
        def dispatch_request(self):
            return "plain"

    app.add_url_rule("/", view_func=Plain.as_view("plain"))

    assert client.get("/").text == "plain"
    assert client.post("/").status_code == 405


def test_view_methods_attribute_sets_the_rule_s_methods(app, client, kind):
    class Echo(View):
        methods = ["GET", "POST"]

        @variant(kind)
        def dispatch_request(self):
            return request.method

    app.add_url_rule("/", view_func=Echo.as_view("echo"))

    assert client.get("/").text == "GET"
    assert client.post("/").text == "POST"
    response = client.delete("/")
    assert response.status_code == 405
    assert sorted(response.headers["Allow"].split(", ")) == [
        "GET",
        "HEAD",
        "OPTIONS",
        "POST",
    ]


def test_view_without_dispatch_request_raises_not_implemented(app, client):
    class Empty(View):
        pass

    app.add_url_rule("/", view_func=Empty.as_view("empty"))

    with pytest.raises(NotImplementedError, match="dispatch_request"):
        client.get("/")


def test_as_view_describes_the_class(app):
    class Documented(View):
        """The docs."""

        methods = ["PUT"]
        provide_automatic_options = False

        def dispatch_request(self):
            return "x"

    view = Documented.as_view("documented")

    assert view.__name__ == "documented"
    assert view.__doc__ == "The docs."
    assert view.__module__ == __name__
    assert view.view_class is Documented
    assert view.methods == ["PUT"]
    assert view.provide_automatic_options is False


def test_as_view_passes_arguments_to_the_class(app, client, kind):
    class Configured(View):
        def __init__(self, greeting, *, punctuation):
            self.text = f"{greeting}{punctuation}"

        @variant(kind)
        def dispatch_request(self):
            return self.text

    app.add_url_rule("/", view_func=Configured.as_view("c", "hi", punctuation="!"))

    assert client.get("/").text == "hi!"


def test_view_class_attribute_makes_the_instances(app, client):
    class Real(View):
        def dispatch_request(self):
            return "real"

    class StandIn(View):
        def dispatch_request(self):
            return "stand-in"

    view = Real.as_view("view")
    app.add_url_rule("/", view_func=view)
    view.view_class = StandIn

    assert client.get("/").text == "stand-in"


def test_init_every_request_makes_an_instance_per_request(app, client, kind):
    created: list[int] = []

    class Counting(View):
        def __init__(self):
            created.append(id(self))
            self.hits = 0

        @variant(kind)
        def dispatch_request(self):
            self.hits += 1
            return str(self.hits)

    app.add_url_rule("/", view_func=Counting.as_view("counting"))

    assert [client.get("/").text for _ in range(3)] == ["1", "1", "1"]
    assert len(created) == 3


def test_init_every_request_false_shares_one_instance(app, client, kind):
    created: list[int] = []

    class Shared(View):
        init_every_request = False

        def __init__(self):
            created.append(id(self))
            self.hits = 0

        @variant(kind)
        def dispatch_request(self):
            self.hits += 1
            return str(self.hits)

    view = Shared.as_view("shared")
    assert len(created) == 1  # made by as_view, before any request
    app.add_url_rule("/", view_func=view)

    assert [client.get("/").text for _ in range(3)] == ["1", "2", "3"]
    assert len(created) == 1


def _tracing(label: str, log: list[str]) -> t.Callable[[t.Any], t.Any]:
    """A plain sync decorator, unaware of async: it returns what the view returns (a
    coroutine, for an async view), which the bridge then awaits."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(**kwargs):
            log.append(label)
            return view(**kwargs)

        return wrapper

    return decorator


def test_view_decorators_wrap_the_view_in_order(app, client, kind):
    """The first decorator of the list is the innermost, as the bottom ``@`` line."""
    log: list[str] = []

    class Decorated(View):
        decorators = [_tracing("inner", log), _tracing("outer", log)]

        @variant(kind)
        def dispatch_request(self, n):
            log.append(f"view {n}")
            return "decorated"

    view = Decorated.as_view("decorated")
    app.add_url_rule("/<int:n>", view_func=view)

    assert client.get("/5").text == "decorated"
    assert log == ["outer", "inner", "view 5"]
    assert view.__name__ == "decorated"
    assert view.view_class is Decorated


def test_view_decorator_can_answer_instead_of_the_view(app, client, kind):
    def login_required(view):
        @functools.wraps(view)
        def wrapper(**kwargs):
            if "user" not in request.args:
                return "login first", 401
            return view(**kwargs)

        return wrapper

    class Private(View):
        decorators = [login_required]

        @variant(kind)
        def dispatch_request(self):
            return f"hello {request.args['user']}"

    app.add_url_rule("/", view_func=Private.as_view("private"))

    response = client.get("/")
    assert (response.status_code, response.text) == (401, "login first")
    assert client.get("/?user=bo").text == "hello bo"


def test_view_function_kind_follows_dispatch_request(kind):
    class Viewed(View):
        @variant(kind)
        def dispatch_request(self):
            return "x"

    assert inspect.iscoroutinefunction(Viewed.as_view("v")) is (kind == "async")


def test_provide_automatic_options_false_leaves_options_unanswered(app, client):
    class NoOptions(View):
        provide_automatic_options = False

        def dispatch_request(self):
            return "x"

    class WithOptions(View):
        def dispatch_request(self):
            return "x"

    app.add_url_rule("/no", view_func=NoOptions.as_view("no"))
    app.add_url_rule("/yes", view_func=WithOptions.as_view("yes"))

    assert client.options("/no").status_code == 405
    response = client.options("/yes")
    assert response.status_code == 200
    assert sorted(response.headers["Allow"].split(", ")) == ["GET", "HEAD", "OPTIONS"]


def test_view_sees_g_set_by_before_request(app, client, kind):
    @app.before_request
    @variant(kind)
    def load_user():
        g.user = "grace"

    class Profile(View):
        @variant(kind)
        def dispatch_request(self):
            g.seen_by_view = True
            return g.user

    @app.after_request
    @variant(kind)
    def after(response):
        response.headers["X-Seen"] = str(g.seen_by_view)
        return response

    app.add_url_rule("/", view_func=Profile.as_view("profile"))

    response = client.get("/")
    assert response.text == "grace"
    assert response.headers["X-Seen"] == "True"


# -- MethodView --------------------------------------------------------------------------


def _counter_view(kind: str) -> type[MethodView]:
    class Counter(MethodView):
        @variant(kind)
        def get(self):
            return f"get {request.args.get('n', '0')}"

        @variant(kind)
        def post(self):
            return f"post {request.get_data(as_text=True)}", 201

    return Counter


def test_method_view_infers_methods_from_its_handlers(kind):
    assert _counter_view(kind).methods == {"GET", "POST"}


def test_method_view_dispatches_by_method(app, client, kind):
    app.add_url_rule("/count", view_func=_counter_view(kind).as_view("count"))

    assert client.get("/count?n=3").text == "get 3"
    response = client.post("/count", data="body")
    assert (response.status_code, response.text) == (201, "post body")


def test_method_view_answers_405_for_undefined_methods(app, client, kind):
    app.add_url_rule("/count", view_func=_counter_view(kind).as_view("count"))

    for method in ("PUT", "DELETE", "PATCH"):
        response = client.open("/count", method=method)
        assert response.status_code == 405
        assert sorted(response.headers["Allow"].split(", ")) == [
            "GET",
            "HEAD",
            "OPTIONS",
            "POST",
        ]


def test_method_view_head_falls_back_to_get(app, client, kind):
    calls: list[str] = []

    class Resource(MethodView):
        @variant(kind)
        def get(self):
            calls.append(request.method)
            return "full body", {"X-From": "get"}

    app.add_url_rule("/", view_func=Resource.as_view("resource"))

    response = client.head("/")
    assert response.status_code == 200
    assert response.headers["X-From"] == "get"
    assert response.headers["Content-Length"] == "9"
    assert response.data == b""
    assert calls == ["HEAD"]


def test_method_view_own_head_handler_wins_over_get(app, client, kind):
    class Resource(MethodView):
        @variant(kind)
        def get(self):
            return "get"

        @variant(kind)
        def head(self):
            return "", {"X-From": "head"}

    app.add_url_rule("/", view_func=Resource.as_view("resource"))

    assert client.head("/").headers["X-From"] == "head"


def test_method_view_passes_url_variables_to_handlers(app, client, kind):
    class Item(MethodView):
        @variant(kind)
        def get(self, item_id):
            return f"item {item_id}"

        @variant(kind)
        def delete(self, item_id):
            return f"deleted {item_id}"

    app.add_url_rule("/items/<int:item_id>", view_func=Item.as_view("item"))

    assert client.get("/items/4").text == "item 4"
    assert client.delete("/items/4").text == "deleted 4"


def test_method_view_inherits_handlers_and_methods(app, client, kind):
    class Readable(MethodView):
        @variant(kind)
        def get(self):
            return f"read by {type(self).__name__}"

    class Writable(Readable):
        @variant(kind)
        def put(self):
            return "written"

    class Mixin:
        def delete(self):
            return "deleted by mixin"

    class Full(Mixin, Writable):
        pass

    assert Readable.methods == {"GET"}
    assert Writable.methods == {"GET", "PUT"}
    assert Full.methods == {"GET", "PUT", "DELETE"}
    app.add_url_rule("/", view_func=Full.as_view("full"))

    assert client.get("/").text == "read by Full"
    assert client.put("/").text == "written"
    assert client.delete("/").text == "deleted by mixin"


def test_method_view_keeps_methods_it_sets_itself(app, client, kind):
    class ReadOnly(MethodView):
        methods = ["GET"]

        @variant(kind)
        def get(self):
            return "get"

        @variant(kind)
        def post(self):
            return "post"

    app.add_url_rule("/", view_func=ReadOnly.as_view("read_only"))

    assert client.get("/").text == "get"
    assert client.post("/").status_code == 405


def test_method_view_own_options_handler_replaces_automatic_options(app, client, kind):
    class WithOptions(MethodView):
        @variant(kind)
        def get(self):
            return "get"

        @variant(kind)
        def options(self):
            return "custom options", {"Allow": "GET"}

    app.add_url_rule("/", view_func=WithOptions.as_view("with_options"))

    response = client.options("/")
    assert response.text == "custom options"
    assert response.headers["Allow"] == "GET"


def test_method_view_listing_a_method_without_handler_fails_loudly(app, client):
    class Broken(MethodView):
        methods = ["GET", "POST"]

        def get(self):
            return "get"

    app.add_url_rule("/", view_func=Broken.as_view("broken"))

    with pytest.raises(AssertionError, match="Unimplemented method 'POST'"):
        client.post("/")


def test_method_view_with_decorators_and_init_every_request_false(app, client, kind):
    log: list[str] = []

    class Shared(MethodView):
        init_every_request = False
        decorators = [_tracing("traced", log)]

        def __init__(self):
            self.hits = 0

        @variant(kind)
        def get(self):
            self.hits += 1
            return str(self.hits)

        @variant(kind)
        def post(self):
            self.hits += 10
            return str(self.hits)

    app.add_url_rule("/", view_func=Shared.as_view("shared"))

    assert [client.get("/").text, client.post("/").text, client.get("/").text] == [
        "1",
        "11",
        "12",
    ]
    assert log == ["traced", "traced", "traced"]


# -- sync and async handlers -------------------------------------------------------------


def test_method_view_function_is_async_when_every_handler_is(kind):
    class AllOneKind(MethodView):
        @variant(kind)
        def get(self):
            return "get"

        @variant(kind)
        def post(self):
            return "post"

    assert inspect.iscoroutinefunction(AllOneKind.as_view("v")) is (kind == "async")


def test_method_view_mixing_sync_and_async_handlers_runs_both(app, client):
    class Mixed(MethodView):
        def get(self):
            return "sync get"

        async def post(self):
            return "async post"

    app.add_url_rule("/", view_func=Mixed.as_view("mixed"))

    assert client.get("/").text == "sync get"
    assert client.post("/").text == "async post"


def test_async_handlers_run_on_the_loop_and_sync_ones_off_it(app, client, entry_point):
    """Under ASGI a sync handler runs in a worker thread, never on the event loop's
    thread, and an async one on the event loop (in "thread" mode, in a worker thread
    too); under WSGI both run on the server's thread (async ones on its event loop)."""
    threads: dict[str, int] = {}
    loop_threads: set[int] = set()

    @app.before_request
    @ctxflask.nonblocking
    def where_the_loop_runs():  # on the loop under ASGI, in both modes
        loop_threads.add(threading.get_ident())

    class SyncOnly(MethodView):
        def get(self):
            threads["sync"] = threading.get_ident()
            return "sync"

    class AsyncOnly(MethodView):
        async def get(self):
            threads["async"] = threading.get_ident()
            return "async"

    class Mixed(MethodView):
        def get(self):
            threads["mixed sync"] = threading.get_ident()
            return "mixed sync"

        async def post(self):
            threads["mixed async"] = threading.get_ident()
            return "mixed async"

    app.add_url_rule("/sync", view_func=SyncOnly.as_view("sync"))
    app.add_url_rule("/async", view_func=AsyncOnly.as_view("async"))
    app.add_url_rule("/mixed", view_func=Mixed.as_view("mixed"))

    assert client.get("/sync").text == "sync"
    assert client.get("/async").text == "async"
    assert client.get("/mixed").text == "mixed sync"
    assert client.post("/mixed").text == "mixed async"

    if entry_point == "asgi-thread":
        assert not loop_threads & set(threads.values())
    elif entry_point == "asgi":
        assert threads["sync"] != threads["async"]
        assert threads["mixed sync"] != threads["async"]
        assert threads["mixed async"] == threads["async"]
    else:
        assert len(set(threads.values())) == 1


def test_async_handler_keeps_context_changes_for_later_steps(app, client, kind):
    class Setter(MethodView):
        @variant(kind)
        def get(self):
            g.from_handler = "set in handler"
            return "ok"

    @app.after_request
    @variant(kind)
    def after(response):
        response.headers["X-G"] = g.from_handler
        return response

    app.add_url_rule("/", view_func=Setter.as_view("setter"))

    assert client.get("/").headers["X-G"] == "set in handler"


def test_overridden_dispatch_request_can_call_super(app, client, kind):
    """A subclass's own ``dispatch_request`` gets the handler's result from
    ``super().dispatch_request()``, even for an async handler (as with Flask's
    ``ensure_sync``)."""

    class Wrapped(MethodView):
        @variant(kind)
        def get(self, word):
            return word

        def dispatch_request(self, **kwargs):
            return f"[{super().dispatch_request(**kwargs)}]"

    app.add_url_rule("/<word>", view_func=Wrapped.as_view("wrapped"))

    assert client.get("/hi").text == "[hi]"


def test_overridden_async_dispatch_request_makes_an_async_view(app, client):
    class Custom(MethodView):
        def get(self):
            return "unused"

        async def dispatch_request(self, **kwargs):
            return f"custom {request.method}"

    view = Custom.as_view("custom")
    app.add_url_rule("/", view_func=view)

    assert inspect.iscoroutinefunction(view)
    assert client.get("/").text == "custom GET"


def test_errors_of_handlers_reach_error_handlers(app, client, kind):
    class Failing(MethodView):
        @variant(kind)
        def get(self):
            raise LookupError("nothing here")

    @app.errorhandler(LookupError)
    @variant(kind)
    def handle(e):
        return f"handled {e}", 404

    app.add_url_rule("/", view_func=Failing.as_view("failing"))

    response = client.get("/")
    assert (response.status_code, response.text) == (404, "handled nothing here")


def test_class_views_on_a_blueprint(app, client, kind):
    bp = Blueprint("api", __name__, url_prefix="/api")

    class Things(MethodView):
        @variant(kind)
        def get(self):
            return f"{request.endpoint} {url_for('.things')}"

    bp.add_url_rule("/things", view_func=Things.as_view("things"))
    app.register_blueprint(bp)

    assert client.get("/api/things").text == "api.things /api/things"
    assert client.post("/api/things").status_code == 405
