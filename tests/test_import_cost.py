"""What ``import ctxflask`` and a plain WSGI request load: no Jinja, click, asyncio or
anyio's thread helpers, none of the CLI, the ASGI side or the test clients, until a
feature that needs them is first used. Each check runs in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

#: Loaded by none of ``import ctxflask``, building an app and serving plain WSGI requests.
NEVER_FOR_WSGI = (
    "jinja2",
    "click",
    "asyncio",
    "concurrent.futures",
    "importlib.metadata",
    "anyio",
    "ctxflask.cli",
    "ctxflask.asgi",
    "ctxflask.testing",
    "ctxflask.isolation",
    "ctxflask.flask_switch",
    "ctxflask.templating",
    "ctxflask.core.templating",
    "ctxflask.bridge.pools",
    "ctxflask.bridge.tasks",
    "ctxflask.bridge.watchdog",
    "ctxflask.bridge.body",
)
#: Loaded by a first request (the bridge's sync driver imports it), not by the import.
NOT_ON_IMPORT = (*NEVER_FOR_WSGI, "ctxflask.bridge.thread_loop")

APP = """
from werkzeug.test import EnvironBuilder

import ctxflask

app = ctxflask.Flask("probe")


@app.get("/text")
def text():
    return "hello"


@app.get("/dict")
def as_dict():
    return {"a": 1}


@app.get("/jsonify")
def as_jsonify():
    return ctxflask.jsonify(a=1)


@app.get("/async")
async def asynchronous():
    return "async"


def get(path):
    statuses = []
    body = app.wsgi_app(
        EnvironBuilder(path=path).get_environ(),
        lambda status, headers, exc_info=None: statuses.append(status),
    )
    try:
        data = b"".join(body)
    finally:
        getattr(body, "close", lambda: None)()
    assert statuses == ["200 OK"], (path, statuses)
    return data
"""


def loaded_after(code: str, watched: tuple[str, ...]) -> list[str]:
    """The modules of ``watched`` loaded once ``code`` ran in a fresh interpreter."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {list(watched)!r} if m in sys.modules]))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    loaded: list[str] = json.loads(done.stdout.splitlines()[-1])
    return loaded


def test_import_loads_none_of_them() -> None:
    assert loaded_after("import ctxflask", NOT_ON_IMPORT) == []


def test_plain_wsgi_requests_load_none_of_them() -> None:
    code = APP + textwrap.dedent("""
        assert get("/text") == b"hello"
        assert get("/dict") == b'{"a":1}\\n'
        assert get("/jsonify") == b'{"a":1}\\n'
    """)
    assert loaded_after(code, NEVER_FOR_WSGI) == []


@pytest.mark.parametrize(
    ("use", "expected"),
    [
        ("app.cli", ("click", "ctxflask.cli")),
        ("app.asgi", ("anyio", "ctxflask.asgi")),
        ("app.test_client()", ("ctxflask.testing",)),
        ("app.jinja_env", ("jinja2", "ctxflask.core.templating")),
        ("app.jinja_loader", ("jinja2",)),
        ("app.create_jinja_environment()", ("jinja2", "ctxflask.core.templating")),
        (
            "with app.app_context():\n"
            "    assert ctxflask.render_template_string('{{ 1 + 1 }}') == '2'",
            ("jinja2", "ctxflask.core.templating"),
        ),
        ("assert get('/async') == b'async'", ("asyncio", "anyio.from_thread")),
        ("ctxflask.Websocket", ("ctxflask.asgi",)),
        ("ctxflask.install_as_flask", ("ctxflask.flask_switch",)),
    ],
)
def test_each_loads_with_its_first_use(use: str, expected: tuple[str, ...]) -> None:
    assert loaded_after(APP, expected) == []
    assert loaded_after(f"{APP}\n{use}", expected) == list(expected)


def test_every_public_name_resolves() -> None:
    code = textwrap.dedent("""
        import ctxflask
        import ctxflask.globals  # a submodule named as a builtin the package must not use
        for name in ctxflask.__all__:
            assert getattr(ctxflask, name) is not None, name
        assert set(ctxflask.__all__) <= set(dir(ctxflask))
        namespace = {}
        exec("from ctxflask import *", namespace)
        assert set(ctxflask.__all__) <= set(namespace), set(ctxflask.__all__) - set(namespace)
        from ctxflask.asgi import Websocket
        from ctxflask.flask_switch import install_as_flask
        assert ctxflask.Websocket is Websocket
        assert ctxflask.install_as_flask is install_as_flask
        # Modules that importing ctxflask used to load stay attributes of the package.
        assert ctxflask.cli.AppGroup is not None
        assert ctxflask.asgi.ASGIApp is not None
    """)
    loaded_after(code, ())


def test_the_lazy_classes_are_the_real_ones() -> None:
    code = APP + textwrap.dedent("""
        import ctxflask.templating
        from ctxflask.core import templating

        assert ctxflask.Flask.jinja_environment is ctxflask.templating.Environment
        assert app.jinja_environment is templating.Environment
        assert isinstance(app.jinja_env, ctxflask.templating.Environment)
        assert isinstance(
            app.jinja_env.loader, ctxflask.templating.DispatchingJinjaLoader
        )

        class Own(ctxflask.templating.Environment):
            pass

        class OwnApp(ctxflask.Flask):
            jinja_environment = Own

        assert type(OwnApp("own").jinja_env) is Own
        from ctxflask.cli import AppGroup

        assert type(app.cli) is AppGroup
    """)
    loaded_after(code, ())


def test_flask_switch_finds_the_lazy_modules() -> None:
    code = textwrap.dedent("""
        import ctxflask
        ctxflask.install_as_flask()
        import flask.cli, flask.templating, flask.testing
        import ctxflask.cli, ctxflask.templating, ctxflask.testing

        assert flask.templating.Environment is ctxflask.templating.Environment
        assert flask.cli.FlaskGroup is ctxflask.cli.FlaskGroup
        assert flask.testing.FlaskClient is ctxflask.testing.FlaskClient
        assert flask.render_template is ctxflask.render_template
    """)
    loaded_after(code, ())


@pytest.mark.parametrize("subclass", [False, True])
def test_asgi_servers_still_see_a_coroutine_function(subclass: bool) -> None:
    # The marker of ``asyncio.iscoroutinefunction`` is set when asyncio is imported after
    # ctxflask (a script that imports uvicorn after its app).
    code = textwrap.dedent(f"""
        import sys
        import ctxflask

        cls = ctxflask.Flask
        if {subclass}:
            class Wrapped(ctxflask.Flask):
                pass

            def call(self, environ, start_response):
                return self.wsgi_app(environ, start_response)

            Wrapped.__call__ = call
            cls = Wrapped
        app = cls("probe")
        assert "asyncio" not in sys.modules
        import asyncio

        assert asyncio.iscoroutinefunction(app.__call__)
        assert not asyncio.iscoroutinefunction(app.wsgi_app)
    """)
    loaded_after(code, ())
