"""Rendering templates: ``render_template`` and friends.

They take their app from the current application context, so they
work in views, hooks, CLI commands and ``with app.app_context():`` blocks alike. A render is
written once, as pipeline *steps* (:mod:`ctxflask.bridge`): load the template, run the
context processors, send ``before_render_template``, render, send ``template_rendered``.
Context processors and signal receivers may be sync or async.

Where the file I/O happens
--------------------------

Loading a template reads its file (on a miss of the environment's cache) and, with
auto-reload on, stats it on every use. A sync view under ASGI renders in a worker thread, so
that I/O never touches the event loop. An async view runs *on* the loop, and
``render_template`` is sync: it cannot wait for a thread without blocking the loop anyway.
So there are two ways to render from async code:

- ``render_template`` and ``stream_template`` (sync): served from Jinja's cache with no
  I/O when the template was loaded before and auto-reload is off (the production default).
  A miss, or auto-reload, reads or stats the file on the loop, and async context
  processors then run on a helper thread's loop while this one waits. Fine for small,
  warm templates. (A stream's chunks are rendered by the entry point, in worker threads
  under ASGI, so only the first load can touch the loop.)
- ``await render_template_async(...)`` (and ``render_template_string_async``,
  ``stream_template_async``, ``stream_template_string_async``): the same steps driven from
  the event loop. Loading, sync context processors and receivers, and the render itself
  (which loads ``{% extends %}`` and ``{% include %}`` targets) run in a worker thread, in
  one trip; async processors and receivers are awaited on the loop. The cost is one
  round trip to a worker thread per render; the gain is that no template I/O or
  rendering ever blocks the loop, as for a sync view. Under WSGI an async view's loop
  serves only its own request; the async variants behave the same there (worker
  threads), so code does not depend on the entry point.

Jinja, and :mod:`.templating` (the app's environment and loader), load with the app's
environment (``app.jinja_env``) at the first render, not with ctxflask.
"""

from __future__ import annotations

import contextvars
import functools
import typing as t
from collections.abc import Callable
from collections.abc import Iterator
from itertools import chain

from .. import bridge
from ..bridge import call
from .globals import _cv_app
from .globals import _cv_request
from .globals import _no_app_msg
from .helpers import stream_with_context
from .signals import before_render_template
from .signals import send_steps
from .signals import template_rendered

if t.TYPE_CHECKING:
    from jinja2 import Template

    from .app import App
    from .templating import TemplateNames

T = t.TypeVar("T")


# -- the steps of a render -----------------------------------------------------------------


async def update_context_steps(app: App, context: dict[str, t.Any]) -> None:
    """Steps: add ``g``, ``request`` and what the context processors return (the app's,
    then those of the current request's blueprints, outermost first) to ``context``. The
    values already in ``context`` win."""
    given = dict(context)
    app_ctx = _cv_app.get(None)
    if app_ctx is not None:
        context["g"] = app_ctx.g
    req_ctx = _cv_request.get(None)
    keys: t.Iterable[str | None] = (None,)
    if req_ctx is not None:
        # The object, not the proxy: cheaper to use in templates. The session stays the
        # environment's proxy, so that a template that never uses it never opens it.
        context["request"] = req_ctx.request
        keys = chain(keys, reversed(req_ctx.request.blueprints))
    processors = app.template_context_processors
    for key in keys:
        if key in processors:
            for processor in processors[key]:
                context.update(await call(processor))
    context.update(given)


async def _prepare(
    app: App, load: Callable[[], Template], context: dict[str, t.Any]
) -> Template:
    template: Template = await call(load)
    await update_context_steps(app, context)
    if before_render_template.receivers:
        await send_steps(
            before_render_template, app, template=template, context=context
        )
    return template


async def _render(
    app: App, load: Callable[[], Template], context: dict[str, t.Any]
) -> str:
    template = await _prepare(app, load, context)
    render: Callable[..., t.Any] = (
        template.render_async if template.environment.is_async else template.render
    )
    rv: str = await call(render, context)
    if template_rendered.receivers:
        await send_steps(template_rendered, app, template=template, context=context)
    return rv


def _generate(app: App, template: Template, context: dict[str, t.Any]) -> Iterator[str]:
    yield from template.generate(context)
    if template_rendered.receivers:
        bridge.run_steps(
            send_steps(template_rendered, app, template=template, context=context)
        )


def _stream(app: App, template: Template, context: dict[str, t.Any]) -> Iterator[str]:
    chunks = _generate(app, template, context)
    if _cv_request.get(None) is not None:
        # A view's stream already runs inside its request; this keeps the request for a
        # stream iterated elsewhere (after a ``with app.test_request_context()`` block).
        return stream_with_context(chunks)
    return chunks


def _current_app() -> App:
    ctx = _cv_app.get(None)
    if ctx is None:
        raise RuntimeError(_no_app_msg)
    return ctx.app


def _loader(app: App, template_name_or_list: TemplateNames) -> Callable[[], Template]:
    return functools.partial(
        app.jinja_env.get_or_select_template, template_name_or_list
    )


def _string_loader(app: App, source: str) -> Callable[[], Template]:
    return functools.partial(app.jinja_env.from_string, source)


# -- sync API --------------------------------------------------------------------------------


def render_template(template_name_or_list: TemplateNames, **context: t.Any) -> str:
    """Render a template of the app with ``context`` and return the text.

    The context also gets ``config``, ``request``, ``session``, ``g``, ``url_for`` and
    ``get_flashed_messages``, and what the context processors return.

    :param template_name_or_list: the template's name (relative to a template folder), a
        list of names of which the first that exists is used, or a ``Template``.
    :param context: the template's variables; they win over context processors.
    :raises jinja2.TemplateNotFound: when no template folder has it.

    In an async view, prefer ``await render_template_async(...)``: see the module's
    documentation for where file I/O happens.
    """
    app = _current_app()
    return bridge.run_steps(_render(app, _loader(app, template_name_or_list), context))


def render_template_string(source: str, **context: t.Any) -> str:
    """Render a template given as source text (autoescaped as HTML) with ``context``.

    :param source: the template's source.
    :param context: the template's variables, as for :func:`render_template`.
    """
    app = _current_app()
    return bridge.run_steps(_render(app, _string_loader(app, source), context))


def stream_template(
    template_name_or_list: TemplateNames, **context: t.Any
) -> Iterator[str]:
    """Render a template as an iterator of text chunks, to return from a view as a
    streamed response. The template is loaded and the context processors run now; the
    chunks are rendered as the body is sent, inside the request's contexts.

    :param template_name_or_list: as for :func:`render_template`.
    :param context: the template's variables.
    """
    app = _current_app()
    template = bridge.run_steps(
        _prepare(app, _loader(app, template_name_or_list), context)
    )
    return _stream(app, template, context)


def stream_template_string(source: str, **context: t.Any) -> Iterator[str]:
    """Like :func:`stream_template`, for a template given as source text."""
    app = _current_app()
    template = bridge.run_steps(_prepare(app, _string_loader(app, source), context))
    return _stream(app, template, context)


# -- async API -------------------------------------------------------------------------------


async def _run_async(app: App, steps: bridge.Steps[T]) -> T:
    # The steps run in a copy of the caller's context (the running one cannot be entered
    # again); what its processors set there is copied back, as for any step.
    ctx = contextvars.copy_context()
    rv = await bridge.run_steps_async(steps, ctx, app._workers())
    bridge.copy_back(ctx)
    return rv


async def render_template_async(
    template_name_or_list: TemplateNames, **context: t.Any
) -> str:
    """:func:`render_template` for async code: loading, sync context processors and
    receivers, and the render run in a worker thread; async ones on the event loop. No
    template file I/O blocks the loop.

    :param template_name_or_list: as for :func:`render_template`.
    :param context: the template's variables.
    """
    app = _current_app()
    return await _run_async(
        app, _render(app, _loader(app, template_name_or_list), context)
    )


async def render_template_string_async(source: str, **context: t.Any) -> str:
    """:func:`render_template_string` for async code (see :func:`render_template_async`)."""
    app = _current_app()
    return await _run_async(app, _render(app, _string_loader(app, source), context))


async def stream_template_async(
    template_name_or_list: TemplateNames, **context: t.Any
) -> Iterator[str]:
    """:func:`stream_template` for async code: the template is loaded and the context
    processors run as in :func:`render_template_async`. The chunks come from a sync
    iterator, which the ASGI entry point runs in worker threads.

    :param template_name_or_list: as for :func:`render_template`.
    :param context: the template's variables.
    """
    app = _current_app()
    template = await _run_async(
        app, _prepare(app, _loader(app, template_name_or_list), context)
    )
    return _stream(app, template, context)


async def stream_template_string_async(source: str, **context: t.Any) -> Iterator[str]:
    """:func:`stream_template_string` for async code (see :func:`stream_template_async`)."""
    app = _current_app()
    template = await _run_async(
        app, _prepare(app, _string_loader(app, source), context)
    )
    return _stream(app, template, context)
