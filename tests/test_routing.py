"""Routing: registering rules, converters, automatic HEAD/OPTIONS, redirects, url_for,
URL processors, abort/redirect, host and subdomain matching, static files, and the fast
URL-adapter path taken for plain apps."""

from __future__ import annotations

import io
import uuid

import pytest
from werkzeug.exceptions import BadHost
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter
from werkzeug.routing import BuildError
from werkzeug.routing import RequestRedirect
from werkzeug.routing import RoutingException
from werkzeug.test import run_wsgi_app

import ctxflask
from ctxflask import abort
from ctxflask import Flask
from ctxflask import g
from ctxflask import redirect
from ctxflask import request
from ctxflask import Response
from ctxflask import url_for
from ctxflask.core.routing import bind_to_request
from tests.support import variant


def _allow(response) -> set[str]:
    """The methods of an ``Allow`` header, as a set (its order is not specified)."""
    return {m.strip() for m in response.headers["Allow"].split(",")}


# -- registering rules ---------------------------------------------------------------


def test_route_registers_a_view_for_get(app, client, kind):
    @app.route("/hello")
    @variant(kind)
    def hello():
        return "hi"

    response = client.get("/hello")
    assert response.status_code == 200
    assert response.text == "hi"
    assert client.post("/hello").status_code == 405


def test_route_with_methods_serves_each_listed_method(app, client, kind):
    @app.route("/item", methods=["GET", "POST"])
    @variant(kind)
    def item():
        return request.method

    assert client.get("/item").text == "GET"
    assert client.post("/item").text == "POST"
    assert client.put("/item").status_code == 405


def test_route_methods_are_case_insensitive(app, client, kind):
    @app.route("/item", methods=["post"])
    @variant(kind)
    def item():
        return request.method

    assert client.post("/item").text == "POST"


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
def test_method_shortcut_registers_a_route_for_that_method_only(
    app, client, kind, method
):
    @getattr(app, method)("/thing")
    @variant(kind)
    def thing():
        return f"{request.method} handled"

    response = client.open("/thing", method=method.upper())
    assert response.status_code == 200
    assert response.text == f"{method.upper()} handled"
    other = "POST" if method == "get" else "GET"
    assert client.open("/thing", method=other).status_code == 405


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
def test_method_shortcut_refuses_a_methods_argument(app, method):
    with pytest.raises(TypeError, match="route"):
        getattr(app, method)("/thing", methods=["GET"])


def test_add_url_rule_with_view_func(app, client, kind):
    @variant(kind)
    def listing():
        return "listing"

    app.add_url_rule("/list", view_func=listing)
    assert client.get("/list").text == "listing"
    assert app.view_functions["listing"] is listing


def test_add_url_rule_without_view_func_then_endpoint_decorator(app, client, kind):
    app.add_url_rule("/later", "later_endpoint")
    assert "later_endpoint" not in app.view_functions

    @app.endpoint("later_endpoint")
    @variant(kind)
    def some_function():
        return "bound later"

    response = client.get("/later")
    assert response.status_code == 200
    assert response.text == "bound later"


def test_endpoint_defaults_to_the_function_name(app, req_ctx):
    @app.route("/profile")
    def show_profile():
        return ""

    rule = next(r for r in app.url_map.iter_rules() if r.rule == "/profile")
    assert rule.endpoint == "show_profile"
    assert app.view_functions["show_profile"] is show_profile
    assert url_for("show_profile") == "/profile"


def test_explicit_endpoint_overrides_the_function_name(app, req_ctx):
    @app.route("/profile", endpoint="profile_page")
    def show_profile():
        return ""

    assert "show_profile" not in app.view_functions
    assert url_for("profile_page") == "/profile"


def test_overwriting_an_endpoint_with_another_function_is_an_error(app):
    @app.route("/a", endpoint="shared")
    def first():
        return ""

    with pytest.raises(AssertionError, match="shared"):

        @app.route("/b", endpoint="shared")
        def second():
            return ""


def test_same_function_may_serve_several_rules(app, client):
    @app.route("/one")
    @app.route("/two")
    def both():
        return request.path

    assert client.get("/one").text == "/one"
    assert client.get("/two").text == "/two"


def test_methods_given_as_a_string_is_a_type_error(app):
    def view():
        return ""

    with pytest.raises(TypeError):
        app.add_url_rule("/x", view_func=view, methods="POST")


# -- converters ------------------------------------------------------------------------


def test_string_converter_is_the_default(app, client, kind):
    @app.route("/user/<name>")
    @variant(kind)
    def user(name):
        return f"{type(name).__name__}:{name}"

    assert client.get("/user/ada").text == "str:ada"
    assert client.get("/user/a/b").status_code == 404


def test_int_converter_passes_an_int(app, client, kind):
    @app.route("/post/<int:post_id>")
    @variant(kind)
    def post(post_id):
        return f"{type(post_id).__name__}:{post_id + 1}"

    assert client.get("/post/41").text == "int:42"
    assert client.get("/post/forty").status_code == 404
    assert client.get("/post/-1").status_code == 404


def test_float_converter_passes_a_float(app, client, kind):
    @app.route("/price/<float:amount>")
    @variant(kind)
    def price(amount):
        return f"{type(amount).__name__}:{amount * 2}"

    assert client.get("/price/1.25").text == "float:2.5"
    assert client.get("/price/3").status_code == 404


def test_path_converter_accepts_slashes(app, client, kind):
    @app.route("/files/<path:subpath>")
    @variant(kind)
    def files(subpath):
        return subpath

    assert client.get("/files/a/b/c.txt").text == "a/b/c.txt"


def test_uuid_converter_passes_a_uuid(app, client, kind):
    @app.route("/obj/<uuid:oid>")
    @variant(kind)
    def obj(oid):
        return f"{type(oid).__name__}:{oid.hex}"

    value = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert client.get(f"/obj/{value}").text == f"UUID:{value.hex}"
    assert client.get("/obj/not-a-uuid").status_code == 404


def test_any_converter_accepts_only_the_listed_values(app, client, kind):
    @app.route("/color/<any(red, blue):color>")
    @variant(kind)
    def color(color):
        return color

    assert client.get("/color/red").text == "red"
    assert client.get("/color/blue").text == "blue"
    assert client.get("/color/green").status_code == 404


def test_builtin_converters_build_urls(app, req_ctx):
    @app.route("/all/<int:i>/<float:f>/<uuid:u>/<any(x, y):a>/<path:p>")
    def everything(i, f, u, a, p):
        return ""

    value = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert (
        url_for("everything", i=3, f=1.5, u=value, a="y", p="d/e")
        == f"/all/3/1.5/{value}/y/d/e"
    )


class _ListConverter(BaseConverter):
    """``a,b,c`` in the URL, a list in the view."""

    def to_python(self, value):
        return value.split(",")

    def to_url(self, value):
        to_url = super().to_url
        return ",".join(to_url(item) for item in value)


def test_custom_converter_converts_both_ways(app, client, kind):
    app.url_map.converters["list"] = _ListConverter

    @app.route("/tags/<list:tags>")
    @variant(kind)
    def tags(tags):
        return {"tags": tags, "url": url_for("tags", tags=[*tags, "extra"])}

    response = client.get("/tags/red,green")
    assert response.status_code == 200
    assert response.get_json() == {
        "tags": ["red", "green"],
        "url": "/tags/red,green,extra",
    }


# -- automatic HEAD and OPTIONS, 405, 404 ---------------------------------------------


def test_head_is_answered_with_the_get_headers_and_no_body(app, client, kind):
    @app.route("/page")
    @variant(kind)
    def page():
        return Response("some body", headers={"X-Custom": "yes"})

    get = client.get("/page")
    head = client.head("/page")
    assert head.status_code == 200
    assert head.data == b""
    assert head.headers["Content-Length"] == "9"
    assert head.headers["X-Custom"] == "yes"
    assert sorted(head.headers.items()) == sorted(get.headers.items())


def test_options_is_answered_automatically_with_allow(app, client, kind):
    called = []

    @app.route("/res", methods=["GET", "POST"])
    @variant(kind)
    def res():
        called.append(request.method)
        return "view"

    response = client.options("/res")
    assert response.status_code == 200
    assert response.data == b""
    assert _allow(response) == {"GET", "HEAD", "POST", "OPTIONS"}
    assert called == []


def test_options_allow_lists_methods_of_every_rule_for_the_url(app, client):
    @app.get("/res")
    def read():
        return ""

    @app.delete("/res")
    def remove():
        return ""

    assert _allow(client.options("/res")) == {"GET", "HEAD", "DELETE", "OPTIONS"}


def test_provide_automatic_options_false_leaves_options_unanswered(app, client):
    def view():
        return "x"

    app.add_url_rule("/x", view_func=view, provide_automatic_options=False)
    response = client.options("/x")
    assert response.status_code == 405
    assert _allow(response) == {"GET", "HEAD"}


def test_options_listed_in_methods_goes_to_the_view(app, client, kind):
    @app.route("/x", methods=["GET", "OPTIONS"])
    @variant(kind)
    def view():
        return f"view saw {request.method}"

    response = client.options("/x")
    assert response.status_code == 200
    assert response.text == "view saw OPTIONS"


def test_provide_automatic_options_config_false_disables_it(app, client):
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False

    @app.route("/x")
    def view():
        return "x"

    assert client.options("/x").status_code == 405
    assert client.get("/x").text == "x"


def test_view_function_attributes_set_methods_and_options(app, client, kind):
    @variant(kind)
    def view():
        return request.method

    view.methods = ["GET", "POST"]
    view.required_methods = ["PUT"]
    app.add_url_rule("/a", view_func=view)

    assert client.post("/a").text == "POST"
    assert client.put("/a").text == "PUT"
    assert client.delete("/a").status_code == 405
    assert _allow(client.options("/a")) == {"GET", "HEAD", "POST", "PUT", "OPTIONS"}


def test_view_function_attribute_disables_automatic_options(app, client, kind):
    @variant(kind)
    def view():
        return "x"

    view.provide_automatic_options = False
    app.add_url_rule("/b", view_func=view)

    response = client.options("/b")
    assert response.status_code == 405
    assert _allow(response) == {"GET", "HEAD"}


def test_wrong_method_is_405_with_allow(app, client, kind):
    @app.route("/only-get")
    @variant(kind)
    def only_get():
        return "x"

    response = client.post("/only-get")
    assert response.status_code == 405
    assert _allow(response) == {"GET", "HEAD", "OPTIONS"}


def test_unknown_url_is_404(app, client):
    @app.route("/")
    def index():
        return "x"

    response = client.get("/nowhere")
    assert response.status_code == 404
    assert "Not Found" in response.text


# -- trailing slashes ------------------------------------------------------------------


def test_missing_trailing_slash_redirects_with_308(app, client, kind):
    @app.route("/folder/")
    @variant(kind)
    def folder():
        return "folder"

    response = client.get("/folder")
    assert response.status_code == 308
    assert response.headers["Location"] == "http://localhost/folder/"
    assert client.get("/folder/").text == "folder"


def test_trailing_slash_redirect_keeps_the_query_string(app, client):
    @app.route("/folder/")
    def folder():
        return "folder"

    response = client.get("/folder?page=2")
    assert response.status_code == 308
    assert response.headers["Location"] == "http://localhost/folder/?page=2"


def test_strict_slashes_false_serves_both_urls(app, client, kind):
    @app.route("/lax/", strict_slashes=False)
    @variant(kind)
    def lax():
        return "lax"

    assert client.get("/lax").status_code == 200
    assert client.get("/lax").text == "lax"
    assert client.get("/lax/").text == "lax"


def test_rule_without_slash_does_not_match_with_one(app, client):
    @app.route("/file")
    def file():
        return "file"

    assert client.get("/file/").status_code == 404


def test_debug_post_to_slash_rule_gets_a_308_that_keeps_the_body(app, client):
    """Werkzeug redirects with 308, which keeps the method and body: no error, as in
    Flask 3.1 (the debug check only fires for 301/302 routing redirects)."""
    app.debug = True

    @app.route("/form/", methods=["POST"])
    def form():
        return "posted"

    response = client.post("/form", data={"a": "b"})
    assert response.status_code == 308
    assert response.headers["Location"] == "http://localhost/form/"


def test_debug_post_with_a_body_dropping_redirect_raises_an_explained_error(
    app, client, monkeypatch
):
    """With a routing redirect that browsers follow with GET (301), a POST in debug mode
    raises an AssertionError explaining it; TESTING propagates it to the client."""
    monkeypatch.setattr(RequestRedirect, "code", 301)
    app.debug = True

    @app.route("/form/", methods=["POST"])
    def form():
        return "posted"

    with pytest.raises(AssertionError) as info:
        client.post("/form", data={"a": "b"})
    message = str(info.value)
    assert "'http://localhost/form'" in message
    assert "'http://localhost/form/'" in message
    assert "debug mode" in message


def test_no_debug_post_with_301_redirect_is_just_a_redirect(app, client, monkeypatch):
    monkeypatch.setattr(RequestRedirect, "code", 301)

    @app.route("/form/", methods=["POST"])
    def form():
        return "posted"

    response = client.post("/form", data={"a": "b"})
    assert response.status_code == 301
    assert response.headers["Location"] == "http://localhost/form/"


# -- url_for ---------------------------------------------------------------------------


@pytest.fixture
def user_app(app):
    @app.route("/")
    def index():
        return ""

    @app.route("/user/<int:user_id>")
    def user(user_id):
        return ""

    return app


def test_url_for_in_a_request_is_relative(user_app):
    with user_app.test_request_context():
        assert url_for("index") == "/"
        assert url_for("user", user_id=3) == "/user/3"


def test_url_for_external_gives_the_full_url(user_app):
    with user_app.test_request_context():
        assert url_for("user", user_id=3, _external=True) == "http://localhost/user/3"


def test_url_for_uses_the_request_host_and_script_root(user_app):
    with user_app.test_request_context("/", base_url="https://shop.test:8443/root"):
        assert url_for("user", user_id=1) == "/root/user/1"
        assert (
            url_for("user", user_id=1, _external=True)
            == "https://shop.test:8443/root/user/1"
        )


def test_url_for_scheme_with_external(user_app):
    with user_app.test_request_context():
        assert (
            url_for("user", user_id=3, _scheme="https", _external=True)
            == "https://localhost/user/3"
        )


def test_url_for_scheme_alone_in_a_request_makes_the_url_external(user_app):
    with user_app.test_request_context():
        assert url_for("user", user_id=3, _scheme="https") == "https://localhost/user/3"


def test_url_for_scheme_with_external_false_is_a_value_error(user_app):
    with (
        user_app.test_request_context(),
        pytest.raises(ValueError, match="_external"),
    ):
        url_for("index", _scheme="https", _external=False)


def test_url_for_scheme_with_external_false_in_app_context_is_a_value_error(
    user_app,
):
    user_app.config["SERVER_NAME"] = "example.test"
    with user_app.app_context(), pytest.raises(ValueError, match="_external"):
        url_for("index", _scheme="https", _external=False)


def test_url_for_anchor_is_quoted(user_app):
    with user_app.test_request_context():
        assert url_for("index", _anchor="a b&c") == "/#a%20b&c"
        assert url_for("user", user_id=1, _anchor="x/ü") == "/user/1#x/%C3%BC"


def test_url_for_method_picks_the_rule_for_that_method(app, req_ctx):
    def items():
        return ""

    app.add_url_rule("/items", "items", items, methods=["GET"])
    app.add_url_rule("/items/new", "items", items, methods=["POST"])

    assert url_for("items") == "/items"
    assert url_for("items", _method="GET") == "/items"
    assert url_for("items", _method="POST") == "/items/new"


def test_url_for_extra_values_become_the_query_string(user_app):
    with user_app.test_request_context():
        assert url_for("user", user_id=3, page=2) == "/user/3?page=2"
        assert url_for("index", q="a b", tag=["x", "y"]) == "/?q=a+b&tag=x&tag=y"


def test_url_for_inside_a_view(app, client, kind):
    @app.route("/where/<name>")
    @variant(kind)
    def where(name):
        return url_for("where", name=name.upper(), _external=True)

    assert client.get("/where/abc").text == "http://localhost/where/ABC"


def test_url_for_in_app_context_uses_server_name_root_and_scheme(user_app):
    user_app.config.update(
        SERVER_NAME="example.test:8080",
        APPLICATION_ROOT="/base",
        PREFERRED_URL_SCHEME="https",
    )
    with user_app.app_context():
        assert url_for("user", user_id=5) == "https://example.test:8080/base/user/5"
        assert url_for("index") == "https://example.test:8080/base/"
        assert url_for("user", user_id=5, _external=False) == "/base/user/5"
        assert url_for("index", _scheme="http") == "http://example.test:8080/base/"


def test_app_url_for_without_any_context_uses_server_name(user_app):
    user_app.config["SERVER_NAME"] = "example.test"
    assert user_app.url_for("user", user_id=1) == "http://example.test/user/1"


def test_url_for_in_app_context_without_server_name_is_a_runtime_error(user_app):
    with user_app.app_context(), pytest.raises(RuntimeError, match="SERVER_NAME"):
        url_for("index")


def test_app_url_for_without_context_or_server_name_is_a_runtime_error(user_app):
    with pytest.raises(RuntimeError, match="SERVER_NAME"):
        user_app.url_for("index")


def test_url_for_outside_any_context_is_a_runtime_error():
    with pytest.raises(RuntimeError):
        url_for("index")


def test_url_for_unknown_endpoint_is_a_build_error(user_app):
    with user_app.test_request_context(), pytest.raises(BuildError):
        url_for("does_not_exist")


def test_url_for_missing_value_is_a_build_error(user_app):
    with user_app.test_request_context(), pytest.raises(BuildError):
        url_for("user")


def test_url_build_error_handler_provides_a_fallback(user_app):
    seen = []

    def fallback(error, endpoint, values):
        seen.append((type(error), endpoint, values.get("x"), values.get("_anchor")))
        return f"/fallback/{endpoint}"

    user_app.url_build_error_handlers.append(fallback)
    with user_app.test_request_context():
        assert url_for("nowhere", x=1, _anchor="top") == "/fallback/nowhere"
        assert url_for("index") == "/"
    assert seen == [(BuildError, "nowhere", 1, "top")]


def test_url_build_error_handler_returning_none_lets_the_error_raise(user_app):
    user_app.url_build_error_handlers.append(lambda error, endpoint, values: None)
    with user_app.test_request_context(), pytest.raises(BuildError):
        url_for("nowhere")


# -- URL processors --------------------------------------------------------------------


def test_url_defaults_fill_values_when_building(app, req_ctx):
    """``url_defaults`` functions run while a URL is built, inside ``url_for``, which
    is sync: they are sync-only."""

    @app.url_defaults
    def add_lang(endpoint, values):
        if app.url_map.is_endpoint_expecting(endpoint, "lang"):
            values.setdefault("lang", "fr")

    @app.route("/<lang>/about")
    def about():
        return ""

    @app.route("/plain")
    def plain():
        return ""

    assert url_for("about") == "/fr/about"
    assert url_for("about", lang="de") == "/de/about"
    assert url_for("plain") == "/plain"


def test_url_value_preprocessor_pops_into_g_before_before_request(app, client, kind):
    order = []

    @app.url_value_preprocessor
    @variant(kind)
    def pull_lang(endpoint, values):
        order.append(("preprocessor", endpoint, dict(values)))
        g.lang = values.pop("lang")

    @app.before_request
    @variant(kind)
    def before():
        order.append(("before", g.lang, dict(request.view_args)))

    @app.url_defaults
    def push_lang(endpoint, values):
        if "lang" in g and app.url_map.is_endpoint_expecting(endpoint, "lang"):
            values.setdefault("lang", g.lang)

    @app.route("/<lang>/page/<int:n>")
    @variant(kind)
    def page(n):
        return f"{g.lang} {n} {url_for('page', n=n + 1)}"

    response = client.get("/de/page/1")
    assert response.status_code == 200
    assert response.text == "de 1 /de/page/2"
    assert order == [
        ("preprocessor", "page", {"lang": "de", "n": 1}),
        ("before", "de", {"n": 1}),
    ]


def test_url_value_preprocessor_gets_none_values_for_an_unrouted_request(
    app, client, kind
):
    seen = []

    @app.url_value_preprocessor
    @variant(kind)
    def pre(endpoint, values):
        seen.append((endpoint, values))

    assert client.get("/missing").status_code == 404
    assert seen == [(None, None)]


# -- redirect and abort ----------------------------------------------------------------


def test_redirect_defaults_to_302(app, client, kind):
    @app.route("/old")
    @variant(kind)
    def old():
        return redirect("/new")

    response = client.get("/old")
    assert response.status_code == 302
    assert response.headers["Location"] == "/new"


def test_redirect_with_a_custom_code(app, client, kind):
    @app.route("/old")
    @variant(kind)
    def old():
        return redirect(url_for("new", x=1), code=301)

    @app.route("/new")
    def new():
        return "new"

    response = client.get("/old")
    assert response.status_code == 301
    assert response.headers["Location"] == "/new?x=1"


def test_redirect_outside_a_context_builds_a_response():
    response = redirect("https://example.test/", code=307)
    assert response.status_code == 307
    assert response.headers["Location"] == "https://example.test/"


def test_redirect_uses_the_app_response_class(app, req_ctx):
    class MyResponse(Response):
        pass

    app.response_class = MyResponse
    assert type(redirect("/x")) is MyResponse


def test_abort_404(app, client, kind):
    @app.route("/gone")
    @variant(kind)
    def gone():
        abort(404)

    response = client.get("/gone")
    assert response.status_code == 404
    assert "Not Found" in response.text


def test_abort_with_a_response_sends_it_as_is(app, client, kind):
    @app.route("/teapot")
    @variant(kind)
    def teapot():
        abort(Response("short and stout", status=418, headers={"X-Pot": "1"}))

    response = client.get("/teapot")
    assert response.status_code == 418
    assert response.text == "short and stout"
    assert response.headers["X-Pot"] == "1"


def test_abort_description_is_shown_in_the_body(app, client, kind):
    @app.route("/secret")
    @variant(kind)
    def secret():
        abort(403, description="Members only, sorry.")

    response = client.get("/secret")
    assert response.status_code == 403
    assert "<p>Members only, sorry.</p>" in response.text


def test_abort_outside_a_context_raises_the_http_error():
    with pytest.raises(HTTPException) as info:
        abort(410)
    assert info.value.code == 410


def test_abort_uses_the_app_aborter(app, req_ctx):
    class Custom(HTTPException):
        code = 499
        description = "custom"

    app.aborter.mapping[499] = Custom
    with pytest.raises(Custom):
        abort(499)


# -- hosts -----------------------------------------------------------------------------


def test_server_name_does_not_restrict_the_request_host(app, client, kind):
    app.config["SERVER_NAME"] = "example.test"

    @app.route("/")
    @variant(kind)
    def index():
        return f"{request.host} {url_for('index', _external=True)}"

    response = client.get("http://other.test/")
    assert response.status_code == 200
    assert response.text == "other.test http://example.test/"
    assert client.get("http://example.test/").text == (
        "example.test http://example.test/"
    )


def test_subdomain_matching_routes_by_subdomain(app, client, kind):
    app.subdomain_matching = True
    app.config["SERVER_NAME"] = "example.test"

    @app.route("/")
    @variant(kind)
    def home():
        return "home"

    @app.route("/", subdomain="api")
    @variant(kind)
    def api_home():
        return "api"

    @app.route("/", subdomain="<user>")
    @variant(kind)
    def user_home(user):
        return f"user {user}"

    assert client.get("http://example.test/").text == "home"
    assert client.get("http://api.example.test/").text == "api"
    assert client.get("http://bob.example.test/").text == "user bob"
    assert client.get("http://example.test/static/none.css").status_code == 404

    with app.app_context():
        assert url_for("user_home", user="amy") == "http://amy.example.test/"
        assert url_for("api_home") == "http://api.example.test/"
        assert url_for("home") == "http://example.test/"


def test_without_subdomain_matching_subdomain_rules_do_not_match(app, client):
    app.config["SERVER_NAME"] = "example.test"

    @app.route("/", subdomain="api")
    def api_home():
        return "api"

    assert client.get("http://api.example.test/").status_code == 404


def test_host_matching_routes_by_host(kind):
    app = Flask("hosts", host_matching=True, static_host="static.test")
    app.config["TESTING"] = True

    @app.route("/", host="a.test")
    @variant(kind)
    def site_a():
        return "a"

    @app.route("/", host="<tenant>.b.test")
    @variant(kind)
    def site_b(tenant):
        return f"b {tenant} {url_for('static', filename='x.css')}"

    client = app.test_client()
    assert client.get("http://a.test/").text == "a"
    assert client.get("http://acme.b.test/").text == (
        "b acme http://static.test/static/x.css"
    )
    assert client.get("http://c.test/").status_code == 404


def test_host_matching_with_a_static_folder_requires_static_host():
    with pytest.raises(ValueError, match="static_host"):
        Flask("hosts", host_matching=True)


def test_static_host_without_host_matching_is_an_error():
    with pytest.raises(ValueError, match="static_host"):
        Flask("hosts", static_host="static.test")


def test_host_matching_without_static_folder_needs_no_static_host():
    app = Flask("hosts", host_matching=True, static_folder=None)
    assert app.url_map.host_matching is True
    assert "static" not in {r.endpoint for r in app.url_map.iter_rules()}


def test_untrusted_host_is_400_and_trusted_host_is_200(app, client, kind):
    app.config["TRUSTED_HOSTS"] = ["good.test", ".trusted.test"]
    calls = []

    @app.route("/")
    @variant(kind)
    def index():
        calls.append(request.host)
        return "ok"

    assert client.get("http://evil.test/").status_code == 400
    assert calls == []
    response = client.get("http://good.test/")
    assert response.status_code == 200
    assert response.text == "ok"
    assert client.get("http://api.trusted.test/").status_code == 200
    assert calls == ["good.test", "api.trusted.test"]


# -- static files ----------------------------------------------------------------------


def test_static_route_exists_by_default(app, req_ctx):
    assert url_for("static", filename="x.css") == "/static/x.css"
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == "static")
    assert rule.rule == "/static/<path:filename>"


def test_missing_static_file_is_404(app, client):
    assert client.get("/static/does-not-exist.css").status_code == 404


def test_static_file_is_served(tmp_path):
    folder = tmp_path / "assets"
    folder.mkdir()
    (folder / "site.css").write_text("body { color: red; }")
    app = Flask("static_app", static_folder=folder, static_url_path="/s")
    client = app.test_client()

    response = client.get("/s/site.css")
    try:
        assert response.status_code == 200
        assert response.data == b"body { color: red; }"
        assert response.mimetype == "text/css"
    finally:
        response.close()
    with app.test_request_context():
        assert url_for("static", filename="site.css") == "/s/site.css"


def test_static_file_outside_the_folder_is_404(tmp_path):
    folder = tmp_path / "static"
    folder.mkdir()
    (tmp_path / "secret.txt").write_text("secret")
    app = Flask("static_app", root_path=str(tmp_path))
    client = app.test_client()
    assert client.get("/static/../secret.txt").status_code == 404
    assert client.get("/static/%2e%2e/secret.txt").status_code == 404


def test_no_static_route_without_static_folder():
    app = Flask("no_static", static_folder=None)
    assert "static" not in {r.endpoint for r in app.url_map.iter_rules()}
    assert app.test_client().get("/static/x.css").status_code == 404
    with app.test_request_context(), pytest.raises(BuildError):
        url_for("static", filename="x.css")


# -- request routing attributes --------------------------------------------------------


def test_request_knows_its_endpoint_rule_and_view_args(app, client, kind):
    @app.route("/thing/<int:n>", endpoint="thing_endpoint")
    @variant(kind)
    def thing(n):
        return {
            "endpoint": request.endpoint,
            "rule": request.url_rule.rule,
            "view_args": request.view_args,
            "methods": sorted(request.url_rule.methods),
        }

    assert client.get("/thing/7").get_json() == {
        "endpoint": "thing_endpoint",
        "rule": "/thing/<int:n>",
        "view_args": {"n": 7},
        "methods": ["GET", "HEAD", "OPTIONS"],
    }


def test_request_routing_attributes_are_empty_for_a_404(app, client, kind):
    seen = []

    @app.errorhandler(404)
    @variant(kind)
    def not_found(e):
        seen.append((request.endpoint, request.url_rule, request.view_args))
        return "custom 404", 404

    response = client.get("/nothing")
    assert response.status_code == 404
    assert response.text == "custom 404"
    assert seen == [(None, None, None)]


def test_test_request_context_matches_the_rule(app):
    @app.route("/p/<name>")
    def p(name):
        return ""

    with app.test_request_context("/p/zed"):
        assert request.endpoint == "p"
        assert request.view_args == {"name": "zed"}


# -- the fast URL adapter path ---------------------------------------------------------


def _environ(
    path_info: str | None = "/",
    *,
    host: str | None = "localhost",
    script_name: str | None = "",
    query: str | None = None,
    scheme: str = "http",
    method: str = "GET",
    **extra: str,
) -> dict[str, object]:
    """A raw WSGI environ; ``None`` leaves a key out. Paths are WSGI strings (UTF-8
    bytes decoded as latin-1)."""
    environ: dict[str, object] = {
        "REQUEST_METHOD": method,
        "SERVER_NAME": "server.internal",
        "SERVER_PORT": "443" if scheme == "https" else "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": scheme,
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": io.StringIO(),
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for key, value in (
        ("PATH_INFO", path_info),
        ("SCRIPT_NAME", script_name),
        ("HTTP_HOST", host),
        ("QUERY_STRING", query),
    ):
        if value is not None:
            environ[key] = value
    environ.update(extra)
    return environ


def _wsgi(text: str) -> str:
    return text.encode().decode("latin-1")


_WS = {"HTTP_UPGRADE": "websocket", "HTTP_CONNECTION": "Upgrade"}

_ENVIRONS = [
    pytest.param(_environ(), id="plain"),
    pytest.param(_environ("/user/ada"), id="user"),
    pytest.param(_environ(host="example.test:80"), id="http-default-port"),
    pytest.param(_environ(host="example.test:8080"), id="http-other-port"),
    pytest.param(
        _environ(host="example.test:443", scheme="https"), id="https-default-port"
    ),
    pytest.param(_environ(host="example.test:80", scheme="https"), id="https-port-80"),
    pytest.param(_environ(host="example.test", scheme="https"), id="https"),
    pytest.param(_environ(host="Example.TEST:8080"), id="uppercase-host"),
    pytest.param(_environ(host=None), id="no-host-header"),
    pytest.param(_environ(host=None, SERVER_PORT="8000"), id="no-host-other-port"),
    pytest.param(_environ(host="[::1]:8080"), id="ipv6-host"),
    pytest.param(_environ(host=_wsgi("münchen.test")), id="idna-host-utf8"),
    pytest.param(_environ(host="m\xfcnchen.test:8080"), id="idna-host-latin1"),
    pytest.param(_environ(host="xn--mnchen-3ya.test"), id="idna-host-encoded"),
    pytest.param(_environ(host="a" * 64 + ".test"), id="idna-label-too-long"),
    pytest.param(_environ(host="a..test"), id="idna-empty-label"),
    pytest.param(_environ("/user/ada", script_name="/app"), id="script-name"),
    pytest.param(_environ("/", script_name="/app/"), id="script-name-slash"),
    pytest.param(_environ("/folder", script_name="/app"), id="script-name-redirect"),
    pytest.param(_environ("", script_name="/app"), id="script-name-empty-path"),
    pytest.param(_environ("", script_name=""), id="empty-path"),
    pytest.param(_environ(None, script_name=None), id="no-path-keys"),
    pytest.param(
        _environ("/user/x", script_name=_wsgi("/äpp")), id="script-name-non-ascii"
    ),
    pytest.param(_environ(_wsgi("/ünï/ß/x")), id="non-ascii-path"),
    pytest.param(_environ(_wsgi("/user/日本")), id="non-ascii-value"),
    pytest.param(_environ("/user/\xff"), id="invalid-utf8-path"),
    pytest.param(_environ("/user/a b"), id="space-in-path"),
    pytest.param(_environ("/nowhere"), id="not-found"),
    pytest.param(_environ("/folder"), id="slash-redirect"),
    pytest.param(_environ("/folder", query="a=1&b=%C3%BC"), id="redirect-query"),
    pytest.param(_environ("/user/ada", query=""), id="empty-query"),
    pytest.param(_environ("/user/ada", query=_wsgi("q=ü")), id="non-ascii-query"),
    pytest.param(_environ("/", method="POST"), id="post-405"),
    pytest.param(_environ("/submit", method="POST"), id="post"),
    pytest.param(_environ("/submit", method="OPTIONS"), id="options"),
    pytest.param(_environ("/submit", method="HEAD"), id="head"),
    pytest.param(_environ("/ws", **_WS), id="websocket"),
    pytest.param(_environ("/ws", scheme="https", **_WS), id="websocket-secure"),
    pytest.param(_environ("/", **_WS), id="websocket-to-http-rule"),
    pytest.param(_environ("/ws"), id="http-to-websocket-rule"),
    pytest.param(
        _environ(
            "/ws", HTTP_UPGRADE="WebSocket", HTTP_CONNECTION="keep-alive, Upgrade"
        ),
        id="websocket-mixed-case",
    ),
    pytest.param(
        _environ("/ws", HTTP_UPGRADE="websocket"), id="upgrade-without-connection"
    ),
    pytest.param(
        _environ("/", HTTP_UPGRADE="h2c", HTTP_CONNECTION="Upgrade"), id="upgrade-h2c"
    ),
]


def _adapter_app() -> Flask:
    app = Flask("adapters", static_folder=None)

    def view(**kwargs):
        return ""

    app.add_url_rule("/", "index", view)
    app.add_url_rule("/user/<name>", "user", view)
    app.add_url_rule("/folder/", "folder", view)
    app.add_url_rule("/ünï/<path:rest>", "unicode", view)
    app.add_url_rule("/submit", "submit", view, methods=["POST"])
    app.add_url_rule("/ws", "ws", view, websocket=True)
    return app


def _bind(bind):
    try:
        return bind(), None
    except BadHost as e:
        return None, type(e)


def _match(adapter):
    try:
        rule, args = adapter.match(return_rule=True)
    except (HTTPException, RoutingException) as e:
        return (
            type(e),
            getattr(e, "new_url", None),
            sorted(getattr(e, "valid_methods", None) or ()),
        )
    return rule.endpoint, args


def _build(adapter):
    try:
        return adapter.build("user", {"name": "ü x", "q": "1"}, force_external=True)
    except BuildError as e:
        return type(e)


@pytest.mark.parametrize("environ", _ENVIRONS)
def test_fast_url_adapter_equals_bind_to_environ(environ):
    """Without SERVER_NAME and host/subdomain matching, ctxflask binds the map to the
    request with its own shortcut; it must give the adapter werkzeug would."""
    app = _adapter_app()
    request_obj = app.request_class(dict(environ))
    fast, fast_error = _bind(lambda: bind_to_request(app.url_map, request_obj))
    ref, ref_error = _bind(
        lambda: app.url_map.bind_to_environ(
            dict(environ), server_name=None, subdomain=""
        )
    )
    assert fast_error == ref_error
    if ref is None:
        return
    for attr in (
        "server_name",
        "script_name",
        "subdomain",
        "url_scheme",
        "path_info",
        "default_method",
        "query_args",
    ):
        assert getattr(fast, attr) == getattr(ref, attr), attr
    assert _match(fast) == _match(ref)
    assert _build(fast) == _build(ref)


def test_empty_path_info_under_a_script_name_redirects_to_the_slash_url(app):
    """WSGI-specific (an ASGI path is never empty): a request for ``/app`` of an app
    mounted at ``/app`` arrives with ``PATH_INFO=""``; Flask redirects it to ``/app/``
    like any missing trailing slash."""

    @app.route("/")
    def index():
        return "index"

    environ = _environ("", host="localhost", script_name="/app")
    body, status, headers = run_wsgi_app(app, environ)
    try:
        assert status == "308 PERMANENT REDIRECT"
        assert headers["Location"] == "http://localhost/app/"
    finally:
        getattr(body, "close", lambda: None)()
    body, status, headers = run_wsgi_app(app, _environ("/", script_name="/app"))
    try:
        assert status == "200 OK"
        assert b"".join(body) == b"index"
    finally:
        getattr(body, "close", lambda: None)()


def test_plain_app_uses_the_fast_url_adapter(app, client, monkeypatch):
    """The shortcut is what a plain app's requests are bound with (and the comparison
    above therefore covers real requests)."""
    calls = []
    real = ctxflask.core.routing.bind_to_request

    def spy(url_map, req, *server_name):
        calls.append(req.path)
        return real(url_map, req, *server_name)

    monkeypatch.setattr(ctxflask.core.routing, "bind_to_request", spy)

    @app.route("/here")
    def here():
        return "here"

    assert client.get("/here").text == "here"
    assert calls == ["/here"]


@pytest.mark.parametrize(
    "setup",
    [
        pytest.param({"SERVER_NAME": "example.test"}, id="server-name"),
        pytest.param({"subdomain_matching": True}, id="subdomain-matching"),
        pytest.param({"host_matching": True}, id="host-matching"),
    ],
)
def test_fast_url_adapter_is_not_used_when_hosts_matter(monkeypatch, setup):
    calls = []
    monkeypatch.setattr(
        ctxflask.core.routing, "bind_to_request", lambda *a: calls.append(a) or None
    )
    app = Flask(
        "hosts",
        static_folder=None,
        subdomain_matching=setup.get("subdomain_matching", False),
        host_matching=setup.get("host_matching", False),
    )
    app.config["SERVER_NAME"] = setup.get("SERVER_NAME")
    with app.test_request_context("/"):
        pass
    assert calls == []
