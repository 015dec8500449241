"""The ``ctxflask`` command line (Flask's ``flask`` command): finding the app, commands that
run inside its application context, and the ``run``, ``routes`` and ``shell`` commands.

``ctxflask --app module:name run`` serves the app with werkzeug's development server (WSGI),
or with uvicorn (``run --asgi``, through ``app.asgi``). Command callbacks may be ``def`` or
``async def``: async ones run through the bridge, in the command's application context.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import sys
import traceback
import typing as t
from collections.abc import Callable
from operator import itemgetter

import click

from ..globals import _cv_app
from ..globals import current_app
from ..helpers import get_debug_flag
from .app_group import AppGroup as AppGroup
from .app_group import F as F
from .app_group import pass_script_info as pass_script_info
from .app_group import with_appcontext as with_appcontext
from .asgi_server import _serve_asgi
from .asgi_server import ASGI_RELOAD_TARGET as ASGI_RELOAD_TARGET
from .asgi_server import reloaded_asgi_app as reloaded_asgi_app
from .discovery import find_app_by_string as find_app_by_string
from .discovery import find_best_app as find_best_app
from .discovery import locate_app as locate_app
from .discovery import NoAppException as NoAppException
from .discovery import prepare_import as prepare_import
from .discovery import ScriptInfo as ScriptInfo
from .options import _app_option
from .options import _debug_option
from .options import _env_file_option
from .options import _Option
from .options import DEFAULT_DOTENV_FILES as DEFAULT_DOTENV_FILES
from .options import get_version as get_version
from .options import load_dotenv as load_dotenv
from .options import version_option as version_option

if t.TYPE_CHECKING:
    import ssl

    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIApplication
    from _typeshed.wsgi import WSGIEnvironment

    from ..app import Flask

#: Set while a ``ctxflask`` command runs: ``app.run()`` then does nothing (a module that
#: calls it at import time would otherwise block the command).
RUN_FROM_CLI_ENV = "CTXFLASK_RUN_FROM_CLI"


# -- the ctxflask group -----------------------------------------------------------------


class FlaskGroup(AppGroup):
    """The ``ctxflask`` command: an :class:`AppGroup` with the ``--app``, ``--debug``,
    ``--env-file`` and ``--version`` options, the ``run``, ``shell`` and ``routes``
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
        params.extend((_env_file_option, _app_option, _debug_option))
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


# -- run --------------------------------------------------------------------------------


def show_server_banner(debug: bool | None, app_import_path: str | None) -> None:
    """Print which app is served and the debug mode, once (not again in the reloader's
    server process)."""
    from werkzeug.serving import is_running_from_reloader

    if is_running_from_reloader():
        return
    if app_import_path is not None:
        click.echo(f" * Serving ctxflask app '{app_import_path}'")
    if debug is not None:
        click.echo(f" * Debug mode: {'on' if debug else 'off'}")


class CertParamType(click.ParamType):  # type: ignore[type-arg]
    """The ``--cert`` option: a certificate file, ``adhoc`` (a throwaway certificate, with
    the cryptography package), or the import path of an ``ssl.SSLContext``."""

    name = "path"

    def __init__(self) -> None:
        self.path_type = click.Path(exists=True, dir_okay=False, resolve_path=True)

    def convert(
        self, value: t.Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> t.Any:
        import ssl

        try:
            return self.path_type(value, param, ctx)
        except click.BadParameter:
            value = click.STRING(value, param, ctx).lower()
            if value == "adhoc":
                if importlib.util.find_spec("cryptography") is None:
                    raise click.BadParameter(
                        "An ad-hoc certificate needs the cryptography package, and it is"
                        " not installed. Fix: pip install cryptography.",
                        ctx,
                        param,
                    ) from None
                return value
            from werkzeug.utils import import_string

            obj = import_string(value, silent=True)
            if isinstance(obj, ssl.SSLContext):
                return obj
            raise


def _validate_key(ctx: click.Context, param: click.Parameter, value: t.Any) -> t.Any:
    """``--key`` goes with a ``--cert`` file, and makes ``cert`` a ``(cert, key)`` pair."""
    import ssl

    cert = ctx.params.get("cert")
    is_adhoc = cert == "adhoc"
    is_context = isinstance(cert, ssl.SSLContext)
    if value is not None:
        if is_adhoc or is_context:
            kind = "'adhoc'" if is_adhoc else "an SSLContext"
            raise click.BadParameter(
                f"'--key' is not used when '--cert' is {kind}.", ctx, param
            )
        if not cert:
            raise click.BadParameter("'--cert' must be given too.", ctx, param)
        ctx.params["cert"] = (cert, value)
    elif cert and not (is_adhoc or is_context):
        raise click.BadParameter("Required with a '--cert' file.", ctx, param)
    return value


class SeparatedPathType(click.Path):
    """A list of paths separated by ``os.pathsep``, each checked as a ``click.Path``."""

    def convert(
        self, value: t.Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> t.Any:
        convert = super().convert
        return [convert(item, param, ctx) for item in self.split_envvar_value(value)]


def _failed_app(error: Exception) -> WSGIApplication:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> t.Any:
        raise error from None

    return app


@click.command("run", short_help="Run a development server.")
@click.option(
    "--host", "-h", default="127.0.0.1", help="The interface to bind to.", cls=_Option
)
@click.option("--port", "-p", default=5000, help="The port to bind to.", cls=_Option)
@click.option(
    "--cert",
    type=CertParamType(),
    help="A certificate file to serve HTTPS.",
    is_eager=True,
    cls=_Option,
)
@click.option(
    "--key",
    type=click.Path(exists=True, dir_okay=False, resolve_path=True),
    callback=_validate_key,
    expose_value=False,
    help="The key file of a '--cert' file.",
    cls=_Option,
)
@click.option(
    "--reload/--no-reload",
    default=None,
    help="Restart the server when code changes. Default: on in debug mode.",
    cls=_Option,
)
@click.option(
    "--debugger/--no-debugger",
    default=None,
    help="Show werkzeug's interactive debugger on errors (WSGI only). Default: on in"
    " debug mode.",
    cls=_Option,
)
@click.option(
    "--with-threads/--without-threads",
    default=True,
    help="Serve each request in a thread of its own (WSGI).",
    cls=_Option,
)
@click.option(
    "--extra-files",
    default=None,
    type=SeparatedPathType(),
    help="More files whose changes trigger a reload, separated by"
    f" {os.path.pathsep!r}.",
    cls=_Option,
)
@click.option(
    "--exclude-patterns",
    default=None,
    type=SeparatedPathType(),
    help="fnmatch patterns of files whose changes do not trigger a reload, separated"
    f" by {os.path.pathsep!r}.",
    cls=_Option,
)
@click.option(
    "--asgi",
    is_flag=True,
    default=False,
    help="Serve the ASGI entry point (app.asgi) with uvicorn instead of the WSGI one"
    " with werkzeug's server.",
    cls=_Option,
)
@pass_script_info
def run_command(
    info: ScriptInfo,
    host: str,
    port: int,
    reload: bool | None,
    debugger: bool | None,
    with_threads: bool,
    cert: ssl.SSLContext | tuple[str, str | None] | t.Literal["adhoc"] | None,
    extra_files: list[str] | None,
    exclude_patterns: list[str] | None,
    asgi: bool,
) -> None:
    """Run a local development server.

    werkzeug's server serves the app's WSGI entry point, or uvicorn its ASGI one
    (app.asgi) with the --asgi option. For development only: in production, a WSGI or
    ASGI server serves the app.

    '--debug' turns on the reloader and (under WSGI) the debugger.
    """
    if asgi:
        app = info.load_app()
        debug = get_debug_flag()
        show_server_banner(debug, info.app_import_path)
        if debugger:
            raise click.UsageError(
                "'--debugger' is WSGI-only: werkzeug's debugger is WSGI middleware.\n"
                "Fix: leave out '--asgi' to use it; under uvicorn, tracebacks go to the"
                " server's log."
            )
        _serve_asgi(
            info,
            app,
            host=host,
            port=port,
            reload=debug if reload is None else reload,
            cert=cert,
            extra_files=extra_files,
            exclude_patterns=exclude_patterns,
            debug=debug,
        )
        return

    import werkzeug.serving

    served: WSGIApplication
    try:
        served = info.load_app()
    except Exception as e:
        if not werkzeug.serving.is_running_from_reloader():
            raise e from None
        # In the reloader's server process: keep serving, so that the fix reloads it,
        # and raise the error on each request (the debugger shows it).
        traceback.print_exc()
        served = _failed_app(e)

    debug = get_debug_flag()
    show_server_banner(debug, info.app_import_path)
    werkzeug.serving.run_simple(
        host,
        port,
        served,
        use_reloader=debug if reload is None else reload,
        use_debugger=debug if debugger is None else debugger,
        threaded=with_threads,
        ssl_context=cert,
        extra_files=extra_files,
        exclude_patterns=exclude_patterns,
    )


run_command.params.insert(0, _debug_option)

# -- shell and routes -------------------------------------------------------------------


@click.command("shell", short_help="Run a Python shell in the app context.")
@with_appcontext
def shell_command() -> None:
    """Run an interactive Python shell in the application's context.

    Its namespace holds 'app', 'g' and the names from the app's shell context processors
    (app.make_shell_context), after those of the PYTHONSTARTUP script.
    """
    import code

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    banner = (
        f"Python {sys.version} on {sys.platform}\n"
        f"App: {app.import_name}\n"
        f"Instance: {app.instance_path}"
    )
    namespace: dict[str, t.Any] = {}
    startup = os.environ.get("PYTHONSTARTUP")
    if startup and os.path.isfile(startup):
        with open(startup) as f:
            exec(compile(f.read(), startup, "exec"), namespace)
    namespace.update(app.make_shell_context())

    # The interactive hook (readline's completion and history) completes names from
    # __main__ by default, which is ctxflask's; complete the shell's names instead.
    hook = getattr(sys, "__interactivehook__", None)
    if hook is not None:
        try:
            import readline
            from rlcompleter import Completer
        except ImportError:
            pass
        else:
            readline.set_completer(Completer(namespace).complete)
        hook()

    code.interact(banner=banner, local=namespace)


@click.command("routes", short_help="Show the routes of the app.")
@click.option(
    "--sort",
    "-s",
    type=click.Choice(("endpoint", "methods", "domain", "rule", "match")),
    default="endpoint",
    help="Sort by this column; 'match' is the order in which routes are matched.",
    cls=_Option,
)
@click.option(
    "--all-methods", is_flag=True, help="Show HEAD and OPTIONS too.", cls=_Option
)
@with_appcontext
def routes_command(sort: str, all_methods: bool) -> None:
    """Show the app's routes: endpoint, methods and rule (and host or subdomain)."""
    url_map = current_app.url_map
    rules = list(url_map.iter_rules())
    if not rules:
        click.echo("No routes were registered.")
        return

    hidden = set() if all_methods else {"HEAD", "OPTIONS"}
    domain_of: Callable[[t.Any], str | None] = (
        (lambda rule: rule.host) if url_map.host_matching else (lambda r: r.subdomain)
    )
    show_domain = any(domain_of(rule) for rule in rules)

    headers = ["Endpoint", "Methods"]
    columns = ["endpoint", "methods"]
    if show_domain:
        headers.append("Host" if url_map.host_matching else "Subdomain")
        columns.append("domain")
    headers.append("Rule")
    columns.append("rule")

    rows: list[list[str]] = []
    for rule in rules:
        row = [rule.endpoint, ", ".join(sorted((rule.methods or set()) - hidden))]
        if show_domain:
            row.append(domain_of(rule) or "")
        row.append(rule.rule)
        rows.append(row)
    if sort in columns:  # otherwise "match": iter_rules' order, or no domain column
        rows.sort(key=itemgetter(columns.index(sort)))

    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    lines = [headers, ["-" * width for width in widths], *rows]
    for line in lines:
        # Every cell padded, the last one too, as Flask prints it.
        click.echo(
            "  ".join(
                cell.ljust(width) for cell, width in zip(line, widths, strict=True)
            )
        )


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
