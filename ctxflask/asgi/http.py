"""The ``http`` scope: run the pipeline for one request, send its response, tear down
once."""

from __future__ import annotations

import typing as t

import anyio

from .. import bridge
from .. import pipeline
from ..core.wrappers import response_headers
from ..core.wrappers import sends_body
from .body import NO_BODY
from .connection import Connection
from .scope import set_route
from .types import Message

if t.TYPE_CHECKING:
    from ..core.wrappers import Response


class HTTPConnection(Connection):
    """One ``http`` scope: run the pipeline, send the response, tear down once."""

    async def run(self) -> None:
        app, ctx, req_ctx = self.app, self.ctx, self.req_ctx
        try:
            response, error, finished = await bridge.run_steps_async(
                pipeline.handle_request(app, req_ctx),
                ctx,
                self.workers,
                None if self.body is NO_BODY else self._receive_body_for_async,
                self.asgi.async_in_thread,
            )
            set_route(self.scope, self.request)
            if finished:
                await self._send_complete(response)
            else:
                await self._send_streamed(response, error)
            if req_ctx._background_tasks:
                await self._run_background_tasks()
        finally:
            if self.workers.session is not None:  # its aclose() shields itself
                await self.workers.aclose()

    async def _run_background_tasks(self) -> None:
        # After the last byte went out, in this request's task: the server's graceful
        # shutdown waits for it, and lifespan shutdown for what is still running.
        self.asgi.running_tasks += 1
        try:
            await bridge.run_steps_async(
                pipeline.run_background_tasks(self.app, self.req_ctx),
                self.ctx,
                self.workers,
                async_in_thread=self.asgi.async_in_thread,
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
        if body.complete or pipeline.streams_request_body(self.app, self.req_ctx):
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
                await self.workers.run(self.ctx.run, response.close)

    async def _send_file(self, response: Response) -> None:
        # A file wrapper (send_file): read it in chunks, in worker threads.
        async for chunk in bridge.iterate_body(
            response.response, self.ctx, self.workers
        ):
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
        chunks = bridge.iterate_body(
            response.response, self.ctx, self.workers, self.asgi.async_in_thread
        )
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
                    await self.workers.run(self.ctx.run, response.close)
                finally:
                    await bridge.run_steps_async(
                        pipeline.finish_request(self.app, self.req_ctx, error),
                        self.ctx,
                        self.workers,
                        async_in_thread=self.asgi.async_in_thread,
                    )
        if failure is not None and not isinstance(failure, OSError):
            # Headers went out: raising makes the server close the connection.
            raise failure

    async def _send_chunks(self, chunks: bridge.BodyIterator) -> Exception | None:
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
