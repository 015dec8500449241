"""The public names of Flask 3.1, read from its installed sources (for the compatibility
document and its test)."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

#: Flask's public modules, as ``flask.<name>`` (``flask`` itself first).
MODULES = (
    "flask",
    "flask.app",
    "flask.blueprints",
    "flask.cli",
    "flask.config",
    "flask.ctx",
    "flask.globals",
    "flask.helpers",
    "flask.json",
    "flask.json.provider",
    "flask.json.tag",
    "flask.logging",
    "flask.sessions",
    "flask.signals",
    "flask.templating",
    "flask.testing",
    "flask.typing",
    "flask.views",
    "flask.wrappers",
)


def _source(module: str) -> ast.Module:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(module)
    return ast.parse(Path(spec.origin).read_text())


def public_names(module: str) -> list[str]:
    """Names a module defines or re-exports at its top level, not behind
    ``TYPE_CHECKING`` and not private; for ``flask`` itself, its re-exports."""
    names: list[str] = []
    for node in _source(module).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names.extend(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
        elif isinstance(node, ast.ImportFrom) and module == "flask":
            # ``from .x import y as y``: an explicit re-export
            names.extend(
                a.asname for a in node.names if a.asname and a.asname == a.name
            )
    return sorted(
        {n for n in names if not n.startswith("_")}, key=lambda n: (n.lower(), n)
    )
