"""The ``http`` scope: run the pipeline for one request, send its response, tear down
once."""

from __future__ import annotations

import typing as t

import anyio

from .. import bridge
from .. import pipeline
from ..core.errors import HTTPDisconnect
from ..core.wrappers import response_headers
from ..core.wrappers import sends_body
from .body import NO_BODY
from .connection import Connection
from .scope import set_route
from .types import Message

if t.TYPE_CHECKING:
    from ..core.wrappers import Response


#: A request body still coming in when the response is done is received and dropped
#: up to this many bytes, or for this long, so that the connection can serve the next
#: request (the client, writing its whole body before it reads, then gets the answer).
#: Past that, the response ends with the body unread and the server closes the
#: connection.
DRAIN_BYTES = 16 * 1024 * 1024
DRAIN_SECONDS = 5.0
#: After a response ending with the body unread, how long ``receive`` is still read
#: while the server closes the request (some wait for room in their message queue).
DRAIN_GRACE = 1.0


class HTTPConnection(Connection):
    """One ``http`` scope: run the pipeline, send the response, tear down once.

    It is also what tells the request whether its client left (its
    :class:`~ctxflask.core.wrappers.DisconnectProbe`): once the body is all received, a
    watch on ``receive`` started at the first question, or by a streamed response, runs
    until the request ends."""

    #: Whether the server sent ``http.disconnect`` (or ``receive`` failed).
    client_gone = False
    #: The watch on ``receive``, once started.
    _watch: bridge.Detached | None = None
    #: What to call when the client leaves.
    _on_gone: list[t.Callable[[], object]] | None = None
    #: Whether the view was cancelled as its client left (nothing was sent).
    cancelled = False

    async def run(self) -> None:
        app, ctx, req_ctx = self.app, self.ctx, self.req_ctx
        self.request._disconnect = self
        try:
            try:
                response, error, finished = await bridge.run_steps_async(
                    pipeline.handle_request(app, req_ctx),
                    ctx,
                    self.workers,
                    None if self.body is NO_BODY else self._receive_body_for_async,
                    self.asgi.async_in_thread,
                )
            except HTTPDisconnect:
                # The view was cancelled (cancel_on_disconnect), teardown ran: nobody
                # is left to answer.
                app.logger.debug(
                    "%s %s: the client went away; the view was cancelled.",
                    self.scope["method"],
                    self.scope["path"],
                )
                self.cancelled = True
                return
            set_route(self.scope, self.request)
            if finished:
                await self._send_complete(response)
            else:
                replacement = await self._send_streamed(response, error)
                if replacement is not None:  # the body failed before its first chunk
                    await self._send_complete(replacement)
            if req_ctx._background_tasks:
                await self._run_background_tasks()
        finally:
            # The request and its connection refer to each other: the cycle is broken
            # here, or both would wait for the garbage collector.
            self.request._disconnect = None
            if self._watch is not None:
                await self._stop_watch()
            if self.workers.session is not None:  # its aclose() shields itself
                await self.workers.aclose()

    # -- the client leaving (the request's DisconnectProbe) ---------------------------

    def is_disconnected(self) -> bool:
        """Whether the client left; see ``Request.is_disconnected``."""
        if self.client_gone or self.body.disconnected:
            return True
        if self._watch is None and self.body.complete:
            self._start_watch()
        return self.client_gone

    def on_disconnect(
        self, callback: t.Callable[[], object]
    ) -> t.Callable[[], None] | None:
        """Have ``callback()`` called, on the server's loop, once the client leaves (at
        once if it left); returns what removes it. ``None`` while the body is still
        coming in: ``receive`` is the body's then."""
        if self.client_gone or self.body.disconnected:
            callback()
            return _nothing
        if not self.body.complete:
            return None
        callbacks = self._on_gone
        if callbacks is None:
            callbacks = self._on_gone = []
        callbacks.append(callback)
        if self._watch is None:
            self._start_watch()

        def remove() -> None:
            try:
                callbacks.remove(callback)
            except ValueError:
                pass  # called already

        return remove

    def _start_watch(self) -> None:
        """Start the watch on ``receive``, on the server's loop: from a worker thread,
        by a trip there that returns once the watch took what was already sent."""
        if bridge.in_worker_thread():
            bridge.run_on_loop(self._start_watch_on_loop)
            return
        try:
            self._watch = bridge.detach(
                self._watch_receive, "ctxflask disconnect watch"
            )
        except RuntimeError:
            pass  # no loop in this thread (a thread of the user's): nothing to tell yet

    async def _start_watch_on_loop(self) -> None:
        if self._watch is None:
            self._watch = await bridge.detach_and_settle(
                self._watch_receive, "ctxflask disconnect watch"
            )

    async def _watch_receive(self) -> None:
        try:
            while (await self.receive())["type"] != "http.disconnect":
                pass
        except Exception:
            pass  # receive failed: the connection is gone as far as the app can tell
        self.client_gone = True
        callbacks, self._on_gone = self._on_gone, None
        for callback in callbacks or ():
            callback()

    async def _stop_watch(self) -> None:
        watch = self._watch
        assert watch is not None
        watch.cancel()
        with anyio.CancelScope(shield=True):
            await watch.wait()

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

    async def _receive_body_for_async(self, invoke: bridge.Invoke) -> bool:
        # An async step reads the body through sync accessors: it must be here first,
        # up to the limit in force now (a hook may have changed it). Needed again
        # until the body is all here.
        body = self.body
        if body.complete:
            return False
        if pipeline.streams_request_body(self.app, self.req_ctx):
            return True
        limit = self.ctx.run(lambda: self.req_ctx.request.max_content_length)
        await body.receive_ahead(limit)
        return not body.complete

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
                await self._send_last(b"")
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
                if self.body.complete:
                    await self.send({"type": "http.response.body", "body": data})
                else:
                    await self._send_last(data)
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
        await self._send_last(b"")

    async def _send_streamed(
        self, response: Response, error: BaseException | None
    ) -> Response | None:
        """Send a generator's chunks as they come, inside the request's contexts; then
        close it and tear down, once, however the stream ended: at its end, by an error,
        or because the client went away (``http.disconnect``, or ``send`` failing).

        The first chunk is taken before the start goes out. If the generator fails
        there, the app's error handling answers instead; that response, when it is not
        streamed, is returned, to be sent once the contexts are popped."""
        app, ctx = self.app, self.ctx
        stream: Response | None = response  # the streamed response to close
        chunks = bridge.iterate_body(
            response.response, ctx, self.workers, self.asgi.async_in_thread
        )
        replacement: Response | None = None
        failure: Exception | None = None
        try:
            for attempt in (1, 2):
                start, has_body = self._start(response)
                if not has_body:
                    await self.send(start)
                    await self._send_last(b"")
                    break
                failure, unsent = await self._send_watched(chunks, start)
                if unsent is None:
                    break
                if attempt == 2:
                    raise unsent  # an error handler's own stream: not handled twice
                # Nothing was sent: the app's error handling answers instead.
                await chunks.aclose()
                stream = None
                await self.workers.run(ctx.run, response.close)
                response, handled = await bridge.run_steps_async(
                    pipeline.handle_body_error(app, unsent),
                    ctx,
                    self.workers,
                    async_in_thread=self.asgi.async_in_thread,
                )
                error = handled or error
                if not pipeline.is_streamed(response):
                    replacement = response
                    break
                stream = response
                chunks = bridge.iterate_body(
                    response.response, ctx, self.workers, self.asgi.async_in_thread
                )
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
                    if stream is not None:
                        await self.workers.run(ctx.run, stream.close)
                finally:
                    await bridge.run_steps_async(
                        pipeline.finish_request(app, self.req_ctx, error),
                        ctx,
                        self.workers,
                        async_in_thread=self.asgi.async_in_thread,
                    )
        if failure is not None and not isinstance(failure, OSError):
            # Headers went out: raising makes the server close the connection.
            raise failure
        return replacement

    async def _send_watched(
        self, chunks: bridge.BodyIterator, start: Message
    ) -> tuple[Exception | None, Exception | None]:
        """:meth:`_send_chunks`, cancelled if the client leaves meanwhile (told by
        ``receive`` once the request body is all received)."""
        with anyio.CancelScope() as scope:
            remove = self.on_disconnect(scope.cancel)
            try:
                return await self._send_chunks(chunks, start)
            finally:
                if remove is not None:
                    remove()
        return None, None  # cancelled: the client left

    async def _send_chunks(
        self, chunks: bridge.BodyIterator, start: Message
    ) -> tuple[Exception | None, Exception | None]:
        """Send ``start`` once the first chunk is there, then the chunks. Returns the
        failure after the start went out (the generator's, or the send's when the
        client left), and the generator's failure before it, when nothing was sent."""
        try:
            await chunks.afirst()
        except Exception as e:
            return None, e
        try:
            await self.send(start)
            async for chunk in chunks:
                await self.send(
                    {"type": "http.response.body", "body": chunk, "more_body": True}
                )
            await self._send_last(b"")
        except Exception as e:  # the generator failed, or the send (client gone)
            return e, None
        return None, None

    async def _send_last(self, data: bytes) -> None:
        """Send the response's last body message, ``data``.

        If the request body is still coming in (the view did not read it, or read it
        only up to the limit), ``data`` goes out at once, the rest of the body is
        received and dropped (up to :data:`DRAIN_BYTES` and :data:`DRAIN_SECONDS`),
        and then the end. A server that stops reading the socket while the app does not
        receive (hypercorn's queue of ``http.request`` messages is full) would
        otherwise hold the client, still writing its body, from ever reading the
        answer, and wait for queue room to end the request. Past the bounds, the end
        goes out with ``receive`` still read meanwhile, and the server closes the
        connection."""
        body = self.body
        if body.complete:
            await self.send({"type": "http.response.body", "body": data})
            return
        if data:
            await self.send(
                {"type": "http.response.body", "body": data, "more_body": True}
            )
        with anyio.move_on_after(DRAIN_SECONDS):
            await body.drain(DRAIN_BYTES)
        if body.complete:
            await self.send({"type": "http.response.body", "body": b""})
            return
        failure: Exception | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(body.drain, None)
            try:
                await self.send({"type": "http.response.body", "body": b""})
            except Exception as e:  # raised outside the group, not wrapped
                failure = e
            tg.cancel_scope.deadline = anyio.current_time() + DRAIN_GRACE
        if failure is not None:
            raise failure


def _nothing() -> None:
    pass
