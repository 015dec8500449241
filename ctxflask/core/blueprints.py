"""Blueprints: groups of views, hooks and error handlers registered on an app later.

A blueprint records what is registered on it (as *deferred functions*) and replays it on an
application by :meth:`Flask.register_blueprint <ctxflask.Flask.register_blueprint>`: its
rules get the blueprint's URL prefix and subdomain and endpoints named ``blueprint.view``;
its hooks and error handlers are stored under the blueprint's dotted name, which the
pipeline looks up through ``request.blueprints``. Blueprints nest: a child registered on a
parent is named ``parent.child`` and its URL prefix and subdomain combine with the parent's.
"""

from __future__ import annotations

import functools
import os
import typing as t
from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta

from . import typing as ft
from .globals import current_app
from .scaffold import _endpoint_from_view_func
from .scaffold import _sentinel
from .scaffold import registering
from .scaffold import Scaffold
from .scaffold import setupmethod

if t.TYPE_CHECKING:
    from .app import App
    from .wrappers import Response

DeferredSetupFunction = Callable[["BlueprintSetupState"], None]
T_after_request = t.TypeVar("T_after_request", bound=ft.AfterRequestCallable[t.Any])
T_before_request = t.TypeVar("T_before_request", bound=ft.BeforeRequestCallable)
T_error_handler = t.TypeVar("T_error_handler", bound=ft.ErrorHandlerCallable)
T_teardown = t.TypeVar("T_teardown", bound=ft.TeardownCallable)
T_template_context_processor = t.TypeVar(
    "T_template_context_processor", bound=ft.TemplateContextProcessorCallable
)
T_template_filter = t.TypeVar("T_template_filter", bound=ft.TemplateFilterCallable)
T_template_global = t.TypeVar("T_template_global", bound=ft.TemplateGlobalCallable)
T_template_test = t.TypeVar("T_template_test", bound=ft.TemplateTestCallable)
T_url_defaults = t.TypeVar("T_url_defaults", bound=ft.URLDefaultCallable)
T_url_value_preprocessor = t.TypeVar(
    "T_url_value_preprocessor", bound=ft.URLValuePreprocessorCallable
)


class BlueprintSetupState:
    """What one registration of a blueprint on an app passes to its deferred functions.

    Made by :meth:`Blueprint.make_setup_state`; a subclass of :class:`Blueprint` may return
    a subclass of this.

    :param blueprint: the blueprint being registered.
    :param app: the application it is registered on.
    :param options: the keyword arguments of ``register_blueprint`` (and, for a nested
        blueprint, the combined ``url_prefix``, ``subdomain`` and ``name_prefix``).
    :param first_registration: whether this blueprint was not registered on ``app``
        before (under any name); :meth:`Blueprint.record_once` functions run only then.
    """

    def __init__(
        self,
        blueprint: Blueprint,
        app: App,
        options: t.Any,
        first_registration: bool,
    ) -> None:
        #: The application the blueprint is registered on.
        self.app = app
        #: The blueprint being registered.
        self.blueprint = blueprint
        #: The options given to ``register_blueprint``.
        self.options = options
        #: Whether this is the blueprint's first registration on :attr:`app`.
        self.first_registration = first_registration

        subdomain = options.get("subdomain")
        if subdomain is None:
            subdomain = blueprint.subdomain
        #: The subdomain the blueprint's rules match by default, or ``None``.
        self.subdomain: str | None = subdomain

        url_prefix = options.get("url_prefix")
        if url_prefix is None:
            url_prefix = blueprint.url_prefix
        #: The prefix of every URL rule of the blueprint, or ``None``.
        self.url_prefix: str | None = url_prefix

        #: The blueprint's own name for this registration (``name=`` or its name).
        self.name: str = options.get("name", blueprint.name)
        #: The dotted name of the parent blueprints, ``""`` on the app itself.
        self.name_prefix: str = options.get("name_prefix", "")

        #: Default view arguments of every rule of the blueprint: the blueprint's
        #: ``url_defaults`` updated with the registration's.
        self.url_defaults: dict[str, t.Any] = dict(blueprint.url_values_defaults)
        self.url_defaults.update(options.get("url_defaults", ()))

    def add_url_rule(
        self,
        rule: str,
        endpoint: str | None = None,
        view_func: ft.RouteCallable | None = None,
        **options: t.Any,
    ) -> None:
        """Register a rule of the blueprint on the app: ``rule`` under the URL prefix,
        the endpoint under the blueprint's dotted name, the subdomain and default view
        arguments of this registration (``defaults=`` adds to and overrides them).

        :param rule: the URL rule as given to the blueprint.
        :param endpoint: the endpoint within the blueprint; defaults to the view's name.
        :param view_func: the view function, sync or async.
        :param options: the rest of :meth:`Flask.add_url_rule <ctxflask.Flask.add_url_rule>`'s
            options.
        """
        if self.url_prefix is not None:
            if rule:
                rule = f"{self.url_prefix.rstrip('/')}/{rule.lstrip('/')}"
            else:
                rule = self.url_prefix
        options.setdefault("subdomain", self.subdomain)
        if endpoint is None:
            endpoint = _endpoint_from_view_func(view_func)  # type: ignore[arg-type]
        defaults = self.url_defaults
        if "defaults" in options:
            defaults = {**defaults, **options.pop("defaults")}
        self.app.add_url_rule(
            rule,
            f"{self.name_prefix}.{self.name}.{endpoint}".lstrip("."),
            view_func,
            defaults=defaults,
            **options,
        )


class Blueprint(Scaffold):
    """A group of views, hooks, error handlers and static files to register on an app.

    It has the registration methods of :class:`~ctxflask.Flask` (``route``,
    ``before_request``, ``errorhandler``, ...): the hooks and handlers registered on it
    apply to the requests its views handle; the ``app_*`` variants apply to every request.
    Views, hooks and handlers may be ``def`` or ``async def``.

    :param name: the blueprint's name, the prefix of its endpoints (``name.view``). No dots.
    :param import_name: the blueprint's module, usually ``__name__``; finds ``root_path``.
    :param static_folder: a folder of static files served by the endpoint
        ``name.static``, relative to ``root_path``. None by default.
    :param static_url_path: the URL of those files (default: the folder's name), under
        the blueprint's URL prefix. Without a prefix, the app's own static route wins.
    :param template_folder: a folder of templates, relative to ``root_path``, searched
        after the app's templates.
    :param url_prefix: a path prepended to every URL rule of the blueprint.
    :param subdomain: the subdomain the blueprint's rules match by default.
    :param url_defaults: default values of view arguments for every rule.
    :param root_path: the blueprint's folder, when ``import_name`` cannot tell.
    :param cli_group: the name of the group of the blueprint's CLI commands (default: the
        blueprint's name; ``None`` adds them to the app's group directly).
    """

    name: str  # a plain attribute here, a property on the app
    _got_registered_once = False

    def __init__(
        self,
        name: str,
        import_name: str,
        static_folder: str | os.PathLike[str] | None = None,
        static_url_path: str | None = None,
        template_folder: str | os.PathLike[str] | None = None,
        url_prefix: str | None = None,
        subdomain: str | None = None,
        url_defaults: dict[str, t.Any] | None = None,
        root_path: str | None = None,
        cli_group: str | None = _sentinel,  # type: ignore[assignment]
    ) -> None:
        super().__init__(
            import_name=import_name,
            static_folder=static_folder,
            static_url_path=static_url_path,
            template_folder=template_folder,
            root_path=root_path,
        )
        if not name:
            raise ValueError(
                "A blueprint's name may not be empty: it prefixes the blueprint's endpoints."
                " Fix: Blueprint('admin', __name__)."
            )
        if "." in name:
            raise ValueError(
                f"Blueprint name {name!r} contains a dot: dots separate the names of nested"
                " blueprints in endpoints ('parent.child.view'). Fix: use a name without"
                " '.', and register_blueprint() to nest blueprints."
            )
        self.name = name
        self.url_prefix = url_prefix
        self.subdomain = subdomain
        #: The functions replayed, with a :class:`BlueprintSetupState`, at each
        #: registration (see :meth:`record`).
        self.deferred_functions: list[DeferredSetupFunction] = []
        #: Default values of view arguments for every rule of the blueprint.
        self.url_values_defaults: dict[str, t.Any] = (
            {} if url_defaults is None else url_defaults
        )
        #: The name of the group of this blueprint's CLI commands under the app's.
        self.cli_group = cli_group
        self._blueprints: list[tuple[Blueprint, dict[str, t.Any]]] = []

    def _check_setup_finished(self, f_name: str) -> None:
        if self._got_registered_once:
            raise AssertionError(
                f"The setup method '{f_name}' can no longer be called on the blueprint"
                f" '{self.name}'. It has already been registered at least once, any"
                " changes will not be applied consistently.\nMake sure all imports,"
                " decorators, functions, etc. needed to set up the blueprint are done"
                " before registering it."
            )

    # -- templates and static files ------------------------------------------------------

    def get_send_file_max_age(self, filename: str | None) -> int | None:
        """The cache max age of a static file of the blueprint: the app's
        ``SEND_FILE_MAX_AGE_DEFAULT`` (``None``: conditional requests, no timed cache)."""
        value = current_app.config["SEND_FILE_MAX_AGE_DEFAULT"]
        if value is None:
            return None
        if isinstance(value, timedelta):
            return int(value.total_seconds())
        return t.cast(int, value)

    def send_static_file(self, filename: str) -> Response:
        """Serve ``filename`` from :attr:`static_folder` (the ``name.static`` endpoint)."""
        if not self.has_static_folder:
            raise RuntimeError(
                f"Blueprint {self.name!r} has no static folder to serve {filename!r} from."
                " Fix: Blueprint(..., static_folder='static')."
            )
        from .helpers import send_from_directory

        return send_from_directory(
            t.cast(str, self.static_folder),
            filename,
            max_age=self.get_send_file_max_age(filename),
        )

    def open_resource(
        self, resource: str, mode: str = "rb", encoding: str | None = "utf-8"
    ) -> t.IO[t.AnyStr]:
        """Open a file relative to the blueprint's :attr:`root_path` for reading
        (``r``, ``rt`` or ``rb``); text is decoded as ``encoding`` (UTF-8 by default)."""
        return super().open_resource(resource, mode, encoding)

    # -- registration --------------------------------------------------------------------

    @setupmethod
    def record(self, func: DeferredSetupFunction) -> None:
        """Call ``func(state)`` at every registration of the blueprint on an app, with
        the :class:`BlueprintSetupState` of that registration."""
        self.deferred_functions.append(func)

    @setupmethod
    def record_once(self, func: DeferredSetupFunction) -> None:
        """Like :meth:`record`, but only at the blueprint's first registration on each
        app (not when it is registered again under another name)."""

        def once(state: BlueprintSetupState) -> None:
            if state.first_registration:
                func(state)

        self.record(functools.update_wrapper(once, func))

    def make_setup_state(
        self, app: App, options: dict[str, t.Any], first_registration: bool = False
    ) -> BlueprintSetupState:
        """The :class:`BlueprintSetupState` given to the deferred functions of one
        registration; override it to use a subclass."""
        return BlueprintSetupState(self, app, options, first_registration)

    @setupmethod
    def register_blueprint(self, blueprint: Blueprint, **options: t.Any) -> None:
        """Nest ``blueprint`` in this one: it is registered with this one, named
        ``this.child``, with URL prefixes and subdomains combined.

        :param blueprint: the child blueprint.
        :param options: as for :meth:`Flask.register_blueprint
            <ctxflask.Flask.register_blueprint>` (``url_prefix``, ``subdomain``,
            ``url_defaults``, ``name``, ...), relative to this blueprint.
        """
        if blueprint is self:
            raise ValueError(
                f"Cannot register blueprint {self.name!r} on itself. Fix: nest another"
                " blueprint, or register this one on the app."
            )
        self._blueprints.append((blueprint, options))

    def register(self, app: App, options: dict[str, t.Any]) -> None:
        """Register the blueprint on ``app`` (called by ``app.register_blueprint``): its
        static route, its hooks and error handlers under its dotted name, its deferred
        functions, then its nested blueprints.

        :param app: the application.
        :param options: the keyword arguments of ``register_blueprint``.
        :raises ValueError: if the dotted name is already registered on ``app``; register
            the same blueprint again with ``name=`` to give it another name.
        """
        name_prefix: str = options.get("name_prefix", "")
        self_name: str = options.get("name", self.name)
        name = f"{name_prefix}.{self_name}".lstrip(".")

        if name in app.blueprints:
            which = "this" if app.blueprints[name] is self else "a different"
            where = f" as '{name}'" if self_name != name else ""
            raise ValueError(
                f"The name '{self_name}' is already registered for {which}"
                f" blueprint{where}. Names must be unique: they prefix the blueprint's"
                " endpoints and key its hooks. Fix: pass name='...' to register_blueprint"
                " to register it under another name."
            )

        first_bp_registration = not any(bp is self for bp in app.blueprints.values())
        app.blueprints[name] = self
        self._got_registered_once = True
        state = self.make_setup_state(app, options, first_bp_registration)

        if self.has_static_folder:
            state.add_url_rule(
                f"{self.static_url_path}/<path:filename>",
                view_func=self.send_static_file,
                endpoint="static",
            )

        # Every name gets the hooks: each registration's requests look them up by its
        # own dotted name.
        self._merge_blueprint_funcs(app, name)

        for deferred in self.deferred_functions:
            deferred(state)

        self._register_cli(app, name, options)

        for blueprint, bp_options in self._blueprints:
            self._register_nested(app, state, name, blueprint, bp_options)

    def _register_nested(
        self,
        app: App,
        state: BlueprintSetupState,
        name: str,
        blueprint: Blueprint,
        bp_options: dict[str, t.Any],
    ) -> None:
        bp_options = dict(bp_options)

        subdomain = bp_options.get("subdomain")
        if subdomain is None:
            subdomain = blueprint.subdomain
        if subdomain is not None and state.subdomain is not None:
            bp_options["subdomain"] = f"{subdomain}.{state.subdomain}"
        elif subdomain is not None or state.subdomain is not None:
            bp_options["subdomain"] = (
                subdomain if subdomain is not None else state.subdomain
            )

        url_prefix = bp_options.get("url_prefix")
        if url_prefix is None:
            url_prefix = blueprint.url_prefix
        if url_prefix is not None and state.url_prefix is not None:
            bp_options["url_prefix"] = (
                f"{state.url_prefix.rstrip('/')}/{url_prefix.lstrip('/')}"
            )
        elif url_prefix is not None or state.url_prefix is not None:
            bp_options["url_prefix"] = (
                url_prefix if url_prefix is not None else state.url_prefix
            )

        bp_options["name_prefix"] = name
        blueprint.register(app, bp_options)

    def _register_cli(self, app: App, name: str, options: dict[str, t.Any]) -> None:
        """Add the blueprint's commands to the app's: the public
        :class:`ctxflask.Blueprint` has them; the core knows no CLI."""

    def _merge_blueprint_funcs(self, app: App, name: str) -> None:
        def key_of(key: ft.AppOrBlueprintKey) -> str:
            return name if key is None else f"{name}.{key}"

        for key, spec in self.error_handler_spec.items():
            app.error_handler_spec[key_of(key)] = defaultdict(
                dict, {code: dict(handlers) for code, handlers in spec.items()}
            )
        # As in Flask, ``@bp.endpoint("x")`` names an endpoint of the app as given, not
        # prefixed: it attaches a view to a rule added on the app without one.
        for endpoint, func in self.view_functions.items():
            app.view_functions[endpoint] = func

        registries: list[tuple[dict[t.Any, list[t.Any]], dict[t.Any, list[t.Any]]]] = [
            (self.before_request_funcs, app.before_request_funcs),
            (self.after_request_funcs, app.after_request_funcs),
            (self.teardown_request_funcs, app.teardown_request_funcs),
            (self.url_default_functions, app.url_default_functions),
            (self.url_value_preprocessors, app.url_value_preprocessors),
            (self.template_context_processors, app.template_context_processors),
            (self.before_websocket_funcs, app.before_websocket_funcs),
            (self.after_websocket_funcs, app.after_websocket_funcs),
        ]
        for own, apps in registries:
            for key, funcs in own.items():
                apps[key_of(key)].extend(funcs)

    @setupmethod
    def add_url_rule(
        self,
        rule: str,
        endpoint: str | None = None,
        view_func: ft.RouteCallable | None = None,
        provide_automatic_options: bool | None = None,
        **options: t.Any,
    ) -> None:
        """Record a URL rule, registered on the app with the blueprint's URL prefix and
        its endpoint prefixed with the blueprint's dotted name; see
        :meth:`Flask.add_url_rule <ctxflask.Flask.add_url_rule>`."""
        if endpoint and "." in endpoint:
            raise ValueError(
                f"Endpoint {endpoint!r} of blueprint {self.name!r} contains a dot: the"
                " blueprint adds its own name as the prefix. Fix: use a name without '.'."
            )
        view_name = getattr(view_func, "__name__", None)
        if view_name is not None and "." in view_name:
            raise ValueError(
                f"The name of view function {view_name!r} of blueprint {self.name!r}"
                " contains a dot, and would be its endpoint. Fix: pass endpoint= without"
                " '.', or rename the function."
            )
        self.record(
            lambda state: state.add_url_rule(
                rule,
                endpoint,
                view_func,
                provide_automatic_options=provide_automatic_options,
                **options,
            )
        )

    # -- registration on the whole app ---------------------------------------------------

    @t.overload
    def app_template_filter(self, name: T_template_filter) -> T_template_filter: ...

    @t.overload
    def app_template_filter(
        self, name: str | None = None
    ) -> Callable[[T_template_filter], T_template_filter]: ...

    @setupmethod
    def app_template_filter(self, name: t.Any = None) -> t.Any:
        """Decorate a template filter of the app (every template, not only the
        blueprint's): ``@bp.app_template_filter()``, ``@bp.app_template_filter("name")``
        (or bare); see ``Flask.template_filter``.

        :param name: the filter's name; defaults to the function's.
        """
        return registering(self.add_app_template_filter, name)

    @setupmethod
    def add_app_template_filter(
        self, f: ft.TemplateFilterCallable, name: str | None = None
    ) -> None:
        """Register a template filter of the app; see :meth:`app_template_filter`."""
        self.record_once(lambda state: state.app.add_template_filter(f, name=name))

    @t.overload
    def app_template_test(self, name: T_template_test) -> T_template_test: ...

    @t.overload
    def app_template_test(
        self, name: str | None = None
    ) -> Callable[[T_template_test], T_template_test]: ...

    @setupmethod
    def app_template_test(self, name: t.Any = None) -> t.Any:
        """Decorate a template test of the app: ``@bp.app_template_test()``,
        ``@bp.app_template_test("name")`` (or bare); see ``Flask.template_test``.

        :param name: the test's name; defaults to the function's.
        """
        return registering(self.add_app_template_test, name)

    @setupmethod
    def add_app_template_test(
        self, f: ft.TemplateTestCallable, name: str | None = None
    ) -> None:
        """Register a template test of the app; see :meth:`app_template_test`."""
        self.record_once(lambda state: state.app.add_template_test(f, name=name))

    @t.overload
    def app_template_global(self, name: T_template_global) -> T_template_global: ...

    @t.overload
    def app_template_global(
        self, name: str | None = None
    ) -> Callable[[T_template_global], T_template_global]: ...

    @setupmethod
    def app_template_global(self, name: t.Any = None) -> t.Any:
        """Decorate a template global of the app: ``@bp.app_template_global()``,
        ``@bp.app_template_global("name")`` (or bare); see ``Flask.template_global``.

        :param name: the global's name; defaults to the function's.
        """
        return registering(self.add_app_template_global, name)

    @setupmethod
    def add_app_template_global(
        self, f: ft.TemplateGlobalCallable, name: str | None = None
    ) -> None:
        """Register a template global of the app; see :meth:`app_template_global`."""
        self.record_once(lambda state: state.app.add_template_global(f, name=name))

    @setupmethod
    def before_app_request(self, f: T_before_request) -> T_before_request:
        """Like :meth:`before_request`, for every request of the app."""
        self.record_once(lambda state: state.app.before_request_funcs[None].append(f))
        return f

    @setupmethod
    def after_app_request(self, f: T_after_request) -> T_after_request:
        """Like :meth:`after_request`, for every request of the app."""
        self.record_once(lambda state: state.app.after_request_funcs[None].append(f))
        return f

    @setupmethod
    def teardown_app_request(self, f: T_teardown) -> T_teardown:
        """Like :meth:`teardown_request`, for every request of the app."""
        self.record_once(lambda state: state.app.teardown_request_funcs[None].append(f))
        return f

    @setupmethod
    def app_context_processor(
        self, f: T_template_context_processor
    ) -> T_template_context_processor:
        """Like :meth:`context_processor`, for every template of the app."""
        self.record_once(
            lambda state: state.app.template_context_processors[None].append(f)
        )
        return f

    @setupmethod
    def app_errorhandler(
        self, code: type[Exception] | int
    ) -> Callable[[T_error_handler], T_error_handler]:
        """Like :meth:`errorhandler`, for errors of every request of the app (including
        routing errors, which no blueprint's own handler sees)."""

        def decorator(f: T_error_handler) -> T_error_handler:
            def register(state: BlueprintSetupState) -> None:
                state.app.register_error_handler(code, f)

            self.record_once(register)
            return f

        return decorator

    @setupmethod
    def app_url_value_preprocessor(
        self, f: T_url_value_preprocessor
    ) -> T_url_value_preprocessor:
        """Like :meth:`url_value_preprocessor`, for every request of the app."""
        self.record_once(
            lambda state: state.app.url_value_preprocessors[None].append(f)
        )
        return f

    @setupmethod
    def app_url_defaults(self, f: T_url_defaults) -> T_url_defaults:
        """Like :meth:`url_defaults`, for every URL built by the app."""
        self.record_once(lambda state: state.app.url_default_functions[None].append(f))
        return f
