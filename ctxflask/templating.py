"""Flask's module path ``flask.templating``: the names of :mod:`ctxflask.core.templating`
(which imports Jinja) and :mod:`ctxflask.core.rendering`."""

from __future__ import annotations

from .core.rendering import render_template as render_template
from .core.rendering import render_template_async as render_template_async
from .core.rendering import render_template_string as render_template_string
from .core.rendering import render_template_string_async as render_template_string_async
from .core.rendering import stream_template as stream_template
from .core.rendering import stream_template_async as stream_template_async
from .core.rendering import stream_template_string as stream_template_string
from .core.rendering import stream_template_string_async as stream_template_string_async
from .core.rendering import update_context_steps as update_context_steps
from .core.templating import DispatchingJinjaLoader as DispatchingJinjaLoader
from .core.templating import Environment as Environment
from .core.templating import TemplateNames as TemplateNames
