"""The ASGI entry point, ``app.asgi``: one adapter per scope type.

It knows ASGI (scope, receive, send; the ``http``, ``websocket`` and ``lifespan`` scopes)
and nothing of routing, hooks or sessions: it makes the request from the scope
(:mod:`.scope`), runs the same pipeline steps as the WSGI entry point through the bridge's
async driver, with sync steps in worker threads (:mod:`.workers`), and sends the response.
Each request runs in a fresh copy of the server task's context.
"""

from __future__ import annotations

import contextvars
import logging
import typing as t
from collections.abc import AsyncIterable
from collections.abc import Callable
from collections.abc import MutableMapping

import anyio

from . import bridge
from . import pipeline
from .body import ASGIBody
from .scope import PRESERVE_CONTEXT as PRESERVE_CONTEXT
from .scope import Scope
from .scope import ScopeEnviron
from .websocket import Websocket
from .workers import pool_for
from .workers import WorkerPool
from .wrappers import response_headers
from .wrappers import sends_body

if t.TYPE_CHECKING:
    from .app import Flask
    from .ctx import RequestContext
    from .wrappers import Response

Message = MutableMapping[str, t.Any]
Receive = Callable[[], t.Awaitable[Message]]
Send = Callable[[Message], t.Awaitable[None]]

logger = logging.getLogger("ctxflask.asgi")


class ASGIApp:
    """The ASGI 3 application of a :class:`~ctxflask.Flask` app: ``uvicorn module:app.asgi``.

    Serves the ``http`` and ``lifespan`` scopes. Sync steps run in a pool of worker
    threads of ``WORKER_THREADS`` (config, default 40) per app and event loop.
    """

    def __init__(self, app: Flask) -> None:
        self.app = app
        #: Background tasks running now, in this process (lifespan shutdown waits).
        self.running_tasks = 0
        self._tasks_done: anyio.Event | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await HTTPConnection(self, scope, receive, send).run()
        elif kind == "lifespan":
            await Lifespan(self, receive, send).run()
        elif kind == "websocket":
            await WebsocketConnection(self, scope, receive, send).run()
        else:
            raise ValueError(
                f"Unsupported ASGI scope type {kind!r}: ctxflask serves 'http', 'websocket'"
                " and 'lifespan' scopes."
            )

    def workers(self) -> WorkerPool:
        """The app's worker threads on the running event loop. Looked up only when a
        request has sync work: async-only requests never pay for it."""
        return pool_for(id(self.app), int(self.app.config.get("WORKER_THREADS") or 40))

    def __repr__(self) -> str:
        return f"<ASGIApp of {self.app.name!r}>"


class _NoBody:
    """The ``wsgi.input`` of a request without a body: nothing to receive."""

    complete = True
    content_length = 0

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


_NO_BODY = _NoBody()


def _streams_request_body(app: Flask, req_ctx: RequestContext) -> bool:
    rule = req_ctx.request.url_rule
    if rule is None:
        return False
    view = app.view_functions.get(rule.endpoint)
    return getattr(view, "__ctxflask_streams_body__", False) is True


class _Connection:
    """What an ``http`` and a ``websocket`` scope share: the request context made from the
    scope (its environ built only if read), and a fresh copy of the server task's context
    to run it in."""

    #: Whether the request has a body to receive (a WebSocket's messages are not one).
    receives_body = True

    def __init__(
        self, asgi: ASGIApp, scope: Scope, receive: Receive, send: Send
    ) -> None:
        self.asgi = asgi
        self.app = app = asgi.app
        self.scope = scope
        self.receive = receive
        self.send = send
        source = ScopeEnviron(scope, _NO_BODY)
        if self.receives_body:
            length = source.content_length()
            if length != 0:
                source.body = ASGIBody(receive, length)
        self.body: _NoBody | ASGIBody = source.body
        self.ctx = contextvars.copy_context()
        self.req_ctx: RequestContext = app._scope_request_context(source)
        self.request = self.req_ctx.request
        self._workers: WorkerPool | None = None


class HTTPConnection(_Connection):
    """One ``http`` scope: run the pipeline, send the response, tear down once."""

    def workers(self) -> WorkerPool:
        """The app's worker threads, found on first use."""
        if self._workers is None:
            self._workers = self.asgi.workers()
        return self._workers

    async def run(self) -> None:
        app, ctx, req_ctx = self.app, self.ctx, self.req_ctx
        response, error, finished = await bridge.run_steps_async(
            pipeline.handle_request(app, req_ctx),
            ctx,
            self.workers,
            before_async=None
            if self.body is _NO_BODY
            else self._receive_body_for_async,
        )
        if finished:
            await self._send_complete(response)
        else:
            await self._send_streamed(response, error)
        if req_ctx._background_tasks:
            await self._run_background_tasks()

    async def _run_background_tasks(self) -> None:
        # After the last byte went out, in this request's task: the server's graceful
        # shutdown waits for it, and lifespan shutdown for what is still running.
        self.asgi.running_tasks += 1
        try:
            await bridge.run_steps_async(
                pipeline.run_background_tasks(self.app, self.req_ctx),
                self.ctx,
                self.workers,
            )
        finally:
            self.asgi.running_tasks -= 1
            done = self.asgi._tasks_done
            if done is not None and not self.asgi.running_tasks:
                done.set()

    async def _receive_body_for_async(self, invoke: bridge.Invoke) -> None:
        # An async step reads the body through sync accessors: it must be here first,
        # up to the limit in force now (a hook may have changed it).
        body = self.body
        if body.complete or _streams_request_body(self.app, self.req_ctx):
            return
        limit = self.ctx.run(lambda: self.req_ctx.request.max_content_length)
        await body.receive_ahead(limit)

    def _start(self, response: Response) -> tuple[Message, bool]:
        """The ``http.response.start`` message, and whether a body follows it (none for
        HEAD, 1xx, 204 and 304)."""
        code = response.status_code
        start = {
            "type": "http.response.start",
            "status": code,
            "headers": self.ctx.run(response_headers, response, self.request, True),
        }
        return start, sends_body(self.scope["method"], code)

    async def _send_complete(self, response: Response) -> None:
        """A body already made (the contexts are popped): send it."""
        try:
            start, has_body = self._start(response)
            await self.send(start)
            if not has_body:
                await self.send({"type": "http.response.body", "body": b""})
            elif response.direct_passthrough:
                await self._send_file(response)
            else:
                chunks = response.response
                if (
                    type(chunks) is list
                    and len(chunks) == 1
                    and type(chunks[0]) is bytes
                ):
                    data = chunks[0]  # the usual body: one piece, already bytes
                else:
                    data = b"".join(
                        c.encode() if isinstance(c, str) else bytes(c) for c in chunks
                    )
                await self.send({"type": "http.response.body", "body": data})
        finally:
            if response._on_close or response.direct_passthrough:
                await self.workers().run(self.ctx.run, response.close)

    async def _send_file(self, response: Response) -> None:
        # A file wrapper (send_file): read it in chunks, in worker threads.
        iterator = iter(t.cast(t.Iterable[bytes], response.response))
        while True:
            chunk = await self.workers().run(next, iterator, None)
            if chunk is None:
                break
            await self.send(
                {"type": "http.response.body", "body": chunk, "more_body": True}
            )
        await self.send({"type": "http.response.body", "body": b""})

    async def _send_streamed(
        self, response: Response, error: BaseException | None
    ) -> None:
        """Send a generator's chunks as they come, inside the request's contexts; then
        close it and tear down, once, however the stream ended: at its end, by an error,
        or because the client went away (``http.disconnect``, or ``send`` failing)."""
        chunks = _Chunks(response, self.ctx, self.workers())
        failure: Exception | None = None
        try:
            start, has_body = self._start(response)
            await self.send(start)
            if not has_body:
                await self.send({"type": "http.response.body", "body": b""})
            else:
                async with anyio.create_task_group() as tg:
                    if self.body.complete:
                        tg.start_soon(self._cancel_on_disconnect, tg.cancel_scope)
                    # Failures are kept, not raised, inside the group: raised there they
                    # would come out wrapped in an exception group.
                    failure = await self._send_chunks(chunks)
                    tg.cancel_scope.cancel()
        except OSError:
            pass  # the client went away: the start could not be sent
        except BaseException as e:
            error = error or e
            raise
        finally:
            if failure is not None and not isinstance(failure, OSError):
                error = error or failure
            with anyio.CancelScope(shield=True):
                try:
                    await chunks.aclose()
                    await self.workers().run(self.ctx.run, response.close)
                finally:
                    await bridge.run_steps_async(
                        pipeline.finish_request(self.app, self.req_ctx, error),
                        self.ctx,
                        self.workers,
                    )
        if failure is not None and not isinstance(failure, OSError):
            # Headers went out: raising makes the server close the connection.
            raise failure

    async def _send_chunks(self, chunks: _Chunks) -> Exception | None:
        try:
            async for chunk in chunks:
                await self.send(
                    {"type": "http.response.body", "body": chunk, "more_body": True}
                )
            await self.send({"type": "http.response.body", "body": b""})
        except Exception as e:  # the generator failed, or the send (client gone)
            return e
        return None

    async def _cancel_on_disconnect(self, scope: anyio.CancelScope) -> None:
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                scope.cancel()
                return


class WebsocketConnection(_Connection):
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
                self.asgi.workers,
            )
        except BaseException:
            # Raised on (testing, or cancelled): the client still gets an ending.
            with anyio.CancelScope(shield=True):
                await self._end(None, failed=True)
            raise
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


class _Chunks:
    """The chunks of a streamed body, as bytes, produced inside the request's context:
    an async iterable on the loop, a sync one in worker threads."""

    _END = object()

    def __init__(
        self,
        response: Response,
        ctx: contextvars.Context,
        workers: WorkerPool,
    ) -> None:
        self.ctx = ctx
        self.workers = workers
        source: t.Any = response.response
        self.is_async = isinstance(source, AsyncIterable) and not hasattr(
            source, "__iter__"
        )
        self.iterator: t.Any = source.__aiter__() if self.is_async else iter(source)
        self.closed = False

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes:
        if self.is_async:
            chunk = await bridge.pinned(self.iterator.__anext__(), self.ctx)
        else:
            chunk = await self.workers.run(self.ctx.run, next, self.iterator, self._END)
            if chunk is self._END:
                raise StopAsyncIteration
        if isinstance(chunk, str):
            return chunk.encode()
        return chunk if type(chunk) is bytes else bytes(chunk)

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.is_async:
            aclose = getattr(self.iterator, "aclose", None)
            if aclose is not None:
                await bridge.pinned(aclose(), self.ctx)
        else:
            close = getattr(self.iterator, "close", None)
            if close is not None:
                await self.workers.run(self.ctx.run, close)


class Lifespan:
    """The ``lifespan`` scope: ``before_serving`` at startup, ``after_serving`` at
    shutdown, each in an app context; a failure is reported with its message. Shutdown
    first waits for running background tasks, up to ``BACKGROUND_TASK_SHUTDOWN_TIMEOUT``.
    """

    def __init__(self, asgi: ASGIApp, receive: Receive, send: Send) -> None:
        self.asgi = asgi
        self.app = asgi.app
        self.receive = receive
        self.send = send

    async def run(self) -> None:
        while True:
            message = await self.receive()
            if message["type"] == "lifespan.startup":
                if not await self._serve(self.app.before_serving_funcs, "startup"):
                    return
            elif message["type"] == "lifespan.shutdown":
                await self._wait_for_background_tasks()
                await self._serve(self.app.after_serving_funcs, "shutdown")
                return

    async def _wait_for_background_tasks(self) -> None:
        timeout = float(self.app.config.get("BACKGROUND_TASK_SHUTDOWN_TIMEOUT") or 0)
        if self.asgi.running_tasks:
            done = self.asgi._tasks_done = anyio.Event()
            with anyio.move_on_after(timeout):
                await done.wait()
        if self.asgi.running_tasks:
            logger.warning(
                "Shutting down with %d background task(s) still running after %s s"
                " (BACKGROUND_TASK_SHUTDOWN_TIMEOUT)",
                self.asgi.running_tasks,
                timeout,
            )

    async def _serve(self, funcs: list[t.Any], phase: str) -> bool:
        try:
            await bridge.run_steps_async(
                pipeline.run_in_app_context(self.app, funcs),
                contextvars.copy_context(),
                self.asgi.workers,
            )
        except BaseException as e:
            logger.exception("ctxflask %s failed", phase)
            await self.send(
                {
                    "type": f"lifespan.{phase}.failed",
                    "message": f"{type(e).__name__}: {e}",
                }
            )
            return False
        await self.send({"type": f"lifespan.{phase}.complete"})
        return True
