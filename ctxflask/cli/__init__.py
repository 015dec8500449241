"""The ``ctxflask`` command line (Flask's ``flask`` command): finding the app, commands that
run inside its application context, and the ``run``, ``routes`` and ``shell`` commands.

``ctxflask --app module:name run`` serves the app with werkzeug's development server (WSGI),
or with uvicorn (``run --asgi``, through ``app.asgi``). Command callbacks may be ``def`` or
``async def``: async ones run through the bridge, in the command's application context.

The modules, each importing only those before it: ``discovery`` (finding and loading the
app), ``app_group`` (commands in the app context), ``options`` (the command's options,
dotenv files), ``asgi_server`` (``run --asgi``), ``commands`` (``run``, ``shell``,
``routes``) and ``group`` (the ``ctxflask`` command itself).
"""

from __future__ import annotations

from .app_group import AppGroup as AppGroup
from .app_group import F as F
from .app_group import pass_script_info as pass_script_info
from .app_group import with_appcontext as with_appcontext
from .asgi_server import ASGI_RELOAD_TARGET as ASGI_RELOAD_TARGET
from .asgi_server import reloaded_asgi_app as reloaded_asgi_app
from .commands import CertParamType as CertParamType
from .commands import routes_command as routes_command
from .commands import run_command as run_command
from .commands import SeparatedPathType as SeparatedPathType
from .commands import shell_command as shell_command
from .commands import show_server_banner as show_server_banner
from .discovery import find_app_by_string as find_app_by_string
from .discovery import find_best_app as find_best_app
from .discovery import locate_app as locate_app
from .discovery import NoAppException as NoAppException
from .discovery import prepare_import as prepare_import
from .discovery import ScriptInfo as ScriptInfo
from .group import cli as cli
from .group import FlaskGroup as FlaskGroup
from .group import main as main
from .group import RUN_FROM_CLI_ENV as RUN_FROM_CLI_ENV
from .options import DEFAULT_DOTENV_FILES as DEFAULT_DOTENV_FILES
from .options import get_version as get_version
from .options import load_dotenv as load_dotenv
from .options import version_option as version_option
