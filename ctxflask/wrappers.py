"""Flask's module path ``flask.wrappers``: the names of :mod:`ctxflask.core.wrappers`."""

from __future__ import annotations

from .core.wrappers import AsyncBody as AsyncBody
from .core.wrappers import EnvironSource as EnvironSource
from .core.wrappers import Request as Request
from .core.wrappers import Response as Response
from .core.wrappers import response_headers as response_headers
from .core.wrappers import sends_body as sends_body
