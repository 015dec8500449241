"""Sending the requests of a run: ``{token}`` filled in and each request prepared
before the run (session values signed into a cookie by the app's session interface),
then sent through the ASGI entry point (HTTP, WebSocket) or the WSGI one."""

from __future__ import annotations

import itertools
import typing as t
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from urllib.parse import unquote
from urllib.parse import urlencode
from urllib.parse import urlsplit

import anyio
import anyio.lowlevel
import werkzeug.test

from .report import NOTHING
from .report import RequestSpec
from .report import TOKEN_HEADER

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

    from ..app import Flask


def fill(value: t.Any, token: str) -> t.Any:
    if isinstance(value, str):
        return value.replace("{token}", token)
    if isinstance(value, bytes):
        return value.replace(b"{token}", token.encode())
    if isinstance(value, Mapping):
        return {fill(k, token): fill(v, token) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(fill(v, token) for v in value)
    return value


class Prepared(t.NamedTuple):
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes


def _session_cookie(app: Flask, values: Mapping[str, t.Any]) -> str:
    """``name=value`` of a session cookie holding ``values``, signed by the app's
    session interface (with no context pushed: no hook or teardown of the app runs)."""
    interface = app.session_interface
    builder = werkzeug.test.EnvironBuilder(path="/", base_url="http://localhost/")
    try:
        request = app.request_class(builder.get_environ())
    finally:
        builder.close()
    session = interface.open_session(app, request)
    if session is None:
        raise RuntimeError(
            "A request spec gives session values, but the app's session interface"
            " opened no session. Fix: set the app's SECRET_KEY."
        )
    session.update(values)
    response = app.response_class()
    interface.save_session(app, session, response)
    for header in response.headers.getlist("Set-Cookie"):
        return header.partition(";")[0]
    raise RuntimeError("The app's session interface set no cookie for the session.")


def prepare(app: Flask, spec: RequestSpec, token: str) -> Prepared:
    url = urlsplit(fill(spec.path, token))
    headers = [(k, fill(v, token)) for k, v in spec.headers.items()]
    headers.append((TOKEN_HEADER, token))
    body = b""
    if spec.json is not NOTHING:
        body = app.json.dumps(fill(spec.json, token)).encode()
        headers.append(("Content-Type", "application/json"))
    elif isinstance(spec.data, Mapping):
        body = urlencode(fill(dict(spec.data), token), doseq=True).encode()
        headers.append(("Content-Type", "application/x-www-form-urlencoded"))
    elif spec.data is not None:
        data = fill(spec.data, token)
        body = data.encode() if isinstance(data, str) else data
    if body:
        headers.append(("Content-Length", str(len(body))))
    cookies = [f"{k}={fill(v, token)}" for k, v in spec.cookies.items()]
    if spec.session is not None:
        cookies.append(_session_cookie(app, fill(dict(spec.session), token)))
    if cookies:
        headers.append(("Cookie", "; ".join(cookies)))
    return Prepared(spec.method.upper(), url.path or "/", url.query, headers, body)


def _scope(prepared: Prepared, kind: str) -> dict[str, t.Any]:
    headers = [(b"host", b"localhost")] + [
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in prepared.headers
    ]
    path = unquote(prepared.path)
    scope: dict[str, t.Any] = {
        "type": kind,
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": "http" if kind == "http" else "ws",
        "path": path,
        "raw_path": prepared.path.encode(),
        "root_path": "",
        "query_string": prepared.query.encode("latin-1"),
        "headers": headers,
        "server": ("localhost", 80),
        "client": ("127.0.0.1", 0),
        "extensions": {},
    }
    if kind == "http":
        scope["method"] = prepared.method
    else:
        scope["subprotocols"] = []
    return scope


async def send_http(asgi: t.Any, prepared: Prepared) -> int:
    """One request through the ASGI entry point; its status once the app returned."""
    received = False
    complete = anyio.Event()
    status = 0

    async def receive() -> dict[str, t.Any]:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": prepared.body, "more_body": False}
        await complete.wait()  # the client stays until the response is complete
        return {"type": "http.disconnect"}

    async def send(message: t.MutableMapping[str, t.Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body" and not message.get(
            "more_body", False
        ):
            complete.set()

    await asgi(_scope(prepared, "http"), receive, send)
    return status


async def send_websocket(
    asgi: t.Any,
    prepared: Prepared,
    messages: Sequence[str | bytes],
    on_message: Callable[[int, str | bytes], None] | None,
) -> int:
    """A WebSocket conversation: connect, send the messages, leave; 101 when the app
    accepted, else the status it answered the handshake with. ``on_message`` gets each
    message the app sends, numbered from 1."""
    sent = itertools.count(1)
    inbox: list[dict[str, t.Any]] = [{"type": "websocket.connect"}]
    inbox += [
        {"type": "websocket.receive", "text" if isinstance(m, str) else "bytes": m}
        for m in messages
    ]
    inbox.append({"type": "websocket.disconnect", "code": 1000})
    settled = anyio.Event()  # accepted, refused or closed by the app
    status = 0

    async def receive() -> dict[str, t.Any]:
        if len(inbox) == 1 or inbox[0]["type"] != "websocket.connect":
            await settled.wait()  # messages go to an accepted connection only
        return inbox.pop(0) if inbox else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: t.MutableMapping[str, t.Any]) -> None:
        nonlocal status
        kind = message["type"]
        if kind == "websocket.accept":
            status = 101
        elif kind == "websocket.http.response.start":
            status = message["status"]
        elif kind == "websocket.close":
            status = status or 403
        elif kind == "websocket.send" and on_message is not None:
            data = message.get("text")
            on_message(
                next(sent), message.get("bytes") or b"" if data is None else data
            )
        settled.set()

    await asgi(_scope(prepared, "websocket"), receive, send)
    return status


def send_wsgi(app: Flask, prepared: Prepared) -> int:
    """One request through the WSGI entry point, its body read and closed."""
    builder = werkzeug.test.EnvironBuilder(
        path=prepared.path,
        base_url="http://localhost/",
        query_string=prepared.query,
        method=prepared.method,
        headers=prepared.headers,
        data=prepared.body,
    )
    try:
        environ: WSGIEnvironment = builder.get_environ()
    finally:
        builder.close()
    status: list[str] = []

    def start_response(s: str, headers: t.Any, exc_info: t.Any = None) -> t.Any:
        status[:] = [s]
        return lambda data: None

    body = app(environ, start_response)
    try:
        for _ in body:
            pass
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    return int(status[0].split()[0]) if status else 0
