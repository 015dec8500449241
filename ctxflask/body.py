"""The request body of an ASGI request, received from ``receive`` only when it is read.

It is the ``wsgi.input`` of the environ the ASGI entry point builds, so werkzeug's
parsers (``get_data``, ``form``, ``files``, ``get_json``, ``stream``) read it as they read
a WSGI body, with the same limits. From a sync step (a worker thread) a read pulls the
next messages from the event loop. An async step cannot wait inside a sync accessor, so
before the first async step of a request that has a body, the entry point receives the
whole body (:meth:`ASGIBody.receive_all`, spooled to disk past a size) -- unless the view
is marked with :func:`ctxflask.stream_request_body` and consumes it chunk by chunk with
``request.iter_body()``.
"""

from __future__ import annotations

import io
import tempfile
import typing as t
from collections.abc import AsyncIterator
from collections.abc import Awaitable
from collections.abc import Callable

import anyio.from_thread
from werkzeug.exceptions import ClientDisconnected
from werkzeug.exceptions import RequestEntityTooLarge

Receive = Callable[[], Awaitable[dict[str, t.Any]]]

#: Bodies received whole stay in memory up to this size, then move to a temporary file.
SPOOL_MEMORY = 1024 * 1024


class ASGIBody(io.RawIOBase):
    """A readable stream over the ``http.request`` messages of one request.

    :param receive: the ASGI ``receive`` callable.
    :param content_length: the declared length, or ``None`` for a chunked body.
    """

    def __init__(self, receive: Receive, content_length: int | None) -> None:
        super().__init__()
        self._receive = receive
        self.content_length = content_length
        self._pending = b""  # received, not yet read
        self._spool: t.BinaryIO | None = None  # the whole body, once received whole
        self._more = content_length != 0
        self._received = 0
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

    async def receive_all(self, limit: int | None) -> None:
        """Receive the rest of the body into a spool (memory, then a temporary file).

        :param limit: the most bytes accepted (``MAX_CONTENT_LENGTH``): a declared length
            over it is refused before reading, a chunked body as soon as it passes it, with
            :class:`~werkzeug.exceptions.RequestEntityTooLarge` (413).
        """
        if self._spool is not None or not self._more:
            return
        if (
            limit is not None
            and self.content_length is not None
            and self.content_length > limit
        ):
            raise RequestEntityTooLarge()
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115
        spool.write(self._pending)
        self._pending = b""
        while self._more:
            chunk = await self.receive_chunk()
            if limit is not None and self._received > limit:
                spool.close()
                raise RequestEntityTooLarge()
            spool.write(chunk)
        spool.seek(0)
        self._spool = t.cast(t.BinaryIO, spool)

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """Yield the body piece by piece as it arrives, without keeping it."""
        if self._spool is not None:
            while chunk := self._spool.read(64 * 1024):
                yield chunk
            return
        if self._pending:
            chunk, self._pending = self._pending, b""
            yield chunk
        while chunk := await self.receive_chunk():
            yield chunk

    # -- sync side (worker threads) --------------------------------------------------

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: t.Any) -> int:
        if self._spool is not None:
            return t.cast(int, self._spool.readinto(buffer))  # type: ignore[attr-defined]
        if not self._pending:
            if not self._more:
                return 0
            self._pending = self._receive_from_thread()
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def _receive_from_thread(self) -> bytes:
        try:
            return anyio.from_thread.run(self.receive_chunk)
        except RuntimeError as e:
            if "worker thread" not in str(e) and "event loop thread" not in str(e):
                raise
            raise RuntimeError(
                "The request body was read from the event loop before it was received.\n\n"
                "An async step cannot wait for the body inside a sync accessor such as"
                " `request.get_data()`: the entry point receives it before the first async"
                " step, except for views marked `@stream_request_body`. Fix: in such a view,"
                " read the body with `async for chunk in request.iter_body()`, or remove"
                " the mark."
            ) from None

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()
        super().close()
