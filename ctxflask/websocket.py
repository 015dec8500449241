"""The WebSocket connection a handler talks through: the :data:`ctxflask.websocket` proxy.

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
import threading
import typing as t
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Coroutine
from collections.abc import Iterable
from collections.abc import MutableMapping

import anyio.from_thread

from .wrappers import Request

Message = MutableMapping[str, t.Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

F = t.TypeVar("F", bound=Callable[..., Coroutine[t.Any, t.Any, t.Any]])


class WebSocketDisconnect(Exception):
    """The client closed the WebSocket (or went away): raised by ``receive`` and ``send``.

    :param code: the close code the client sent (1005 when it gave none, 1006 when the
        connection dropped).
    :param reason: the reason it gave, if any.
    """

    def __init__(self, code: int = 1005, reason: str = "") -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


def _either_side(method: F) -> F:
    """Make an async method usable from a sync handler too: on the event loop thread it
    returns the coroutine; on a worker thread it runs it on the loop and waits."""

    @functools.wraps(method)
    def wrapper(self: Websocket, *args: t.Any, **kwargs: t.Any) -> t.Any:
        if threading.get_ident() == self._loop_thread:
            return method(self, *args, **kwargs)
        return anyio.from_thread.run(functools.partial(method, self, *args, **kwargs))

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
        self._loop_thread = threading.get_ident()
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
