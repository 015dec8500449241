"""Flask's module path ``flask.sessions``: the names of :mod:`ctxflask.core.sessions`."""

from __future__ import annotations

from .core.sessions import NullSession as NullSession
from .core.sessions import SecureCookieSession as SecureCookieSession
from .core.sessions import SecureCookieSessionInterface as SecureCookieSessionInterface
from .core.sessions import session_json_serializer as session_json_serializer
from .core.sessions import SessionInterface as SessionInterface
from .core.sessions import SessionMixin as SessionMixin
