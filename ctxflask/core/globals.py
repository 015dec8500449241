"""The context variables behind the request and application contexts, and their proxies.

Each variable holds the *top* context of its stack. Pushing a context sets the variable and
keeps the token; popping resets it, which restores the context that was below. The stack is
therefore the chain of tokens, and it lives in the current :class:`contextvars.Context`: every
request runs in a fresh one, so requests never see each other's contexts, whether they run on
threads or on asyncio/trio tasks.
"""

from __future__ import annotations

import typing as t
from contextvars import ContextVar
from operator import attrgetter

from werkzeug.local import LocalProxy

if t.TYPE_CHECKING:
    from ..app import Flask
    from ..asgi.websocket import Websocket
    from .ctx import _AppCtxGlobals
    from .ctx import AppContext
    from .ctx import RequestContext
    from .sessions import SessionMixin
    from .wrappers import Request


_no_app_msg = """\
Working outside of application context.

This code needs an application context (`current_app` or `g`), but none is active in the
current context: it runs outside a request, CLI command or `app.app_context()` block, or in a
thread or task that was not given a copy of the context.

Fix: push one, `with app.app_context(): ...`, or wrap the callable with
`copy_current_app_context` before handing it to another thread or task.\
"""

_no_req_msg = """\
Working outside of request context.

This code needs an active HTTP request (`request` or `session`), but none is active in the
current context: it runs outside a view or hook, in a background job, or in a thread or task
that was not given a copy of the request's context.

Fix: in tests, `with app.test_request_context(): ...`; for other threads and tasks, wrap the
callable with `copy_current_request_context`.\
"""

_no_ws_msg = """\
Working outside of WebSocket context.

This code needs an active WebSocket connection (`websocket`), but none is active in the
current context: it runs outside a WebSocket handler or its hooks.

Fix: use `websocket` only in functions registered with `@app.websocket(...)` and
`before_websocket`/`after_websocket` hooks, served through the ASGI entry point.\
"""

_cv_app: ContextVar[AppContext] = ContextVar("ctxflask.app_ctx")
_cv_request: ContextVar[RequestContext] = ContextVar("ctxflask.request_ctx")


def _proxy(var: ContextVar[t.Any], name: str | None, unbound_message: str) -> t.Any:
    """werkzeug's :class:`~werkzeug.local.LocalProxy` of ``var`` (of its attribute
    ``name``), whose public attributes are read in one call.

    A ``LocalProxy`` reaches them through ``__getattr__``, after the normal lookup on the
    proxy has failed: most of a microsecond per ``request.method``. Its own names, the
    dunder and private ones, and everything while unbound, go through ``LocalProxy``
    unchanged; each proxy's class is a ``LocalProxy`` subclass of the same name.
    """
    pick = attrgetter(name) if name is not None else None
    lookup = object.__getattribute__

    def __getattribute__(self: LocalProxy[t.Any], attr: str) -> t.Any:
        if attr[:1] != "_":  # LocalProxy itself has no public names
            try:
                obj = var.get()
            except LookupError:
                pass  # unbound: LocalProxy raises its RuntimeError
            else:
                return getattr(obj if pick is None else pick(obj), attr)
        return lookup(self, attr)

    cls = type(
        "LocalProxy",
        (LocalProxy,),
        {"__slots__": (), "__getattribute__": __getattribute__, "__module__": __name__},
    )
    return cls(var, name, unbound_message=unbound_message)


app_ctx: AppContext = _proxy(_cv_app, None, _no_app_msg)
current_app: Flask = _proxy(_cv_app, "app", _no_app_msg)
g: _AppCtxGlobals = _proxy(_cv_app, "g", _no_app_msg)
request_ctx: RequestContext = _proxy(_cv_request, None, _no_req_msg)
request: Request = _proxy(_cv_request, "request", _no_req_msg)
session: SessionMixin = _proxy(_cv_request, "session", _no_req_msg)
websocket: Websocket = _proxy(_cv_request, "websocket", _no_ws_msg)
