"""The application's configuration: a dict with loaders, and a descriptor that forwards to it.

:class:`Config` is what ``app.config`` holds. It is a plain ``dict`` keyed by strings, plus
methods that fill it from Python files, data files, objects, mappings and environment
variables. Every loader except :meth:`Config.from_prefixed_env` keeps only UPPERCASE keys, so a
config file or module may use lowercase names for its own helpers.

:class:`ConfigAttribute` lets an application class expose a config key as an attribute, for
example ``app.testing`` reading and writing ``app.config["TESTING"]``.
"""

from __future__ import annotations

import collections.abc as cabc
import errno
import json
import os
import types
import typing as t
from datetime import timedelta

from werkzeug.datastructures import ImmutableDict
from werkzeug.utils import import_string

T = t.TypeVar("T")

# Errors that mean "there is no such file": the ones ``silent=True`` is meant to swallow.
_MISSING_ERRNOS = frozenset({errno.ENOENT, errno.EISDIR, errno.ENOTDIR})


class _HasConfig(t.Protocol):
    """Anything :class:`ConfigAttribute` can sit on: an object with a ``config`` mapping."""

    @property
    def config(self) -> t.MutableMapping[str, t.Any]: ...


class ConfigAttribute(t.Generic[T]):
    """A descriptor that forwards an attribute to a key of its owner's ``config``.

    Reading ``obj.attr`` returns ``obj.config[name]``, passed through ``get_converter`` when one
    is given; assigning ``obj.attr = value`` stores ``value`` unchanged in ``obj.config[name]``.
    Reading the attribute on the class returns the descriptor itself. ::

        class App:
            testing = ConfigAttribute[bool]("TESTING")
            lifetime = ConfigAttribute[timedelta]("LIFETIME", get_converter=to_timedelta)

    :param name: the config key to forward to.
    :param get_converter: called with the stored value on every read; its result is what the
        attribute returns. ``None`` returns the stored value as is.
    """

    def __init__(
        self, name: str, get_converter: t.Callable[[t.Any], T] | None = None
    ) -> None:
        self.__name__ = name
        self.get_converter = get_converter

    @t.overload
    def __get__(self, obj: None, owner: type[t.Any] | None = None) -> t.Self: ...

    @t.overload
    def __get__(self, obj: _HasConfig, owner: type[t.Any] | None = None) -> T: ...

    def __get__(
        self, obj: _HasConfig | None, owner: type[t.Any] | None = None
    ) -> T | t.Self:
        """Return the config value (converted), or the descriptor when read on the class.

        :param obj: the instance the attribute is read on, or ``None`` for the class.
        :param owner: the class the attribute is read on.
        :return: ``obj.config[name]``, through ``get_converter`` if set; the descriptor itself
            when ``obj`` is ``None``.
        :raises KeyError: if the key is not in the config.
        """
        if obj is None:
            return self
        value = obj.config[self.__name__]
        if self.get_converter is not None:
            return self.get_converter(value)
        return t.cast(T, value)

    def __set__(self, obj: _HasConfig, value: t.Any) -> None:
        """Store ``value`` unchanged under the config key.

        :param obj: the instance the attribute is set on.
        :param value: the new config value; ``get_converter`` is not applied.
        """
        obj.config[self.__name__] = value

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.__name__!r}>"


class Config(dict[str, t.Any]):
    """A ``dict`` of configuration values, with methods to load them from several sources.

    Either fill it from a file::

        app.config.from_pyfile("settings.cfg")

    or from an object, such as a module of defaults or a class::

        app.config.from_object("yourapp.default_settings")

    or from a file named by an environment variable::

        app.config.from_envvar("YOURAPP_SETTINGS")

    Relative file names are resolved against :attr:`root_path`. The file, object and mapping
    loaders only copy UPPERCASE keys; lowercase names are left out, which lets a config file
    keep temporary values of its own.

    :param root_path: the directory relative file names are read from. For ``app.config``
        this is the application's ``root_path``.
    :param defaults: initial values, copied into the config.
    """

    def __init__(
        self,
        root_path: str | os.PathLike[str],
        defaults: t.Mapping[str, t.Any] | None = None,
    ) -> None:
        super().__init__(defaults or {})
        self.root_path = root_path

    def from_envvar(self, variable_name: str, silent: bool = False) -> bool:
        """Load a Python config file whose path is in an environment variable.

        A shortcut for ``from_pyfile(os.environ[variable_name])`` with a helpful error.
        An empty variable counts as unset.

        :param variable_name: the name of the environment variable holding the path.
        :param silent: return ``False`` instead of raising if the variable is unset or the
            file it names does not exist.
        :return: ``True`` if a file was loaded, ``False`` if ``silent`` skipped it.
        :raises RuntimeError: if the variable is unset or empty and ``silent`` is false.
        :raises OSError: if the file cannot be read (see :meth:`from_pyfile`).
        """
        path = os.environ.get(variable_name)
        if not path:
            if silent:
                return False
            raise RuntimeError(
                f"The environment variable {variable_name!r} is not set (or is empty), so no"
                " configuration could be loaded from it.\n"
                f"Set {variable_name} to the path of a Python configuration file, or pass"
                " silent=True to skip loading when it is unset."
            )
        return self.from_pyfile(path, silent=silent)

    def from_prefixed_env(
        self, prefix: str = "FLASK", *, loads: t.Callable[[str], t.Any] = json.loads
    ) -> bool:
        """Load environment variables named ``{prefix}_*``, dropping the prefix from the key.

        Variables are processed in :func:`sorted` order of their names. Each value is passed
        to ``loads``; if that raises, the raw string is kept. With the default
        :func:`json.loads`, ``FLASK_PORT=8000`` gives the int ``8000``, ``FLASK_DEBUG=true``
        gives ``True`` and ``FLASK_NAME=app`` stays the string ``"app"``.

        A double underscore in the key sets an item of a nested dict: ``FLASK_DB__HOST=x`` sets
        ``config["DB"]["HOST"] = "x"``. Intermediate keys that do not exist are created as
        empty dicts. Unlike the other loaders, keys are kept as written, lowercase included.

        :param prefix: the prefix to look for; an underscore is appended to it.
        :param loads: turns each string value into a config value.
        :return: always ``True``.
        :raises TypeError: if a ``__`` path runs through an existing value that is not a dict.
        """
        prefix = f"{prefix}_"
        for name in sorted(os.environ):
            if not name.startswith(prefix):
                continue
            raw = os.environ[name]
            key = name.removeprefix(prefix)
            value: t.Any
            try:
                value = loads(raw)
            except Exception:
                # Any failure means "not in the loader's format": the raw string is the value.
                value = raw

            *parents, leaf = key.split("__")
            target: t.MutableMapping[str, t.Any] = self
            for depth, part in enumerate(parents):
                if part not in target:
                    target[part] = {}
                child = target[part]
                if not isinstance(child, cabc.MutableMapping):
                    path = "__".join(parents[: depth + 1])
                    where = "".join(f"[{p!r}]" for p in parents[: depth + 1])
                    raise TypeError(
                        f"Cannot set config key {key!r} from the environment variable"
                        f" {name!r}: {path!r} is of type {type(child).__name__}, not a dict.\n"
                        "A double underscore nests keys into dicts, so every part before the"
                        " last must be a dict or not exist yet.\n"
                        f"Fix: make config{where} a dict, or rename the variable."
                    )
                target = child
            target[leaf] = value
        return True

    def from_pyfile(
        self, filename: str | os.PathLike[str], silent: bool = False
    ) -> bool:
        """Load a Python file, as if imported as a module, and copy its UPPERCASE names.

        The file is executed in a fresh module namespace whose ``__file__`` is the file's path;
        then :meth:`from_object` copies its uppercase attributes.

        :param filename: the file to load; absolute, or relative to :attr:`root_path`.
        :param silent: return ``False`` instead of raising if the file does not exist (or
            the path names a directory, or runs through a file).
        :return: ``True`` if the file was loaded, ``False`` if ``silent`` skipped it.
        :raises OSError: if the file cannot be read; ``strerror`` starts with "Unable to load
            configuration file", and the errno and exception class are kept.
        """
        path = os.path.join(self.root_path, filename)
        try:
            with open(path, mode="rb") as f:
                source = f.read()
        except OSError as e:
            if silent and e.errno in _MISSING_ERRNOS:
                return False
            self._explain_open_error(e, path)
            raise
        module = types.ModuleType("config")
        module.__file__ = path
        # Compiled from bytes so a coding declaration in the file is honoured.
        exec(compile(source, path, "exec"), module.__dict__)
        self.from_object(module)
        return True

    def from_object(self, obj: object | str) -> None:
        """Copy the UPPERCASE attributes of an object into the config.

        The object is usually a module or a class; a string is imported first with
        :func:`werkzeug.utils.import_string` (``"pkg.module"`` or ``"pkg.module:Name"`` or
        ``"pkg.module.Name"``). Nothing is done to the object: a class whose values are
        ``@property`` attributes must be instantiated before it is passed. A ``dict`` does not
        work, since its keys are not attributes; use :meth:`from_mapping` for that.

        :param obj: the object, or the import path of one.
        :raises werkzeug.utils.ImportStringError: if a string cannot be imported.
        """
        if isinstance(obj, str):
            obj = import_string(obj)
        for key in dir(obj):
            if key.isupper():
                self[key] = getattr(obj, key)

    def from_file(
        self,
        filename: str | os.PathLike[str],
        load: t.Callable[[t.IO[t.Any]], t.Mapping[str, t.Any]],
        silent: bool = False,
        text: bool = True,
    ) -> bool:
        """Load a data file with ``load`` and copy the UPPERCASE keys of the result.

        ::

            app.config.from_file("config.json", load=json.load)
            app.config.from_file("config.toml", load=tomllib.load, text=False)

        :param filename: the file to load; absolute, or relative to :attr:`root_path`.
        :param load: called with the open file; must return a mapping, which is passed to
            :meth:`from_mapping`.
        :param silent: return ``False`` instead of raising if the file does not exist (or
            the path names a directory, or runs through a file).
        :param text: open the file in text mode; ``False`` opens it in binary mode, as
            :func:`tomllib.load` needs.
        :return: ``True`` if the file was loaded, ``False`` if ``silent`` skipped it.
        :raises OSError: if the file cannot be opened; ``strerror`` starts with "Unable to
            load configuration file", and the errno and exception class are kept.
        :raises TypeError: if ``load`` does not return a mapping.
        """
        path = os.path.join(self.root_path, filename)
        try:
            f = open(path, "r" if text else "rb")  # noqa: SIM115 - closed by the with below
        except OSError as e:
            if silent and e.errno in _MISSING_ERRNOS:
                return False
            self._explain_open_error(e, path)
            raise
        with f:
            data = load(f)
        if not isinstance(data, cabc.Mapping):
            raise TypeError(
                f"Configuration file {path!r} did not load as a mapping: {load!r} returned"
                f" a {type(data).__name__}.\n"
                "Fix: make the file's top level an object/table of settings, or pass a"
                " `load` function that returns a dict."
            )
        return self.from_mapping(data)

    def from_mapping(
        self, mapping: t.Mapping[str, t.Any] | None = None, **kwargs: t.Any
    ) -> bool:
        """Update the config like :meth:`dict.update`, but only with UPPERCASE keys.

        Keyword arguments are applied after ``mapping`` and win over it.

        :param mapping: the values to copy.
        :param kwargs: more values to copy.
        :return: always ``True``.
        """
        merged: dict[str, t.Any] = {}
        if mapping is not None:
            merged.update(mapping)
        merged.update(kwargs)
        for key, value in merged.items():
            if isinstance(key, str) and key.isupper():
                self[key] = value
        return True

    def get_namespace(
        self, namespace: str, lowercase: bool = True, trim_namespace: bool = True
    ) -> dict[str, t.Any]:
        """Return the config values whose keys start with ``namespace``, as a new dict.

        ::

            app.config["IMAGE_STORE_TYPE"] = "fs"
            app.config["IMAGE_STORE_PATH"] = "/var/app/images"
            app.config.get_namespace("IMAGE_STORE_")
            # {"type": "fs", "path": "/var/app/images"}

        Handy when settings map onto keyword arguments of a function or class.

        :param namespace: the key prefix to select, usually ending in ``_``.
        :param lowercase: lowercase the keys of the result.
        :param trim_namespace: remove the prefix from the keys of the result.
        :return: the selected keys (transformed as asked) and their values.
        """
        selected: dict[str, t.Any] = {}
        for key, value in self.items():
            if not isinstance(key, str) or not key.startswith(namespace):
                continue
            if trim_namespace:
                key = key[len(namespace) :]
            if lowercase:
                key = key.lower()
            selected[key] = value
        return selected

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {dict.__repr__(self)}>"

    def _explain_open_error(self, error: OSError, path: str) -> None:
        # The message is rewritten in place, rather than wrapped in a new exception, so the
        # class and errno stay what callers catch (FileNotFoundError, IsADirectoryError, ...).
        error.strerror = f"Unable to load configuration file ({error.strerror})"
        root = os.fspath(self.root_path)
        error.add_note(
            f"Relative config file names are resolved against root_path {root!r}"
            f" (resolved path: {path!r}).\nFix: check the path, or pass silent=True to"
            " ignore a missing file."
        )


#: The defaults of every app's config (``App.default_config``).
DEFAULT_CONFIG: ImmutableDict[str, t.Any] = ImmutableDict(
    {
        "DEBUG": None,
        "TESTING": False,
        "PROPAGATE_EXCEPTIONS": None,
        "SECRET_KEY": None,
        "SECRET_KEY_FALLBACKS": None,
        "PERMANENT_SESSION_LIFETIME": timedelta(days=31),
        "USE_X_SENDFILE": False,
        "TRUSTED_HOSTS": None,
        "SERVER_NAME": None,
        "APPLICATION_ROOT": "/",
        "SESSION_COOKIE_NAME": "session",
        "SESSION_COOKIE_DOMAIN": None,
        "SESSION_COOKIE_PATH": None,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SECURE": False,
        "SESSION_COOKIE_PARTITIONED": False,
        "SESSION_COOKIE_SAMESITE": None,
        "SESSION_REFRESH_EACH_REQUEST": True,
        "MAX_CONTENT_LENGTH": None,
        "MAX_FORM_MEMORY_SIZE": 500_000,
        "MAX_FORM_PARTS": 1_000,
        "SEND_FILE_MAX_AGE_DEFAULT": None,
        "TRAP_BAD_REQUEST_ERRORS": None,
        "TRAP_HTTP_EXCEPTIONS": False,
        "EXPLAIN_TEMPLATE_LOADING": False,
        "PREFERRED_URL_SCHEME": "http",
        "TEMPLATES_AUTO_RELOAD": None,
        "MAX_COOKIE_SIZE": 4093,
        "PROVIDE_AUTOMATIC_OPTIONS": True,
        "BACKGROUND_TASK_SHUTDOWN_TIMEOUT": 5,
        "WORKER_THREADS": 40,
        "ASYNC_STEPS": "loop",
        "LOOP_BLOCK_WARNING": 0.1,
    }
)


def make_timedelta(value: t.Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    return timedelta(seconds=value)
