"""The pytest plugin (``ctxflask.pytest_plugin``), run by pytest in tiny projects of its
own: a ``conftest.py`` defining ``app``, and tests using the plugin's fixtures."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent

# The tiny project's app: every step it runs says which entry point it came through.
APP_MODULE = """
    import anyio
    from ctxflask import Flask, g, request, session, websocket

    def create_app():
        app = Flask(__name__)
        app.config.update(TESTING=True, SECRET_KEY="test")
        events = app.extensions["events"] = []

        @app.before_serving
        def started():
            events.append("before_serving")

        @app.after_serving
        async def stopped():
            events.append("after_serving")

        @app.get("/")
        def index():
            return "hello"

        @app.get("/via")
        def via():
            return "asgi" if "asgi.scope" in request.environ else "wsgi"

        @app.post("/count")
        async def count():
            session["n"] = session.get("n", 0) + request.get_json()["by"]
            g.n = session["n"]
            return {"n": session["n"]}

        @app.before_request
        def remember():
            g.n = (request.view_args or {}).get("n")

        @app.get("/double/<int:n>")
        async def double(n):
            await anyio.sleep(0.01)
            return {"n": n, "double": g.n * 2}

        @app.get("/later")
        def later():
            async def task():
                await anyio.sleep(0.1)
                events.append("background task")
            app.add_background_task(task)
            return "accepted"

        @app.websocket("/echo")
        async def echo():
            while True:
                await websocket.send((await websocket.receive()).upper())

        return app

    app = create_app()
"""

CONFTEST = """
    import pytest
    from myapp import create_app

    @pytest.fixture
    def app():
        return create_app()
"""

INI = """
    [pytest]
    asyncio_default_fixture_loop_scope = function
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(myapp=APP_MODULE, conftest=CONFTEST)
    pytester.makeini(INI)
    pytester.syspathinsert()
    return pytester


def assert_passed(result: pytest.RunResult, *ids: str) -> None:
    """All the tests of a ``-v`` run passed, and they are these (ids without the file)."""
    result.assert_outcomes(passed=len(ids))
    passed = [
        line.split("::", 1)[1].split(" ")[0]
        for line in result.outlines
        if " PASSED" in line and "::" in line
    ]
    assert sorted(passed) == sorted(ids)


# -- client -------------------------------------------------------------------------------


def test_client_runs_each_test_through_wsgi_and_asgi(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        from ctxflask import g, session

        def test_entry(client, ctxflask_entry_point):
            assert client.get("/via").text == ctxflask_entry_point

        def test_flask_client_api(client):
            assert client.get("/").text == "hello"
            assert client.post("/count", json={"by": 2}).json == {"n": 2}
            # The session cookie is kept, and `with client:` keeps the last request's
            # contexts for the test to inspect.
            with client:
                assert client.post("/count", json={"by": 3}).get_json() == {"n": 5}
                assert session["n"] == 5 and g.n == 5
        """
    )
    result = project.runpytest("-v")
    assert_passed(
        result,
        "test_entry[asgi]",
        "test_entry[wsgi]",
        "test_flask_client_api[asgi]",
        "test_flask_client_api[wsgi]",
    )


def test_a_marker_or_the_ini_option_pins_the_entry_point(
    project: pytest.Pytester,
) -> None:
    project.makepyfile(
        """
        import pytest

        @pytest.mark.ctxflask_entry("asgi")
        def test_asgi_only(client):
            assert client.get("/via").text == "asgi"

        @pytest.mark.ctxflask_entry("wsgi")
        class TestWsgiOnly:
            def test_it(self, client):
                assert client.get("/via").text == "wsgi"

        def test_default(client, ctxflask_entry_point):
            assert client.get("/via").text == ctxflask_entry_point

        @pytest.mark.parametrize("ctxflask_entry_point", ["wsgi"])
        def test_parametrized(client):
            assert client.get("/via").text == "wsgi"
        """
    )
    result = project.runpytest("-v", "--strict-markers")
    assert_passed(
        result,
        "TestWsgiOnly::test_it[wsgi]",
        "test_asgi_only[asgi]",
        "test_default[asgi]",
        "test_default[wsgi]",
        "test_parametrized[wsgi]",
    )

    project.makeini(INI + "    ctxflask_entry_points = asgi\n")
    result = project.runpytest("-v", "-k", "default")
    assert_passed(
        result,
        "test_default[asgi]",
    )


def test_an_unknown_entry_point_is_a_usage_error(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import pytest

        @pytest.mark.ctxflask_entry("asgi2")
        def test_it(client):
            pass
        """
    )
    result = project.runpytest()
    result.stdout.fnmatch_lines(
        [
            "*::test_it: @pytest.mark.ctxflask_entry names ?'asgi2'?; give 'wsgi' and/or 'asgi'."
        ]
    )
    result.assert_outcomes(errors=1)


def test_a_conftest_client_fixture_overrides_the_plugins(
    project: pytest.Pytester,
) -> None:
    project.makeconftest(
        CONFTEST
        + """
    @pytest.fixture
    def client(app):
        return app.test_client()
        """
    )
    project.makepyfile(
        "def test_it(client):\n    assert client.get('/via').text == 'wsgi'\n"
    )
    result = project.runpytest("-v")
    assert_passed(result, "test_it")


# -- serving, async_client, websocket_client -----------------------------------------------


def test_async_fixtures_serve_the_app_through_lifespan_on_asyncio_and_trio(
    project: pytest.Pytester,
) -> None:
    project.makeconftest(
        CONFTEST
        + """
    @pytest.fixture
    def events(app):
        # Set up before the plugin's `serving` and torn down after it.
        yield app.extensions["events"]
        assert app.extensions["events"][-1] == "after_serving"
        """
    )
    project.makepyfile(
        """
        import anyio
        import pytest

        pytestmark = pytest.mark.anyio

        async def test_async_client(events, async_client):
            assert events == ["before_serving"]
            replies = []
            async def double(n):
                replies.append((await async_client.get(f"/double/{n}")).json())
            async with anyio.create_task_group() as tg:
                for n in range(50):
                    tg.start_soon(double, n)
            # Concurrent requests, each seeing its own g.
            assert len(replies) == 50
            assert all(r["double"] == 2 * r["n"] for r in replies)
            assert (await async_client.get("/via")).text == "asgi"
            assert (await async_client.get("/later")).text == "accepted"
            assert events == ["before_serving", "background task"]

        async def test_websocket_client(events, websocket_client, anyio_backend_name):
            async with websocket_client.connect("/echo") as ws:
                await ws.send(anyio_backend_name)
                assert await ws.receive() == anyio_backend_name.upper()
            assert events == ["before_serving"]
        """
    )
    result = project.runpytest("-v")
    assert_passed(
        result,
        "test_async_client[asyncio]",
        "test_async_client[trio]",
        "test_websocket_client[asyncio]",
        "test_websocket_client[trio]",
    )


def test_a_failing_before_serving_fails_the_serving_fixture(
    project: pytest.Pytester,
) -> None:
    project.makepyfile(
        """
        import pytest

        @pytest.fixture
        def app(app):
            @app.before_serving
            def broken():
                raise LookupError("no database")
            return app

        @pytest.mark.anyio
        async def test_it(serving):
            pass
        """
    )
    result = project.runpytest("-k", "asyncio")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*LifespanFailed: lifespan startup of 'myapp' failed: LookupError: no database*"
        ]
    )


# -- the context guard --------------------------------------------------------------------

LEAKS = """
    import pytest

    @pytest.fixture
    def in_app_context(app):
        with app.app_context():   # popped by the fixture: no leak
            yield

    def test_sync_leak(app):
        app.test_request_context("/leaky").push()

    @pytest.mark.anyio
    async def test_async_leak(app):
        app.app_context().push()

    def test_clean_after_a_leak(in_app_context):
        from ctxflask import current_app
        assert current_app.name == "myapp"

    def test_clean(app, client):
        client.get("/")

    @pytest.fixture
    def leaky_fixture(app):
        app.app_context().push()

    def test_leaky_fixture(leaky_fixture):
        pass
"""


@pytest.mark.parametrize("how", ["ini", "fixture"])
def test_the_context_guard_fails_a_test_that_leaves_a_context_pushed(
    project: pytest.Pytester, how: str
) -> None:
    if how == "ini":
        project.makeini(INI + "    ctxflask_context_guard = true\n")
        project.makepyfile(LEAKS)
    else:
        project.makepyfile(
            LEAKS.replace("(app)", "(app, ctxflask_context_guard)").replace(
                "(in_app_context)", "(in_app_context, ctxflask_context_guard)"
            )
            + "\n    def test_leaky_fixture_guarded(leaky_fixture, ctxflask_context_guard):"
            + "\n        pass\n"
        )
    result = project.runpytest("-v")
    result.stdout.fnmatch_lines(
        [
            "*test_sync_leak FAILED*",
            "*test_async_leak?asyncio? FAILED*",
            "*test_async_leak?trio? FAILED*",
            "*test_clean_after_a_leak PASSED*",
            "*test_clean?wsgi? PASSED*",
            "*test_clean?asgi? PASSED*",
            "*test_leaky_fixture* ERROR*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*::test_sync_leak left request context <RequestContext 'http://localhost/leaky'"
            " [[]GET] of 'myapp'> and app context <AppContext of 'myapp'> pushed. Pop what"
            " the test pushes*",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*::test_async_leak[[]trio] left app context <AppContext of 'myapp'> pushed.*"]
    )
    result.stdout.fnmatch_lines(
        [
            "*::test_leaky_fixture*: its fixtures left app context <AppContext of 'myapp'> pushed.*"
        ]
    )


def test_without_the_guard_a_leak_passes(project: pytest.Pytester) -> None:
    # What the guard adds: the same leaking tests pass when it is off. (In a process of
    # its own: the leaked contexts stay there.)
    project.makepyfile(LEAKS)
    result = project.runpytest_subprocess("-k", "leak and not fixture")
    result.assert_outcomes(passed=4)


# -- the Flask switch ---------------------------------------------------------------------


AS_FLASK_CONFTEST = """
    import flask_login
    import pytest
    from flask import Flask

    @pytest.fixture
    def app():
        app = Flask(__name__)
        app.config.update(TESTING=True, SECRET_KEY="test")
        login = flask_login.LoginManager(app)

        class User(flask_login.UserMixin):
            def __init__(self, id):
                self.id = id

        @login.user_loader
        def load(user_id):
            return User(user_id)

        @app.post("/login/<name>")
        def log_in(name):
            flask_login.login_user(User(name))
            return "ok"

        @app.get("/me")
        @flask_login.login_required
        async def me():
            return flask_login.current_user.id

        return app
"""

AS_FLASK_TEST = """
    import flask
    import ctxflask

    def test_flask_is_ctxflask():
        assert flask.Flask is ctxflask.Flask

    def test_flask_login_on_both_entry_points(client):
        assert client.get("/me").status_code == 401
        assert client.post("/login/ada").text == "ok"
        assert client.get("/me").text == "ada"
"""


def test_ctxflask_as_flask_installs_the_switch_before_conftest_and_tests(
    pytester: pytest.Pytester,
) -> None:
    # In a process of its own: the switch changes sys.modules for good.
    pytester.makeconftest(AS_FLASK_CONFTEST)
    pytester.makepyfile(AS_FLASK_TEST)
    pytester.makeini(INI + "    ctxflask_as_flask = true\n")
    result = pytester.runpytest_subprocess("-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        ["*test_flask_login_on_both_entry_points?asgi? PASSED*"]
    )

    # Without the option, the same tests get the real Flask.
    pytester.makeini(INI)
    result = pytester.runpytest_subprocess("-v")
    result.stdout.fnmatch_lines(["*test_flask_is_ctxflask FAILED*"])


# -- live_server --------------------------------------------------------------------------

LIVE_TESTS = """
    import urllib.request
    import pytest

    def get(url):
        with urllib.request.urlopen(url) as response:
            return response.headers["Server"], response.read().decode()

    def test_default_server(live_server):
        with open("ports", "a") as ports:
            ports.write(f"{live_server.port}\\n")
        assert get(live_server.url_for("/")) == ("uvicorn", "hello")

    @pytest.mark.ctxflask_live_server(server="gunicorn")
    def test_gunicorn(live_server):
        assert get(live_server.url + "/via")[0].startswith("gunicorn")
        assert get(live_server.url + "/via")[1] == "wsgi"

    @pytest.mark.ctxflask_live_server(app="myapp:create_app()")
    def test_factory_under_uvicorn(live_server):
        assert get(live_server.url + "/via") == ("uvicorn", "asgi")
"""


def test_live_server_under_uvicorn_and_gunicorn(project: pytest.Pytester) -> None:
    project.makeini(INI + '    ctxflask_app = "myapp:app"\n')
    project.makepyfile(LIVE_TESTS)
    result = project.runpytest("-v")
    result.assert_outcomes(passed=3)

    # The server is chosen on the command line too; each server is stopped after its test.
    result = project.runpytest("-v", "--ctxflask-server", "gunicorn", "-k", "default")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*AssertionError*gunicorn*"])
    ports = [int(port) for port in (project.path / "ports").read_text().split()]
    assert len(ports) == 2
    for port in ports:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_live_server_says_how_to_name_the_app(project: pytest.Pytester) -> None:
    project.makepyfile(
        broken="raise ImportError('a broken module')",
        test_live="""
        import pytest

        def test_unnamed(live_server):
            pass

        @pytest.mark.ctxflask_live_server(app="nosuchmodule:app")
        def test_missing(live_server):
            pass

        @pytest.mark.ctxflask_live_server(app="broken:app")
        def test_broken(live_server):
            pass
        """,
    )
    result = project.runpytest("-p", "no:randomly")
    result.stdout.fnmatch_lines(
        [
            "*live_server needs to know which app to serve*Fix: set ctxflask_app ="
            ' "module:app"*',
            "*live_server: the module 'nosuchmodule' of 'nosuchmodule:app' cannot be"
            " imported*",
            "*live_server: uvicorn serving 'broken:app' exited with status *",
            "*ImportError: a broken module*",
        ]
    )
    result.assert_outcomes(errors=3)


# -- pytest stays in the plugin -------------------------------------------------------------


def test_importing_ctxflask_and_its_test_clients_does_not_import_pytest() -> None:
    code = (
        "import sys, ctxflask, ctxflask.testing, ctxflask.cli; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pytest', '_pytest')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.stdout == "[]\n", result.stderr


def test_a_module_besides_the_plugin_importing_pytest_breaks_a_contract(
    tmp_path: Path,
) -> None:
    from tests.layering.test_layers import _copy_of_the_package
    from tests.layering.test_layers import _lint_imports

    copy = _copy_of_the_package(tmp_path)
    with (copy / "ctxflask" / "testing.py").open("a") as f:
        f.write("\nimport pytest  # noqa: E402\n")
    result = _lint_imports(copy, copy, ROOT)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Only the pytest plugin imports pytest" in result.stdout
    assert "ctxflask.testing -> pytest" in result.stdout


# -- installed from scratch ---------------------------------------------------------------


@pytest.mark.fresh_venv
def test_the_plugin_works_installed_in_a_fresh_venv(tmp_path: Path) -> None:
    """``pip install`` of this repository (not editable) into a new venv without the
    system's packages, then pytest in a separate project: the entry point loads the
    plugin and its fixtures work, with no conftest of this repository in sight."""
    started = time.monotonic()
    # As a project of its own would run: nothing of this one on the path.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PYTEST_") and k != "PYTHONPATH"
    }
    # A copy of what the package is built from, so that the build leaves nothing in
    # the working tree.
    source = tmp_path / "source"
    shutil.copytree(
        ROOT / "ctxflask",
        source / "ctxflask",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", str(venv)], env=env, check=True, timeout=120
    )
    python = venv / "bin" / "python"
    # Packages come from the machine's configured indexes and caches.
    install = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            str(source),
            "pytest",
            "httpx",
            "trio",
            "uvicorn",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    project = tmp_path / "project"
    project.mkdir()
    (project / "myapp.py").write_text(textwrap.dedent(APP_MODULE))
    (project / "conftest.py").write_text(textwrap.dedent(CONFTEST))
    (project / "pytest.ini").write_text(
        "[pytest]\nctxflask_context_guard = true\nctxflask_app = myapp:app\n"
    )
    (project / "test_app.py").write_text(
        textwrap.dedent(
            """
            import sys
            import pytest
            import ctxflask

            def test_installed_not_linked():
                assert ctxflask.__file__.startswith(sys.prefix)

            def test_client(client, ctxflask_entry_point):
                assert client.get("/via").text == ctxflask_entry_point

            @pytest.mark.anyio
            async def test_async_client(async_client, app):
                assert (await async_client.get("/")).text == "hello"
                assert app.extensions["events"] == ["before_serving"]

            def test_leak(app):
                app.app_context().push()

            def test_live_server(live_server):
                import httpx
                assert httpx.get(live_server.url + "/via").text == "asgi"
            """
        )
    )
    result = subprocess.run(
        [str(python), "-m", "pytest", "-v", "-p", "no:cacheprovider"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = result.stdout + result.stderr
    assert "ctxflask" in out.split("plugins:", 1)[1].splitlines()[0], out
    for line in (
        "test_app.py::test_installed_not_linked PASSED",
        "test_app.py::test_client[wsgi] PASSED",
        "test_app.py::test_client[asgi] PASSED",
        "test_app.py::test_async_client[asyncio] PASSED",
        "test_app.py::test_async_client[trio] PASSED",
        "test_app.py::test_leak FAILED",
        "test_app.py::test_live_server PASSED",
    ):
        assert line in out, out
    assert "test_leak left app context <AppContext of 'myapp'> pushed" in out, out
    assert result.returncode == 1, out
    print(f"fresh venv, install and run: {time.monotonic() - started:.1f} s")
