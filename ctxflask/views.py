"""Flask's module path ``flask.views``: the names of :mod:`ctxflask.core.views`."""

from __future__ import annotations

from .core.views import http_method_funcs as http_method_funcs
from .core.views import MethodView as MethodView
from .core.views import View as View
