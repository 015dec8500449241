"""Commands that run in the application's context: :func:`with_appcontext`, and
:class:`AppGroup` (``app.cli``), whose commands get it. Async callbacks run through the
bridge.
"""

from __future__ import annotations

import functools
import typing as t
from collections.abc import Callable

import click

from .. import bridge
from ..core.globals import _cv_app
from .discovery import ScriptInfo

F = t.TypeVar("F", bound=Callable[..., t.Any])

#: Decorate a command callback to receive the :class:`ScriptInfo` as first argument.
pass_script_info = click.make_pass_decorator(ScriptInfo, ensure=True)


def _sync_callback(f: F) -> F:
    """``f`` itself if sync; an async ``f`` wrapped to run through the bridge, in the
    caller's context (so with the command's application context)."""
    if not bridge.is_async_callable(f):
        return f

    @functools.wraps(f)
    def run(*args: t.Any, **kwargs: t.Any) -> t.Any:
        return bridge.call_in(None, f, *args, **kwargs)

    return t.cast(F, run)


def with_appcontext(f: F) -> F:
    """Run a command callback (sync or async) inside the application's context, loading
    the app through the :class:`ScriptInfo` if no app context is active.

    Commands of ``app.cli`` (an :class:`AppGroup`) get this already.
    """
    callback = _sync_callback(f)

    @click.pass_context
    def decorator(ctx: click.Context, /, *args: t.Any, **kwargs: t.Any) -> t.Any:
        if _cv_app.get(None) is None:
            app = ctx.ensure_object(ScriptInfo).load_app()
            ctx.with_resource(app.app_context())
        return ctx.invoke(callback, *args, **kwargs)

    return t.cast(F, functools.update_wrapper(decorator, f))


class AppGroup(click.Group):
    """A click group whose :meth:`command` wraps callbacks in :func:`with_appcontext`
    and whose :meth:`group` makes more ``AppGroup`` groups. Async callbacks (commands and
    groups) run through the bridge. ``app.cli`` is one."""

    def command(  # type: ignore[override]
        self, *args: t.Any, **kwargs: t.Any
    ) -> Callable[[Callable[..., t.Any]], click.Command]:
        """click's ``Group.command``, with the callback run in the app context unless
        ``with_appcontext=False`` is passed."""
        wrap = kwargs.pop("with_appcontext", True)

        def decorator(f: Callable[..., t.Any]) -> click.Command:
            if wrap:
                f = with_appcontext(f)
            return super(AppGroup, self).command(*args, **kwargs)(f)  # type: ignore[no-any-return]

        return decorator

    def group(  # type: ignore[override]
        self, *args: t.Any, **kwargs: t.Any
    ) -> Callable[[Callable[..., t.Any]], click.Group]:
        """click's ``Group.group``, making an :class:`AppGroup` by default."""
        kwargs.setdefault("cls", AppGroup)
        return super().group(*args, **kwargs)  # type: ignore[no-any-return]

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        """Add a command, its async callback wrapped to run through the bridge."""
        if cmd.callback is not None:
            cmd.callback = _sync_callback(cmd.callback)
        super().add_command(cmd, name)
