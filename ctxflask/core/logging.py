"""The application's logger: ``logging.getLogger(app.name)`` with a default handler.

The default handler writes to the request's ``wsgi.errors`` stream under WSGI (so server
logs collect it) and to ``sys.stderr`` elsewhere, the ASGI entry point included.
"""

from __future__ import annotations

import logging
import sys
import typing as t

from werkzeug.local import LocalProxy

from .globals import _cv_request

if t.TYPE_CHECKING:
    from .app import App


def _errors_stream() -> t.TextIO:
    ctx = _cv_request.get(None)
    if ctx is not None:
        stream = ctx.request.environ.get("wsgi.errors")
        if stream is not None:
            return t.cast(t.TextIO, stream)
    return sys.stderr


#: The error stream of the current request, or ``sys.stderr`` outside one.
wsgi_errors_stream: t.TextIO = LocalProxy(_errors_stream)  # type: ignore[assignment]


def has_level_handler(logger: logging.Logger) -> bool:
    """Whether a handler in ``logger``'s chain takes records of its effective level."""
    level = logger.getEffectiveLevel()
    current: logging.Logger | None = logger
    while current is not None:
        if any(handler.level <= level for handler in current.handlers):
            return True
        if not current.propagate:
            break
        current = current.parent
    return False


#: Added to the app's logger when no configured handler takes its records.
default_handler = logging.StreamHandler(wsgi_errors_stream)
default_handler.setFormatter(
    logging.Formatter("[%(asctime)s] %(levelname)s in %(module)s: %(message)s")
)


def create_logger(app: App) -> logging.Logger:
    """The logger of ``app``: DEBUG level in debug mode unless a level is set, and the
    default handler unless logging is configured to take its records."""
    logger = logging.getLogger(app.name)
    if app.debug and not logger.level:
        logger.setLevel(logging.DEBUG)
    if not has_level_handler(logger):
        logger.addHandler(default_handler)
    return logger
