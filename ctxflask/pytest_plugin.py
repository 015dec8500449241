"""The pytest plugin of ctxflask, loaded by pytest through the ``pytest11`` entry point.

Given the project's own ``app`` fixture (a :class:`ctxflask.Flask`), it provides:

- ``client``: the test client, once through the WSGI entry point and once through the
  ASGI one (test ids ``wsgi`` and ``asgi``); ``@pytest.mark.ctxflask_entry("asgi")`` pins
  a test to one, the ``ctxflask_entry_points`` ini option sets the project's default;
- ``serving``: ``app.asgi`` started through the lifespan protocol (``before_serving``),
  stopped after the test (background tasks drained, ``after_serving``);
- ``async_client``: an ``httpx.AsyncClient`` over ``app.asgi``, while serving;
- ``websocket_client``: connects WebSockets to ``app.asgi``, while serving;
- ``live_server``: a real server (uvicorn, or gunicorn) on 127.0.0.1 in a process of
  its own, serving the app named by the ``ctxflask_app`` ini option;
- ``ctxflask_context_guard``: fails a test that leaves a context pushed (for every test
  with the ``ctxflask_context_guard`` ini option);
- the ``ctxflask_as_flask`` ini option: ``ctxflask.install_as_flask()`` before the
  conftest files and test modules are imported.

The async fixtures run under anyio's pytest plugin (``@pytest.mark.anyio``), on asyncio
and trio. Nothing else in ctxflask imports pytest.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import typing as t
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from collections.abc import Iterator

import pytest

import ctxflask
from ctxflask.globals import _cv_app
from ctxflask.globals import _cv_request
from ctxflask.testing import asgi_client
from ctxflask.testing import FlaskClient
from ctxflask.testing import serving as _serving
from ctxflask.testing import TestWebSocket
from ctxflask.testing import websocket_connect

if t.TYPE_CHECKING:
    import httpx

ENTRY_POINTS = ("wsgi", "asgi")
SERVERS = ("uvicorn", "gunicorn")

_GUARD_FIXTURE = "ctxflask_context_guard"
_ENTRY_FIXTURE = "ctxflask_entry_point"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ctxflask")
    parser.addini(
        "ctxflask_as_flask",
        type="bool",
        default=False,
        help="ctxflask: call ctxflask.install_as_flask() before conftest files and test"
        " modules are imported, so that 'import flask' and Flask's extensions get"
        " ctxflask.",
    )
    parser.addini(
        "ctxflask_context_guard",
        type="bool",
        default=False,
        help="ctxflask: fail every test that leaves an application or request context"
        " pushed (the ctxflask_context_guard fixture for all tests).",
    )
    parser.addini(
        "ctxflask_entry_points",
        type="args",
        default=list(ENTRY_POINTS),
        help="ctxflask: the entry points the client fixture runs each test through:"
        " wsgi, asgi or both (default: wsgi asgi).",
    )
    parser.addini(
        "ctxflask_app",
        default="",
        help="ctxflask: the app the live_server fixture serves, as 'module:name' (a"
        " Flask object) or 'module:factory()' (a function returning one); the module"
        " is imported from the tests' sys.path.",
    )
    parser.addini(
        "ctxflask_server",
        default="uvicorn",
        help="ctxflask: the server of the live_server fixture: uvicorn (ASGI, through"
        " app.asgi) or gunicorn (WSGI, sync worker). Default: uvicorn.",
    )
    parser.addini(
        "ctxflask_live_server_timeout",
        default="20",
        help="ctxflask: seconds the live_server fixture waits for its server to answer"
        " (default 20).",
    )
    group.addoption(
        "--ctxflask-app",
        default=None,
        help="the app of the live_server fixture (overrides the ctxflask_app ini option).",
    )
    group.addoption(
        "--ctxflask-server",
        default=None,
        choices=SERVERS,
        help="the server of the live_server fixture (overrides the ctxflask_server ini"
        " option).",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    # Before any conftest is imported: a conftest is where extensions get imported.
    _install_as_flask(early_config)


def pytest_configure(config: pytest.Config) -> None:
    # Again for a plugin loaded late (``-p`` after start-up, pytester): idempotent.
    _install_as_flask(config)
    config.addinivalue_line(
        "markers",
        "ctxflask_entry(*entry_points): run the test's client fixture only through the"
        " given entry points, 'wsgi' and/or 'asgi'.",
    )
    config.addinivalue_line(
        "markers",
        "ctxflask_live_server(server=None, app=None): the live_server fixture's server"
        " ('uvicorn' or 'gunicorn') and app ('module:name' or 'module:factory()') for"
        " this test.",
    )


def _install_as_flask(config: pytest.Config) -> None:
    if not config.getini("ctxflask_as_flask"):
        return
    try:
        ctxflask.install_as_flask()
    except RuntimeError as e:
        raise pytest.UsageError(f"ctxflask_as_flask = true: {e}") from e


# -- client: through both entry points ----------------------------------------------------


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Only where the plugin's client (or the entry-point fixture) is in use: a project's
    # own client fixture that does not ask for it is left alone.
    if _ENTRY_FIXTURE not in metafunc.fixturenames:
        return
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else mark.kwargs.get("argnames", ())
        if isinstance(names, str):
            names = [name.strip() for name in names.split(",")]
        if _ENTRY_FIXTURE in names:
            return  # the test parametrizes it itself
    marker = metafunc.definition.get_closest_marker("ctxflask_entry")
    if marker is not None:
        chosen = list(marker.args)
        where = "@pytest.mark.ctxflask_entry"
    else:
        chosen = list(metafunc.config.getini("ctxflask_entry_points"))
        where = "the ctxflask_entry_points ini option"
    unknown = [name for name in chosen if name not in ENTRY_POINTS]
    if not chosen or unknown:
        raise pytest.Collector.CollectError(
            f"{metafunc.definition.nodeid}: {where} names {chosen!r}; give 'wsgi'"
            " and/or 'asgi'."
        )
    metafunc.parametrize(_ENTRY_FIXTURE, chosen, ids=chosen, indirect=True)


@pytest.fixture
def ctxflask_entry_point(request: pytest.FixtureRequest) -> str:
    """The entry point the ``client`` fixture goes through: ``"wsgi"`` or ``"asgi"``."""
    return t.cast(str, request.param)


@pytest.fixture
def client(app: ctxflask.Flask, ctxflask_entry_point: str) -> FlaskClient:
    """The app's test client (Flask's API: ``client.get(...)``, ``post(json=...)``,
    cookies, ``with client:``), through ``app`` (id ``wsgi``) and through ``app.asgi``
    (id ``asgi``): each test runs once through each."""
    return app.test_client(asgi=ctxflask_entry_point == "asgi")


# -- serving, and the clients of async tests ----------------------------------------------


@pytest.fixture
async def serving(
    app: ctxflask.Flask, anyio_backend: object
) -> AsyncIterator[ctxflask.Flask]:
    """The app served through ``app.asgi``'s lifespan for the test (async tests):
    ``before_serving`` has run; after the test, running background tasks are waited for
    and ``after_serving`` runs. A failure of either raises ``LifespanFailed``."""
    async with _serving(app):
        yield app


@pytest.fixture
async def async_client(
    app: ctxflask.Flask, serving: ctxflask.Flask
) -> AsyncIterator[httpx.AsyncClient]:
    """An ``httpx.AsyncClient`` calling ``app.asgi`` in-process while the app is
    serving, for async tests that send concurrent requests."""
    async with asgi_client(app) as http:
        yield http


class WebSocketClient:
    """Connects WebSockets to an app's ``app.asgi`` in-process: the ``websocket_client``
    fixture. ``async with websocket_client.connect("/ws") as ws: await ws.send("hi")``."""

    def __init__(self, app: ctxflask.Flask) -> None:
        self.app = app

    def connect(
        self,
        path: str,
        *,
        query_string: str = "",
        headers: t.Mapping[str, str] | None = None,
        subprotocols: t.Sequence[str] = (),
    ) -> t.AsyncContextManager[TestWebSocket]:
        """A WebSocket connected to ``path``; see :func:`ctxflask.testing.websocket_connect`."""
        return websocket_connect(
            self.app,
            path,
            query_string=query_string,
            headers=headers,
            subprotocols=subprotocols,
        )


@pytest.fixture
def websocket_client(app: ctxflask.Flask, serving: ctxflask.Flask) -> WebSocketClient:
    """Connects WebSockets to ``app.asgi`` while the app is serving (async tests)."""
    return WebSocketClient(app)


# -- the context guard --------------------------------------------------------------------


def _pushed() -> tuple[object | None, object | None]:
    return _cv_request.get(None), _cv_app.get(None)


def _describe_leak(before: tuple[object | None, object | None]) -> str | None:
    now = _pushed()
    if now == before:
        return None
    left = [
        f"{kind} context {ctx!r}"
        for kind, ctx, was in zip(("request", "app"), now, before, strict=True)
        if ctx is not None and ctx is not was
    ]
    return " and ".join(left) or "contexts it did not push popped"


def _pop_back_to(before: tuple[object | None, object | None]) -> None:
    # Pop what was left, so that the tests after this one start clean.
    for _ in range(100):
        now = _pushed()
        if now == before:
            return
        top = now[0] if now[0] is not before[0] and now[0] is not None else now[1]
        if top is None:
            return
        try:
            t.cast(t.Any, top).pop()
        except Exception:
            return


_FIX = (
    " Pop what the test pushes: use 'with app.app_context():' /"
    " 'with app.test_request_context():', or call the context's pop()."
)


@pytest.fixture
def ctxflask_context_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves an application or request context pushed, naming it.

    The test's own body is checked where it runs (an async test in its task); what its
    sync fixtures leave is checked after their teardown. Async fixtures are not checked:
    they run in the async test runner's task, which this sync fixture cannot see.
    """
    before = _pushed()
    yield
    leak = _describe_leak(before)
    if leak is not None:
        _pop_back_to(before)
        pytest.fail(
            f"{request.node.nodeid}: its fixtures left {leak} pushed.{_FIX}",
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def _ctxflask_context_guard_everywhere(request: pytest.FixtureRequest) -> None:
    if request.config.getini("ctxflask_context_guard"):
        request.getfixturevalue(_GUARD_FIXTURE)


def _guarded(
    item: pytest.Function, test: t.Callable[..., t.Any]
) -> t.Callable[..., t.Any]:
    def check(before: tuple[object | None, object | None]) -> None:
        leak = _describe_leak(before)
        if leak is not None:
            _pop_back_to(before)
            pytest.fail(f"{item.nodeid} left {leak} pushed.{_FIX}", pytrace=False)

    if inspect.iscoroutinefunction(test):

        @functools.wraps(test)
        async def guarded_async(*args: t.Any, **kwargs: t.Any) -> t.Any:
            before = _pushed()
            result = await test(*args, **kwargs)
            check(before)
            return result

        return guarded_async

    @functools.wraps(test)
    def guarded(*args: t.Any, **kwargs: t.Any) -> t.Any:
        before = _pushed()
        result = test(*args, **kwargs)
        check(before)
        return result

    return guarded


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(
    pyfuncitem: pytest.Function,
) -> t.Generator[None, object, object]:
    # An async test runs in a task of its own (anyio's runner): what it leaves pushed is
    # seen only there, so the test function itself is wrapped with the check.
    test = pyfuncitem.obj
    if hasattr(test, "hypothesis") or not (
        _GUARD_FIXTURE in pyfuncitem.fixturenames
        or pyfuncitem.config.getini("ctxflask_context_guard")
    ):
        return (yield)
    pyfuncitem.obj = _guarded(pyfuncitem, test)
    try:
        return (yield)
    finally:
        pyfuncitem.obj = test


# -- a real server ------------------------------------------------------------------------


class LiveServer:
    """A real server running the app in a process of its own: the ``live_server``
    fixture. :attr:`url` is its base URL, ``http://127.0.0.1:<port>``."""

    def __init__(self, server: str, app: str, port: int, command: list[str]) -> None:
        self.server = server
        self.app = app
        self.port = port
        self.command = command
        self.url = f"http://127.0.0.1:{port}"

    def url_for(self, path: str) -> str:
        """The absolute URL of ``path`` on this server."""
        return self.url + "/" + path.lstrip("/")

    def __repr__(self) -> str:
        return f"<LiveServer {self.server} {self.app} at {self.url}>"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_command(server: str, target: str, port: int) -> list[str]:
    factory = target.endswith("()")
    if server == "uvicorn":
        # The app object is an ASGI 3 app when called with three arguments; the
        # interface is given so that uvicorn need not guess it.
        command = [
            "uvicorn",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--interface",
            "asgi3",
            "--lifespan",
            "on",
            "--log-level",
            "warning",
        ]
        return [*command, "--factory", target[:-2]] if factory else [*command, target]
    # gunicorn calls 'module:factory()' itself.
    return [
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--graceful-timeout",
        "5",
        target,
    ]


def _marked(node: pytest.Item, key: str) -> object:
    # The closest ctxflask_live_server marker that gives this key: a test may have one
    # marker for the app and, through a parameter, another for the server.
    for mark in node.iter_markers("ctxflask_live_server"):
        if mark.kwargs.get(key):
            return mark.kwargs[key]
    return None


def _app_target(request: pytest.FixtureRequest) -> str:
    config = request.config
    target = (
        _marked(request.node, "app")
        or config.getoption("ctxflask_app")
        or config.getini("ctxflask_app")
    )
    fix = (
        ' Fix: set ctxflask_app = "module:app" (or "module:create_app()") in the'
        " pytest configuration, pass --ctxflask-app, or mark the test with"
        ' @pytest.mark.ctxflask_live_server(app="module:app").'
    )
    if not target:
        pytest.fail(
            "live_server needs to know which app to serve: a server in another process"
            " imports it by name (the app fixture's object cannot be sent there)."
            + fix,
            pytrace=False,
        )
    # Quotes are kept by .ini files, and stripped by TOML.
    target = str(target).strip().strip("'\"")
    module, _, name = target.partition(":")
    if (
        not module
        or not name
        or not name.removesuffix("()").replace(".", "").isidentifier()
    ):
        pytest.fail(
            f"live_server: {target!r} is not 'module:name'." + fix, pytrace=False
        )
    try:
        found = importlib.util.find_spec(module) is not None
    except ImportError:
        found = False
    if not found:
        pytest.fail(
            f"live_server: the module {module!r} of {target!r} cannot be imported from"
            " the tests' sys.path, which the server process is given." + fix,
            pytrace=False,
        )
    return target


def _wait_until_answering(
    process: subprocess.Popen[bytes], url: str, timeout: float
) -> str | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"exited with status {process.returncode} before answering"
        try:
            with urllib.request.urlopen(url, timeout=2):
                return None
        except urllib.error.HTTPError:
            return None  # an HTTP answer, whatever its status
        except OSError:
            time.sleep(0.05)
    return f"did not answer within {timeout} s"


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def live_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """A real server on 127.0.0.1, on a free port, serving the app named by the
    ``ctxflask_app`` ini option (or ``--ctxflask-app``, or the ``ctxflask_live_server``
    marker's ``app``) in a process of its own: uvicorn through ``app.asgi`` by default,
    gunicorn (WSGI) with ``ctxflask_server = gunicorn``, ``--ctxflask-server`` or the
    marker's ``server``. It answers when the test starts and is stopped after it.

    The server process runs with the tests' ``sys.path`` and environment (a factory can
    read its test settings from environment variables), in the rootdir.
    """
    config = request.config
    server = str(
        _marked(request.node, "server")
        or config.getoption("ctxflask_server")
        or config.getini("ctxflask_server")
    )
    if server not in SERVERS:
        pytest.fail(
            f"live_server: unknown server {server!r}; choose one of {', '.join(SERVERS)}.",
            pytrace=False,
        )
    target = _app_target(request)
    port = _free_port()
    command = _server_command(server, target, port)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.abspath(p) for p in sys.path if p and os.path.isdir(p)]
    )
    timeout = float(str(config.getini("ctxflask_live_server_timeout")))
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(
            [sys.executable, "-m", *command],
            cwd=config.rootpath,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        live = LiveServer(server, target, port, command)
        try:
            problem = _wait_until_answering(process, live.url, timeout)
            if problem is not None:
                _stop(process)
                output.seek(0)
                log = output.read().decode(errors="replace")
                pytest.fail(
                    f"live_server: {server} serving {target!r} {problem}.\n"
                    f"command: {shlex.join(command)}\n{log}",
                    pytrace=False,
                )
            yield live
        finally:
            _stop(process)
