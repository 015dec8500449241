"""The ``run``, ``shell`` and ``routes`` commands, and the parameter types of ``run``'s
options.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import traceback
import typing as t
from collections.abc import Callable
from operator import itemgetter

import click

from ..core.globals import current_app
from ..core.helpers import get_debug_flag
from .app_group import pass_script_info
from .app_group import with_appcontext
from .asgi_server import _serve_asgi
from .discovery import ScriptInfo
from .options import _debug_option
from .options import _Option

if t.TYPE_CHECKING:
    import ssl

    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIApplication
    from _typeshed.wsgi import WSGIEnvironment


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
