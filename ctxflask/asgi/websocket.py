"""The ``websocket`` scope: the connection a handler talks through (the
:data:`ctxflask.websocket` proxy), and the handler run between its hooks.

The handshake request is ``request`` as usual (``args``, ``headers``, ``cookies``,
``path`` ...), also readable through the connection (``websocket.args``). The methods work
from both kinds of handler: in
an ``async def`` handler they return awaitables (``await websocket.receive()``); in a
``def`` handler, which runs in a worker thread, they block and return the result
(``websocket.receive()``).
"""

from __future__ import annotations

import functools
import json
import typing as t
from collections.abc import Callable
from collections.abc import Coroutine
from collections.abc import Iterable

import anyio

from .. import bridge
from .. import pipeline
from ..core.errors import WebSocketDisconnect
from ..core.wrappers import Request
from ..core.wrappers import response_headers
from .connection import Connection
from .types import Message
from .types import Receive
from .types import Send

if t.TYPE_CHECKING:
    from ..core.wrappers import Response
    from .app import ASGIApp
    from .types import Scope

F = t.TypeVar("F", bound=Callable[..., Coroutine[t.Any, t.Any, t.Any]])


def _either_side(method: F) -> F:
    """Make an async method usable from a sync handler too: on the event loop it returns
    the coroutine; in a worker thread it runs it on the loop and waits -- or, for an
    async handler on that thread's own loop ("thread" mode), returns an awaitable of it."""

    @functools.wraps(method)
    def wrapper(self: Websocket, *args: t.Any, **kwargs: t.Any) -> t.Any:
        if not bridge.in_worker_thread():
            return method(self, *args, **kwargs)
        call = functools.partial(method, self, *args, **kwargs)
        if bridge.on_worker_loop():  # an async handler in "thread" mode
            return bridge.await_on_loop(call)
        return bridge.run_on_loop(call)

    return t.cast(F, wrapper)


class Websocket:
    """A WebSocket connection; its handshake request's attributes read through it.

    The connection is accepted by :meth:`accept`, or by the first :meth:`send` or
    :meth:`receive`. A handler that returns without closing it closes it normally.
    """

    def __init__(self, request: Request, receive: Receive, send: Send) -> None:
        #: The handshake request (also the ``request`` proxy in a WebSocket handler).
        self.request = request
        self._receive_message = receive
        self._send_message = send
        #: Whether the handshake was accepted.
        self.accepted = False
        #: Whether the connection is closed (by either side).
        self.closed = False
        #: The subprotocol chosen at :meth:`accept`, if any.
        self.subprotocol: str | None = None

    def __getattr__(self, name: str) -> t.Any:
        # Only for names not defined here: the handshake request's (args, headers...).
        return getattr(self.request, name)

    @property
    def requested_subprotocols(self) -> list[str]:
        """The subprotocols the client offered, in its order of preference."""
        scope = self.request.environ.get("asgi.scope", {})
        return list(scope.get("subprotocols", ()))

    async def _accept(
        self,
        subprotocol: str | None = None,
        headers: Iterable[tuple[str, str]] | t.Mapping[str, str] = (),
    ) -> None:
        """Accept the handshake, with a subprotocol among :attr:`requested_subprotocols`
        and extra response headers."""
        if self.accepted:
            return
        if self.closed:
            raise RuntimeError("Cannot accept a WebSocket that is already closed.")
        items = headers.items() if isinstance(headers, t.Mapping) else headers
        await self._send_message(
            {
                "type": "websocket.accept",
                "subprotocol": subprotocol,
                "headers": [
                    (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in items
                ],
            }
        )
        self.accepted = True
        self.subprotocol = subprotocol

    async def _receive(self) -> str | bytes:
        """The next message: ``str`` for a text frame, ``bytes`` for a binary one.

        Raises :class:`WebSocketDisconnect` once the client has closed the connection.
        """
        if self.closed:
            raise WebSocketDisconnect(1006, "The connection is closed.")
        if not self.accepted:
            await self._accept()
        message = await self._receive_message()
        if message["type"] == "websocket.disconnect":
            self.closed = True
            raise WebSocketDisconnect(
                message.get("code", 1005), message.get("reason") or ""
            )
        text = message.get("text")
        if text is not None:
            return t.cast(str, text)
        return t.cast(bytes, message.get("bytes") or b"")

    async def _send(self, data: str | bytes) -> None:
        """Send a text (``str``) or binary (``bytes``) message."""
        if self.closed:
            raise WebSocketDisconnect(1006, "The connection is closed.")
        if not self.accepted:
            await self._accept()
        if isinstance(data, str):
            message: Message = {"type": "websocket.send", "text": data}
        elif isinstance(data, (bytes, bytearray, memoryview)):
            message = {"type": "websocket.send", "bytes": bytes(data)}
        else:
            raise TypeError(
                f"A WebSocket message is str or bytes, not {type(data).__name__}. Fix: use"
                " send_json() for other values."
            )
        try:
            await self._send_message(message)
        except OSError as e:
            self.closed = True
            raise WebSocketDisconnect(1006, "The client went away.") from e

    async def _receive_json(self) -> t.Any:
        """The next message, parsed as JSON."""
        data = await self._receive()
        return json.loads(data)

    async def _send_json(self, obj: t.Any) -> None:
        """Send ``obj`` as a JSON text message."""
        await self._send(json.dumps(obj))

    async def _close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection (before accepting: reject the handshake)."""
        if self.closed:
            return
        self.closed = True
        await self._send_message(
            {"type": "websocket.close", "code": code, "reason": reason}
        )

    # The public methods: awaitable on the event loop, blocking in a worker thread.
    accept = _either_side(_accept)
    receive = _either_side(_receive)
    send = _either_side(_send)
    receive_json = _either_side(_receive_json)
    send_json = _either_side(_send_json)
    close = _either_side(_close)


class WebsocketConnection(Connection):
    """One ``websocket`` scope: run the handler through the pipeline between its hooks;
    reject the handshake, or close the connection, as it ended."""

    receives_body = False

    def __init__(
        self, asgi: ASGIApp, scope: Scope, receive: Receive, send: Send
    ) -> None:
        super().__init__(asgi, scope, receive, send)
        self.websocket = Websocket(self.req_ctx.request, receive, send)
        self.req_ctx._websocket = self.websocket

    async def run(self) -> None:
        message = await self.receive()
        if message["type"] != "websocket.connect":
            return
        try:
            response, error = await bridge.run_steps_async(
                pipeline.handle_websocket(self.app, self.req_ctx),
                self.ctx,
                self.workers,
                async_in_thread=self.asgi.async_in_thread,
            )
        except BaseException:
            # Raised on (testing, or cancelled): the client still gets an ending.
            with anyio.CancelScope(shield=True):
                await self._end(None, failed=True)
            await self.workers.aclose()  # shielded itself
            raise
        await self.workers.aclose()
        await self._end(response, failed=error is not None)

    async def _end(self, response: Response | None, failed: bool) -> None:
        websocket = self.websocket
        if websocket.closed:
            return
        try:
            if websocket.accepted:
                await websocket._close(1011 if failed else 1000)
            else:
                await self._reject(response, failed)
        except OSError:
            pass  # the client is gone already

    async def _reject(self, response: Response | None, failed: bool) -> None:
        """Refuse the handshake: with the response, where the server can send one."""
        self.websocket.closed = True
        if "websocket.http.response" not in self.scope.get("extensions", {}):
            await self.send(
                {"type": "websocket.close", "code": 1011 if failed else 1008}
            )
            return
        if response is None:
            response = self.app.response_class(status=500 if failed else 403)
        await self.send(
            {
                "type": "websocket.http.response.start",
                "status": response.status_code,
                "headers": self.ctx.run(response_headers, response, self.request, True),
            }
        )
        body = b"".join(
            c.encode() if isinstance(c, str) else bytes(c)
            for c in response.iter_encoded()
        )
        await self.send({"type": "websocket.http.response.body", "body": body})
