"""The ``ctxflask`` command: :class:`FlaskGroup`, which loads the app for the app's own
commands and adds the built-in ones, the ``cli`` object and :func:`main`, the console
script.
"""

from __future__ import annotations

import importlib.metadata
import os
import traceback
import typing as t
from collections.abc import Callable

import click

from ..core.globals import _cv_app
from .app_group import AppGroup
from .commands import routes_command
from .commands import run_command
from .commands import shell_command
from .discovery import NoAppException
from .discovery import ScriptInfo
from .options import _app_option
from .options import _as_flask_option
from .options import _debug_option
from .options import _env_file_option
from .options import version_option

if t.TYPE_CHECKING:
    from ..app import Flask

#: Set while a ``ctxflask`` command runs: ``app.run()`` then does nothing (a module that
#: calls it at import time would otherwise block the command).
RUN_FROM_CLI_ENV = "CTXFLASK_RUN_FROM_CLI"


class FlaskGroup(AppGroup):
    """The ``ctxflask`` command: an :class:`AppGroup` with the ``--app``, ``--debug``,
    ``--env-file``, ``--as-flask`` and ``--version`` options, the ``run``, ``shell`` and ``routes``
    commands, and the commands of the loaded app's ``app.cli`` (and its blueprints'),
    which run inside its application context. Make one for a project's own script.

    :param add_default_commands: add ``run``, ``shell`` and ``routes``.
    :param create_app: a callable returning the app, instead of finding it from
        ``--app``.
    :param add_version_option: add ``--version``.
    :param load_dotenv: load the default dotenv files (``.flaskenv``, ``.ctxflaskenv``,
        ``.env``, see :func:`load_dotenv`).
    :param set_debug_flag: set the app's debug flag from ``--debug`` and the environment.
    :param extra: more arguments for ``click.Group``.
    """

    def __init__(
        self,
        add_default_commands: bool = True,
        create_app: Callable[..., Flask] | None = None,
        add_version_option: bool = True,
        load_dotenv: bool = True,
        set_debug_flag: bool = True,
        **extra: t.Any,
    ) -> None:
        params: list[click.Parameter] = list(extra.pop("params", None) or ())
        # Done by option callbacks rather than the group's callback, so that a project's
        # group can have a callback of its own.
        params.extend((_env_file_option, _as_flask_option, _app_option, _debug_option))
        if add_version_option:
            params.append(version_option)
        extra.setdefault("context_settings", {})
        extra["context_settings"].setdefault("auto_envvar_prefix", "CTXFLASK")
        super().__init__(params=params, **extra)
        self.create_app = create_app
        self.load_dotenv = load_dotenv
        self.set_debug_flag = set_debug_flag
        if add_default_commands:
            self.add_command(run_command)
            self.add_command(shell_command)
            self.add_command(routes_command)
        self._plugins_loaded = False

    def _load_plugin_commands(self) -> None:
        # Installed packages add commands through the "ctxflask.commands" entry points.
        if self._plugins_loaded:
            return
        for ep in importlib.metadata.entry_points(group="ctxflask.commands"):
            self.add_command(ep.load(), ep.name)
        self._plugins_loaded = True

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """A built-in or plugin command, else one of the app's (loading the app and
        pushing its application context for it)."""
        self._load_plugin_commands()
        # Built-in commands work even when the app cannot be loaded.
        rv = super().get_command(ctx, cmd_name)
        if rv is not None:
            return rv
        info = ctx.ensure_object(ScriptInfo)
        try:
            app = info.load_app()
        except NoAppException as e:
            click.secho(f"Error: {e.format_message()}\n", err=True, fg="red")
            return None
        top = _cv_app.get(None)
        if top is None or top.app is not app:
            # Parameter callbacks and the command run in it, without with_appcontext.
            ctx.with_resource(app.app_context())
        return app.cli.get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        """The names of the built-in, plugin and app commands, sorted; an app that fails
        to load is reported, and its commands left out."""
        self._load_plugin_commands()
        names = set(super().list_commands(ctx))
        info = ctx.ensure_object(ScriptInfo)
        try:
            app = info.load_app()
        except NoAppException as e:
            click.secho(f"Error: {e.format_message()}\n", err=True, fg="red")
        except Exception:
            click.secho(f"{traceback.format_exc()}\n", err=True, fg="red")
        else:
            names.update(app.cli.list_commands(ctx))
        return sorted(names)

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: t.Any,
    ) -> click.Context:
        """Make the click context, with a :class:`ScriptInfo` as its object."""
        os.environ[RUN_FROM_CLI_ENV] = "true"
        if "obj" not in extra and "obj" not in self.context_settings:
            extra["obj"] = ScriptInfo(
                create_app=self.create_app,
                set_debug_flag=self.set_debug_flag,
                load_dotenv_defaults=self.load_dotenv,
            )
        return super().make_context(info_name, args, parent=parent, **extra)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Parse the arguments; for a bare ``--help``, first apply ``--env-file`` and
        ``--app`` from the environment, so that the help lists the app's commands."""
        if (not args and self.no_args_is_help) or (
            len(args) == 1 and args[0] in self.get_help_option_names(ctx)
        ):
            _env_file_option.handle_parse_result(ctx, {}, [])
            _app_option.handle_parse_result(ctx, {}, [])
        return super().parse_args(ctx, args)


#: The ``ctxflask`` command.
cli = FlaskGroup(
    name="ctxflask",
    help="""\
A command line for ctxflask applications.

Give the application to load with the '--app' option, the 'CTXFLASK_APP' (or
'FLASK_APP') environment variable, or a 'wsgi.py' or 'app.py' file in the current
directory.
""",
)


def main() -> None:
    """Run the ``ctxflask`` command (the console script and ``python -m ctxflask``)."""
    cli.main()
