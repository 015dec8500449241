"""Finding and loading the application: from an import path (``module:name``, or a file
path), a factory called with literal arguments, or ``wsgi.py``/``app.py`` in the working
directory. :class:`ScriptInfo` loads it for the commands.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import re
import sys
import traceback
import typing as t
from collections.abc import Callable
from types import ModuleType

import click

from .. import bridge
from ..core.app import App
from ..core.helpers import get_debug_flag
from ..core.helpers import get_load_dotenv

if t.TYPE_CHECKING:
    from ..app import Flask


class NoAppException(click.UsageError):
    """The application could not be found or loaded."""


def _is_app(obj: object) -> t.TypeGuard[Flask]:
    """Whether ``obj`` is a ctxflask application (every :class:`~ctxflask.Flask` is a
    core :class:`~ctxflask.core.app.App`; the CLI sits below the public class)."""
    return isinstance(obj, App)


def _call_factory(
    factory: Callable[..., t.Any],
    args: t.Sequence[t.Any],
    kwargs: t.Mapping[str, t.Any],
    module: ModuleType,
    given_as: str,
) -> t.Any:
    """Call an app factory (sync or async); arguments it cannot take are a
    :class:`NoAppException`, while a ``TypeError`` raised inside it propagates."""
    try:
        inspect.signature(factory).bind(*args, **kwargs)
    except TypeError as e:
        raise NoAppException(
            f"Could not call the app factory {given_as!r} of module"
            f" {module.__name__!r}: {e}.\nFix: pass its arguments in the import path,"
            f" '{module.__name__}:{factory.__name__}(args)'."
        ) from e
    return bridge.call_in(None, factory, *args, **kwargs)


def find_best_app(module: ModuleType) -> Flask:
    """Find the application in ``module``: an app named ``app`` or ``application``, else
    the only app in the module, else the app returned by a ``create_app`` or ``make_app``
    factory called without arguments.

    :raises NoAppException: when none, or more than one, is found.
    """
    for name in ("app", "application"):
        candidate = getattr(module, name, None)
        if _is_app(candidate):
            return candidate

    apps = [v for v in vars(module).values() if _is_app(v)]
    if len(apps) == 1:
        return apps[0]
    if len(apps) > 1:
        raise NoAppException(
            f"Found {len(apps)} applications in module {module.__name__!r}, and none"
            " named 'app' or 'application'.\nFix: name the one to use,"
            f" '--app {module.__name__}:name'."
        )

    for name in ("create_app", "make_app"):
        factory = getattr(module, name, None)
        if inspect.isfunction(factory):
            app = _call_factory(factory, (), {}, module, name)
            if _is_app(app):
                return app

    flask_apps = [name for name, v in vars(module).items() if _is_flask_app(v)]
    if flask_apps:
        raise NoAppException(
            f"Module {module.__name__!r} has a Flask application, {flask_apps[0]!r},"
            " made by Flask itself: its 'import flask' gave the Flask project's package."
            "\nFix: 'ctxflask --as-flask ...' (or CTXFLASK_AS_FLASK=1), or call"
            " ctxflask.install_as_flask() before the module imports flask."
        )
    raise NoAppException(
        f"Found no application or factory in module {module.__name__!r}: no app"
        " instance, and no 'create_app' or 'make_app' function returning one.\nFix: name"
        f" it, '--app {module.__name__}:name' or '--app {module.__name__}:factory(args)'."
    )


def _is_flask_app(obj: object) -> bool:
    # An app of the real Flask package, which a module imported without the switch.
    return any(
        cls.__module__ == "flask.app" and cls.__name__ == "Flask"
        for cls in type(obj).__mro__
    )


def _parse_app_name(app_name: str) -> tuple[str, list[t.Any], dict[str, t.Any], bool]:
    """``name`` or ``name(literal args)``: the name, the arguments, whether it is a call."""
    try:
        expr = ast.parse(app_name.strip(), mode="eval").body
    except SyntaxError:
        raise NoAppException(
            f"Could not parse {app_name!r} as a name or a function call.\nFix: give"
            " 'module:name' or 'module:factory(args)'."
        ) from None
    if isinstance(expr, ast.Name):
        return expr.id, [], {}, False
    if not isinstance(expr, ast.Call):
        raise NoAppException(
            f"Could not parse {app_name!r} as a name or a function call.\nFix: give"
            " 'module:name' or 'module:factory(args)'."
        )
    if not isinstance(expr.func, ast.Name):
        raise NoAppException(
            f"The factory in {app_name!r} must be a plain name of the module, not an"
            " expression."
        )
    try:
        args = [ast.literal_eval(arg) for arg in expr.args]
        kwargs = {
            kw.arg: ast.literal_eval(kw.value)
            for kw in expr.keywords
            if kw.arg is not None
        }
    except ValueError:
        raise NoAppException(
            f"The arguments in {app_name!r} must be Python literals (strings, numbers,"
            " lists, ...)."
        ) from None
    return expr.func.id, args, kwargs, True


def find_app_by_string(module: ModuleType, app_name: str) -> Flask:
    """Find the application named by ``app_name`` in ``module``: an attribute
    (``app``), or a factory to call, with literal arguments (``create_app("dev")``)."""
    name, args, kwargs, is_call = _parse_app_name(app_name)
    try:
        attr = getattr(module, name)
    except AttributeError as e:
        raise NoAppException(
            f"Module {module.__name__!r} has no attribute {name!r}."
        ) from e
    if inspect.isfunction(attr):
        app = _call_factory(attr, args, kwargs, module, app_name)
    elif is_call:
        raise NoAppException(
            f"{name!r} in module {module.__name__!r} is not a function, so it cannot be"
            f" called as {app_name!r}."
        )
    else:
        app = attr
    if _is_app(app):
        return app
    raise NoAppException(
        f"'{module.__name__}:{app_name}' is a {type(app).__name__}, not a ctxflask"
        " application."
    )


def prepare_import(path: str) -> str:
    """Turn a file or folder path (``src/project/app.py``) into a module name to import
    (``project.app``), adding the folder that holds its top package to ``sys.path``.

    A dotted module name (``project.app``) is returned as is, with the working directory
    added to ``sys.path``.
    """
    path = os.path.realpath(path)
    base, ext = os.path.splitext(path)
    if ext == ".py":
        path = base
    if os.path.basename(path) == "__init__":
        path = os.path.dirname(path)
    parts: list[str] = []
    # Walk up while the folder is a package, to import the module by its full name.
    while True:
        path, name = os.path.split(path)
        parts.append(name)
        if not os.path.exists(os.path.join(path, "__init__.py")):
            break
    if not sys.path or sys.path[0] != path:
        sys.path.insert(0, path)
    return ".".join(reversed(parts))


@t.overload
def locate_app(
    module_name: str, app_name: str | None, raise_if_not_found: t.Literal[True] = True
) -> Flask: ...


@t.overload
def locate_app(
    module_name: str, app_name: str | None, raise_if_not_found: bool
) -> Flask | None: ...


def locate_app(
    module_name: str, app_name: str | None, raise_if_not_found: bool = True
) -> Flask | None:
    """Import ``module_name`` and find the application in it (by ``app_name``, or with
    :func:`find_best_app`).

    :param raise_if_not_found: when false, a module that does not exist gives ``None``.
    :raises NoAppException: when the module is missing, fails to import, or holds no app.
    """
    try:
        importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        missing = e.name or ""
        if module_name == missing or module_name.startswith(f"{missing}."):
            if not raise_if_not_found:
                return None
            raise NoAppException(
                f"Could not import {module_name!r}: no such module.\nFix: run the command"
                " from the folder that holds it, or give a file path to '--app'."
            ) from None
        raise NoAppException(
            f"Importing {module_name!r} raised an ImportError:\n\n{traceback.format_exc()}"
        ) from None
    except ImportError:
        raise NoAppException(
            f"Importing {module_name!r} raised an ImportError:\n\n{traceback.format_exc()}"
        ) from None
    module = sys.modules[module_name]
    if app_name is None:
        return find_best_app(module)
    return find_app_by_string(module, app_name)


def _split_import_path(value: str) -> tuple[str, str | None]:
    """``module:name`` into its two parts; the colon of a Windows drive (``C:\\``) is part
    of the module's path."""
    parts = re.split(r":(?![\\/])", value, maxsplit=1)
    return parts[0], (parts[1] if len(parts) == 2 else None)


class ScriptInfo:
    """What a command needs to load the application, passed as click's context object.

    :param app_import_path: ``module:name``, a file path, or ``None`` to look for
        ``wsgi.py`` or ``app.py`` in the working directory.
    :param create_app: a callable returning the app (sync or async), used instead of the
        import path.
    :param set_debug_flag: set the app's debug flag from ``CTXFLASK_DEBUG``/``FLASK_DEBUG``
        (which ``--debug`` sets).
    :param load_dotenv_defaults: whether the default dotenv files are to be loaded
        (``ScriptInfo`` itself loads nothing); false when ``CTXFLASK_SKIP_DOTENV`` is set.
    """

    def __init__(
        self,
        app_import_path: str | None = None,
        create_app: Callable[..., Flask] | None = None,
        set_debug_flag: bool = True,
        load_dotenv_defaults: bool = True,
    ) -> None:
        self.app_import_path = app_import_path
        self.create_app = create_app
        #: Free storage for data to share between commands and callbacks.
        self.data: dict[t.Any, t.Any] = {}
        self.set_debug_flag = set_debug_flag
        self.load_dotenv_defaults = get_load_dotenv(load_dotenv_defaults)
        self._loaded_app: Flask | None = None

    def load_app(self) -> Flask:
        """Load the application (once; later calls return the same app).

        :raises NoAppException: when it cannot be found or loaded.
        """
        if self._loaded_app is not None:
            return self._loaded_app
        app: Flask | None = None
        if self.create_app is not None:
            app = bridge.call_in(None, self.create_app)
        elif self.app_import_path:
            path, name = _split_import_path(self.app_import_path)
            app = locate_app(prepare_import(path), name)
        else:
            for filename in ("wsgi.py", "app.py"):
                app = locate_app(
                    prepare_import(filename), None, raise_if_not_found=False
                )
                if app is not None:
                    break
        if app is None:
            raise NoAppException(
                "Could not locate a ctxflask application.\nFix: use the 'ctxflask --app'"
                " option, the 'CTXFLASK_APP' (or 'FLASK_APP') environment variable, or a"
                " 'wsgi.py' or 'app.py' file in the current directory."
            )
        if self.set_debug_flag:
            app.debug = get_debug_flag()
        self._loaded_app = app
        return app
