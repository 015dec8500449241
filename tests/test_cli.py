"""The ``ctxflask`` command line: app commands in an app context (sync and async callbacks),
app discovery, dotenv files, ``routes``, ``shell`` and ``run`` (WSGI and ``--asgi``, with
real servers on loopback)."""

from __future__ import annotations

import asyncio
import importlib
import os
import socket
import subprocess
import sys
import textwrap
import time
import typing as t
from pathlib import Path

import click
import httpx
import pytest
from click.testing import CliRunner

from ctxflask import Blueprint
from ctxflask import current_app
from ctxflask import Flask
from ctxflask import g
from ctxflask import has_app_context
from ctxflask.cli import AppGroup
from ctxflask.cli import cli
from ctxflask.cli import FlaskGroup
from ctxflask.cli import load_dotenv
from ctxflask.cli import NoAppException
from ctxflask.cli import routes_command
from ctxflask.cli import ScriptInfo
from ctxflask.cli import shell_command
from ctxflask.cli import with_appcontext
from ctxflask.testing import FlaskCliRunner
from tests.support import variant

HOST = "127.0.0.1"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0

ENV_NAMES = (
    "CTXFLASK_APP",
    "FLASK_APP",
    "CTXFLASK_DEBUG",
    "FLASK_DEBUG",
    "CTXFLASK_SKIP_DOTENV",
    "FLASK_SKIP_DOTENV",
    "CTXFLASK_RUN_PORT",
    "FLASK_RUN_PORT",
    "CTXFLASK_RUN_FROM_CLI",
    "PYTHONSTARTUP",
)


@pytest.fixture(autouse=True)
def process_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Commands change the process: dotenv files and ``--debug`` set environment
    variables, and apps are imported from ``tmp_path``. Start clean, restore after."""
    environ = dict(os.environ)
    path = list(sys.path)
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    yield
    os.environ.clear()
    os.environ.update(environ)
    sys.path[:] = path
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", "") or "").startswith(str(tmp_path)):
            del sys.modules[name]
    importlib.invalidate_caches()


def write(directory: Path, name: str, source: str) -> Path:
    """Write a module (``name`` is a relative file path) and return its path."""
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    importlib.invalidate_caches()
    return path


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder, as the working directory."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def listed_commands(help_text: str) -> list[str]:
    """The command names of a group's ``--help``."""
    section = help_text.split("Commands:\n", 1)[1]
    return [line.split()[0] for line in section.splitlines() if line.strip()]


def run_cli(*args: str, **kwargs: t.Any) -> click.testing.Result:
    """Run the ``ctxflask`` command itself."""
    return CliRunner().invoke(cli, list(args), **kwargs)


# -- app commands run in the app context ------------------------------------------------


def test_app_command_runs_in_the_app_context(app: Flask, kind: str) -> None:
    @app.cli.command("hello")
    @variant(kind)
    def hello() -> None:
        g.greeting = "hi"
        click.echo(f"{current_app.name} says {g.greeting}")

    result = app.test_cli_runner().invoke(args=["hello"])

    assert result.exit_code == 0, result.output
    assert result.output == "flask_test says hi\n"


def test_app_command_takes_options_and_arguments(app: Flask, kind: str) -> None:
    @app.cli.command("greet")
    @click.argument("who")
    @click.option("--times", type=int, default=1)
    @variant(kind)
    def greet(who: str, times: int) -> None:
        click.echo(" ".join([f"hello {who}"] * times))

    result = app.test_cli_runner().invoke(args=["greet", "world", "--times", "2"])

    assert result.exit_code == 0, result.output
    assert result.output == "hello world hello world\n"


def test_app_context_is_torn_down_after_the_command(app: Flask, kind: str) -> None:
    events: list[str] = []

    @app.teardown_appcontext
    @variant(kind)
    def teardown(error: BaseException | None) -> None:
        events.append(f"teardown {error!r}")

    @app.cli.command("work")
    @variant(kind)
    def work() -> None:
        events.append("command")

    result = app.test_cli_runner().invoke(args=["work"])

    assert result.exit_code == 0, result.output
    assert events == ["command", "teardown None"]


def test_async_command_runs_on_an_event_loop(app: Flask) -> None:
    """Specific to ``async def`` callbacks: they can await, on a running loop."""

    @app.cli.command("wait")
    async def wait() -> None:
        await asyncio.sleep(0)
        loop = asyncio.get_running_loop()
        click.echo(f"{current_app.name} {loop.is_running()}")

    result = app.test_cli_runner().invoke(args=["wait"])

    assert result.exit_code == 0, result.output
    assert result.output == "flask_test True\n"


def test_command_exception_fails_the_command(app: Flask, kind: str) -> None:
    @app.cli.command("fail")
    @variant(kind)
    def fail() -> None:
        raise click.ClickException("it broke")

    result = app.test_cli_runner().invoke(args=["fail"])

    assert result.exit_code == 1
    assert result.output == "Error: it broke\n"


def test_command_without_app_context_when_asked(app: Flask, kind: str) -> None:
    @app.cli.command("plain", with_appcontext=False)
    @variant(kind)
    def plain() -> None:
        click.echo(f"app context: {has_app_context()}")

    result = app.test_cli_runner().invoke(args=["plain"])

    assert result.exit_code == 0, result.output
    assert result.output == "app context: False\n"


def test_app_group_commands_run_in_the_app_context(app: Flask, kind: str) -> None:
    @app.cli.group()
    def db() -> None:
        pass

    @db.command("init")
    @variant(kind)
    def init() -> None:
        click.echo(f"init {current_app.name}")

    result = app.test_cli_runner().invoke(args=["db", "init"])

    assert isinstance(db, AppGroup)
    assert result.exit_code == 0, result.output
    assert result.output == "init flask_test\n"


def test_async_group_callback_runs_before_its_command(app: Flask) -> None:
    """Specific to ``async def``: a group's callback may be async too."""

    @app.cli.group()
    async def jobs() -> None:
        await asyncio.sleep(0)
        click.echo("group")

    @jobs.command("list")
    def list_jobs() -> None:
        click.echo("command")

    result = app.test_cli_runner().invoke(args=["jobs", "list"])

    assert result.exit_code == 0, result.output
    assert result.output == "group\ncommand\n"


def test_with_appcontext_loads_the_app_from_the_script_info(
    app: Flask, kind: str
) -> None:
    @click.command()
    @with_appcontext
    @variant(kind)
    def show() -> None:
        click.echo(current_app.name)

    result = CliRunner().invoke(show, obj=ScriptInfo(create_app=lambda: app))

    assert result.exit_code == 0, result.output
    assert result.output == "flask_test\n"


def test_async_click_command_added_to_app_cli_runs(app: Flask) -> None:
    """Specific to ``async def``: a plain click command with an async callback."""

    @click.command("ping")
    async def ping() -> None:
        await asyncio.sleep(0)
        click.echo("pong")

    app.cli.add_command(ping)
    result = app.test_cli_runner().invoke(args=["ping"])

    assert result.exit_code == 0, result.output
    assert result.output == "pong\n"


def test_app_cli_group_is_named_after_the_app(app: Flask) -> None:
    assert isinstance(app.cli, AppGroup)
    assert app.cli.name == "flask_test"


# -- blueprint commands -----------------------------------------------------------------


def test_blueprint_commands_are_grouped_under_its_name(app: Flask, kind: str) -> None:
    bp = Blueprint("users", __name__)

    @bp.cli.command("create")
    @click.argument("name")
    @variant(kind)
    def create(name: str) -> None:
        click.echo(f"created {name} in {current_app.name}")

    app.register_blueprint(bp)
    result = app.test_cli_runner().invoke(args=["users", "create", "ann"])

    assert isinstance(bp.cli, AppGroup)
    assert result.exit_code == 0, result.output
    assert result.output == "created ann in flask_test\n"


@pytest.mark.parametrize(
    ("bp_group", "register_options", "args"),
    [
        ("people", {}, ["people", "hello"]),
        ("people", {"cli_group": "members"}, ["members", "hello"]),
        (None, {}, ["hello"]),
        ("people", {"cli_group": None}, ["hello"]),
    ],
)
def test_blueprint_cli_group_names_or_merges_the_group(
    app: Flask,
    bp_group: str | None,
    register_options: dict[str, t.Any],
    args: list[str],
) -> None:
    bp = Blueprint("users", __name__, cli_group=bp_group)

    @bp.cli.command("hello")
    def hello() -> None:
        click.echo(f"hello from {current_app.name}")

    app.register_blueprint(bp, **register_options)
    result = app.test_cli_runner().invoke(args=args)

    assert result.exit_code == 0, result.output
    assert result.output == "hello from flask_test\n"


def test_blueprint_commands_are_listed_by_the_ctxflask_command(app: Flask) -> None:
    bp = Blueprint("users", __name__)

    @bp.cli.command("create")
    def create() -> None:
        pass

    app.register_blueprint(bp)
    result = CliRunner().invoke(FlaskGroup(create_app=lambda: app), ["--help"])

    assert result.exit_code == 0, result.output
    assert listed_commands(result.output) == ["routes", "run", "shell", "users"]


# -- the test runner --------------------------------------------------------------------


def test_cli_runner_is_a_flask_cli_runner_for_this_app(app: Flask) -> None:
    runner = app.test_cli_runner()

    assert isinstance(runner, FlaskCliRunner)
    assert runner.app is app


def test_cli_runner_class_can_be_replaced(app: Flask) -> None:
    class Runner(FlaskCliRunner):
        pass

    app.test_cli_runner_class = Runner

    runner = app.test_cli_runner()

    assert type(runner) is Runner
    assert runner.app is app


def test_cli_runner_invokes_another_command_with_the_app(app: Flask) -> None:
    @click.command()
    @with_appcontext
    def other() -> None:
        click.echo(f"other {current_app.name}")

    result = app.test_cli_runner().invoke(other)

    assert result.exit_code == 0, result.output
    assert result.output == "other flask_test\n"


# -- FlaskGroup -------------------------------------------------------------------------


def test_flask_group_with_create_app_runs_and_lists_app_commands(
    app: Flask, kind: str
) -> None:
    @app.cli.command("hello")
    def hello() -> None:
        click.echo(f"hello from {current_app.name}")

    @variant(kind)
    def create_app() -> Flask:
        return app

    group = FlaskGroup(create_app=create_app)

    result = CliRunner().invoke(group, ["hello"])
    assert result.exit_code == 0, result.output
    assert result.output == "hello from flask_test\n"

    listed = CliRunner().invoke(group, ["--help"])
    assert listed.exit_code == 0, listed.output
    assert listed_commands(listed.output) == ["hello", "routes", "run", "shell"]


def test_flask_group_pushes_the_app_context_for_plain_click_commands(
    app: Flask,
) -> None:
    @click.command("plain")
    def plain() -> None:
        click.echo(f"{current_app.name} {has_app_context()}")

    app.cli.add_command(plain)

    result = CliRunner().invoke(FlaskGroup(create_app=lambda: app), ["plain"])

    assert result.exit_code == 0, result.output
    assert result.output == "flask_test True\n"


def test_flask_group_without_default_commands(app: Flask) -> None:
    group = FlaskGroup(create_app=lambda: app, add_default_commands=False)

    result = CliRunner().invoke(group, ["routes"])

    assert result.exit_code == 2
    assert "No such command 'routes'" in result.output


def test_version_option_names_ctxflask_and_werkzeug() -> None:
    import importlib.metadata

    result = run_cli("--version")

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1] == f"ctxflask {importlib.metadata.version('ctxflask')}"
    assert lines[2] == f"Werkzeug {importlib.metadata.version('werkzeug')}"


DEBUG_APP = """\
    import click
    from ctxflask import Flask, current_app

    app = Flask(__name__)

    @app.cli.command("debug")
    def show_debug():
        click.echo(f"debug={current_app.debug}")
"""


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        ([], {}, "debug=False"),
        (["--debug"], {}, "debug=True"),
        (["--no-debug"], {"CTXFLASK_DEBUG": "1"}, "debug=False"),
        ([], {"CTXFLASK_DEBUG": "1"}, "debug=True"),
        ([], {"FLASK_DEBUG": "1"}, "debug=True"),
    ],
)
def test_debug_option_and_environment_set_debug_mode(
    project: Path, args: list[str], env: dict[str, str], expected: str
) -> None:
    write(project, "debugapp.py", DEBUG_APP)

    result = run_cli("--app", "debugapp", *args, "debug", env=env)

    assert result.exit_code == 0, result.output
    assert result.output == f"{expected}\n"


def test_help_still_lists_builtin_commands_when_the_app_fails_to_load(
    project: Path,
) -> None:
    result = run_cli("--app", "no_such_module", "--help")

    assert result.exit_code == 0, result.output
    assert "Could not import 'no_such_module'" in result.stderr
    assert listed_commands(result.stdout) == ["routes", "run", "shell"]


def test_unknown_command_reports_the_missing_app(project: Path) -> None:
    result = run_cli("greet")

    assert result.exit_code == 2
    assert "Could not locate a ctxflask application" in result.stderr
    assert "No such command 'greet'" in result.stderr


def test_app_run_is_ignored_while_a_command_runs(project: Path) -> None:
    write(
        project,
        "runs_at_import.py",
        """\
        from ctxflask import Flask

        app = Flask(__name__)
        app.run()  # at import, without a __main__ guard
        """,
    )

    result = run_cli("--app", "runs_at_import", "routes")

    assert result.exit_code == 0, result.output
    assert "Ignoring a call to 'app.run()'" in result.stderr
    assert "static" in result.stdout


# -- app discovery ----------------------------------------------------------------------

NAMED_APPS = """\
    from ctxflask import Flask

    app = Flask("named_app")
    other = Flask("other_app")
"""
APPLICATION = """\
    from ctxflask import Flask

    application = Flask("the_application")
"""
SINGLE_APP = """\
    from ctxflask import Flask

    my_site = Flask("single_app")
"""
CREATE_APP = """\
    from ctxflask import Flask

    def create_app():
        return Flask("created_app")
"""
MAKE_APP = """\
    from ctxflask import Flask

    def make_app():
        return Flask("made_app")
"""
ASYNC_CREATE_APP = """\
    import asyncio
    from ctxflask import Flask

    async def create_app():
        await asyncio.sleep(0)
        return Flask("async_created_app")
"""
FACTORY_WITH_ARGS = """\
    from ctxflask import Flask

    def create_app(name, *, suffix=""):
        return Flask(name + suffix)

    not_an_app = "a string"
    failing = None

    def broken_factory():
        raise TypeError("bug inside the factory")
"""


@pytest.mark.parametrize(
    ("source", "import_path", "expected"),
    [
        (NAMED_APPS, "mod", "named_app"),
        (NAMED_APPS, "mod:other", "other_app"),
        (APPLICATION, "mod", "the_application"),
        (SINGLE_APP, "mod", "single_app"),
        (CREATE_APP, "mod", "created_app"),
        (MAKE_APP, "mod", "made_app"),
        (CREATE_APP, "mod:create_app", "created_app"),
        (CREATE_APP, "mod:create_app()", "created_app"),
        (ASYNC_CREATE_APP, "mod", "async_created_app"),
        (FACTORY_WITH_ARGS, "mod:create_app('dev')", "dev"),
        (FACTORY_WITH_ARGS, "mod:create_app('dev', suffix='_app')", "dev_app"),
        (NAMED_APPS, "mod.py", "named_app"),
        (NAMED_APPS, "mod.py:other", "other_app"),
    ],
)
def test_app_is_found_by_import_path(
    project: Path, source: str, import_path: str, expected: str
) -> None:
    write(project, "mod.py", source)

    app = ScriptInfo(app_import_path=import_path).load_app()

    assert isinstance(app, Flask)
    assert app.import_name == expected


@pytest.mark.parametrize(
    ("source", "import_path", "message"),
    [
        (
            NAMED_APPS.replace("app =", "first ="),
            "mod",
            "Found 2 applications in module 'mod'",
        ),
        ("x = 1\n", "mod", "Found no application or factory in module 'mod'"),
        (FACTORY_WITH_ARGS, "mod", "Could not call the app factory 'create_app'"),
        (
            FACTORY_WITH_ARGS,
            "mod:create_app(1, 2, 3)",
            "Could not call the app factory 'create_app(1, 2, 3)'",
        ),
        (FACTORY_WITH_ARGS, "mod:missing", "Module 'mod' has no attribute 'missing'"),
        (
            FACTORY_WITH_ARGS,
            "mod:not_an_app",
            "'mod:not_an_app' is a str, not a ctxflask application",
        ),
        (FACTORY_WITH_ARGS, "mod:create_app(", "Could not parse 'create_app('"),
        (FACTORY_WITH_ARGS, "mod:create_app(len)", "must be Python literals"),
        (FACTORY_WITH_ARGS, "mod:a.b()", "must be a plain name"),
        (FACTORY_WITH_ARGS, "mod:not_an_app()", "is not a function"),
        (FACTORY_WITH_ARGS, "nope", "Could not import 'nope': no such module"),
    ],
)
def test_app_discovery_errors_explain_the_fix(
    project: Path, source: str, import_path: str, message: str
) -> None:
    write(project, "mod.py", source)

    with pytest.raises(NoAppException) as exc_info:
        ScriptInfo(app_import_path=import_path).load_app()

    assert message in exc_info.value.format_message()


def test_type_error_inside_a_factory_propagates(project: Path) -> None:
    write(project, "mod.py", FACTORY_WITH_ARGS)

    with pytest.raises(TypeError, match="bug inside the factory"):
        ScriptInfo(app_import_path="mod:broken_factory").load_app()


def test_import_error_inside_the_module_is_shown_with_its_traceback(
    project: Path,
) -> None:
    write(project, "broken.py", "import no_such_dependency_here\n")

    with pytest.raises(NoAppException) as exc_info:
        ScriptInfo(app_import_path="broken").load_app()

    message = exc_info.value.format_message()
    assert "Importing 'broken' raised an ImportError" in message
    assert "No module named 'no_such_dependency_here'" in message


def test_app_is_found_by_file_path_outside_the_working_directory(
    tmp_path: Path, project: Path
) -> None:
    path = write(tmp_path, "elsewhere/site_app.py", SINGLE_APP)

    app = ScriptInfo(app_import_path=str(path)).load_app()

    assert app.import_name == "single_app"


@pytest.mark.parametrize("import_path", ["shop", "shop/", "shop/__init__.py"])
def test_app_is_found_in_a_package(project: Path, import_path: str) -> None:
    write(project, "shop/__init__.py", SINGLE_APP)

    app = ScriptInfo(app_import_path=import_path).load_app()

    assert app.import_name == "single_app"
    assert sys.modules["shop"].my_site is app


@pytest.mark.parametrize("import_path", ["shop.views", "shop/views.py"])
def test_app_is_found_in_a_package_module_by_its_full_name(
    project: Path, import_path: str
) -> None:
    write(project, "shop/__init__.py", "")
    write(project, "shop/views.py", APPLICATION)

    app = ScriptInfo(app_import_path=import_path).load_app()

    assert app.import_name == "the_application"
    assert sys.modules["shop.views"].application is app


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"wsgi.py": SINGLE_APP, "app.py": APPLICATION}, "single_app"),
        ({"app.py": APPLICATION}, "the_application"),
    ],
)
def test_app_is_found_in_wsgi_py_then_app_py(
    project: Path, files: dict[str, str], expected: str
) -> None:
    for name, source in files.items():
        write(project, name, source)

    assert ScriptInfo().load_app().import_name == expected


def test_no_app_anywhere_explains_the_ways_to_give_one(project: Path) -> None:
    with pytest.raises(NoAppException) as exc_info:
        ScriptInfo().load_app()

    message = exc_info.value.format_message()
    assert "Could not locate a ctxflask application" in message
    assert "--app" in message
    assert "CTXFLASK_APP" in message


def test_script_info_loads_the_app_once(project: Path) -> None:
    write(project, "mod.py", CREATE_APP)
    info = ScriptInfo(app_import_path="mod")

    assert info.load_app() is info.load_app()


ROUTES_PROBE = """\
    import click
    from ctxflask import Flask, current_app

    app = Flask("{name}")

    @app.cli.command("which")
    def which():
        click.echo(current_app.name)
"""


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--app", "first"], {}, "first_app"),
        ([], {"CTXFLASK_APP": "first"}, "first_app"),
        ([], {"FLASK_APP": "second"}, "second_app"),
        ([], {"CTXFLASK_APP": "first", "FLASK_APP": "second"}, "first_app"),
        (["--app", "second"], {"CTXFLASK_APP": "first"}, "second_app"),
        (["-A", "second"], {}, "second_app"),
    ],
)
def test_app_option_and_environment_variables_choose_the_app(
    project: Path, args: list[str], env: dict[str, str], expected: str
) -> None:
    write(project, "first.py", ROUTES_PROBE.format(name="first_app"))
    write(project, "second.py", ROUTES_PROBE.format(name="second_app"))

    result = run_cli(*args, "which", env=env)

    assert result.exit_code == 0, result.output
    assert result.output == f"{expected}\n"


# -- dotenv files -----------------------------------------------------------------------


def test_dotenv_files_set_variables_by_precedence(project: Path) -> None:
    (project / ".flaskenv").write_text(
        "A=flaskenv\nB=flaskenv\nC=flaskenv\nD=flaskenv\n"
    )
    (project / ".ctxflaskenv").write_text(
        "B=ctxflaskenv\nC=ctxflaskenv\nD=ctxflaskenv\n"
    )
    (project / ".env").write_text("C=env\nD=env\n")
    (project / "custom.env").write_text("D=custom\n")

    assert load_dotenv("custom.env") is True

    values = {name: os.environ[name] for name in "ABCD"}
    assert values == {"A": "flaskenv", "B": "ctxflaskenv", "C": "env", "D": "custom"}


def test_dotenv_does_not_override_the_environment(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALREADY_SET", "from the environment")
    (project / ".env").write_text("ALREADY_SET=from the file\n")

    load_dotenv()

    assert os.environ["ALREADY_SET"] == "from the environment"


def test_dotenv_file_is_found_in_a_parent_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("FROM_PARENT=yes\n")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")

    load_dotenv()

    assert os.environ["FROM_PARENT"] == "yes"


def test_dotenv_without_files_loads_nothing(project: Path) -> None:
    assert load_dotenv() is False


def test_dotenv_defaults_can_be_left_out(project: Path) -> None:
    (project / ".env").write_text("DEFAULT_FILE=yes\n")
    (project / "given.env").write_text("GIVEN_FILE=yes\n")

    load_dotenv("given.env", load_defaults=False)

    assert os.environ["GIVEN_FILE"] == "yes"
    assert "DEFAULT_FILE" not in os.environ


ENV_PROBE = """\
    import os
    import click
    from ctxflask import Flask

    app = Flask(__name__)

    @app.cli.command("env")
    @click.argument("name")
    def show_env(name):
        click.echo(os.environ.get(name, "<unset>"))
"""


def test_command_sees_dotenv_variables(project: Path) -> None:
    write(project, "envapp.py", ENV_PROBE)
    (project / ".env").write_text("GREETING=hello from .env\n")

    result = run_cli("--app", "envapp", "env", "GREETING")

    assert result.exit_code == 0, result.output
    assert result.output == "hello from .env\n"


@pytest.mark.parametrize(
    ("filename", "variable"),
    [
        (".flaskenv", "FLASK_APP"),
        (".ctxflaskenv", "CTXFLASK_APP"),
        (".env", "FLASK_APP"),
    ],
)
def test_dotenv_file_can_name_the_app(
    project: Path, filename: str, variable: str
) -> None:
    write(project, "envapp.py", ENV_PROBE)
    (project / filename).write_text(f"{variable}=envapp\nVALUE=found\n")

    result = run_cli("env", "VALUE")

    assert result.exit_code == 0, result.output
    assert result.output == "found\n"


def test_env_file_option_takes_precedence_over_default_files(project: Path) -> None:
    write(project, "envapp.py", ENV_PROBE)
    (project / ".env").write_text("VALUE=default\n")
    (project / "prod.env").write_text("VALUE=given\n")

    result = run_cli("-e", "prod.env", "--app", "envapp", "env", "VALUE")

    assert result.exit_code == 0, result.output
    assert result.output == "given\n"


def test_skip_dotenv_variable_turns_default_files_off(project: Path) -> None:
    write(project, "envapp.py", ENV_PROBE)
    (project / ".env").write_text("VALUE=default\n")

    result = run_cli(
        "--app", "envapp", "env", "VALUE", env={"CTXFLASK_SKIP_DOTENV": "1"}
    )

    assert result.exit_code == 0, result.output
    assert result.output == "<unset>\n"


def test_dotenv_files_without_python_dotenv_print_a_tip(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "dotenv", None)  # import dotenv fails
    (project / ".env").write_text("VALUE=x\n")
    (project / ".flaskenv").write_text("OTHER=x\n")

    assert load_dotenv() is False

    err = capsys.readouterr().err
    assert "python-dotenv is not installed" in err
    assert ".env" in err
    assert ".flaskenv" in err
    assert "VALUE" not in os.environ


def test_env_file_option_without_python_dotenv_is_an_error(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "dotenv", None)
    (project / "given.env").write_text("VALUE=x\n")

    result = run_cli("-e", "given.env", "routes")

    assert result.exit_code == 2
    assert "python-dotenv is needed to load an env file" in result.stderr


# -- routes -----------------------------------------------------------------------------


@pytest.fixture
def routed_app(app: Flask) -> Flask:
    @app.route("/")
    def index() -> str:
        return ""

    @app.post("/items")
    def create_item() -> str:
        return ""

    @app.route("/items/<int:item_id>", methods=["GET", "PUT"])
    def item(item_id: int) -> str:
        return ""

    return app


def table(*rows: tuple[str, ...]) -> str:
    """The ``routes`` output for these rows: columns padded to their widest cell."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [rows[0], tuple("-" * w for w in widths), *rows[1:]]
    return "".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) + "\n"
        for line in lines
    )


HEADER = ("Endpoint", "Methods", "Rule")


def test_routes_lists_endpoints_methods_and_rules_by_endpoint(
    routed_app: Flask,
) -> None:
    result = routed_app.test_cli_runner().invoke(routes_command, [])

    assert result.exit_code == 0, result.output
    assert result.output == table(
        HEADER,
        ("create_item", "POST", "/items"),
        ("index", "GET", "/"),
        ("item", "GET, PUT", "/items/<int:item_id>"),
        ("static", "GET", "/static/<path:filename>"),
    )


def test_routes_sorted_by_rule(routed_app: Flask) -> None:
    result = routed_app.test_cli_runner().invoke(routes_command, ["--sort", "rule"])

    assert result.exit_code == 0, result.output
    assert result.output == table(
        HEADER,
        ("index", "GET", "/"),
        ("create_item", "POST", "/items"),
        ("item", "GET, PUT", "/items/<int:item_id>"),
        ("static", "GET", "/static/<path:filename>"),
    )


def test_routes_sorted_by_methods_keep_registration_order_for_ties(
    routed_app: Flask,
) -> None:
    result = routed_app.test_cli_runner().invoke(routes_command, ["-s", "methods"])

    assert result.exit_code == 0, result.output
    assert result.output == table(
        HEADER,
        ("static", "GET", "/static/<path:filename>"),
        ("index", "GET", "/"),
        ("item", "GET, PUT", "/items/<int:item_id>"),
        ("create_item", "POST", "/items"),
    )


def test_routes_in_match_order(routed_app: Flask) -> None:
    result = routed_app.test_cli_runner().invoke(routes_command, ["--sort", "match"])

    assert result.exit_code == 0, result.output
    endpoints = [line.split()[0] for line in result.output.splitlines()[2:]]
    assert endpoints == [rule.endpoint for rule in routed_app.url_map.iter_rules()]


def test_routes_with_all_methods(routed_app: Flask) -> None:
    result = routed_app.test_cli_runner().invoke(routes_command, ["--all-methods"])

    assert result.exit_code == 0, result.output
    assert result.output == table(
        HEADER,
        ("create_item", "OPTIONS, POST", "/items"),
        ("index", "GET, HEAD, OPTIONS", "/"),
        ("item", "GET, HEAD, OPTIONS, PUT", "/items/<int:item_id>"),
        ("static", "GET, HEAD, OPTIONS", "/static/<path:filename>"),
    )


def test_routes_show_subdomains_when_a_rule_has_one() -> None:
    app = Flask("subdomains", static_folder=None)
    app.config["SERVER_NAME"] = "example.test"

    @app.route("/", subdomain="api")
    def api() -> str:
        return ""

    @app.route("/home")
    def home() -> str:
        return ""

    result = app.test_cli_runner().invoke(routes_command, ["--sort", "domain"])

    assert result.exit_code == 0, result.output
    assert result.output == table(
        ("Endpoint", "Methods", "Subdomain", "Rule"),
        ("home", "GET", "", "/home"),
        ("api", "GET", "api", "/"),
    )


def test_routes_show_hosts_with_host_matching() -> None:
    app = Flask("hosts", static_folder=None, host_matching=True)

    @app.route("/", host="a.example.test")
    def a() -> str:
        return ""

    result = app.test_cli_runner().invoke(routes_command, [])

    assert result.exit_code == 0, result.output
    assert result.output == table(
        ("Endpoint", "Methods", "Host", "Rule"), ("a", "GET", "a.example.test", "/")
    )


def test_routes_of_an_app_without_routes() -> None:
    app = Flask("empty", static_folder=None)

    result = app.test_cli_runner().invoke(routes_command, [])

    assert result.exit_code == 0, result.output
    assert result.output == "No routes were registered.\n"


def test_routes_through_the_ctxflask_command(project: Path) -> None:
    write(
        project,
        "website.py",
        """\
        from ctxflask import Flask

        app = Flask(__name__, static_folder=None)

        @app.get("/hello")
        async def hello():
            return "hi"
        """,
    )

    result = run_cli("--app", "website", "routes")

    assert result.exit_code == 0, result.output
    assert result.output == table(HEADER, ("hello", "GET", "/hello"))


# -- shell ------------------------------------------------------------------------------


@pytest.fixture
def interact(monkeypatch: pytest.MonkeyPatch) -> dict[str, t.Any]:
    """Replace ``code.interact``; record its arguments and the app it ran in."""
    import code

    seen: dict[str, t.Any] = {}

    def fake_interact(banner: str, local: dict[str, t.Any]) -> None:
        seen.update(banner=banner, local=local, current=current_app.name)

    monkeypatch.setattr(code, "interact", fake_interact)
    # The interactive hook would set up readline history for the whole process.
    monkeypatch.delattr(sys, "__interactivehook__", raising=False)
    return seen


def test_shell_runs_in_the_app_context_with_its_shell_context(
    app: Flask, kind: str, interact: dict[str, t.Any]
) -> None:
    @app.shell_context_processor
    @variant(kind)
    def extra() -> dict[str, t.Any]:
        return {"answer": 42, "app_name": current_app.name}

    result = app.test_cli_runner().invoke(shell_command)

    assert result.exit_code == 0, result.output
    local = interact["local"]
    assert local["app"] is app
    assert local["g"] is g
    assert local["answer"] == 42
    assert local["app_name"] == "flask_test"
    assert interact["current"] == "flask_test"
    assert f"App: {app.import_name}" in interact["banner"]
    assert f"Instance: {app.instance_path}" in interact["banner"]


def test_shell_runs_the_pythonstartup_script_first(
    app: Flask,
    interact: dict[str, t.Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    startup = tmp_path / "startup.py"
    startup.write_text("from_startup = 'yes'\napp = 'replaced by the shell context'\n")
    monkeypatch.setenv("PYTHONSTARTUP", str(startup))

    result = app.test_cli_runner().invoke(shell_command)

    assert result.exit_code == 0, result.output
    assert interact["local"]["from_startup"] == "yes"
    assert interact["local"]["app"] is app


def test_make_shell_context_merges_processors_in_order(app: Flask, kind: str) -> None:
    @app.shell_context_processor
    @variant(kind)
    def first() -> dict[str, t.Any]:
        return {"a": 1, "b": 1}

    @app.shell_context_processor
    @variant(kind)
    def second() -> dict[str, t.Any]:
        return {"b": 2}

    with app.app_context():
        context = app.make_shell_context()

    assert context == {"app": app, "g": g, "a": 1, "b": 2}


# -- run --------------------------------------------------------------------------------


def test_run_help_lists_its_options() -> None:
    result = run_cli("run", "--help")

    assert result.exit_code == 0, result.output
    for option in (
        "--host",
        "--port",
        "--debug / --no-debug",
        "--reload / --no-reload",
        "--debugger / --no-debugger",
        "--with-threads / --without-threads",
        "--cert",
        "--extra-files",
        "--asgi",
    ):
        assert option in result.output


@pytest.fixture
def run_simple(monkeypatch: pytest.MonkeyPatch) -> list[tuple[t.Any, ...]]:
    """Record werkzeug's ``run_simple`` calls instead of serving."""
    import werkzeug.serving

    calls: list[tuple[t.Any, ...]] = []

    def fake(host: str, port: int, app: t.Any, **options: t.Any) -> None:
        calls.append((host, port, app, options))

    monkeypatch.setattr(werkzeug.serving, "run_simple", fake)
    return calls


SERVED_APP = """\
    from ctxflask import Flask

    app = Flask(__name__)

    @app.get("/")
    def index():
        return "sync view"

    @app.get("/async")
    async def async_index():
        return "async view"
"""


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (
            [],
            {},
            {"use_reloader": False, "use_debugger": False, "threaded": True},
        ),
        (
            ["--debug"],
            {},
            {"use_reloader": True, "use_debugger": True, "threaded": True},
        ),
        (
            ["--debug", "--no-reload", "--no-debugger", "--without-threads"],
            {},
            {"use_reloader": False, "use_debugger": False, "threaded": False},
        ),
        (
            ["--reload", "--debugger"],
            {},
            {"use_reloader": True, "use_debugger": True, "threaded": True},
        ),
        (
            [],
            {"CTXFLASK_DEBUG": "1"},
            {"use_reloader": True, "use_debugger": True, "threaded": True},
        ),
    ],
)
def test_run_serves_the_app_with_werkzeug(
    project: Path,
    run_simple: list[tuple[t.Any, ...]],
    args: list[str],
    env: dict[str, str],
    expected: dict[str, bool],
) -> None:
    write(project, "served.py", SERVED_APP)

    result = run_cli("--app", "served", "run", *args, env=env)

    assert result.exit_code == 0, result.output
    [(host, port, app, options)] = run_simple
    assert (host, port) == ("127.0.0.1", 5000)
    assert app is sys.modules["served"].app
    assert {name: options[name] for name in expected} == expected
    assert " * Serving ctxflask app 'served'" in result.output


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--host", "0.0.0.0", "--port", "8123"], {}, ("0.0.0.0", 8123)),
        (["-h", "localhost", "-p", "8124"], {}, ("localhost", 8124)),
        ([], {"CTXFLASK_RUN_PORT": "8125"}, ("127.0.0.1", 8125)),
        ([], {"FLASK_RUN_PORT": "8126"}, ("127.0.0.1", 8126)),
        (
            [],
            {"CTXFLASK_RUN_PORT": "8127", "FLASK_RUN_PORT": "8128"},
            ("127.0.0.1", 8127),
        ),
    ],
)
def test_run_host_and_port_from_options_or_environment(
    project: Path,
    run_simple: list[tuple[t.Any, ...]],
    args: list[str],
    env: dict[str, str],
    expected: tuple[str, int],
) -> None:
    write(project, "served.py", SERVED_APP)

    result = run_cli("--app", "served", "run", *args, env=env)

    assert result.exit_code == 0, result.output
    assert run_simple[0][:2] == expected


def test_run_fails_when_the_app_cannot_load(
    project: Path, run_simple: list[tuple[t.Any, ...]]
) -> None:
    result = run_cli("--app", "missing_app_module", "run")

    assert result.exit_code == 2
    assert "Could not import 'missing_app_module'" in result.stderr
    assert run_simple == []


@pytest.fixture
def uvicorn_run(
    monkeypatch: pytest.MonkeyPatch,
) -> list[tuple[t.Any, dict[str, t.Any]]]:
    """Record ``uvicorn.run`` calls instead of serving."""
    import uvicorn

    calls: list[tuple[t.Any, dict[str, t.Any]]] = []

    def fake(app: t.Any, **options: t.Any) -> None:
        calls.append((app, options))

    monkeypatch.setattr(uvicorn, "run", fake)
    return calls


def test_run_asgi_serves_app_asgi_with_uvicorn(
    project: Path, uvicorn_run: list[tuple[t.Any, dict[str, t.Any]]]
) -> None:
    write(project, "served.py", SERVED_APP)

    result = run_cli("--app", "served", "run", "--asgi", "--port", "8200")

    assert result.exit_code == 0, result.output
    [(target, options)] = uvicorn_run
    assert target is sys.modules["served"].app.asgi
    assert (options["host"], options["port"]) == ("127.0.0.1", 8200)
    assert options.get("reload", False) is False


def test_run_asgi_reload_gives_uvicorn_an_import_string_that_loads_the_app(
    project: Path, uvicorn_run: list[tuple[t.Any, dict[str, t.Any]]]
) -> None:
    from uvicorn.importer import import_from_string

    write(project, "served.py", SERVED_APP)

    result = run_cli("--app", "served", "--debug", "run", "--asgi")

    assert result.exit_code == 0, result.output
    [(target, options)] = uvicorn_run
    assert isinstance(target, str)
    assert options["reload"] is True
    assert options["factory"] is True
    # What uvicorn's reloader does in each new server process:
    factory = import_from_string(target)
    assert factory() is sys.modules["served"].app.asgi


def test_run_asgi_reload_needs_an_import_path(
    app: Flask, uvicorn_run: list[tuple[t.Any, dict[str, t.Any]]]
) -> None:
    group = FlaskGroup(create_app=lambda: app)

    result = CliRunner().invoke(group, ["run", "--asgi", "--reload"])

    assert result.exit_code == 2
    assert "needs the app's import path" in result.stderr
    assert uvicorn_run == []


def test_run_asgi_refuses_the_werkzeug_debugger(
    project: Path, uvicorn_run: list[tuple[t.Any, dict[str, t.Any]]]
) -> None:
    write(project, "served.py", SERVED_APP)

    result = run_cli("--app", "served", "run", "--asgi", "--debugger")

    assert result.exit_code == 2
    assert "'--debugger' is WSGI-only" in result.stderr
    assert uvicorn_run == []


def test_run_asgi_without_uvicorn_explains_the_fix(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn fails
    write(project, "served.py", SERVED_APP)

    result = run_cli("--app", "served", "run", "--asgi")

    assert result.exit_code == 1
    assert "uvicorn is not installed" in result.stderr
    assert "pip install uvicorn" in result.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def serve_and_get(project: Path, *run_args: str) -> dict[str, tuple[int, str]]:
    """Start ``python -m ctxflask --app served run`` on a free port, GET ``/`` and
    ``/async`` once it answers, stop it; return each path's status and body."""
    write(project, "served.py", SERVED_APP)
    port = free_port()
    log = (project / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "ctxflask", "--app", "served", "run"),
            *("--host", HOST, "--port", str(port), "--no-reload", *run_args),
        ],
        cwd=project,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=5) as http:
            while True:
                if proc.poll() is not None:
                    pytest.fail(
                        f"server exited ({proc.returncode}):"
                        f" {(project / 'server.log').read_text()}"
                    )
                try:
                    first = http.get("/")
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        pytest.fail("server did not answer in time")
                    time.sleep(0.05)  # polling for the server, not timing the app
            second = http.get("/async")
        return {
            "/": (first.status_code, first.text),
            "/async": (second.status_code, second.text),
        }
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_run_really_serves_wsgi_with_werkzeug(project: Path) -> None:
    answers = serve_and_get(project)

    assert answers == {"/": (200, "sync view"), "/async": (200, "async view")}
    assert "Serving ctxflask app 'served'" in (project / "server.log").read_text()


def test_run_asgi_really_serves_with_uvicorn(project: Path) -> None:
    answers = serve_and_get(project, "--asgi")

    assert answers == {"/": (200, "sync view"), "/async": (200, "async view")}
    assert "Uvicorn running on" in (project / "server.log").read_text()


def test_python_m_ctxflask_help(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ctxflask", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Usage: python -m ctxflask [OPTIONS] COMMAND")
    assert listed_commands(proc.stdout) == ["routes", "run", "shell"]


FLASK_APP_SOURCE = """\
import click
from flask import Flask
from flask import current_app

app = Flask(__name__)


@app.get("/hi")
def hi():
    return "hi"


@app.cli.command()
def which():
    click.echo(f"{type(current_app._get_current_object()).__module__}")
"""


def _ctxflask(
    folder: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CTXFLASK_APP", "CTXFLASK_AS_FLASK")
    }
    return subprocess.run(
        [sys.executable, "-m", "ctxflask", *args],
        cwd=folder,
        env={**environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "env"),
    [
        pytest.param(["--as-flask"], {}, id="option"),
        pytest.param([], {"CTXFLASK_AS_FLASK": "1"}, id="environment"),
    ],
)
def test_as_flask_serves_an_app_written_for_flask(
    tmp_path: Path, args: list[str], env: dict[str, str]
) -> None:
    # In a process of its own: the switch changes what `import flask` gives for good.
    (tmp_path / "flaskapp.py").write_text(FLASK_APP_SOURCE)
    which = _ctxflask(tmp_path, *args, "--app", "flaskapp", "which", env=env)
    assert which.returncode == 0, which.stderr
    assert which.stdout.strip() == "ctxflask.app"
    routes = _ctxflask(tmp_path, *args, "--app", "flaskapp", "routes", env=env)
    assert routes.returncode == 0, routes.stderr
    assert "/hi" in routes.stdout


def test_without_as_flask_an_app_written_for_flask_is_not_found(tmp_path: Path) -> None:
    (tmp_path / "flaskapp.py").write_text(FLASK_APP_SOURCE)
    proc = _ctxflask(tmp_path, "--app", "flaskapp", "which")
    assert proc.returncode != 0
    assert "has a Flask application, 'app', made by Flask itself" in proc.stderr
    assert "ctxflask --as-flask" in proc.stderr
