"""Flask's module path ``flask.globals``: the names of :mod:`ctxflask.core.globals`."""

from __future__ import annotations

from .core.globals import _cv_app as _cv_app
from .core.globals import _cv_request as _cv_request
from .core.globals import app_ctx as app_ctx
from .core.globals import current_app as current_app
from .core.globals import g as g
from .core.globals import request as request
from .core.globals import request_ctx as request_ctx
from .core.globals import session as session
from .core.globals import websocket as websocket
