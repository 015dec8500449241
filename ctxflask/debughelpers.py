"""Flask's module path ``flask.debughelpers``: the errors that explain common mistakes in
debug mode, and the helpers that raise or log them, for code that imports them from there.

ctxflask raises :class:`FormDataRoutingRedirect` (``App.raise_routing_exception``) and
:class:`DebugFilesKeyError` (the request's ``files`` in debug mode) itself, and its
template loader logs its own explanation with ``EXPLAIN_TEMPLATE_LOADING``.
"""

from __future__ import annotations

import typing as t
from collections.abc import Callable
from collections.abc import Iterator

from jinja2 import BaseLoader

from .core.blueprints import Blueprint
from .core.ctx import has_request_context
from .core.debug_errors import (
    attach_enctype_error_multidict as attach_enctype_error_multidict,
)
from .core.debug_errors import DebugFilesKeyError as DebugFilesKeyError
from .core.globals import request
from .core.routing import FormDataRoutingRedirect as FormDataRoutingRedirect

if t.TYPE_CHECKING:
    from .core.app import App
    from .core.scaffold import Scaffold

#: What a loader's ``get_source`` returns: source, file name, up-to-date check.
_Source = tuple[str, str | None, Callable[[], bool] | None]


class UnexpectedUnicodeError(AssertionError, UnicodeError):
    """Text where bytes were expected, or bytes where text was (kept for Flask's API)."""


def _describe(loader: BaseLoader) -> Iterator[str]:
    yield f"class: {type(loader).__module__}.{type(loader).__name__}"
    for key, value in sorted(vars(loader).items()):
        if key.startswith("_"):
            continue
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            yield f"{key}: {', '.join(map(repr, value))}"
        elif isinstance(value, (str, int, float, bool)):
            yield f"{key}: {value!r}"


def explain_template_loading_attempts(
    app: App,
    template: str,
    attempts: list[tuple[BaseLoader, Scaffold, _Source | None]],
) -> None:
    """Log to ``app.logger`` (INFO) which loaders were asked for ``template`` and what each
    answered. ``attempts`` holds, in order: a loader, the app or blueprint it belongs to,
    and what its ``get_source`` returned (``None`` when it had no such template)."""
    lines = [f"Locating template {template!r}:"]
    found = 0
    for number, (loader, owner, source) in enumerate(attempts, 1):
        if isinstance(owner, Blueprint):
            where = f"blueprint {owner.name!r} ({owner.import_name})"
        elif owner is app:
            where = f"application {owner.import_name!r}"
        else:
            where = repr(owner)
        lines.append(f"{number:5}: trying loader of {where}")
        lines.extend(f"       {line}" for line in _describe(loader))
        if source is None:
            lines.append("       -> no match")
        else:
            found += 1
            lines.append(f"       -> found ({source[1] or '<string>'!r})")
    if found == 0:
        lines.append("Error: the template could not be found.")
    elif found > 1:
        lines.append("Warning: several loaders have it; the first one is used.")
    blueprint = request.blueprint if has_request_context() else None
    if blueprint is not None and found != 1:
        lines.append(
            f"  The template was looked up from an endpoint of the blueprint {blueprint!r}:"
            " is the template in the blueprint's template folder, under a subfolder of its"
            " own name?"
        )
    app.logger.info("\n".join(lines))
