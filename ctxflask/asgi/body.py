"""The request body of an ASGI request, received from ``receive`` only when it is read.

It is the ``wsgi.input`` of the environ the ASGI entry point builds, so werkzeug's
parsers (``get_data``, ``form``, ``files``, ``get_json``, ``stream``) read it as they read
a WSGI body, with the same limits. From a sync step (a worker thread) a read pulls the
next messages from the event loop. An async step cannot wait inside a sync accessor, so
before the first async step of a request that has a body, the entry point receives the
body (:meth:`ASGIBody.receive_ahead`, up to the size limit, kept in memory up to 1 MiB
and in a temporary file past it) -- unless the view is marked with
:func:`ctxflask.stream_request_body` and consumes it chunk by chunk with
``request.iter_body()``.
"""

from __future__ import annotations

import tempfile
import typing as t
from collections.abc import AsyncGenerator

from werkzeug.exceptions import ClientDisconnected

from .. import bridge
from ..core.wrappers import AsyncBody
from .types import Receive

#: Bodies received ahead stay in memory up to this size, then move to a temporary file.
SPOOL_MEMORY = 1024 * 1024


class ASGIBody(AsyncBody):
    """A readable stream over the ``http.request`` messages of one request.

    Limits are werkzeug's to enforce: it wraps this stream according to
    ``MAX_CONTENT_LENGTH`` and the declared length. Receiving ahead stops past the limit,
    so a body too large is never stored whole, and reading it raises 413 there.

    :param receive: the ASGI ``receive`` callable.
    :param content_length: the declared length, or ``None`` for a chunked body.
    """

    def __init__(self, receive: Receive, content_length: int | None) -> None:
        super().__init__()
        self._receive = receive
        self.content_length = content_length
        self._more = content_length != 0
        self._received = 0
        # Received ahead of reading: memory, then a temporary file past SPOOL_MEMORY.
        self._store: t.Any = None
        self._stored = 0
        self._taken = 0
        #: Set when the client went away before the body ended.
        self.disconnected = False

    # -- async side (the event loop) -------------------------------------------------

    async def receive_chunk(self) -> bytes:
        """Receive the next piece of the body; ``b""`` once it has ended.

        Raises :class:`~werkzeug.exceptions.ClientDisconnected` (400) if the client left.
        """
        while self._more:
            message = await self._receive()
            kind = message["type"]
            if kind == "http.disconnect":
                self.disconnected = True
                self._more = False
                raise ClientDisconnected(
                    "The client disconnected before the request body was complete."
                )
            if kind != "http.request":
                continue
            self._more = bool(message.get("more_body", False))
            chunk: bytes = message.get("body", b"")
            if chunk:
                self._received += len(chunk)
                return chunk
        return b""

    @property
    def complete(self) -> bool:
        """Whether every message of the body has been received."""
        return not self._more

    async def receive_ahead(self, limit: int | None) -> None:
        """Receive the body ahead of reading, until it ends or passes ``limit``.

        A declared length over ``limit`` is not received at all. A client that leaves
        stops it; reading then raises ``ClientDisconnected`` (400) at the gap.
        """
        if (
            limit is not None
            and self.content_length is not None
            and self.content_length > limit
        ):
            return
        while self._more and (limit is None or self._received <= limit):
            try:
                chunk = await self.receive_chunk()
            except ClientDisconnected:
                return
            self._put(chunk)

    async def drain(self, limit: int | None) -> None:
        """Receive the rest of the body and drop it, until it ends or the client
        leaves, or past ``limit`` bytes dropped (``None``: no limit). With a declared
        length whose rest is over ``limit``, nothing is received."""
        if (
            limit is not None
            and self.content_length is not None
            and self.content_length - self._received > limit
        ):
            return
        dropped = 0
        while self._more and (limit is None or dropped <= limit):
            message = await self._receive()
            kind = message["type"]
            if kind == "http.disconnect":
                self.disconnected = True
                self._more = False
            elif kind == "http.request":
                self._more = bool(message.get("more_body", False))
                size = len(message.get("body", b""))
                self._received += size
                dropped += size

    async def iter_chunks(self) -> AsyncGenerator[bytes, None]:
        """Yield the body piece by piece as it arrives, without keeping it."""
        buffer = bytearray(64 * 1024)
        while size := self._take(buffer):
            yield bytes(buffer[:size])
        # On the server's loop, or from a worker thread's own loop ("thread" mode).
        receive = (
            self.receive_chunk
            if not bridge.in_worker_thread()
            else lambda: bridge.await_on_loop(self.receive_chunk)
        )
        while chunk := await receive():
            yield chunk

    # -- sync side (worker threads) --------------------------------------------------

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: t.Any) -> int:
        size = self._take(buffer)
        if size or not self._more:
            if not size and self.disconnected:
                raise ClientDisconnected(
                    "The client disconnected before the request body was complete."
                )
            return size
        chunk = self._receive_from_thread()
        size = min(len(buffer), len(chunk))
        buffer[:size] = chunk[:size]
        self._put(chunk[size:])
        return size

    def _receive_from_thread(self) -> bytes:
        try:
            return bridge.run_on_loop(self.receive_chunk)
        except bridge.NotInWorkerThread:
            raise RuntimeError(
                "The request body was read from the event loop before it was received.\n\n"
                "An async step cannot wait for the body inside a sync accessor such as"
                " `request.get_data()`: the entry point receives it before each async"
                " step, up to MAX_CONTENT_LENGTH, except for views marked"
                " `@stream_request_body`. Fix: in such a view, read the body with"
                " `async for chunk in request.iter_body()`, or remove the mark."
            ) from None

    def readall(self) -> bytes:
        if self._more or self.disconnected or type(self._store) is not bytearray:
            return super().readall() or b""
        # The whole body is in memory (received ahead): taken in one piece.
        rest = bytes(self._store[self._taken : self._stored])
        self._taken = self._stored
        return rest

    # -- the store of received, unread bytes -----------------------------------------

    def _put(self, data: bytes) -> None:
        if not data:
            return
        store = self._store
        if store is None:
            store = self._store = bytearray()
        end = self._stored + len(data)
        if type(store) is bytearray:
            if end <= SPOOL_MEMORY:
                store += data
                self._stored = end
                return
            # Past the memory bound: the body goes on in a temporary file.
            spooled = tempfile.TemporaryFile()  # noqa: SIM115
            spooled.write(store)
            store = self._store = spooled
        store.seek(self._stored)
        store.write(data)
        self._stored = end

    def _take(self, buffer: t.Any) -> int:
        start = self._taken
        if start >= self._stored:
            return 0
        store = self._store
        if type(store) is bytearray:
            size = min(len(buffer), self._stored - start)
            buffer[:size] = store[start : start + size]
        else:
            store.seek(start)
            size = store.readinto(buffer)
        self._taken = start + size
        return size

    def close(self) -> None:
        if self._store is not None and type(self._store) is not bytearray:
            self._store.close()
        super().close()


class NoBody:
    """The ``wsgi.input`` of a request without a body: nothing to receive."""

    complete = True
    content_length = 0
    disconnected = False

    def read(self, size: int = -1) -> bytes:
        return b""

    def readline(self, size: int = -1) -> bytes:
        return b""

    def readinto(self, buffer: t.Any) -> int:
        return 0

    def close(self) -> None:
        pass

    async def receive_ahead(self, limit: int | None) -> None:
        pass

    async def drain(self, limit: int | None) -> None:
        pass


NO_BODY = NoBody()
