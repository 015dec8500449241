"""Server-sent events: a streamed ``text/event-stream`` response made from a source of
events, with a heartbeat while the source is idle.

    from ctxflask.sse import ServerSentEvent, event_stream

    @app.get("/events")
    async def events():
        async def source():
            async for change in watch_changes():
                yield ServerSentEvent(change.payload, event="change", id=change.id)
        return event_stream(source())

The stream runs inside the request's contexts like any streamed body, stops when the
client leaves (the source is closed: its ``finally`` runs) and tears down once.
"""

from __future__ import annotations

import dataclasses
import re
import typing as t
from collections.abc import AsyncIterable
from collections.abc import AsyncIterator
from collections.abc import Iterable
from collections.abc import Iterator

from . import bridge
from .core import json
from .core.globals import current_app
from .core.globals import request

if t.TYPE_CHECKING:
    from .core.wrappers import Response

_LINE_BREAK = re.compile(r"\r\n|\r|\n")

#: A comment: clients ignore it, proxies and the client's socket see traffic.
HEARTBEAT = b":\n\n"


@dataclasses.dataclass(frozen=True)
class ServerSentEvent:
    """One event of a stream (the HTML standard's ``text/event-stream``).

    :param data: the event's data: a ``str`` is sent as is (one ``data:`` line per line
        of it), anything else as JSON, with the app's JSON provider.
    :param event: the event's type (``message`` when ``None``), for the client's
        ``addEventListener(type, ...)``.
    :param id: the last event id the client sends back (``Last-Event-ID``) when it
        reconnects.
    :param retry: how long the client waits before reconnecting, in milliseconds.
    """

    data: t.Any
    event: str | None = None
    id: str | None = None
    retry: int | None = None

    def __post_init__(self) -> None:
        for name in ("event", "id"):
            value = getattr(self, name)
            if value is not None and _LINE_BREAK.search(value):
                raise ValueError(f"An event's {name} cannot hold a line break.")
        if self.id is not None and "\0" in self.id:
            raise ValueError("An event's id cannot hold a NUL character.")
        if self.retry is not None and (
            not isinstance(self.retry, int) or self.retry < 0
        ):
            raise ValueError("An event's retry is a number of milliseconds, >= 0.")

    def encode(self) -> bytes:
        """The event as the stream carries it, in UTF-8, ending with a blank line."""
        data = self.data if isinstance(self.data, str) else json.dumps(self.data)
        lines = []
        if self.event is not None:
            lines.append(f"event: {self.event}\n")
        if self.id is not None:
            lines.append(f"id: {self.id}\n")
        if self.retry is not None:
            lines.append(f"retry: {self.retry}\n")
        lines.extend(f"data: {line}\n" for line in _LINE_BREAK.split(data))
        lines.append("\n")
        return "".join(lines).encode()


def _encode(item: t.Any) -> bytes:
    if item is None:
        return HEARTBEAT
    event = item if isinstance(item, ServerSentEvent) else ServerSentEvent(item)
    return event.encode()


def event_stream(
    source: Iterable[t.Any] | AsyncIterable[t.Any],
    heartbeat: float | None = 15.0,
) -> Response:
    """A streamed ``text/event-stream`` response of the events ``source`` gives.

    Each item is a :class:`ServerSentEvent`, other data (sent as an event's ``data``),
    or ``None``, which sends a heartbeat comment now. The response has
    ``Cache-Control: no-cache`` and ``X-Accel-Buffering: no`` (nginx then passes each
    event on at once).

    For an async source, a heartbeat comment goes out whenever the source gives nothing
    for ``heartbeat`` seconds (``None``: never), which keeps proxies from closing an
    idle connection and lets the server notice a client that left. When the client
    leaves, the stream stops: under ASGI at once (the server says so), under WSGI at
    the next write that fails (an event or a heartbeat). The source is closed then.

    A sync source runs in a thread (a worker thread under ASGI, the server's under
    WSGI) that it blocks while it waits for its next event: no heartbeat can go out
    meanwhile. It can yield ``None`` now and then to send one; before each of its
    events, the stream ends if ``request.is_disconnected()`` says the client left.
    """
    body: Iterator[bytes] | AsyncIterator[bytes]
    if isinstance(source, AsyncIterable) and not isinstance(source, Iterable):
        body = _async_events(source, heartbeat)
    else:
        body = _sync_events(source)
    # An async body streams as a sync one does (the entry points iterate either).
    return current_app.response_class(
        t.cast(Iterable[bytes], body),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _sync_events(source: Iterable[t.Any]) -> Iterator[bytes]:
    events = iter(source)
    try:
        while not request.is_disconnected():
            try:
                item = next(events)
            except StopIteration:
                return
            yield _encode(item)
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()


async def _async_events(
    source: AsyncIterable[t.Any], heartbeat: float | None
) -> t.AsyncGenerator[bytes, None]:
    events = source.__aiter__()
    if heartbeat is None:
        try:
            async for item in events:
                yield _encode(item)
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()
        return
    ticking = bridge.with_ticks(events, heartbeat, None)
    try:
        async for item in ticking:
            yield _encode(item)
    finally:
        await ticking.aclose()
