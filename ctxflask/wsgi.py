"""The WSGI entry point: runs the pipeline for an environ and carries the response out.

It knows WSGI (environ, ``start_response``, the body iterable and its ``close``) and
nothing of routing, hooks or sessions. Each request runs in a fresh copy of the server
thread's context. A streamed body is iterated inside that context with the request's
contexts still pushed; they are popped, and teardown runs, when the server closes the
body.
"""

from __future__ import annotations

import collections.abc as cabc
import contextvars
import functools
import socket
import typing as t
import weakref

from werkzeug.wsgi import ClosingIterator

from . import bridge
from . import pipeline
from .core.wrappers import response_headers
from .core.wrappers import sends_body

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIEnvironment

    from .core.app import App
    from .core.ctx import RequestContext
    from .core.wrappers import Response


class WSGIApp:
    """The WSGI application of an app: ``app.wsgi_app`` calls it for each request.

    Before the first request of each process (a server forks workers after importing
    the app) it starts serving (``before_serving``), and stops serving at exit.
    """

    def __init__(self, app: App) -> None:
        self.app = app
        self._serving = bridge.OncePerProcess()

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> cabc.Iterable[bytes]:
        """Handle one request."""
        app = self.app
        if not self._serving.done:
            self._serving.run(self._start_serving)
        ctx = contextvars.copy_context()
        req_ctx = ctx.run(app.request_context, environ)
        if _PEEK:
            client = environ.get("gunicorn.socket") or environ.get("werkzeug.socket")
            if client is not None:
                req_ctx.request._disconnect = _PeerProbe(client)
        response, error, finished = bridge.run_steps(
            pipeline.handle_request(app, req_ctx), ctx
        )
        if not finished:
            streamed, response, error = _start_streaming(
                app, req_ctx, ctx, response, error, environ, start_response
            )
            if streamed is not None:
                return streamed
            # The body failed before its first chunk: the error response instead.
            bridge.run_steps(pipeline.finish_request(app, req_ctx, error), ctx)
        _end_leftover_tasks(app)
        # The contexts are popped: what is left is sending a body already made.
        headers = ctx.run(response_headers, response, req_ctx.request)
        code = response.status_code
        start_response(response.status, headers)
        tasks = req_ctx._background_tasks
        body: t.Any
        if not sends_body(environ["REQUEST_METHOD"], code):
            body = []  # nothing to send; the response is still closed (an open file, say)
            if not (response.direct_passthrough or response._on_close or tasks):
                return t.cast(list[bytes], body)
        elif response.direct_passthrough:
            # A file wrapper, returned as is so that the server may use sendfile.
            body = response.response
            if not tasks:
                return t.cast(cabc.Iterable[bytes], body)
        else:
            body = response.response
            if not (type(body) is list and len(body) == 1 and type(body[0]) is bytes):
                body = [c.encode() if isinstance(c, str) else c for c in body]
            if not response._on_close and not tasks:
                return t.cast(list[bytes], body)

        def close() -> None:
            # The server calls this once the response is sent.
            try:
                ctx.run(response.close)
            finally:
                _run_background_tasks(app, req_ctx, ctx)

        return ClosingIterator(body, close)

    def _start_serving(self) -> None:
        steps = pipeline.start_serving(self.app)
        if steps is not None:
            bridge.run_steps(steps, contextvars.copy_context())
        bridge.process.at_exit(functools.partial(_stop_serving, weakref.ref(self.app)))

    def __repr__(self) -> str:
        return f"<WSGIApp of {self.app.name!r}>"


#: A read that peeks without waiting (none where the platform has no MSG_DONTWAIT).
_PEEK = (
    socket.MSG_PEEK | getattr(socket, "MSG_DONTWAIT", 0)
    if hasattr(socket, "MSG_DONTWAIT")
    else 0
)


class _PeerProbe:
    """Whether the client left, told from its socket, which the server exposes in the
    environ (gunicorn, werkzeug's development server): the peer closed it and nothing
    it sent is waiting (a pipelined request waiting means it is still there). A client
    that only half-closed, done sending, counts as gone."""

    __slots__ = ("client",)

    def __init__(self, client: socket.socket) -> None:
        self.client = client

    def is_disconnected(self) -> bool:
        try:
            return self.client.recv(1, _PEEK) == b""
        except BlockingIOError:
            return False  # open, nothing waiting
        except ConnectionError:
            return True  # reset by the peer
        except (OSError, ValueError):
            return False  # TLS (no peeking), or closed on the server's side

    def on_disconnect(
        self, callback: t.Callable[[], object]
    ) -> t.Callable[[], None] | None:
        return None  # nothing watches a WSGI socket: a step can only ask


def _stop_serving(app_ref: weakref.ref[App]) -> None:
    app = app_ref()
    if app is not None:
        steps = pipeline.stop_serving(app)
        if steps is not None:
            bridge.run_steps(steps, contextvars.copy_context())


def _end_leftover_tasks(app: App) -> None:
    """Cancel the tasks the request's async steps started and left running: the thread's
    event loop stops with the request (work meant to outlive it belongs in
    ``app.add_background_task``)."""
    cancelled = bridge.cancel_leftover_tasks()
    if cancelled:
        app.logger.warning(
            "Cancelled %d task(s) still running when the request ended (under WSGI the"
            " event loop runs only during async steps; use app.add_background_task for work"
            " after the response): %s",
            len(cancelled),
            ", ".join(repr(task.get_coro()) for task in cancelled),
        )


def _run_background_tasks(
    app: App, req_ctx: RequestContext, ctx: contextvars.Context
) -> None:
    if req_ctx._background_tasks:
        bridge.run_steps(pipeline.run_background_tasks(app, req_ctx), ctx)


def _start_streaming(
    app: App,
    req_ctx: RequestContext,
    ctx: contextvars.Context,
    response: Response,
    error: BaseException | None,
    environ: WSGIEnvironment,
    start_response: StartResponse,
) -> tuple[cabc.Iterable[bytes] | None, Response, BaseException | None]:
    """Start sending a streamed response: its first chunk is taken before the status
    goes out, so that a body failing at once is answered by the app's error handling,
    as its view would be. Returns the body for the server, or ``None`` when the body
    failed that way and the answer is not streamed; then the response to send instead
    and the exception left unhandled (the contexts are still pushed: the caller pops
    them)."""
    method = environ["REQUEST_METHOD"]
    try:
        chunks = bridge.iterate_body(response.response, ctx)
        if sends_body(method, response.status_code):
            try:
                chunks.first()
            except Exception as e:
                chunks.close()
                ctx.run(response.close)
                response, handled = bridge.run_steps(
                    pipeline.handle_body_error(app, e), ctx
                )
                error = handled or error
                if not pipeline.is_streamed(response):
                    return None, response, error
                # An error handler's own stream: a failure at once is not handled twice.
                chunks = bridge.iterate_body(response.response, ctx)
                if sends_body(method, response.status_code):
                    chunks.first()
        headers = ctx.run(response_headers, response, req_ctx.request)
        code = response.status_code
        start_response(response.status, headers)
        body = _StreamedBody(app, req_ctx, ctx, response, error, chunks)
    except BaseException as e:
        bridge.run_steps(pipeline.finish_request(app, req_ctx, e), ctx)
        raise
    if not sends_body(method, code):
        body.close()  # never started: the generator is closed unrun, teardown runs now
        return (), response, error
    return body, response, error


class _StreamedBody:
    """A streamed response body for the server: its chunks come from the bridge, inside
    the request's context (sync iterators on the server's thread, async ones on the
    thread's event loop). ``close()`` (called by the server once the response is sent, or
    the client left) closes the iterator and then pops the request's contexts: teardown
    runs once, after the last chunk.
    """

    def __init__(
        self,
        app: App,
        req_ctx: RequestContext,
        ctx: contextvars.Context,
        response: Response,
        error: BaseException | None,
        chunks: bridge.BodyIterator,
    ) -> None:
        self._app = app
        self._req_ctx = req_ctx
        self._ctx = ctx
        self._response = response
        self._error = error
        self._chunks = chunks
        self._closed = False

    def __iter__(self) -> _StreamedBody:
        return self

    def __next__(self) -> bytes:
        try:
            return next(self._chunks)
        except StopIteration:
            raise
        except BaseException as e:
            self._error = e
            raise

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        ctx = self._ctx
        try:
            self._chunks.close()
            ctx.run(self._response.close)
        except BaseException as e:
            self._error = self._error or e
            raise
        finally:
            try:
                bridge.run_steps(
                    pipeline.finish_request(self._app, self._req_ctx, self._error), ctx
                )
            finally:
                _end_leftover_tasks(self._app)
                _run_background_tasks(self._app, self._req_ctx, ctx)

    def __del__(self) -> None:
        # A server or client that dropped the body without closing it: the request
        # still ends, once, wherever the collector runs.
        if not self._closed:
            try:
                self.close()
            except Exception:
                self._app.logger.exception(
                    "Closing an abandoned streamed response failed"
                )
