"""Flask's module path ``flask.templating``: the names of :mod:`ctxflask.core.templating`."""

from __future__ import annotations

from .core.templating import DispatchingJinjaLoader as DispatchingJinjaLoader
from .core.templating import Environment as Environment
from .core.templating import render_template as render_template
from .core.templating import render_template_async as render_template_async
from .core.templating import render_template_string as render_template_string
from .core.templating import (
    render_template_string_async as render_template_string_async,
)
from .core.templating import stream_template as stream_template
from .core.templating import stream_template_async as stream_template_async
from .core.templating import stream_template_string as stream_template_string
from .core.templating import (
    stream_template_string_async as stream_template_string_async,
)
from .core.templating import TemplateNames as TemplateNames
from .core.templating import update_context_steps as update_context_steps
