"""The ASGI entry point, ``app.asgi``.

It knows ASGI (scope, receive, send; the ``http``, ``websocket`` and ``lifespan`` scopes)
and nothing of routing, hooks or sessions: it makes the request from the scope
(:mod:`.scope`), runs the pipeline's entry points through the bridge's async driver, with
sync steps in worker threads, and sends the response. Each request runs in a fresh copy of
the server task's context.

- :mod:`.app` -- :class:`ASGIApp`, which picks a connection class per scope type;
- :mod:`.http`, :mod:`.websocket`, :mod:`.lifespan` -- the connection classes;
- :mod:`.scope` -- the request of a scope; :mod:`.body` -- its body, received when read;
- :mod:`.types` -- the ASGI types.
"""

from __future__ import annotations

from .app import ASGIApp as ASGIApp
from .http import HTTPConnection as HTTPConnection
from .lifespan import Lifespan as Lifespan
from .scope import PRESERVE_CONTEXT as PRESERVE_CONTEXT
from .websocket import Websocket as Websocket
from .websocket import WebsocketConnection as WebsocketConnection
