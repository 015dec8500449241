"""Flask's module path ``flask.ctx``: the names of :mod:`ctxflask.core.ctx`."""

from __future__ import annotations

from .core.ctx import _AppCtxGlobals as _AppCtxGlobals
from .core.ctx import after_this_request as after_this_request
from .core.ctx import AppContext as AppContext
from .core.ctx import Calls as Calls
from .core.ctx import copy_current_app_context as copy_current_app_context
from .core.ctx import copy_current_request_context as copy_current_request_context
from .core.ctx import F as F
from .core.ctx import has_app_context as has_app_context
from .core.ctx import has_request_context as has_request_context
from .core.ctx import RequestContext as RequestContext
from .core.ctx import teardown_appcontext as teardown_appcontext
from .core.ctx import teardown_request as teardown_request
