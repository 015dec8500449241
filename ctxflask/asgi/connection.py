"""What the connection of an ``http`` and of a ``websocket`` scope share."""

from __future__ import annotations

import contextvars
import typing as t

from .. import bridge
from .. import pipeline
from .body import ASGIBody
from .body import NO_BODY
from .body import NoBody
from .scope import ScopeEnviron
from .types import Receive
from .types import Scope
from .types import Send

if t.TYPE_CHECKING:
    from ..core.ctx import RequestContext
    from .app import ASGIApp


class Connection:
    """One connection: the request context made from the scope (its environ built only
    if read), and a fresh copy of the server task's context to run it in."""

    #: Whether the request has a body to receive (a WebSocket's messages are not one).
    receives_body = True

    def __init__(
        self, asgi: ASGIApp, scope: Scope, receive: Receive, send: Send
    ) -> None:
        self.asgi = asgi
        self.app = asgi.app
        self.scope = scope
        self.receive = receive
        self.send = send
        source = ScopeEnviron(scope, NO_BODY)
        if self.receives_body:
            length = source.content_length()
            if length != 0:
                source.body = ASGIBody(receive, length)
        self.body: NoBody | ASGIBody = source.body
        self.ctx = contextvars.copy_context()
        self.req_ctx: RequestContext = asgi.request_context(source)
        self.request = self.req_ctx.request
        #: Where this request's work for worker threads goes.
        self.workers = pipeline.RequestWorkers(
            self.req_ctx, asgi.lanes or asgi.configure(), asgi.async_in_thread
        )
        bridge.watch_loop(asgi.loop_block_warning, asgi.step_names)

    async def run(self) -> None:
        """Serve the connection to its end."""
        raise NotImplementedError
