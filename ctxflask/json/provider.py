"""Flask's module path ``flask.json.provider``: the names of :mod:`ctxflask.core.json.provider`."""

from __future__ import annotations

from ..core.json.provider import DefaultJSONProvider as DefaultJSONProvider
from ..core.json.provider import JSONProvider as JSONProvider
