"""``install_as_flask()``: ctxflask answers for ``flask``, so Flask's extensions run on it.

One object on ``sys.meta_path``, ahead of the path finder (so an installed Flask is never
found), does two things:

- imports: ``flask`` is a module of its own that forwards attribute access to
  :mod:`ctxflask` (``flask.Flask is ctxflask.Flask``) and has Flask's ``__version__``;
  every other module path of Flask 3.1 is the ctxflask module itself, not a copy
  (``flask.ctx is ctxflask.ctx``; Flask's protocol-free ``flask.sansio`` is ctxflask's core);
- metadata: ``importlib.metadata`` finds the distribution ``Flask`` at the version of the
  API ctxflask implements, provided by ctxflask, with no files of its own.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.metadata
import importlib.util
import os
import pathlib
import re
import sys
import types
import typing as t
import warnings
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.machinery import ModuleSpec

#: The Flask release whose API ctxflask implements.
FLASK_VERSION = "3.1.3"

_SAME_PATH = (
    "__main__",
    "app",
    "blueprints",
    "cli",
    "config",
    "ctx",
    "debughelpers",
    "globals",
    "helpers",
    "json",
    "json.provider",
    "json.tag",
    "logging",
    "sessions",
    "signals",
    "templating",
    "testing",
    "typing",
    "views",
    "wrappers",
)

#: Flask's module paths (``flask`` itself aside) and the ctxflask modules that serve them.
MODULES: dict[str, str] = {
    **{f"flask.{path}": f"ctxflask.{path}" for path in _SAME_PATH},
    # Flask's app without a protocol is ctxflask's core.
    "flask.sansio": "ctxflask.core",
    "flask.sansio.app": "ctxflask.core.app",
    "flask.sansio.blueprints": "ctxflask.core.blueprints",
    "flask.sansio.scaffold": "ctxflask.core.scaffold",
}

_METADATA = f"""\
Metadata-Version: 2.1
Name: Flask
Version: {FLASK_VERSION}
Summary: Flask's API, provided by ctxflask (ctxflask.install_as_flask()); not the Flask project's code.
Requires-Dist: ctxflask
"""
_DISTRIBUTION_FILES = {"METADATA": _METADATA, "top_level.txt": "flask\n"}


def install_as_flask() -> None:
    """Make ``import flask`` and every module path of Flask 3.1 give ctxflask's objects, and
    ``importlib.metadata`` report ``Flask`` 3.1.3 provided by ctxflask, so Flask's
    extensions run on ctxflask. Call it before anything imports ``flask`` (first thing in
    the app module or ``conftest.py``); calling it again does nothing.

    :raises RuntimeError: when the real Flask is imported already.
    """
    if any(isinstance(finder, _FlaskSwitch) for finder in sys.meta_path):
        return
    if "flask" in sys.modules and not _is_ours(sys.modules["flask"]):
        raise RuntimeError(
            f"flask is already imported ({sys.modules['flask']!r}), so ctxflask cannot"
            " stand in for it: the extensions would mix two frameworks. Call"
            " ctxflask.install_as_flask() before anything imports flask: first thing in"
            " your app module / conftest.py."
        )
    # First, ahead of the path finder: an installed Flask is never found.
    sys.meta_path.insert(0, _FlaskSwitch())


def _is_ours(module: types.ModuleType | None) -> bool:
    spec = getattr(module, "__spec__", None)
    return isinstance(getattr(spec, "loader", None), _FlaskSwitch)


@dataclass
class _Alias:
    """A Flask module path served by the ctxflask module ``target``."""

    target: str
    #: The target's own spec, put back once the import system has set ours on it.
    spec: ModuleSpec | None = None


_EVERY_DISTRIBUTION = importlib.metadata.DistributionFinder.Context()


class _FlaskSwitch(importlib.metadata.DistributionFinder, importlib.abc.Loader):
    """The finder and loader of ``flask`` and ``flask.*``, and the metadata finder of the
    distribution ``flask``."""

    def __repr__(self) -> str:
        return "ctxflask.install_as_flask()"

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
        /,
    ) -> ModuleSpec | None:
        if fullname == "flask":
            return ModuleSpec(fullname, self, is_package=True)
        if not fullname.startswith("flask."):
            return None
        if fullname not in MODULES:
            # Refused here: the path finder would load a second copy of a ctxflask module
            # from the aliased package's directory (``flask.sansio.routing``).
            raise ModuleNotFoundError(
                f"No module named {fullname!r}: Flask 3.1 has no such module, and"
                " ctxflask stands in for flask (ctxflask.install_as_flask())",
                name=fullname,
            )
        name = MODULES[fullname]
        own = importlib.util.find_spec(name)
        assert own is not None, name  # every module of MODULES exists
        # The ctxflask module's origin: runpy takes ``sys.argv[0]`` from it.
        return ModuleSpec(
            fullname,
            self,
            origin=own.origin,
            is_package=own.submodule_search_locations is not None,
            loader_state=_Alias(name),
        )

    def create_module(self, spec: ModuleSpec) -> types.ModuleType:
        alias = spec.loader_state
        if spec.name == "flask" or not isinstance(alias, _Alias):
            return _flask_module()
        module = importlib.import_module(alias.target)
        alias.spec = module.__spec__
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        # The import system sets our spec on the module it is given; the ctxflask module
        # keeps its own (``importlib.util.find_spec``, resources and reloads read it).
        spec = module.__spec__
        alias = spec.loader_state if spec is not None else None
        if isinstance(alias, _Alias):
            module.__spec__ = alias.spec

    def get_code(self, fullname: str) -> types.CodeType | None:
        """The code of the ctxflask module that ``fullname`` stands for: ``runpy`` runs
        ``flask.__main__`` with it (``python -m flask`` when the switch is on at startup)."""
        target = MODULES.get(fullname)
        spec = importlib.util.find_spec(target) if target is not None else None
        loader = spec.loader if spec is not None else None
        if target is None or not isinstance(loader, importlib.abc.InspectLoader):
            return None
        return loader.get_code(target)

    def find_distributions(
        self,
        context: importlib.metadata.DistributionFinder.Context = _EVERY_DISTRIBUTION,
    ) -> Iterator[importlib.metadata.Distribution]:
        name = context.name
        if name is None or re.sub(r"[-_.]+", "-", name).lower() == "flask":
            yield _FlaskDistribution()


class _FlaskDistribution(importlib.metadata.Distribution):
    """The distribution ``Flask`` as ctxflask provides it: metadata, no files."""

    def read_text(self, filename: str) -> str | None:
        return _DISTRIBUTION_FILES.get(filename)

    def locate_file(self, path: str | os.PathLike[str]) -> pathlib.Path:
        # Nothing is installed for it: paths are relative to where ctxflask is.
        return pathlib.Path(__file__).parent.parent / path

    @property
    def files(self) -> list[importlib.metadata.PackagePath]:
        return []


def _flask_module() -> types.ModuleType:
    """``flask``: forwards to ctxflask, with Flask 3.1's deprecated ``__version__``."""
    # The package that imports this module, looked up rather than imported back.
    ctxflask = sys.modules[__name__.rpartition(".")[0]]

    module = types.ModuleType("flask", "Flask's API, served by ctxflask.")

    def __getattr__(name: str) -> t.Any:
        if name == "__version__":
            warnings.warn(
                "flask.__version__ is deprecated, as in Flask 3.1 (3.2 removes it): use"
                " feature detection or importlib.metadata.version('flask').",
                DeprecationWarning,
                stacklevel=2,
            )
            return FLASK_VERSION
        # Flask's package imports its submodules, so ``flask.globals`` works unimported
        # (OpenTelemetry's Flask instrumentation reads ``flask.globals.request_ctx``).
        if f"flask.{name}" in MODULES:
            return importlib.import_module(f"flask.{name}")
        # ctxflask's own dunders (__file__, __version__) say nothing about flask.
        if not (name.startswith("__") and name.endswith("__")):
            try:
                return getattr(ctxflask, name)
            except AttributeError:
                pass
        raise AttributeError(f"module 'flask' has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*vars(module), *(n for n in dir(ctxflask) if n[:2] != "__")})

    vars(module).update(
        __getattr__=__getattr__,
        __dir__=__dir__,
        __all__=list(ctxflask.__all__),
        __path__=[],  # a package: ``flask.ctx`` and the others are found by the switch
    )
    return module
