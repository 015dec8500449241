"""Exceptions of ctxflask's own that the core and the pipeline raise or catch."""

from __future__ import annotations


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
