"""Test helpers: an environ builder that knows the app, and the WSGI test client."""

from __future__ import annotations

import contextvars
import importlib.metadata
import typing as t
from collections.abc import Iterator
from collections.abc import MutableMapping
from contextlib import asynccontextmanager
from contextlib import contextmanager
from contextlib import ExitStack
from copy import copy
from types import TracebackType
from urllib.parse import urlsplit

import anyio
import anyio.abc
import click
import werkzeug.test
from click.testing import CliRunner
from click.testing import Result
from werkzeug.datastructures import Headers
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.sansio.utils import get_current_url
from werkzeug.test import Client
from werkzeug.wrappers import Request as BaseRequest

from . import bridge
from .asgi.scope import PRESERVE_CONTEXT
from .cli import ScriptInfo
from .isolation import check_isolation as check_isolation
from .isolation import check_isolation_wsgi as check_isolation_wsgi
from .isolation import Finding as Finding
from .isolation import IsolationReport as IsolationReport
from .isolation import RequestSpec as RequestSpec

if t.TYPE_CHECKING:
    import httpx
    from _typeshed.wsgi import WSGIEnvironment
    from werkzeug.test import TestResponse

    from .app import Flask
    from .core.sessions import SessionMixin


class EnvironBuilder(werkzeug.test.EnvironBuilder):
    """werkzeug's ``EnvironBuilder``, with the host, root and scheme taken from the app's
    ``SERVER_NAME``, ``APPLICATION_ROOT`` and ``PREFERRED_URL_SCHEME``, and JSON
    serialized by the app's provider.

    :param app: the application the request is for.
    :param path: the request path, possibly with a query string.
    :param base_url: the URL the path is relative to; excludes ``subdomain`` and
        ``url_scheme``.
    :param subdomain: a subdomain to prepend to ``SERVER_NAME``.
    :param url_scheme: the scheme, instead of ``PREFERRED_URL_SCHEME``.
    """

    def __init__(
        self,
        app: Flask,
        path: str = "/",
        base_url: str | None = None,
        subdomain: str | None = None,
        url_scheme: str | None = None,
        *args: t.Any,
        **kwargs: t.Any,
    ) -> None:
        if base_url is not None and (subdomain or url_scheme):
            raise TypeError(
                "Cannot pass 'subdomain' or 'url_scheme' with 'base_url': the base URL"
                " already has them. Fix: put them in 'base_url', or leave it out."
            )
        if base_url is None:
            http_host = app.config.get("SERVER_NAME") or "localhost"
            app_root = app.config["APPLICATION_ROOT"]
            if subdomain:
                http_host = f"{subdomain}.{http_host}"
            if url_scheme is None:
                url_scheme = app.config["PREFERRED_URL_SCHEME"]
            url = urlsplit(path)
            base_url = f"{url.scheme or url_scheme}://{url.netloc or http_host}/{app_root.lstrip('/')}"
            path = url.path
            if url.query:
                path = f"{path}?{url.query}"
        self.app = app
        super().__init__(path, base_url, *args, **kwargs)

    def json_dumps(self, obj: t.Any, **kwargs: t.Any) -> str:
        """Serialize ``json=`` data with the app's JSON provider."""
        return self.app.json.dumps(obj, **kwargs)


class FlaskClient(Client):
    """The test client of ``app.test_client()``: werkzeug's client through the app's WSGI
    entry point.

    In a ``with client:`` block, the contexts of the last request stay pushed after it,
    so a test can inspect ``request``, ``session`` and ``g``; they are popped at the next
    request or at the end of the block. Teardown callbacks have already run by then, once.
    """

    application: Flask

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self.preserve_context = False
        self._new_contexts: list[t.ContextManager[t.Any]] = []
        self._context_stack = ExitStack()
        self.environ_base = {
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_USER_AGENT": f"Werkzeug/{importlib.metadata.version('werkzeug')}",
        }

    @contextmanager
    def session_transaction(
        self, *args: t.Any, **kwargs: t.Any
    ) -> Iterator[SessionMixin]:
        """Open the client's session for the test to change; it is saved back into the
        client's cookies when the block ends. Arguments are those of
        ``app.test_request_context``."""
        if self._cookies is None:
            raise TypeError(
                "Cookies are disabled, so the client has no session. Fix: create the"
                " client with 'use_cookies=True'."
            )
        app = self.application
        ctx = app.test_request_context(*args, **kwargs)
        self._add_cookies_to_wsgi(ctx.request.environ)
        with ctx:
            sess = app.session_interface.open_session(app, ctx.request)
        if sess is None:
            raise RuntimeError(
                "The session interface did not open a session. Fix: check its"
                " open_session, and that a secret key is set."
            )
        yield sess
        resp = app.response_class()
        if app.session_interface.is_null_session(sess):
            return
        with ctx:
            app.session_interface.save_session(app, sess, resp)
        self._update_cookies_from_response(
            ctx.request.host.partition(":")[0],
            ctx.request.path,
            resp.headers.getlist("Set-Cookie"),
        )

    def _copy_environ(self, other: WSGIEnvironment) -> WSGIEnvironment:
        out = {**self.environ_base, **other}
        if self.preserve_context:
            out["werkzeug.debug.preserve_context"] = self._new_contexts.append
        return out

    def _request_from_builder_args(
        self, args: tuple[t.Any, ...], kwargs: dict[str, t.Any]
    ) -> BaseRequest:
        kwargs["environ_base"] = self._copy_environ(kwargs.get("environ_base", {}))
        builder = EnvironBuilder(self.application, *args, **kwargs)
        try:
            return builder.get_request()
        finally:
            builder.close()

    def open(
        self,
        *args: t.Any,
        buffered: bool = True,
        follow_redirects: bool = False,
        **kwargs: t.Any,
    ) -> TestResponse:
        """Send a request to the app; see ``werkzeug.test.Client.open``.

        Unlike werkzeug's client, it reads the response whole and closes it by default,
        as a server does: a streamed body runs to its end, and the teardown callbacks and
        background tasks (which run once the response is sent) have run when this
        returns. Pass ``buffered=False`` to iterate a stream yourself; the request then
        ends when the response is closed.
        """
        if args and isinstance(
            args[0], (werkzeug.test.EnvironBuilder, dict, BaseRequest)
        ):
            if isinstance(args[0], werkzeug.test.EnvironBuilder):
                builder = copy(args[0])
                builder.environ_base = self._copy_environ(builder.environ_base or {})  # type: ignore[arg-type]
                request = builder.get_request()
            elif isinstance(args[0], dict):
                request = EnvironBuilder.from_environ(
                    args[0], app=self.application, environ_base=self._copy_environ({})
                ).get_request()
            else:
                request = copy(args[0])
                request.environ = self._copy_environ(request.environ)
        else:
            request = self._request_from_builder_args(args, kwargs)

        self._context_stack.close()
        response = super().open(
            request, buffered=buffered, follow_redirects=follow_redirects
        )
        response.json_module = self.application.json  # type: ignore[assignment]
        for cm in self._new_contexts:
            self._context_stack.enter_context(cm)
        self._new_contexts.clear()
        return response

    def __enter__(self) -> FlaskClient:
        if self.preserve_context:
            raise RuntimeError(
                "Cannot nest client invocations: this client is already in a `with` block."
            )
        self.preserve_context = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.preserve_context = False
        self._context_stack.close()


class ASGIClient(FlaskClient):
    """A test client with the API of :class:`FlaskClient` whose requests go through the
    ASGI entry point, ``app.asgi``, instead of the WSGI one: the same test runs through
    both. Create one with ``app.test_client(asgi=True)``.

    Each request runs to its end (streamed bodies included) before the call returns.
    An exception the app lets propagate (``TESTING``) is raised here, as with WSGI.
    """

    def run_wsgi_app(
        self, environ: WSGIEnvironment, buffered: bool = False
    ) -> tuple[t.Iterable[bytes], str, Headers]:
        self._add_cookies_to_wsgi(environ)
        scope = _scope_from_environ(environ)
        body = environ["wsgi.input"].read()
        status, headers, chunks = bridge.run_awaitable(
            lambda: _call_asgi(self.application.asgi, scope, body),
            contextvars.copy_context(),
        )
        url = urlsplit(
            get_current_url(
                environ["wsgi.url_scheme"],
                environ.get("HTTP_HOST", "localhost"),
                environ.get("SCRIPT_NAME", ""),
                environ.get("PATH_INFO", ""),
            )
        )
        self._update_cookies_from_response(
            url.hostname or "localhost", url.path, headers.getlist("Set-Cookie")
        )
        return (
            chunks,
            f"{status} {HTTP_STATUS_CODES.get(status, 'UNKNOWN').upper()}",
            headers,
        )


class FlaskCliRunner(CliRunner):
    """click's ``CliRunner`` for an app's commands: ``app.test_cli_runner()``.

    :param app: the application whose commands run.
    :param kwargs: arguments of ``click.testing.CliRunner``.
    """

    def __init__(self, app: Flask, **kwargs: t.Any) -> None:
        self.app = app
        super().__init__(**kwargs)

    def invoke(  # type: ignore[override]
        self, cli: click.Command | None = None, args: t.Any = None, **kwargs: t.Any
    ) -> Result:
        """Run a command in an isolated environment and return its ``Result`` (output,
        exit code, exception); see ``click.testing.CliRunner.invoke``.

        :param cli: the command to run; default: ``app.cli``.
        :param args: the command line, a list of strings (or one string, split as a
            shell would).
        :param kwargs: more arguments of ``CliRunner.invoke``; ``obj`` defaults to a
            :class:`~ctxflask.cli.ScriptInfo` that loads this app.
        """
        if cli is None:
            cli = self.app.cli
        if "obj" not in kwargs:
            kwargs["obj"] = ScriptInfo(create_app=lambda: self.app)
        return super().invoke(cli, args, **kwargs)


def _scope_from_environ(environ: WSGIEnvironment) -> dict[str, t.Any]:
    headers = [
        (key[5:].replace("_", "-").lower().encode("latin-1"), value.encode("latin-1"))
        for key, value in environ.items()
        if key.startswith("HTTP_")
    ]
    for key, name in (
        ("CONTENT_TYPE", b"content-type"),
        ("CONTENT_LENGTH", b"content-length"),
    ):
        if environ.get(key):
            headers.append((name, environ[key].encode("latin-1")))
    script_name = environ.get("SCRIPT_NAME", "").encode("latin-1").decode()
    path = environ.get("PATH_INFO", "").encode("latin-1").decode()
    scope: dict[str, t.Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": environ.get("SERVER_PROTOCOL", "HTTP/1.1").partition("/")[2]
        or "1.1",
        "method": environ["REQUEST_METHOD"],
        "scheme": environ.get("wsgi.url_scheme", "http"),
        "root_path": script_name,
        "path": script_name + path,
        "raw_path": (script_name + path).encode(),
        "query_string": environ.get("QUERY_STRING", "").encode("latin-1"),
        "headers": headers,
        "server": (
            environ.get("SERVER_NAME", "localhost"),
            int(environ.get("SERVER_PORT") or 80),
        ),
        "client": (
            environ.get("REMOTE_ADDR", "127.0.0.1"),
            int(environ.get("REMOTE_PORT") or 0),
        ),
        "extensions": {},
    }
    preserve = environ.get("werkzeug.debug.preserve_context")
    if preserve is not None:
        scope["extensions"][PRESERVE_CONTEXT] = preserve
    return scope


async def _call_asgi(
    asgi: t.Any, scope: dict[str, t.Any], body: bytes
) -> tuple[int, Headers, list[bytes]]:
    # Sent in pieces, as a server would for a large body.
    pieces = [body[i : i + 65536] for i in range(0, len(body), 65536)] or [b""]
    messages = [
        {"type": "http.request", "body": piece, "more_body": i < len(pieces) - 1}
        for i, piece in enumerate(pieces)
    ]
    status = 500
    headers = Headers()
    chunks: list[bytes] = []
    complete = anyio.Event()

    async def receive() -> dict[str, t.Any]:
        if messages:
            return messages.pop(0)
        # The request is over for the client only once the response is complete.
        await complete.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, t.Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            for name, value in message.get("headers", ()):
                headers.add(name.decode("latin-1"), value.decode("latin-1"))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                complete.set()

    await asgi(scope, receive, send)
    return status, headers, chunks


def asgi_client(
    app: Flask, base_url: str = "http://localhost", **kwargs: t.Any
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` calling ``app.asgi`` in-process, for async tests that send
    many concurrent requests (``asyncio.gather``, task groups). Needs ``httpx``.

    Use it as ``async with asgi_client(app) as client: await client.get("/")``.
    """
    import httpx

    transport = httpx.ASGITransport(app=app.asgi)
    return httpx.AsyncClient(transport=transport, base_url=base_url, **kwargs)


class WebSocketRejected(Exception):
    """The app refused the WebSocket handshake; :attr:`status` and :attr:`body` hold its
    HTTP response (or the close code, when it sent no response)."""

    def __init__(self, status: int, body: bytes = b"", code: int | None = None) -> None:
        super().__init__(status, code)
        self.status = status
        self.body = body
        self.code = code


class TestWebSocket:
    """The client side of a WebSocket connected to ``app.asgi`` in-process; see
    :func:`websocket_connect`."""

    __test__ = False  # not a test class, for pytest

    def __init__(
        self,
        to_app: anyio.abc.ObjectSendStream[dict[str, t.Any]],
        from_app: anyio.abc.ObjectReceiveStream[dict[str, t.Any]],
    ) -> None:
        self._to_app = to_app
        self._from_app = from_app
        #: The subprotocol the app accepted, if any.
        self.subprotocol: str | None = None
        #: The headers the app accepted the handshake with.
        self.headers: Headers = Headers()
        #: The close code, once the app closed the connection.
        self.close_code: int | None = None

    async def send(self, data: str | bytes) -> None:
        """Send a text (``str``) or binary (``bytes``) message to the app."""
        key = "text" if isinstance(data, str) else "bytes"
        await self._to_app.send({"type": "websocket.receive", key: data})

    async def send_json(self, obj: t.Any) -> None:
        """Send ``obj`` as a JSON text message."""
        import json

        await self.send(json.dumps(obj))

    async def receive(self) -> str | bytes:
        """The app's next message. Raises ``WebSocketDisconnect`` once it closed."""
        from .core.errors import WebSocketDisconnect

        message = await self._from_app.receive()
        if message["type"] == "websocket.close":
            self.close_code = message.get("code", 1000)
            raise WebSocketDisconnect(
                self.close_code or 1000, message.get("reason") or ""
            )
        text = message.get("text")
        return (
            t.cast(str, text) if text is not None else t.cast(bytes, message["bytes"])
        )

    async def receive_json(self) -> t.Any:
        """The app's next message, parsed as JSON."""
        import json

        return json.loads(await self.receive())

    async def close(self, code: int = 1000) -> None:
        """Close the connection from the client side."""
        await self._to_app.send({"type": "websocket.disconnect", "code": code})


@asynccontextmanager
async def websocket_connect(
    app: Flask,
    path: str,
    *,
    query_string: str = "",
    headers: t.Mapping[str, str] | None = None,
    subprotocols: t.Sequence[str] = (),
) -> t.AsyncIterator[TestWebSocket]:
    """Connect a WebSocket to ``app.asgi`` in-process, for async tests (asyncio or trio):

    ``async with websocket_connect(app, "/ws") as ws: await ws.send("hi")``

    Raises :class:`WebSocketRejected` if the app refuses the handshake. Leaving the block
    disconnects the client and waits for the app's handler to end.
    """
    to_app, app_inbox = anyio.create_memory_object_stream[dict[str, t.Any]](100)
    app_outbox, from_app = anyio.create_memory_object_stream[dict[str, t.Any]](100)
    scope: dict[str, t.Any] = {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": "ws",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query_string.encode("latin-1"),
        "headers": [(b"host", b"localhost")]
        + [
            (k.lower().encode("latin-1"), v.encode("latin-1"))
            for k, v in (headers or {}).items()
        ],
        "server": ("localhost", 80),
        "client": ("127.0.0.1", 0),
        "subprotocols": list(subprotocols),
        "extensions": {"websocket.http.response": {}},
    }

    async def receive() -> MutableMapping[str, t.Any]:
        try:
            return await app_inbox.receive()
        except anyio.EndOfStream:
            return {"type": "websocket.disconnect", "code": 1006}

    async def send(message: MutableMapping[str, t.Any]) -> None:
        try:
            await app_outbox.send(dict(message))
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            raise OSError("the test client closed the connection") from None

    # Errors are raised after the task group, so that they come out as themselves and
    # not wrapped in an exception group.
    failure: BaseException | None = None
    async with to_app, app_inbox, app_outbox, from_app, anyio.create_task_group() as tg:
        tg.start_soon(app.asgi, scope, receive, send)
        await to_app.send({"type": "websocket.connect"})
        first = await from_app.receive()
        if first["type"] == "websocket.http.response.start":
            body = await from_app.receive()
            failure = WebSocketRejected(first["status"], body.get("body", b""))
        elif first["type"] == "websocket.close":
            failure = WebSocketRejected(403, code=first.get("code"))
        else:
            client = TestWebSocket(to_app, from_app)
            client.subprotocol = first.get("subprotocol")
            for name, value in first.get("headers", ()):
                client.headers.add(name.decode("latin-1"), value.decode("latin-1"))
            try:
                yield client
            except BaseException as e:
                failure = e
                tg.cancel_scope.cancel()
            else:
                if client.close_code is None:
                    await client.close()
    if failure is not None:
        raise failure


class LifespanFailed(RuntimeError):
    """The app reported ``lifespan.startup.failed`` or ``lifespan.shutdown.failed``:
    a ``before_serving`` or ``after_serving`` function raised. The message is the app's."""


@asynccontextmanager
async def serving(app: Flask) -> t.AsyncIterator[Flask]:
    """Serve ``app.asgi`` for the block as an ASGI server does, through the lifespan
    protocol, in async tests (asyncio or trio):

    ``async with serving(app): ...``

    Entering runs the ``before_serving`` functions; leaving waits for the running
    background tasks (up to ``BACKGROUND_TASK_SHUTDOWN_TIMEOUT``) and runs the
    ``after_serving`` functions. A failure of either phase raises :class:`LifespanFailed`.
    """
    to_app, app_inbox = anyio.create_memory_object_stream[dict[str, t.Any]](2)
    app_outbox, from_app = anyio.create_memory_object_stream[dict[str, t.Any]](2)
    scope: dict[str, t.Any] = {
        "type": "lifespan",
        "asgi": {"version": "3.0", "spec_version": "2.0"},
        "state": {},
    }

    async def receive() -> dict[str, t.Any]:
        return await app_inbox.receive()

    async def send(message: MutableMapping[str, t.Any]) -> None:
        await app_outbox.send(dict(message))

    async def run_lifespan() -> None:
        # An app that raises instead of reporting a failure is told to the waiting
        # side as a failure, so that it does not wait for ever.
        try:
            await app.asgi(scope, receive, send)
        except Exception as e:
            await app_outbox.send(
                {"type": "lifespan.failed", "message": f"{type(e).__name__}: {e}"}
            )

    async def phase(name: str) -> LifespanFailed | None:
        await to_app.send({"type": f"lifespan.{name}"})
        answer = await from_app.receive()
        if answer["type"] == f"lifespan.{name}.complete":
            return None
        return LifespanFailed(
            f"lifespan {name} of {app.name!r} failed: {answer.get('message', '')}"
        )

    # Errors are raised after the task group, so that they come out as themselves and
    # not wrapped in an exception group.
    failure: BaseException | None = None
    async with to_app, app_inbox, app_outbox, from_app, anyio.create_task_group() as tg:
        tg.start_soon(run_lifespan)
        failure = await phase("startup")
        if failure is None:
            try:
                yield app
            except BaseException as e:
                failure = e
            # Shut down even when the block failed or was cancelled.
            with anyio.CancelScope(shield=True):
                stopped = await phase("shutdown")
            failure = failure or stopped
    if failure is not None:
        raise failure
