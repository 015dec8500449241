"""Errors: exceptions of ctxflask's own that the core and the pipeline raise or catch,
and the lookup of an error's handler."""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:
    from .app import App
    from .typing import ErrorHandlerCallable


class WebSocketDisconnect(Exception):
    """The client closed the WebSocket (or went away): raised by ``receive`` and ``send``.

    :param code: the close code the client sent (1005 when it gave none, 1006 when the
        connection dropped).
    :param reason: the reason it gave, if any.
    """

    def __init__(self, code: int = 1005, reason: str = "") -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


class HTTPDisconnect(BaseException):
    """The client of an HTTP request went away, and its view, marked
    :func:`~ctxflask.cancel_on_disconnect`, was cancelled. It ends the request as a
    cancellation does (not an ``Exception``: no error handler, no 500, nothing sent);
    teardown functions receive it."""


def find_error_handler(
    app: App, e: BaseException, blueprints: list[str]
) -> ErrorHandlerCallable | None:
    """The handler for ``e``: by status code before class, blueprints before the app,
    and the most specific class in the exception's MRO."""
    exc_class, code = app._get_exc_class_and_code(type(e))
    keys = (*blueprints, None)
    for c in (code, None) if code is not None else (None,):
        for key in keys:
            if key not in app.error_handler_spec:
                continue
            handler_map = app.error_handler_spec[key].get(c)
            if not handler_map:
                continue
            for cls in exc_class.__mro__:
                handler = handler_map.get(cls)
                if handler is not None:
                    return handler
    return None
