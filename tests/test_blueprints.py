"""Blueprints: routes, nesting, hooks, error handlers, static files and registration."""

from __future__ import annotations

import typing as t

import pytest
from jinja2 import FileSystemLoader

import ctxflask
from ctxflask import abort
from ctxflask import Blueprint
from ctxflask import g
from ctxflask import render_template_string
from ctxflask import request
from ctxflask import url_for
from ctxflask.blueprints import BlueprintSetupState
from tests.support import variant


def test_blueprint_is_exported_at_top_level() -> None:
    assert ctxflask.Blueprint is Blueprint
    assert "Blueprint" in ctxflask.__all__


# -- routes and endpoints ----------------------------------------------------------------


def test_blueprint_route_gets_url_prefix_and_dotted_endpoint(app, client, kind):
    bp = Blueprint("shop", __name__, url_prefix="/shop")

    @bp.route("/item/<int:item_id>")
    @variant(kind)
    def item(item_id):
        return f"{request.endpoint} {item_id} {url_for('shop.item', item_id=3)}"

    app.register_blueprint(bp)

    response = client.get("/shop/item/7")
    assert response.status_code == 200
    assert response.text == "shop.item 7 /shop/item/3"
    assert client.get("/item/7").status_code == 404


def test_url_prefix_given_at_registration_overrides_the_blueprint_s(app, client):
    bp = Blueprint("shop", __name__, url_prefix="/shop")

    @bp.route("/")
    def index():
        return "index"

    app.register_blueprint(bp, url_prefix="/store")

    assert client.get("/store/").text == "index"
    assert client.get("/shop/").status_code == 404


def test_empty_rule_maps_to_the_url_prefix_itself(app, client):
    bp = Blueprint("shop", __name__, url_prefix="/shop")
    bp.add_url_rule("", "root", lambda: "root")
    app.register_blueprint(bp)

    assert client.get("/shop").text == "root"


def test_request_blueprint_is_none_for_app_views(app, client, kind):
    @app.route("/")
    @variant(kind)
    def index():
        return f"{request.blueprint} {request.blueprints}"

    assert client.get("/").text == "None []"


def test_blueprint_endpoint_decorator_names_an_app_endpoint_as_given(app, client):
    """As in Flask, ``bp.endpoint`` is not prefixed: it gives the view of a rule added on
    the app without one."""
    app.add_url_rule("/late", endpoint="late")
    bp = Blueprint("bp", __name__, url_prefix="/bp")

    @bp.endpoint("late")
    def late():
        return f"{request.endpoint} {request.blueprint}"

    app.register_blueprint(bp)

    assert client.get("/late").text == "late None"
    assert client.get("/bp/late").status_code == 404


# -- nesting ---------------------------------------------------------------------------


def test_nested_blueprints_combine_url_prefixes_and_names(app, client, kind):
    parent = Blueprint("parent", __name__, url_prefix="/parent")
    child = Blueprint("child", __name__, url_prefix="/child")
    grandchild = Blueprint("grandchild", __name__, url_prefix="/gc")

    @grandchild.route("/leaf")
    @variant(kind)
    def leaf():
        return f"{request.endpoint}|{request.blueprint}|{','.join(request.blueprints)}"

    child.register_blueprint(grandchild)
    parent.register_blueprint(child)
    app.register_blueprint(parent)

    response = client.get("/parent/child/gc/leaf")
    assert response.text == (
        "parent.child.grandchild.leaf|parent.child.grandchild|"
        "parent.child.grandchild,parent.child,parent"
    )
    assert list(app.blueprints) == ["parent", "parent.child", "parent.child.grandchild"]
    assert list(app.iter_blueprints()) == [parent, child, grandchild]


def test_nested_url_prefix_given_at_nesting_overrides_the_child_s(app, client):
    parent = Blueprint("parent", __name__, url_prefix="/parent/")
    child = Blueprint("child", __name__, url_prefix="/ignored")

    @child.route("/x")
    def x():
        return "x"

    parent.register_blueprint(child, url_prefix="/kid")
    app.register_blueprint(parent)

    assert client.get("/parent/kid/x").text == "x"


def test_child_without_prefix_inherits_the_parent_s(app, client):
    parent = Blueprint("parent", __name__, url_prefix="/parent")
    child = Blueprint("child", __name__)

    @child.route("/x")
    def x():
        return request.endpoint

    parent.register_blueprint(child)
    app.register_blueprint(parent)

    assert client.get("/parent/x").text == "parent.child.x"


def test_nested_blueprint_subdomains_combine(app, client, kind):
    app.config["SERVER_NAME"] = "example.test"
    app.subdomain_matching = True
    parent = Blueprint("api", __name__, subdomain="api")
    child = Blueprint("v1", __name__, subdomain="v1")

    @child.route("/ping")
    @variant(kind)
    def ping():
        return f"{request.host} {url_for('.ping', _external=True)}"

    parent.register_blueprint(child)
    app.register_blueprint(parent)

    response = client.get("/ping", subdomain="v1.api")
    assert response.status_code == 200
    assert response.text == "v1.api.example.test http://v1.api.example.test/ping"
    assert client.get("/ping", subdomain="api").status_code == 404
    assert client.get("/ping").status_code == 404


def test_child_without_subdomain_inherits_the_parent_s(app, client):
    app.config["SERVER_NAME"] = "example.test"
    app.subdomain_matching = True
    parent = Blueprint("api", __name__, subdomain="api")
    child = Blueprint("v1", __name__)

    @child.route("/ping")
    def ping():
        return "pong"

    parent.register_blueprint(child)
    app.register_blueprint(parent)

    assert client.get("/ping", subdomain="api").text == "pong"


def test_relative_url_for_resolves_in_the_nested_blueprint(app, client, kind):
    parent = Blueprint("parent", __name__, url_prefix="/p")
    child = Blueprint("child", __name__, url_prefix="/c")

    @child.route("/a")
    @variant(kind)
    def a():
        return url_for(".b", n=1)

    @child.route("/b/<int:n>")
    def b(n):
        return str(n)

    @parent.route("/b/<int:n>")
    def parent_b(n):
        return str(n)

    @app.route("/top")
    @variant(kind)
    def top():
        return url_for(".top")

    parent.register_blueprint(child)
    app.register_blueprint(parent)

    assert client.get("/p/c/a").text == "/p/c/b/1"
    assert client.get("/top").text == "/top"


def test_blueprint_cannot_be_registered_on_itself():
    bp = Blueprint("bp", __name__)
    with pytest.raises(ValueError, match="on itself"):
        bp.register_blueprint(bp)


def test_same_child_nested_under_two_parents_gets_two_names(app, client):
    child = Blueprint("child", __name__)

    @child.route("/x")
    def x():
        return request.blueprint

    one = Blueprint("one", __name__, url_prefix="/one")
    two = Blueprint("two", __name__, url_prefix="/two")
    one.register_blueprint(child)
    two.register_blueprint(child)
    app.register_blueprint(one)
    app.register_blueprint(two)

    assert client.get("/one/x").text == "one.child"
    assert client.get("/two/x").text == "two.child"


# -- url defaults and url processors ----------------------------------------------------


def test_blueprint_url_defaults_fill_view_arguments(app, client, kind):
    bp = Blueprint("docs", __name__, url_prefix="/docs", url_defaults={"lang": "en"})

    @bp.route("/")
    @variant(kind)
    def page(lang):
        return lang

    app.register_blueprint(bp)
    app.register_blueprint(
        bp, name="docs_fr", url_prefix="/fr", url_defaults={"lang": "fr"}
    )

    assert client.get("/docs/").text == "en"
    assert client.get("/fr/").text == "fr"


def test_rule_defaults_add_to_the_blueprint_s(app, client):
    bp = Blueprint("bp", __name__, url_defaults={"a": "1"})

    @bp.route("/", defaults={"b": "2"})
    def index(a, b):
        return a + b

    app.register_blueprint(bp)

    assert client.get("/").text == "12"


def test_blueprint_url_value_preprocessor_runs_only_for_its_views(app, client, kind):
    bp = Blueprint("bp", __name__, url_prefix="/<lang>")

    @bp.url_value_preprocessor
    @variant(kind)
    def pull_lang(endpoint, values):
        g.lang = values.pop("lang")

    @bp.route("/hello")
    @variant(kind)
    def hello():
        return f"hello in {g.lang}"

    @app.route("/plain/<lang>")
    def plain(lang):
        return f"{lang} {'lang' in g}"

    app.register_blueprint(bp)

    assert client.get("/de/hello").text == "hello in de"
    assert client.get("/plain/it").text == "it False"


def test_blueprint_url_defaults_callback_fills_its_endpoints_only(app, client, kind):
    """``url_defaults`` callbacks run inside ``url_for``, which is sync: sync only, as in
    Flask; the view building the URLs has both kinds."""
    bp = Blueprint("bp", __name__, url_prefix="/<lang>")

    @bp.url_defaults
    def add_lang(endpoint, values):
        values.setdefault("lang", "en")

    @bp.route("/page")
    def page():
        return "page"

    @app.route("/other/<lang>")
    def other(lang):
        return lang

    @app.route("/links")
    @variant(kind)
    def links():
        try:
            url_for("other")
        except Exception as e:
            built_other = type(e).__name__
        else:
            built_other = "built"
        return f"{url_for('bp.page')} {built_other}"

    app.register_blueprint(bp)

    assert client.get("/links").text == "/en/page BuildError"


def test_app_url_processors_from_blueprint_apply_to_every_endpoint(app, client, kind):
    bp = Blueprint("bp", __name__)

    @bp.app_url_value_preprocessor
    @variant(kind)
    def pull(endpoint, values):
        if values and "tenant" in values:
            g.tenant = values.pop("tenant")

    @bp.app_url_defaults
    def push(endpoint, values):
        if "tenant" in g:
            values.setdefault("tenant", g.tenant)

    @app.route("/<tenant>/home")
    @variant(kind)
    def home():
        return f"{g.tenant} {url_for('home')}"

    app.register_blueprint(bp)

    assert client.get("/acme/home").text == "acme /acme/home"


# -- hooks -----------------------------------------------------------------------------


def _record_hooks(scaffold: t.Any, label: str, kind: str, log: list[str]) -> None:
    @scaffold.before_request
    @variant(kind)
    def before():
        log.append(f"before {label}")

    @scaffold.after_request
    @variant(kind)
    def after(response):
        log.append(f"after {label}")
        return response

    @scaffold.teardown_request
    @variant(kind)
    def teardown(exc):
        log.append(f"teardown {label}")


def test_hooks_of_app_and_nested_blueprints_run_in_flask_s_order(app, client, kind):
    """before_request: app, then outer to inner blueprint; after_request and teardown:
    inner blueprint to app."""
    log: list[str] = []
    parent = Blueprint("parent", __name__, url_prefix="/p")
    child = Blueprint("child", __name__, url_prefix="/c")
    _record_hooks(app, "app", kind, log)
    _record_hooks(parent, "parent", kind, log)
    _record_hooks(child, "child", kind, log)

    @child.route("/x")
    @variant(kind)
    def x():
        log.append("view")
        return "x"

    parent.register_blueprint(child)
    app.register_blueprint(parent)

    assert client.get("/p/c/x").text == "x"
    assert log == [
        "before app",
        "before parent",
        "before child",
        "view",
        "after child",
        "after parent",
        "after app",
        "teardown child",
        "teardown parent",
        "teardown app",
    ]


def test_blueprint_hooks_do_not_run_for_other_views(app, client, kind):
    log: list[str] = []
    bp = Blueprint("bp", __name__, url_prefix="/bp")
    other = Blueprint("other", __name__, url_prefix="/other")
    _record_hooks(bp, "bp", kind, log)

    @other.route("/")
    def other_index():
        return "other"

    @app.route("/")
    def index():
        return "app"

    app.register_blueprint(bp)
    app.register_blueprint(other)

    assert client.get("/").text == "app"
    assert client.get("/other/").text == "other"
    assert client.get("/missing").status_code == 404
    assert log == []


def test_blueprint_before_request_return_value_skips_view(app, client, kind):
    bp = Blueprint("bp", __name__)

    @bp.before_request
    @variant(kind)
    def gate():
        if request.args.get("deny"):
            return "denied", 403
        return None

    @bp.route("/")
    def index():
        return "allowed"

    app.register_blueprint(bp)

    assert client.get("/").text == "allowed"
    response = client.get("/?deny=1")
    assert response.status_code == 403
    assert response.text == "denied"


def test_blueprint_after_requests_run_in_reverse_registration_order(app, client, kind):
    bp = Blueprint("bp", __name__)
    for label in ("first", "second"):

        def after(response, label=label):
            response.headers.add("X-Order", label)
            return response

        bp.after_request(variant(kind)(after))

    @bp.route("/")
    def index():
        return "ok"

    app.register_blueprint(bp)

    assert client.get("/").headers.getlist("X-Order") == ["second", "first"]


def test_app_wide_hooks_from_blueprint_run_for_every_request(app, client, kind):
    log: list[str] = []
    bp = Blueprint("bp", __name__, url_prefix="/bp")

    @bp.before_app_request
    @variant(kind)
    def before():
        log.append(f"before {request.path}")

    @bp.after_app_request
    @variant(kind)
    def after(response):
        log.append(f"after {request.path}")
        response.headers["X-Seen"] = "yes"
        return response

    @bp.teardown_app_request
    @variant(kind)
    def teardown(exc):
        log.append(f"teardown {request.path}")

    @app.route("/app")
    def app_view():
        return "app"

    app.register_blueprint(bp)

    response = client.get("/app")
    assert response.headers["X-Seen"] == "yes"
    assert log == ["before /app", "after /app", "teardown /app"]


def test_app_wide_hooks_register_once_for_two_registrations(app, client):
    calls: list[str] = []
    bp = Blueprint("bp", __name__)

    @bp.before_app_request
    def before():
        calls.append("before")

    @bp.route("/")
    def index():
        return "ok"

    app.register_blueprint(bp, url_prefix="/one")
    app.register_blueprint(bp, name="again", url_prefix="/two")
    client.get("/one/")

    assert calls == ["before"]


def test_teardown_of_blueprint_gets_the_unhandled_error(app, client, kind):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    seen: list[t.Any] = []
    bp = Blueprint("bp", __name__)

    @bp.teardown_request
    @variant(kind)
    def teardown(exc):
        seen.append(exc)

    @bp.route("/boom")
    @variant(kind)
    def boom():
        raise KeyError("boom")

    app.register_blueprint(bp)

    assert client.get("/boom").status_code == 500
    assert len(seen) == 1
    assert isinstance(seen[0], KeyError)


# -- error handlers --------------------------------------------------------------------


def test_blueprint_error_handler_handles_errors_of_its_views_only(app, client, kind):
    bp = Blueprint("bp", __name__, url_prefix="/bp")

    @bp.errorhandler(ValueError)
    @variant(kind)
    def bp_handler(e):
        return f"bp handled {e}", 400

    @app.errorhandler(ValueError)
    @variant(kind)
    def app_handler(e):
        return f"app handled {e}", 500

    @bp.route("/fail")
    @variant(kind)
    def bp_fail():
        raise ValueError("in bp")

    @app.route("/fail")
    @variant(kind)
    def app_fail():
        raise ValueError("in app")

    app.register_blueprint(bp)

    response = client.get("/bp/fail")
    assert (response.status_code, response.text) == (400, "bp handled in bp")
    response = client.get("/fail")
    assert (response.status_code, response.text) == (500, "app handled in app")


def test_blueprint_404_handler_does_not_catch_routing_404(app, client, kind):
    """A 404 from routing matches no blueprint (no endpoint), as in Flask: only the app's
    handlers see it; the blueprint's handler sees 404s its own views raise."""
    bp = Blueprint("bp", __name__, url_prefix="/bp")

    @bp.errorhandler(404)
    @variant(kind)
    def bp_not_found(e):
        return "bp not found", 404

    @bp.route("/gone")
    @variant(kind)
    def gone():
        abort(404)

    app.register_blueprint(bp)

    assert client.get("/bp/gone").text == "bp not found"
    response = client.get("/bp/missing")
    assert response.status_code == 404
    assert response.text != "bp not found"
    assert "Not Found" in response.text


def test_app_errorhandler_from_blueprint_catches_routing_404(app, client, kind):
    bp = Blueprint("bp", __name__)

    @bp.app_errorhandler(404)
    @variant(kind)
    def not_found(e):
        return f"app-wide {e.code}", 404

    app.register_blueprint(bp)

    response = client.get("/nowhere")
    assert (response.status_code, response.text) == (404, "app-wide 404")


def test_nested_blueprint_errors_fall_back_to_parent_then_app(app, client, kind):
    parent = Blueprint("parent", __name__, url_prefix="/p")
    child = Blueprint("child", __name__, url_prefix="/c")

    @parent.errorhandler(LookupError)
    @variant(kind)
    def parent_handler(e):
        return f"parent {type(e).__name__}"

    @child.errorhandler(KeyError)
    @variant(kind)
    def child_handler(e):
        return "child KeyError"

    @app.errorhandler(ArithmeticError)
    @variant(kind)
    def app_handler(e):
        return f"app {type(e).__name__}"

    @child.route("/<what>")
    @variant(kind)
    def fail(what):
        raise {"key": KeyError, "index": IndexError, "zero": ZeroDivisionError}[what]()

    parent.register_blueprint(child)
    app.register_blueprint(parent)

    assert client.get("/p/c/key").text == "child KeyError"
    assert client.get("/p/c/index").text == "parent IndexError"
    assert client.get("/p/c/zero").text == "app ZeroDivisionError"


def test_blueprint_code_handler_wins_over_app_code_handler(app, client, kind):
    bp = Blueprint("bp", __name__)

    @app.errorhandler(403)
    @variant(kind)
    def app_forbidden(e):
        return "app forbidden", 403

    @bp.errorhandler(403)
    @variant(kind)
    def bp_forbidden(e):
        return "bp forbidden", 403

    @bp.route("/bp")
    def bp_view():
        abort(403)

    @app.route("/app")
    def app_view():
        abort(403)

    app.register_blueprint(bp)

    assert client.get("/bp").text == "bp forbidden"
    assert client.get("/app").text == "app forbidden"


# -- registering twice -----------------------------------------------------------------


def test_same_blueprint_registered_twice_under_different_names(app, client, kind):
    log: list[str] = []
    bp = Blueprint("bp", __name__)

    @bp.before_request
    @variant(kind)
    def before():
        log.append(request.blueprint)

    @bp.route("/where")
    @variant(kind)
    def where():
        return f"{request.endpoint} {url_for('.where')}"

    app.register_blueprint(bp, url_prefix="/a")
    app.register_blueprint(bp, url_prefix="/b", name="bp_b")

    assert client.get("/a/where").text == "bp.where /a/where"
    assert client.get("/b/where").text == "bp_b.where /b/where"
    assert log == ["bp", "bp_b"]
    assert app.blueprints == {"bp": bp, "bp_b": bp}


def test_registering_the_same_name_twice_raises(app):
    bp = Blueprint("bp", __name__)
    app.register_blueprint(bp)

    with pytest.raises(
        ValueError, match="'bp' is already registered for this blueprint"
    ):
        app.register_blueprint(bp, url_prefix="/other")
    with pytest.raises(ValueError, match="name="):
        app.register_blueprint(bp)


def test_registering_a_different_blueprint_under_a_taken_name_raises(app):
    app.register_blueprint(Blueprint("bp", __name__))

    with pytest.raises(ValueError, match="a different blueprint"):
        app.register_blueprint(Blueprint("bp", __name__))


# -- validation and setup ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "a.b"])
def test_blueprint_name_must_be_non_empty_without_dots(name):
    with pytest.raises(ValueError, match="name"):
        Blueprint(name, __name__)


def test_blueprint_endpoint_with_a_dot_is_rejected():
    bp = Blueprint("bp", __name__)
    with pytest.raises(ValueError, match=r"'a\.b'"):
        bp.add_url_rule("/", endpoint="a.b", view_func=lambda: "x")


def test_blueprint_view_name_with_a_dot_is_rejected():
    bp = Blueprint("bp", __name__)

    def view():
        return "x"

    view.__name__ = "a.b"
    with pytest.raises(ValueError, match=r"'a\.b'"):
        bp.add_url_rule("/", view_func=view)


def test_blueprint_cannot_be_changed_after_registration(app):
    bp = Blueprint("bp", __name__)
    app.register_blueprint(bp)

    with pytest.raises(
        AssertionError, match="can no longer be called on the blueprint"
    ):
        bp.route("/late")


def test_record_gets_setup_state_of_each_registration(app):
    bp = Blueprint("bp", __name__, url_prefix="/bp", subdomain="www")
    states: list[BlueprintSetupState] = []
    once: list[str] = []
    bp.record(states.append)
    bp.record_once(lambda state: once.append(state.name))

    app.register_blueprint(bp)
    app.register_blueprint(bp, name="second", url_prefix="/two", extra="value")

    assert [s.name for s in states] == ["bp", "second"]
    assert [s.first_registration for s in states] == [True, False]
    assert [s.url_prefix for s in states] == ["/bp", "/two"]
    assert [s.subdomain for s in states] == ["www", "www"]
    assert states[1].options == {
        "name": "second",
        "url_prefix": "/two",
        "extra": "value",
    }
    assert all(s.app is app and s.blueprint is bp for s in states)
    assert once == ["bp"]


def test_make_setup_state_can_return_a_subclass(app):
    class State(BlueprintSetupState):
        pass

    class MyBlueprint(Blueprint):
        def make_setup_state(self, app, options, first_registration=False):
            return State(self, app, options, first_registration)

    bp = MyBlueprint("bp", __name__)
    seen: list[type] = []
    bp.record(lambda state: seen.append(type(state)))
    app.register_blueprint(bp)

    assert seen == [State]


def test_register_blueprint_after_first_request_raises(app, client):
    @app.route("/")
    def index():
        return "ok"

    client.get("/")
    with pytest.raises(AssertionError, match="register_blueprint"):
        app.register_blueprint(Blueprint("bp", __name__))


def test_cli_group_is_kept():
    assert Blueprint("bp", __name__, cli_group="tools").cli_group == "tools"
    assert Blueprint("bp", __name__, cli_group=None).cli_group is None


# -- static files and templates ----------------------------------------------------------


@pytest.fixture
def bp_root(tmp_path):
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "hello.txt").write_text("hello from the blueprint")
    (tmp_path / "templates").mkdir()
    return tmp_path


def test_blueprint_serves_its_static_files(app, client, bp_root):
    bp = Blueprint(
        "assets",
        __name__,
        url_prefix="/assets",
        static_folder="static",
        root_path=str(bp_root),
    )

    @bp.route("/link")
    def link():
        return url_for(".static", filename="hello.txt")

    app.register_blueprint(bp)

    response = client.get("/assets/static/hello.txt")
    assert response.status_code == 200
    assert response.data == b"hello from the blueprint"
    assert response.headers["Content-Type"].startswith("text/plain")
    response.close()
    assert client.get("/assets/link").text == "/assets/static/hello.txt"
    assert client.get("/assets/static/missing.txt").status_code == 404


def test_blueprint_static_url_path_and_max_age(app, client, bp_root):
    app.config["SEND_FILE_MAX_AGE_DEFAULT"] = 60
    bp = Blueprint(
        "assets",
        __name__,
        url_prefix="/assets",
        static_folder="static",
        static_url_path="/files",
        root_path=str(bp_root),
    )
    app.register_blueprint(bp)

    response = client.get("/assets/files/hello.txt")
    assert response.data == b"hello from the blueprint"
    assert response.headers["Cache-Control"] == "public, max-age=60"
    response.close()


def test_blueprint_without_static_folder_has_no_static_route(app):
    app.register_blueprint(Blueprint("bp", __name__))

    assert "bp.static" not in app.view_functions


def test_blueprint_jinja_loader_follows_template_folder(bp_root):
    bp = Blueprint("bp", __name__, template_folder="templates", root_path=str(bp_root))
    loader = bp.jinja_loader

    assert isinstance(loader, FileSystemLoader)
    assert loader.searchpath == [str(bp_root / "templates")]
    assert Blueprint("plain", __name__).jinja_loader is None


def test_app_template_filter_test_and_global_register_on_the_app(app):
    bp = Blueprint("bp", __name__)

    @bp.app_template_filter()
    def shout(value):
        return value.upper()

    @bp.app_template_test("even")
    def is_even(value):
        return value % 2 == 0

    @bp.app_template_global
    def answer():
        return 42

    app.register_blueprint(bp)

    assert app.jinja_env.filters["shout"] is shout
    assert app.jinja_env.tests["even"] is is_even
    assert app.jinja_env.globals["answer"] is answer


def test_blueprint_open_resource_reads_from_its_root_path(bp_root):
    bp = Blueprint("bp", __name__, root_path=str(bp_root))

    with bp.open_resource("static/hello.txt", "r") as f:
        assert f.read() == "hello from the blueprint"


def test_blueprint_context_processors_apply_to_its_views_only(app, client, kind):
    bp = Blueprint("bp", __name__, url_prefix="/bp")

    @bp.context_processor
    @variant(kind)
    def own():
        return {"who": "blueprint"}

    @bp.app_context_processor
    @variant(kind)
    def everywhere():
        return {"site": "example"}

    @bp.route("/")
    @variant(kind)
    def bp_page():
        return render_template_string("{{ who }} {{ site }}")

    @app.route("/")
    @variant(kind)
    def app_page():
        return render_template_string("{{ who|default('nobody') }} {{ site }}")

    app.register_blueprint(bp)

    assert client.get("/bp/").text == "blueprint example"
    assert client.get("/").text == "nobody example"
