"""The public :class:`Blueprint`: the core's (:mod:`ctxflask.core.blueprints`) with its
group of CLI commands, added to the app's when it is registered."""

from __future__ import annotations

import functools
import typing as t

from .core.blueprints import Blueprint as _CoreBlueprint
from .core.blueprints import BlueprintSetupState as BlueprintSetupState
from .core.scaffold import _sentinel

if t.TYPE_CHECKING:
    from .cli import AppGroup
    from .core.app import App


class Blueprint(_CoreBlueprint):
    __doc__ = _CoreBlueprint.__doc__

    @functools.cached_property
    def cli(self) -> AppGroup:
        """The click group of the blueprint's commands: ``@bp.cli.command()``, added to
        the app's at registration (as a group named :attr:`cli_group`)."""
        from .cli import AppGroup  # click loads with the first use of the CLI

        return AppGroup()

    def _register_cli(self, app: App, name: str, options: dict[str, t.Any]) -> None:
        # A group never asked for has no commands (and click need not load for it).
        lazy = isinstance(getattr(type(self), "cli", None), functools.cached_property)
        if (lazy and "cli" not in self.__dict__) or not self.cli.commands:
            return
        app_cli: AppGroup | None = getattr(app, "cli", None)
        if app_cli is None:
            return
        group = options.get("cli_group", self.cli_group)
        if group is None:
            app_cli.commands.update(self.cli.commands)
            return
        self.cli.name = name if group is _sentinel else group
        app_cli.add_command(self.cli)
