"""The options of the ``ctxflask`` command (``--env-file``, ``--app``, ``--debug``,
``--version``), the option class that its commands' options use too, and
:func:`load_dotenv`, which ``--env-file`` calls.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import typing as t

import click
from click.core import ParameterSource

from ..flask_switch import install_as_flask
from .discovery import ScriptInfo

#: The dotenv files loaded by default, lowest precedence first (a given ``--env-file``
#: comes after them). Flask's ``.flaskenv`` is read so that a Flask project keeps working.
DEFAULT_DOTENV_FILES = (".flaskenv", ".ctxflaskenv", ".env")


class _Option(click.Option):
    """A click option whose automatic environment variable (``CTXFLASK_RUN_PORT``) falls
    back to Flask's name for it (``FLASK_RUN_PORT``): a Flask project's environment and
    ``.flaskenv`` keep working."""

    def resolve_envvar_value(self, ctx: click.Context) -> str | None:
        rv = super().resolve_envvar_value(ctx)
        if rv is not None or not self.allow_from_autoenv or not self.name:
            return rv
        prefix = ctx.auto_envvar_prefix or ""
        if prefix == "CTXFLASK" or prefix.startswith("CTXFLASK_"):
            return os.environ.get(f"{prefix[3:]}_{self.name.upper()}") or None
        return None


def get_version(ctx: click.Context, param: click.Parameter, value: t.Any) -> None:
    """The ``--version`` option's callback: print the Python, ctxflask and werkzeug
    versions and exit."""
    if not value or ctx.resilient_parsing:
        return
    click.echo(
        f"Python {platform.python_version()}\n"
        f"ctxflask {importlib.metadata.version('ctxflask')}\n"
        f"Werkzeug {importlib.metadata.version('werkzeug')}",
        color=ctx.color,
    )
    ctx.exit()


version_option = _Option(
    ["--version"],
    help="Show the ctxflask version.",
    expose_value=False,
    callback=get_version,
    is_flag=True,
    is_eager=True,
)


def _set_app(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(ScriptInfo).app_import_path = value


def _as_flask(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        install_as_flask()


# Eager, and before --app: the switch must be on before the app (and the extensions it
# imports) is loaded.
_as_flask_option = _Option(
    ["--as-flask"],
    is_flag=True,
    help=(
        "Make 'import flask' give ctxflask (ctxflask.install_as_flask()) before loading"
        " the app, so a Flask app and its extensions run unchanged."
        " [env: CTXFLASK_AS_FLASK]"
    ),
    is_eager=True,
    expose_value=False,
    callback=_as_flask,
)


# Eager, so the app's commands show in --help. --help is eager too: this one must come
# before it in the parameters.
_app_option = _Option(
    ["-A", "--app"],
    metavar="IMPORT",
    envvar=["CTXFLASK_APP", "FLASK_APP"],
    help=(
        "The application or factory to load, as 'module:name'. The module may be a"
        " dotted import or a file path. The name may be left out if it is 'app',"
        " 'application', 'create_app' or 'make_app', and may be 'name(args)' to call a"
        " factory with arguments. [env: CTXFLASK_APP, FLASK_APP]"
    ),
    is_eager=True,
    expose_value=False,
    callback=_set_app,
)


def _set_debug(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    source = ctx.get_parameter_source(param.name or "debug")
    if source in (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP):
        return  # not given: the environment decides
    # Through the environment, so an app factory sees it (get_debug_flag) as it runs.
    os.environ["CTXFLASK_DEBUG"] = "1" if value else "0"


_debug_option = _Option(
    ["--debug/--no-debug"],
    help="Set debug mode (CTXFLASK_DEBUG).",
    expose_value=False,
    callback=_set_debug,
)


def _load_env_file(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> str | None:
    if value is not None:
        try:
            import dotenv  # noqa: F401
        except ImportError:
            raise click.BadParameter(
                "python-dotenv is needed to load an env file, and it is not installed."
                " Fix: pip install 'ctxflask[dotenv]'.",
                ctx=ctx,
                param=param,
            ) from None
    info = ctx.ensure_object(ScriptInfo)
    if value is not None or info.load_dotenv_defaults:
        load_dotenv(value, load_defaults=info.load_dotenv_defaults)
    return value


# Eager and first, so the variables it sets are there for the other options.
_env_file_option = _Option(
    ["-e", "--env-file"],
    type=click.Path(exists=True, dir_okay=False),
    envvar=["CTXFLASK_ENV_FILE", "FLASK_ENV_FILE"],
    help=(
        "Load environment variables from this file, over those of '.env',"
        " '.ctxflaskenv' and '.flaskenv'; variables already set in the environment win."
        " Needs python-dotenv."
    ),
    is_eager=True,
    expose_value=False,
    callback=_load_env_file,
)


# -- dotenv files -----------------------------------------------------------------------


def load_dotenv(
    path: str | os.PathLike[str] | None = None, load_defaults: bool = True
) -> bool:
    """Set environment variables from dotenv files: ``path`` over ``.env``, over
    ``.ctxflaskenv``, over ``.flaskenv`` (each the nearest one, from the working directory
    up). Variables already in the environment are kept.

    Needs python-dotenv; without it, nothing is loaded and a tip is printed if such files
    are present.

    :param path: a file to load, over the default files.
    :param load_defaults: look for and load the default files.
    :returns: whether any variable was read from the files.
    """
    try:
        import dotenv
    except ImportError:
        present = [
            name
            for name in (*DEFAULT_DOTENV_FILES, *([os.fspath(path)] if path else ()))
            if os.path.isfile(name)
        ]
        if present:
            click.secho(
                f" * Tip: there are dotenv files ({', '.join(present)}), but"
                " python-dotenv is not installed to read them. Fix: pip install"
                " 'ctxflask[dotenv]'.",
                fg="yellow",
                err=True,
            )
        return False

    values: dict[str, str | None] = {}
    if load_defaults:
        for name in DEFAULT_DOTENV_FILES:
            found = dotenv.find_dotenv(name, usecwd=True)
            if found:
                values |= dotenv.dotenv_values(found, encoding="utf-8")
    if path is not None and os.path.isfile(path):
        values |= dotenv.dotenv_values(path, encoding="utf-8")
    for key, value in values.items():
        if value is not None and key not in os.environ:
            os.environ[key] = value
    return bool(values)
