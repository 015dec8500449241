"""ASGI requests through the app's WSGI middleware.

Middleware written for WSGI wraps ``app.wsgi_app`` on the app
(``app.wsgi_app = ProxyFix(app.wsgi_app)``, OpenTelemetry's Flask instrumentation) or
the app class's ``__call__`` (sentry-sdk's Flask integration). When the app has some,
an ASGI request passes it as a WSGI request would, and it sees the same request:

- in a worker thread (a pool of the app's own: those threads wait for the pipeline,
  which needs the other pools), the middleware chain is called with the environ of the
  scope, ``wsgi.input`` receiving the body from the loop as it is read;
- the innermost callable, ctxflask's own ``wsgi_app``, hands the environ it is given,
  changed or not, to :meth:`HandOff.serve`: the request is made from it, and its
  pipeline runs on the server's loop as any ASGI request's, in a copy of the thread's
  context (so what the middleware set in context variables, Sentry's scopes or
  OpenTelemetry's current span, is seen by hooks, views and signal receivers);
- the response comes back to the thread, for ``start_response`` and the body iterable
  of the middleware; the thread sends on what the chain gives, chunk by chunk.

An app without WSGI middleware never comes here: its ASGI requests take the usual path.
"""

from __future__ import annotations

import collections.abc as cabc
import contextvars
import typing as t

import anyio
from werkzeug.http import HTTP_STATUS_CODES

from .. import bridge
from .. import pipeline
from ..core.errors import HTTPDisconnect
from .body import ASGIBody
from .body import NO_BODY
from .body import NoBody
from .http import HTTPConnection
from .scope import build_environ
from .scope import ScopeEnviron
from .types import Message
from .types import Receive
from .types import Scope
from .types import Send

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIApplication
    from _typeshed.wsgi import WSGIEnvironment

    from ..core.app import App
    from .app import ASGIApp

#: The ASGI request a worker thread runs through WSGI middleware, for the innermost
#: ``wsgi_app`` to take on.
_handoff: contextvars.ContextVar[HandOff | None] = contextvars.ContextVar(
    "ctxflask.asgi.handoff", default=None
)


def handoff_for(app: App) -> HandOff | None:
    """In the WSGI middleware of an ASGI request of ``app``: that request, to hand the
    environ to (once; a WSGI request, or a sub-request made meanwhile, finds none)."""
    handoff = _handoff.get()
    if handoff is None or handoff.taken or handoff.asgi.app is not app:
        return None
    return handoff


async def serve_through(
    asgi: ASGIApp,
    middleware: WSGIApplication,
    scope: Scope,
    receive: Receive,
    send: Send,
) -> None:
    """Serve one ``http`` scope through ``middleware``, the WSGI chain whose innermost
    callable is the app's ``wsgi_app``."""
    source = ScopeEnviron(scope, NO_BODY)
    length = source.content_length()
    body: ASGIBody | NoBody = NO_BODY if length == 0 else ASGIBody(receive, length)
    environ = build_environ(scope, body)
    failure: Exception | None = None
    async with anyio.create_task_group() as tg:
        handoff = HandOff(asgi, scope, receive, send, body, tg)
        ctx = contextvars.copy_context()
        ctx.run(_handoff.set, handoff)
        try:
            await asgi.app._workers("wsgi middleware").run(
                ctx.run, handoff.run_chain, middleware, environ
            )
        except Exception as e:  # raised out of the group, not wrapped in one
            failure = e
        except HTTPDisconnect:
            pass  # the view was cancelled, and nobody is left to answer
        finally:
            handoff.end()
    if failure is not None:
        raise failure


class HandOff:
    """One ASGI request on its way through WSGI middleware: the chain runs in a worker
    thread (:meth:`run_chain`), the pipeline on the loop (:class:`HandedOnConnection`),
    and the response's messages pass from one to the other, one at a time."""

    def __init__(
        self,
        asgi: ASGIApp,
        scope: Scope,
        receive: Receive,
        send: Send,
        body: ASGIBody | NoBody,
        tg: anyio.abc.TaskGroup,
    ) -> None:
        self.asgi = asgi
        self.scope = scope
        self.receive = receive
        self.send = send
        self.body = body
        #: Whether the innermost ``wsgi_app`` took the request on.
        self.taken = False
        self._tg = tg
        # Unbuffered: the pipeline makes the next chunk once the thread took the last.
        self._to_thread, self._from_loop = anyio.create_memory_object_stream[Message](0)
        self._failure: Exception | None = None
        #: Set once the connection ended, torn down.
        self.done = anyio.Event()
        self._status: tuple[str, list[tuple[str, str]]] | None = None
        self._started = False

    # -- the worker thread ------------------------------------------------------------

    def run_chain(self, middleware: WSGIApplication, environ: WSGIEnvironment) -> None:
        """Call the middleware chain with the scope's environ, and send the response it
        gives to the client, from the loop."""
        result = middleware(environ, self._start_response)
        # The app's own body, passed on as is (ProxyFix, OpenTelemetry's middleware):
        # its last chunk is known as such, and goes with the end in one trip.
        own = result if type(result) is _HandedOnBody else None
        try:
            for chunk in result:
                if own is not None and own.ended:
                    self._send({"type": "http.response.body", "body": bytes(chunk)})
                    return
                if chunk:
                    self._write(chunk)
            self._send({"type": "http.response.body", "body": b""})
        except _ClientGone:
            pass  # as on the usual path: the body is closed, the request ends
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    def _start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: t.Any = None,
    ) -> t.Callable[[bytes], object]:
        if exc_info is not None and self._started:
            raise exc_info[1].with_traceback(exc_info[2])
        self._status = (status, headers)
        return self._write

    def _write(self, chunk: bytes) -> None:
        self._send(
            {"type": "http.response.body", "body": bytes(chunk), "more_body": True}
        )

    def _send(self, message: Message) -> None:
        # As a WSGI server does, the status goes out with the first chunk, or at the
        # end: in one trip to the loop with it.
        messages = (message,) if self._started else (self._start_message(), message)
        try:
            bridge.run_on_loop(self._send_all, messages)
        except OSError as e:  # the client went away
            raise _ClientGone from e

    async def _send_all(self, messages: tuple[Message, ...]) -> None:
        for message in messages:
            await self.send(message)

    def _start_message(self) -> Message:
        if self._status is None:
            raise RuntimeError(
                "The WSGI middleware around the app returned a body without calling"
                " start_response()."
            )
        self._started = True
        status, headers = self._status
        return {
            "type": "http.response.start",
            "status": int(status.split(" ", 1)[0]),
            "headers": [
                (name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in headers
            ],
        }

    def serve(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> cabc.Iterable[bytes]:
        """The innermost ``wsgi_app`` of the chain, in the worker thread: serve the
        request of ``environ`` on the loop, call ``start_response`` with its status and
        headers, and return its body, which comes from the loop as it is iterated."""
        self.taken = True
        start, first = bridge.run_on_loop(self._open, environ)
        reason = HTTP_STATUS_CODES.get(start["status"], "UNKNOWN")
        start_response(
            f"{start['status']} {reason}",
            [
                (name.decode("latin-1"), value.decode("latin-1"))
                for name, value in start["headers"]
            ],
        )
        return _HandedOnBody(self, first)

    # -- the loop ---------------------------------------------------------------------

    async def _open(self, environ: WSGIEnvironment) -> tuple[Message, Message | None]:
        # A task of the thread's call, in a copy of its context: the connection's
        # context is a copy of that. The start and the first piece of the body come
        # back in one trip (the connection makes the first chunk before the start).
        connection = HandedOnConnection(self, environ)
        self._tg.start_soon(self._run, connection)
        start = await self.next_message()
        if start is None and connection.cancelled:
            # The view was cancelled as its client left: the middleware sees the
            # cancellation, as code around a cancelled call does.
            raise HTTPDisconnect("The client went away; the view was cancelled.")
        if start is None:  # pragma: no cover - a connection always starts or raises
            raise RuntimeError("The request ended without a response.")
        return start, await self.next_message()

    async def _run(self, connection: HandedOnConnection) -> None:
        try:
            await connection.run()
        except Exception as e:  # for the thread to raise, through the middleware
            self._failure = e
        finally:
            self._to_thread.close()
            self.done.set()

    async def send_to_thread(self, message: Message) -> None:
        """The connection's ``send``: the thread takes the message on."""
        try:
            await self._to_thread.send(message)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            # The thread closed the body before its end: the client went away.
            raise OSError("The client went away.") from None

    async def next_message(self) -> Message | None:
        """The connection's next message; ``None`` once it ended (what it raised is
        raised here instead)."""
        try:
            return await self._from_loop.receive()
        except anyio.EndOfStream:
            failure, self._failure = self._failure, None
            if failure is not None:
                raise failure from None
            return None

    def end(self) -> None:
        """The chain returned or raised: the thread takes no more messages (and the
        connection, if the middleware never called the app, sends none)."""
        self._from_loop.close()
        self._to_thread.close()

    async def close(self) -> None:
        """The body was closed: end the connection (a generator not run to its end is
        closed) and wait until it tore down."""
        self._from_loop.close()
        await self.done.wait()


class _ClientGone(Exception):
    """Sending to the client failed: it went away."""


class _HandedOnBody:
    """The body the innermost ``wsgi_app`` returns: chunks from the loop, and a
    ``close()`` that returns once the request tore down."""

    def __init__(self, handoff: HandOff, first: Message | None) -> None:
        self._handoff = handoff
        self._first = first
        #: Whether the last chunk was taken.
        self.ended = first is None
        self._closed = False

    def __iter__(self) -> _HandedOnBody:
        return self

    def __next__(self) -> bytes:
        while not self.ended:
            message, self._first = self._first, None
            if message is None:
                message = bridge.run_on_loop(self._handoff.next_message)
            if message is None:
                break
            if message["type"] != "http.response.body":
                continue
            self.ended = not message.get("more_body", False)
            data: bytes = message.get("body", b"")
            if data:
                return data
        self.ended = True
        raise StopIteration

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if not self._handoff.done.is_set():  # a trip saved when it tore down
                bridge.run_on_loop(self._handoff.close)


class HandedOnConnection(HTTPConnection):
    """The ``http`` connection of a request handed on by WSGI middleware: its request is
    made from the environ the middleware passed on (``app.request_context(environ)``),
    and its messages go to the middleware's thread."""

    def __init__(self, handoff: HandOff, environ: WSGIEnvironment) -> None:
        asgi = self.asgi = handoff.asgi
        self.app = asgi.app
        self.scope = handoff.scope
        self.receive = handoff.receive
        self.send = handoff.send_to_thread
        self.body = handoff.body
        self.ctx = contextvars.copy_context()
        self.req_ctx = self.ctx.run(self.app.request_context, environ)
        self.request = self.req_ctx.request
        self.workers = pipeline.RequestWorkers(
            self.req_ctx, asgi.lanes or asgi.configure(), asgi.async_in_thread
        )
        bridge.watch_loop(asgi.loop_block_warning, asgi.step_names)
