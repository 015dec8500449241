"""Templates: rendering, context, autoescaping, filters/tests/globals, context processors,
signals, streaming, auto-reload, and where template file I/O runs for async views.

Templates live in ``tests/templates`` (the ``app`` fixture's root path is ``tests``).
"""

from __future__ import annotations

import datetime
import logging
import os
import threading
import typing as t

import jinja2
import pytest
from markupsafe import Markup

import ctxflask
from ctxflask import before_render_template
from ctxflask import Blueprint
from ctxflask import flash
from ctxflask import g
from ctxflask import get_template_attribute
from ctxflask import render_template
from ctxflask import render_template_async
from ctxflask import render_template_string
from ctxflask import render_template_string_async
from ctxflask import request
from ctxflask import session
from ctxflask import stream_template
from ctxflask import stream_template_async
from ctxflask import stream_template_string
from ctxflask import stream_template_string_async
from ctxflask import template_rendered
from ctxflask.templating import DispatchingJinjaLoader
from ctxflask.templating import Environment
from tests.support import variant

HERE = os.path.dirname(__file__)


class RecordingLoader(jinja2.BaseLoader):
    """A loader of in-memory templates that records the thread of every file-like access:
    reading a source (``get_source``) and checking it is fresh (``uptodate``)."""

    def __init__(self, sources: dict[str, str]) -> None:
        self.sources = sources
        self.source_threads: list[int] = []
        self.uptodate_threads: list[int] = []

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str | None, t.Callable[[], bool]]:
        self.source_threads.append(threading.get_ident())
        if template not in self.sources:
            raise jinja2.TemplateNotFound(template)

        def uptodate() -> bool:
            self.uptodate_threads.append(threading.get_ident())
            return True

        return self.sources[template], None, uptodate


# -- rendering and its context ---------------------------------------------------------------


def test_render_template_passes_keyword_arguments_to_the_template(app, client, kind):
    @app.get("/")
    @variant(kind)
    def view():
        return render_template("greeting.html", name="Ada")

    response = client.get("/")
    assert response.status_code == 200
    assert response.text == "<p>Hello Ada</p>"


def test_template_sees_request_g_session_and_config(app, client, kind):
    app.config["GREETING"] = "hi"

    @app.before_request
    @variant(kind)
    def remember():
        g.who = "hook"
        session["user"] = "grace"

    @app.get("/here")
    @variant(kind)
    def view():
        return render_template("context_names.html")

    assert client.get("/here").text == "/here|hook|grace|hi"


def test_first_existing_template_of_a_list_is_rendered(app, client, kind):
    @app.get("/")
    @variant(kind)
    def view():
        return render_template(["missing.html", "greeting.txt"], name="list")

    assert client.get("/").text == "Hello list"


def test_render_template_string_renders_source_text(app, client, kind):
    @app.get("/<name>")
    @variant(kind)
    def view(name):
        return render_template_string("{{ name }} at {{ request.path }}", name=name)

    assert client.get("/bob").text == "bob at /bob"


def test_url_for_and_get_flashed_messages_are_template_globals(app, client, kind):
    @app.get("/target/<int:n>")
    def target(n):
        return ""

    @app.get("/")
    @variant(kind)
    def view():
        flash("saved")
        return render_template_string(
            "{{ url_for('target', n=3) }} {{ get_flashed_messages() }}"
        )

    assert client.get("/").text == "/target/3 [&#39;saved&#39;]"


def test_tojson_filter_uses_the_apps_json_provider(app, client):
    # The stdlib encoder refuses dates; the app's provider writes them as HTTP dates.
    @app.get("/")
    def view():
        return render_template_string(
            "{{ when|tojson }}", when=datetime.date(2024, 1, 2)
        )

    assert client.get("/").text == '"Tue, 02 Jan 2024 00:00:00 GMT"'


def test_render_in_app_context_without_request_has_config_and_g(app):
    app.config["GREETING"] = "hey"
    with app.app_context():
        g.who = "cli"
        rendered = render_template_string("{{ config.GREETING }} {{ g.who }}")
        context: dict[str, t.Any] = {}
        app.update_template_context(context)
    assert rendered == "hey cli"
    assert "request" not in context


def test_render_outside_app_context_raises_runtime_error(app):
    with pytest.raises(RuntimeError, match="Working outside of application context"):
        render_template_string("x")


def test_update_template_context_adds_defaults_but_keeps_given_values(app):
    @app.context_processor
    def extra():
        return {"answer": 1, "kept": "processor"}

    with app.test_request_context("/ctx"):
        context = {"kept": "caller"}
        app.update_template_context(context)
        assert context["answer"] == 1
        assert context["kept"] == "caller"
        assert context["request"] is request._get_current_object()
        assert context["g"] is g._get_current_object()


def test_template_not_found_propagates_when_testing(app, client, kind):
    @app.get("/")
    @variant(kind)
    def view():
        return render_template("nope.html")

    with pytest.raises(jinja2.TemplateNotFound) as info:
        client.get("/")
    assert info.value.name == "nope.html"


def test_none_of_a_list_of_templates_found_raises_templates_not_found(app, client):
    @app.get("/")
    def view():
        return render_template(["a.html", "b.html"])

    with pytest.raises(jinja2.TemplatesNotFound):
        client.get("/")


def test_template_not_found_is_a_500_when_not_testing(app, client, kind):
    app.config["TESTING"] = False

    @app.get("/")
    @variant(kind)
    def view():
        return render_template("nope.html")

    assert client.get("/").status_code == 500


# -- autoescaping ----------------------------------------------------------------------------


def test_html_template_is_autoescaped(app, client):
    @app.get("/")
    def view():
        return render_template("greeting.html", name="<b>&")

    assert client.get("/").text == "<p>Hello &lt;b&gt;&amp;</p>"


def test_text_template_is_not_autoescaped(app, client):
    @app.get("/")
    def view():
        return render_template("greeting.txt", name="<b>&")

    assert client.get("/").text == "Hello <b>&"


def test_template_string_is_autoescaped(app, client):
    @app.get("/")
    def view():
        return render_template_string("{{ v }}|{{ safe }}", v="<i>", safe=Markup("<i>"))

    assert client.get("/").text == "&lt;i&gt;|<i>"


@pytest.mark.parametrize(
    ("filename", "escaped"),
    [
        ("page.html", True),
        ("page.htm", True),
        ("feed.xml", True),
        ("page.xhtml", True),
        ("icon.svg", True),
        (None, True),
        ("mail.txt", False),
        ("style.css", False),
        ("page.html.j2", False),
    ],
)
def test_select_jinja_autoescape_by_extension(app, filename, escaped):
    assert app.select_jinja_autoescape(filename) is escaped


# -- filters, tests and globals --------------------------------------------------------------


def test_template_filter_named_after_the_function(app, client, kind):
    @app.template_filter()
    def shout(value):
        return value.upper() + "!"

    @app.get("/")
    @variant(kind)
    def view():
        return render_template_string("{{ 'hey'|shout }}")

    assert app.jinja_env.filters["shout"] is shout
    assert client.get("/").text == "HEY!"


def test_template_filter_with_a_name(app, client):
    @app.template_filter("rev")
    def backwards(value):
        return value[::-1]

    @app.get("/")
    def view():
        return render_template_string("{{ 'abc'|rev }}")

    assert "backwards" not in app.jinja_env.filters
    assert client.get("/").text == "cba"


def test_template_filter_used_bare(app):
    @app.template_filter
    def double(value):
        return value * 2

    with app.app_context():
        assert render_template_string("{{ 4|double }}") == "8"


def test_add_template_filter(app):
    app.add_template_filter(lambda v: f"<{v}>", "wrap")
    with app.app_context():
        assert render_template_string("{{ 'x'|wrap }}") == "&lt;x&gt;"


def test_template_test_named_after_the_function_and_with_a_name(app, client, kind):
    @app.template_test()
    def even(n):
        return n % 2 == 0

    @app.template_test("big")
    def is_big(n):
        return n > 100

    @app.get("/")
    @variant(kind)
    def view():
        return render_template_string(
            "{{ 4 is even }} {{ 3 is even }} {{ 500 is big }} {{ 5 is big }}"
        )

    assert client.get("/").text == "True False True False"


def test_add_template_test(app):
    app.add_template_test(lambda s: s.startswith("a"), name="a_word")
    with app.app_context():
        assert render_template_string("{{ 'apple' is a_word }}") == "True"


def test_template_global_named_after_the_function_and_with_a_name(app, client, kind):
    @app.template_global()
    def answer():
        return 42

    @app.template_global("path_now")
    def current_path():
        return request.path

    @app.get("/somewhere")
    @variant(kind)
    def view():
        return render_template_string("{{ answer() }} {{ path_now() }}")

    assert client.get("/somewhere").text == "42 /somewhere"


def test_add_template_global(app):
    app.add_template_global(lambda: "g!", name="glob")
    with app.app_context():
        assert render_template_string("{{ glob() }}") == "g!"


def test_template_filter_cannot_be_added_after_the_first_request(app, client):
    @app.get("/")
    def view():
        return ""

    client.get("/")
    with pytest.raises(AssertionError, match="already handled its first request"):
        app.add_template_filter(str.upper, "up")


# -- context processors ----------------------------------------------------------------------


def test_context_processor_values_reach_the_template(app, client, kind):
    @app.context_processor
    @variant(kind)
    def user():
        return {"user": f"user of {request.path}"}

    @app.get("/me")
    @variant(kind)
    def view():
        return render_template_string("{{ user }}")

    assert client.get("/me").text == "user of /me"


def test_render_arguments_win_over_context_processors(app, client, kind):
    @app.context_processor
    @variant(kind)
    def defaults():
        return {"a": "processor", "b": "processor"}

    @app.get("/")
    @variant(kind)
    def view():
        return render_template_string("{{ a }} {{ b }}", a="argument")

    assert client.get("/").text == "argument processor"


def test_context_processors_run_in_registration_order(app, client, kind):
    @app.context_processor
    @variant(kind)
    def first():
        return {"v": "first", "only_first": 1}

    @app.context_processor
    @variant(kind)
    def second():
        return {"v": "second"}

    @app.get("/")
    def view():
        return render_template_string("{{ v }} {{ only_first }}")

    assert client.get("/").text == "second 1"


def test_context_processor_sees_g_set_by_the_view(app, client, kind):
    @app.context_processor
    @variant(kind)
    def from_g():
        return {"seen": g.get("value", "unset")}

    @app.get("/")
    @variant(kind)
    def view():
        g.value = "set in view"
        return render_template_string("{{ seen }}")

    assert client.get("/").text == "set in view"


def test_blueprint_context_processors_apply_to_its_requests_only(app, client, kind):
    outer = Blueprint("outer", __name__)
    inner = Blueprint("inner", __name__)

    @app.context_processor
    @variant(kind)
    def from_app():
        return {"who": "app", "app_only": "a"}

    @outer.context_processor
    @variant(kind)
    def from_outer():
        return {"who": "outer", "outer_only": "o"}

    @inner.context_processor
    @variant(kind)
    def from_inner():
        return {"who": "inner"}

    @outer.app_context_processor
    @variant(kind)
    def everywhere():
        return {"everywhere": "e"}

    source = "{{ who }} {{ app_only }} {{ outer_only }} {{ everywhere }}"

    @inner.get("/page")
    @variant(kind)
    def inner_page():
        return render_template_string(source)

    @outer.get("/page")
    def outer_page():
        return render_template_string(source)

    @app.get("/page")
    def app_page():
        return render_template_string(source)

    outer.register_blueprint(inner, url_prefix="/inner")
    app.register_blueprint(outer, url_prefix="/outer")

    assert client.get("/outer/inner/page").text == "inner a o e"
    assert client.get("/outer/page").text == "outer a o e"
    assert client.get("/page").text == "app a  e"


# -- the loader: app and blueprint folders ---------------------------------------------------


def test_blueprint_template_folder_is_searched_after_the_apps(app, client):
    bp = Blueprint("shop", __name__, template_folder="templates/blueprint")

    @bp.get("/own")
    def own():
        return render_template("bp_only.html")

    @bp.get("/shadowed")
    def shadowed():
        return render_template("greeting.html", name="bp")

    app.register_blueprint(bp)

    assert client.get("/own").text == "from the blueprint folder"
    # The app's folder comes first: its greeting.html wins over the blueprint's.
    assert client.get("/shadowed").text == "<p>Hello bp</p>"


def test_blueprint_app_template_filter_test_and_global_apply_to_the_app(app):
    bp = Blueprint("tools", __name__)

    @bp.app_template_filter()
    def twice(s):
        return s * 2

    @bp.app_template_test("odd")
    def is_odd(n):
        return n % 2 == 1

    @bp.app_template_global()
    def greet():
        return "hello"

    app.register_blueprint(bp)
    with app.app_context():
        assert render_template_string(
            "{{ 'a'|twice }} {{ 3 is odd }} {{ greet() }}"
        ) == ("aa True hello")


def test_dispatching_loader_lists_app_and_blueprint_templates(app):
    app.register_blueprint(
        Blueprint("bp", __name__, template_folder="templates/blueprint")
    )
    loader = app.jinja_env.loader
    assert isinstance(loader, DispatchingJinjaLoader)
    names = loader.list_templates()
    assert "greeting.html" in names
    assert "bp_only.html" in names
    assert "blueprint/bp_only.html" in names


def test_app_without_template_folder_has_no_loader_of_its_own():
    app = ctxflask.Flask("no_templates", root_path=HERE, template_folder=None)
    assert app.jinja_loader is None
    with app.app_context(), pytest.raises(jinja2.TemplateNotFound):
        render_template("greeting.html")


def test_jinja_loader_is_the_template_folder_of_the_root_path(app):
    loader = app.jinja_loader
    assert isinstance(loader, jinja2.FileSystemLoader)
    assert loader.searchpath == [os.path.join(HERE, "templates")]


def test_explain_template_loading_logs_each_loader_tried(app, caplog):
    app.config["EXPLAIN_TEMPLATE_LOADING"] = True
    app.register_blueprint(
        Blueprint("bp", __name__, template_folder="templates/blueprint")
    )
    with caplog.at_level(logging.INFO, logger=app.logger.name), app.app_context():
        assert render_template("bp_only.html") == "from the blueprint folder"
        with pytest.raises(jinja2.TemplateNotFound):
            render_template("absent.html")
    messages = [r.getMessage() for r in caplog.records if r.name == app.logger.name]
    assert len(messages) == 2
    found, missing = messages
    assert found.startswith("Locating template 'bp_only.html':")
    assert "1. application 'flask_test'" in found
    assert "not found" in found
    assert "2. blueprint 'bp'" in found
    assert "found at" in found
    assert "Error: no loader has this template" in missing


# -- environment and options -----------------------------------------------------------------


def test_jinja_env_is_created_once_with_the_app(app):
    env = app.jinja_env
    assert isinstance(env, Environment)
    assert env.app is app
    assert app.jinja_env is env


def test_jinja_options_and_environment_class_are_used(app):
    class MyEnvironment(Environment):
        pass

    app.jinja_environment = MyEnvironment
    app.jinja_options = {"trim_blocks": True, "autoescape": False}
    env = app.jinja_env
    assert type(env) is MyEnvironment
    assert env.trim_blocks is True
    with app.app_context():
        assert render_template_string("{{ '<x>' }}") == "<x>"


@pytest.mark.parametrize(
    ("config", "debug", "expected"),
    [
        (None, False, False),
        (None, True, True),
        (False, True, False),
        (True, False, True),
    ],
)
def test_auto_reload_follows_config_then_debug(app, config, debug, expected):
    app.config["TEMPLATES_AUTO_RELOAD"] = config
    app.debug = debug
    assert app.jinja_env.auto_reload is expected


def test_setting_debug_later_switches_auto_reload_when_config_is_unset(app):
    assert app.jinja_env.auto_reload is False
    app.debug = True
    assert app.jinja_env.auto_reload is True
    app.config["TEMPLATES_AUTO_RELOAD"] = False
    app.debug = False
    assert (
        app.jinja_env.auto_reload is True
    )  # the config now decides; it was not re-read


def _rewrite(path, text: str, tick: int) -> None:
    path.write_text(text)
    # Jinja compares modification times: make the change visible whatever the
    # filesystem's timestamp resolution.
    os.utime(path, (1_000_000 + tick, 1_000_000 + tick))


def test_changed_template_is_reloaded_when_auto_reload_is_on(app, client, tmp_path):
    app.config["TEMPLATES_AUTO_RELOAD"] = True
    app.template_folder = str(tmp_path)
    page = tmp_path / "page.txt"
    _rewrite(page, "first", 1)

    @app.get("/")
    def view():
        return render_template("page.txt")

    assert client.get("/").text == "first"
    _rewrite(page, "second", 2)
    assert client.get("/").text == "second"


def test_changed_template_is_served_from_cache_when_auto_reload_is_off(
    app, client, tmp_path
):
    app.template_folder = str(tmp_path)
    page = tmp_path / "page.txt"
    _rewrite(page, "first", 1)

    @app.get("/")
    def view():
        return render_template("page.txt")

    assert client.get("/").text == "first"
    _rewrite(page, "second", 2)
    assert client.get("/").text == "first"


# -- signals ---------------------------------------------------------------------------------


def test_render_signals_get_the_template_and_context(app, client, kind):
    events: list[tuple[str, t.Any, str | None, t.Any]] = []

    @app.context_processor
    def extra():
        return {"extra": "yes"}

    @variant(kind)
    def before(sender, template, context):
        events.append(("before", sender, template.name, context["name"]))
        context["late"] = "added by receiver"

    @variant(kind)
    def after(sender, template, context):
        events.append(("rendered", sender, template.name, context["extra"]))

    @app.get("/")
    @variant(kind)
    def view():
        return render_template_string("{{ name }} {{ late }}", name="n")

    with (
        before_render_template.connected_to(before, app),
        template_rendered.connected_to(after, app),
    ):
        response = client.get("/")

    assert response.text == "n added by receiver"
    assert events == [("before", app, None, "n"), ("rendered", app, None, "yes")]


def test_template_rendered_names_the_file_template(app, kind):
    names: list[str | None] = []

    @variant(kind)
    def record(sender, template, context):
        names.append(template.name)

    with template_rendered.connected_to(record, app), app.app_context():
        render_template("greeting.txt", name="x")
    assert names == ["greeting.txt"]


def test_render_signals_of_another_app_are_not_sent(app):
    other = ctxflask.Flask("other", root_path=HERE)
    seen: list[t.Any] = []

    def record(sender, **kwargs):
        seen.append(sender)

    with template_rendered.connected_to(record, other), app.app_context():
        render_template_string("x")
    assert seen == []


# -- streaming -------------------------------------------------------------------------------


def test_stream_template_streams_the_rendered_chunks(app, client, kind):
    @app.get("/")
    @variant(kind)
    def view():
        return stream_template("items.html", items=["a", "b", "c"])

    response = client.get("/")
    assert response.status_code == 200
    assert response.text == "[a][b][c]"


def test_stream_template_string_runs_inside_the_request(app, client, kind):
    app.add_template_global(lambda: request.path, "path_now")

    @app.context_processor
    @variant(kind)
    def extra():
        return {"sep": "/"}

    @app.get("/live")
    @variant(kind)
    def view():
        return stream_template_string(
            "{% for i in range(3) %}{{ path_now() }}{{ sep }}{% endfor %}"
        )

    assert client.get("/live").text == "/live//live//live/"


def test_stream_template_sends_template_rendered_after_the_last_chunk(
    app, client, kind
):
    events: list[str] = []

    def mark(label: str) -> str:
        events.append(label)
        return label

    app.add_template_global(mark, "mark")

    @variant(kind)
    def rendered(sender, template, context):
        events.append("rendered")

    @variant(kind)
    def before(sender, template, context):
        events.append("before")

    @app.get("/")
    @variant(kind)
    def view():
        return stream_template_string("{{ mark('one') }}{{ mark('two') }}")

    with (
        template_rendered.connected_to(rendered, app),
        before_render_template.connected_to(before, app),
    ):
        assert client.get("/").text == "onetwo"
    assert events == ["before", "one", "two", "rendered"]


def test_stream_template_missing_template_fails_before_streaming(app, client, kind):
    @app.get("/")
    @variant(kind)
    def view():
        return stream_template("nope.html")

    with pytest.raises(jinja2.TemplateNotFound):
        client.get("/")


def test_stream_template_iterated_after_the_request_context_keeps_it(app):
    with app.test_request_context("/later"):
        chunks = stream_template_string("{{ request.path }}{{ request.path }}")
    assert "".join(chunks) == "/later/later"


# -- get_template_attribute ------------------------------------------------------------------


def test_get_template_attribute_returns_a_macro(app, client, kind):
    @app.get("/")
    @variant(kind)
    def view():
        hello = get_template_attribute("_macros.html", "hello")
        return hello("<World>")

    assert client.get("/").text == "Hello &lt;World&gt;!"


def test_get_template_attribute_returns_a_variable(app_ctx):
    assert get_template_attribute("_macros.html", "answer") == 42


def test_get_template_attribute_of_a_missing_template_raises(app_ctx):
    with pytest.raises(jinja2.TemplateNotFound):
        get_template_attribute("nope.html", "x")


# -- async variants and the event loop -------------------------------------------------------


def test_render_template_async_renders_with_context(app, client, kind):
    @app.context_processor
    @variant(kind)
    def extra():
        return {"extra": "cp"}

    @app.get("/a")
    async def view():
        return await render_template_async("greeting.html", name=f"<{request.path}>")

    @app.get("/b")
    async def view_string():
        return await render_template_string_async("{{ extra }} {{ x }}", x="<x>")

    assert client.get("/a").text == "<p>Hello &lt;/a&gt;</p>"
    assert client.get("/b").text == "cp &lt;x&gt;"


def test_stream_template_async_streams(app, client):
    @app.get("/a")
    async def view():
        return await stream_template_async("items.html", items=[1, 2])

    @app.get("/b")
    async def view_string():
        return await stream_template_string_async("{{ request.path }}!")

    assert client.get("/a").text == "[1][2]"
    assert client.get("/b").text == "/b!"


def test_render_template_async_missing_template_propagates(app, client):
    @app.get("/")
    async def view():
        return await render_template_async("nope.html")

    with pytest.raises(jinja2.TemplateNotFound):
        client.get("/")


def test_render_template_async_sends_signals_to_sync_and_async_receivers(app, client):
    events: list[str] = []

    def before(sender, template, context):
        events.append("sync before")

    async def rendered(sender, template, context):
        events.append("async rendered")

    @app.get("/")
    async def view():
        return await render_template_string_async("x")

    with (
        before_render_template.connected_to(before, app),
        template_rendered.connected_to(rendered, app),
    ):
        assert client.get("/").text == "x"
    assert events == ["sync before", "async rendered"]


def test_async_view_loads_templates_off_the_event_loop_thread(app, client):
    """An async view runs on the event loop: ``render_template_async`` reads sources,
    checks freshness (auto-reload) and loads ``{% extends %}`` targets in a worker
    thread, never on the loop's thread."""
    app.config["TEMPLATES_AUTO_RELOAD"] = True
    loader = RecordingLoader(
        {
            "base.html": "<main>{% block body %}{% endblock %}</main>",
            "child.html": '{% extends "base.html" %}{% block body %}{{ n }}{% endblock %}',
        }
    )
    app.jinja_loader = loader
    loop_threads: list[int] = []

    @app.get("/")
    async def view():
        loop_threads.append(threading.get_ident())
        return await render_template_async("child.html", n=len(loop_threads))

    assert client.get("/").text == "<main>1</main>"
    assert (
        client.get("/").text == "<main>2</main>"
    )  # from the cache, checked for changes

    assert len(loader.source_threads) == 2  # child.html and base.html, once each
    assert len(loader.uptodate_threads) >= 1
    touched = set(loader.source_threads) | set(loader.uptodate_threads)
    assert touched.isdisjoint(loop_threads)


def test_stream_template_async_loads_off_the_event_loop_thread(app, client):
    loader = RecordingLoader({"list.txt": "{% for i in items %}{{ i }},{% endfor %}"})
    app.jinja_loader = loader
    loop_threads: list[int] = []

    @app.get("/")
    async def view():
        loop_threads.append(threading.get_ident())
        return await stream_template_async("list.txt", items=[1, 2, 3])

    assert client.get("/").text == "1,2,3,"
    assert loader.source_threads
    assert set(loader.source_threads).isdisjoint(loop_threads)


def test_async_context_processor_runs_on_the_loop_and_sync_one_off_it(app, client):
    """With ``render_template_async``, async context processors are awaited on the event
    loop (the view's thread) and sync ones, which may block, run in a worker thread."""
    threads: dict[str, int] = {}

    @app.context_processor
    async def async_processor():
        threads["async"] = threading.get_ident()
        return {}

    @app.context_processor
    def sync_processor():
        threads["sync"] = threading.get_ident()
        return {}

    @app.get("/")
    async def view():
        threads["view"] = threading.get_ident()
        return await render_template_string_async("ok")

    assert client.get("/").text == "ok"
    assert threads["async"] == threads["view"]
    assert threads["sync"] != threads["view"]


def test_sync_render_in_async_view_uses_the_cache_without_loader_io(app, client):
    """``render_template`` (sync) in an async view touches the loader only on a cache
    miss: once a template is loaded (here by ``render_template_async``) and auto-reload is
    off, rendering it again does no file I/O on the loop."""
    loader = RecordingLoader({"hello.txt": "hello {{ n }}"})
    app.jinja_loader = loader

    @app.get("/warm")
    async def warm():
        return await render_template_async("hello.txt", n="warm")

    @app.get("/sync")
    async def sync_render():
        return render_template("hello.txt", n="sync")

    assert client.get("/warm").text == "hello warm"
    calls = (len(loader.source_threads), len(loader.uptodate_threads))
    assert client.get("/sync").text == "hello sync"
    assert client.get("/sync").text == "hello sync"
    assert (len(loader.source_threads), len(loader.uptodate_threads)) == calls
    assert calls == (1, 0)


def test_render_template_async_keeps_context_variable_changes(app, client):
    import contextvars

    var: contextvars.ContextVar[str] = contextvars.ContextVar(
        "tpl_var", default="unset"
    )

    @app.context_processor
    def setter():
        var.set("set by processor")
        return {}

    @app.get("/")
    async def view():
        await render_template_string_async("x")
        return var.get()

    assert client.get("/").text == "set by processor"
