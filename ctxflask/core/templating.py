"""Jinja templates: the app's environment (:class:`Environment`) and its loader
(:class:`DispatchingJinjaLoader`). This module imports Jinja: it loads with the app's
environment (``app.jinja_env``), not with ctxflask. The render functions are in
:mod:`.rendering`.

``EXPLAIN_TEMPLATE_LOADING`` makes every lookup log, to the app's logger at INFO level,
which loaders were asked and what each answered.
"""

from __future__ import annotations

import typing as t
from collections.abc import Callable
from collections.abc import Iterator

from jinja2 import BaseLoader
from jinja2 import Environment as BaseEnvironment
from jinja2 import Template
from jinja2 import TemplateNotFound

from .globals import g
from .globals import request
from .globals import session
from .helpers import get_flashed_messages

if t.TYPE_CHECKING:
    from .app import App
    from .scaffold import Scaffold

#: What the render functions take: a template name, a list of names to try in order (the
#: first that exists is used), or a loaded template.
TemplateNames = str | Template | list[str | Template]

_Source = tuple[str, str | None, Callable[[], bool] | None]


class Environment(BaseEnvironment):
    """A Jinja environment that belongs to an app (``self.app``).

    Unless a ``loader`` is given, it finds templates with the app's
    :meth:`~ctxflask.Flask.create_global_jinja_loader`: the app's template folder first,
    then each blueprint's.

    :param app: the application.
    :param options: Jinja ``Environment`` options.
    """

    def __init__(self, app: App, **options: t.Any) -> None:
        if "loader" not in options:
            options["loader"] = app.create_global_jinja_loader()
        super().__init__(**options)
        self.app = app


class DispatchingJinjaLoader(BaseLoader):
    """The loader of an app's environment: asks the app's own loader, then each registered
    blueprint's (``Scaffold.jinja_loader``), and takes the first template found.

    With ``EXPLAIN_TEMPLATE_LOADING`` set, every lookup asks every loader and logs what
    each one answered to the app's logger, at INFO level.
    """

    def __init__(self, app: App) -> None:
        self.app = app

    def get_source(self, environment: BaseEnvironment, template: str) -> _Source:
        """The source of ``template`` from the first loader that has it.

        :raises jinja2.TemplateNotFound: when no loader has it.
        """
        if self.app.config["EXPLAIN_TEMPLATE_LOADING"]:
            return self._get_source_explained(environment, template)
        for _owner, loader in self._iter_loaders():
            try:
                return loader.get_source(environment, template)
            except TemplateNotFound:
                continue
        raise TemplateNotFound(template)

    def _get_source_explained(
        self, environment: BaseEnvironment, template: str
    ) -> _Source:
        lines = [f"Locating template {template!r}:"]
        found: _Source | None = None
        hits = 0
        for number, (owner, loader) in enumerate(self._iter_loaders(), 1):
            where = _describe_loader(self.app, owner, loader)
            try:
                source = loader.get_source(environment, template)
            except TemplateNotFound:
                lines.append(f"  {number}. {where}: not found")
                continue
            hits += 1
            lines.append(f"  {number}. {where}: found at {source[1]!r}")
            if found is None:
                found = source
        if found is None:
            lines.append(
                "Error: no loader has this template. Fix: check its name, and that the"
                " app's or the blueprint's template_folder holds it (and that the"
                " blueprint is registered)."
            )
        elif hits > 1:
            lines.append(
                "Warning: several loaders have this template; the first one is used."
                " Fix: put blueprint templates in a subfolder named after the blueprint."
            )
        self.app.logger.info("\n".join(lines))
        if found is None:
            raise TemplateNotFound(template)
        return found

    def _iter_loaders(
        self, template: str | None = None
    ) -> Iterator[tuple[Scaffold, BaseLoader]]:
        # ``template`` is unused: kept for code written against Flask's loader.
        app = self.app
        loader = app.jinja_loader
        if loader is not None:
            yield app, loader
        for blueprint in _blueprints(app):
            loader = getattr(blueprint, "jinja_loader", None)
            if loader is not None:
                yield blueprint, loader

    def list_templates(self) -> list[str]:
        """The names of all templates of the app and of its blueprints."""
        names: set[str] = set()
        for _owner, loader in self._iter_loaders():
            names.update(loader.list_templates())
        return sorted(names)


def _blueprints(app: App) -> t.Iterable[Scaffold]:
    iter_blueprints = getattr(app, "iter_blueprints", None)
    if iter_blueprints is not None:
        return t.cast("t.Iterable[Scaffold]", iter_blueprints())
    return t.cast("t.Iterable[Scaffold]", app.blueprints.values())


def _describe_loader(app: App, owner: Scaffold, loader: BaseLoader) -> str:
    kind = "application" if owner is app else "blueprint"
    text = f"{kind} {owner.name!r} ({type(loader).__name__}"
    searchpath = getattr(loader, "searchpath", None)
    if searchpath:
        text += f", searching {', '.join(map(repr, searchpath))}"
    return f"{text})"


def create_environment(app: App) -> Environment:
    """``app.create_jinja_environment()``: see there."""
    options = dict(app.jinja_options)
    options.setdefault("autoescape", app.select_jinja_autoescape)
    if "auto_reload" not in options:
        auto_reload = app.config["TEMPLATES_AUTO_RELOAD"]
        options["auto_reload"] = app.debug if auto_reload is None else auto_reload
    env = app.jinja_environment(app, **options)
    # The proxies serve templates imported without context; rendered templates get
    # the current objects from update_template_context.
    env.globals.update(
        url_for=app.url_for,
        get_flashed_messages=get_flashed_messages,
        config=app.config,
        request=request,
        session=session,
        g=g,
    )
    env.policies["json.dumps_function"] = app.json.dumps
    return env
