"""``run --asgi``: serving the app's ASGI entry point (``app.asgi``) with uvicorn, and
loading it anew in each server process that uvicorn's reloader starts.
"""

from __future__ import annotations

import os
import typing as t

import click

from .discovery import ScriptInfo

if t.TYPE_CHECKING:
    from ..app import Flask
    from ..asgi import ASGIApp

#: uvicorn's reloader imports the app in each new server process from this import string.
ASGI_RELOAD_TARGET = "ctxflask.cli.asgi_server:reloaded_asgi_app"


def reloaded_asgi_app() -> ASGIApp:
    """The ASGI app, loaded anew in a server process started by uvicorn's reloader
    (``run --asgi --reload``): from the same ``CTXFLASK_APP`` (or ``FLASK_APP``), working
    directory and environment as the command."""
    path = os.environ.get("CTXFLASK_APP") or os.environ.get("FLASK_APP") or None
    return ScriptInfo(app_import_path=path).load_app().asgi


def _serve_asgi(
    info: ScriptInfo,
    app: Flask,
    *,
    host: str,
    port: int,
    reload: bool,
    cert: t.Any,
    extra_files: list[str] | None,
    exclude_patterns: list[str] | None,
    debug: bool,
) -> None:
    try:
        import uvicorn
    except ImportError:
        raise click.ClickException(
            "'run --asgi' serves the app with uvicorn, and uvicorn is not installed.\n"
            "Fix: pip install uvicorn (or 'ctxflask[servers]'), or leave out '--asgi' to"
            " use werkzeug's WSGI server."
        ) from None

    options: dict[str, t.Any] = {
        "host": host,
        "port": port,
        "interface": "asgi3",
        "log_level": "debug" if debug else "info",
    }
    if cert is not None:
        if not isinstance(cert, tuple):
            raise click.UsageError(
                "Under '--asgi', '--cert' must be a certificate file (with '--key'):"
                " uvicorn takes no 'adhoc' certificate or SSLContext object."
            )
        options["ssl_certfile"], options["ssl_keyfile"] = cert

    if not reload:
        uvicorn.run(app.asgi, **options)
        return

    # uvicorn reloads by importing the app again in a new process: it needs an import
    # string, which loads the app the way this command did (see reloaded_asgi_app).
    if info.create_app is not None:
        raise click.UsageError(
            "'--reload' under '--asgi' needs the app's import path: uvicorn imports the"
            " app anew in each server process, and this command's app comes from a"
            " 'create_app' callable.\nFix: use '--app module:name', or '--no-reload'."
        )
    if info.app_import_path:
        os.environ["CTXFLASK_APP"] = info.app_import_path
    reload_dirs = [os.getcwd()]
    includes: list[str] = []
    for path in extra_files or ():
        reload_dirs.append(os.path.dirname(os.path.abspath(path)))
        includes.append(os.path.basename(path))
    uvicorn.run(
        ASGI_RELOAD_TARGET,
        factory=True,
        reload=True,
        reload_dirs=sorted(set(reload_dirs)),
        reload_includes=includes or None,
        reload_excludes=exclude_patterns or None,
        **options,
    )
