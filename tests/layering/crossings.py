"""An import-linter contract: only the allowed modules start threads or event loops.

ctxflask's design keeps every thread, every event loop and every crossing between them in
``ctxflask.bridge``. This contract reads the source of every other module of the root
package (those in the import graph, and any ``.py`` file grimp skips because its directory
has no ``__init__.py``, which is reported too) and reports:

* imports of a forbidden module or of anything below one: ``import anyio.to_thread``,
  ``from anyio import from_thread``, ``from concurrent.futures import ThreadPoolExecutor``,
  in functions too. Imports under ``if TYPE_CHECKING:`` are type-only and allowed;
* uses of a forbidden module reached through an allowed import, such as ``import anyio``
  and then ``anyio.to_thread.run_sync(...)`` (annotations are type-only and allowed);
* calls whose callee, resolved through the module's imports (``import asyncio as aio;
  aio.run(...)``), matches a forbidden call. Patterns are shell-style (:mod:`fnmatch`):
  ``*.run_until_complete`` matches ``loop.run_until_complete(...)``.

The built-in ``forbidden`` contract cannot do this: grimp records an import of an external
package at the package's root only (``import anyio.from_thread`` is an import of ``anyio``,
which the framework needs for task groups), and an import graph holds no calls.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib.util
import tokenize
from collections.abc import Iterable
from pathlib import Path
from typing import cast

from grimp import ImportGraph
from importlinter import Contract
from importlinter import ContractCheck
from importlinter import fields
from importlinter import output
from rich.markup import escape

# module, line, what, source line
Violation = tuple[str, int, str, str]


class CrossingsContract(Contract):
    """Options: ``allowed_modules`` (these and the modules below them are not checked),
    ``forbidden_imports``, ``forbidden_calls``, ``broken_contract_guidance`` (optional)."""

    type_name = "crossings"

    allowed_modules = fields.ListField(
        subfield=fields.StringField(), required=False, default=[]
    )
    forbidden_imports = fields.ListField(subfield=fields.StringField())
    forbidden_calls = fields.ListField(subfield=fields.StringField())
    broken_contract_guidance = fields.TextField(required=False)

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        roots: list[str] = self.session_options["root_packages"]
        allowed = cast(list[str], self.allowed_modules)
        for name in allowed:
            if name not in graph.modules:
                raise ValueError(f"Module '{name}' does not exist.")
        # grimp skips directories without an __init__.py, yet Python imports from them.
        modules = {name for name in graph.modules if _within(name, roots)}
        modules.update(*(_modules_on_disk(root) for root in roots))
        found: set[Violation] = set()
        for module in sorted(modules):
            if _within(module, allowed):
                continue
            output.verbose_print(verbose, f"Reading {module}...")
            path = _source_file(module)
            if module not in graph.modules:
                found.add((module, 1, "is not in the import graph", f"{path}"))
            found |= _Scanner(
                module,
                path,
                cast(list[str], self.forbidden_imports),
                cast(list[str], self.forbidden_calls),
            ).found
        violations = [
            f"{m}:{line}  {what}  ({text})" for m, line, what, text in sorted(found)
        ]
        return ContractCheck(kept=not violations, metadata={"violations": violations})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for violation in check.metadata["violations"]:
            output.console.print(escape(violation), style="red", soft_wrap=True)
        output.new_line()
        guidance = cast(str | None, self.broken_contract_guidance)
        if guidance:
            output.print(escape(guidance))
            output.new_line()


def _within(name: str, packages: Iterable[str]) -> bool:
    return any(
        name == package or name.startswith(package + ".") for package in packages
    )


def _source_file(module: str) -> Path:
    """Find the module's file from its top-level package's spec, importing nothing."""
    top, *parts = module.split(".")
    spec = importlib.util.find_spec(top)
    for location in (spec and spec.submodule_search_locations) or ():
        base = Path(location).joinpath(*parts)
        for candidate in [
            base / "__init__.py",
            *([base.with_suffix(".py")] if parts else []),
        ]:
            if candidate.is_file():
                return candidate
    raise ValueError(f"Cannot find the source of module '{module}'.")


def _modules_on_disk(root: str) -> set[str]:
    """The names of the ``.py`` files below the root package's ``__init__.py``."""
    directory = _source_file(root).parent
    names = set()
    for path in directory.rglob("*.py"):
        parts = path.relative_to(directory).with_suffix("").parts
        parts = parts[:-1] if parts[-1] == "__init__" else parts
        if all(part.isidentifier() for part in parts):
            names.add(".".join([root, *parts]))
    return names


def _is_type_checking(test: ast.expr) -> bool:
    """``TYPE_CHECKING``, ``t.TYPE_CHECKING``, ``typing.TYPE_CHECKING``."""
    if isinstance(test, ast.Attribute):
        return test.attr == "TYPE_CHECKING" and isinstance(test.value, ast.Name)
    return isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"


def _chain_root(node: ast.expr) -> ast.expr:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node


class _Scanner(ast.NodeVisitor):
    def __init__(
        self, module: str, path: Path, imports: list[str], calls: list[str]
    ) -> None:
        self.module, self.imports, self.calls = module, imports, calls
        self.is_package = path.name == "__init__.py"
        with tokenize.open(path) as file:
            source = file.read()
        self.lines = source.splitlines()
        self.found: set[Violation] = set()
        tree = ast.parse(source, str(path))
        # What each imported name stands for, wherever it is imported (no scopes).
        self.aliases: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    top = alias.name.partition(".")[0]
                    self.aliases[alias.asname or top] = (
                        alias.name if alias.asname else top
                    )
            elif isinstance(node, ast.ImportFrom):
                base = self._from_module(node)
                for alias in node.names:
                    self.aliases[alias.asname or alias.name] = f"{base}.{alias.name}"
        self.visit(tree)

    def _report(self, node: ast.stmt | ast.expr, what: str) -> None:
        text = self.lines[node.lineno - 1].strip()
        self.found.add((self.module, node.lineno, what, text))

    def _from_module(self, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        parts = self.module.split(".")[: None if self.is_package else -1]
        parts = parts[: len(parts) - node.level + 1]
        return ".".join([*parts, node.module] if node.module else parts)

    def _resolve(self, node: ast.expr) -> tuple[str | None, str]:
        """The dotted name of ``node``, and what its root name was imported as (if it was)."""
        if isinstance(node, ast.Name):
            target = self.aliases.get(node.id)
            return target, target or node.id
        if isinstance(node, ast.Attribute):
            root, dotted = self._resolve(node.value)
            return root, f"{dotted}.{node.attr}"
        return None, ast.unparse(node)

    def visit_If(self, node: ast.If) -> None:
        if not _is_type_checking(node.test):
            self.generic_visit(node)
            return
        for child in node.orelse:
            self.visit(child)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if _within(alias.name, self.imports):
                self._report(node, f"imports {alias.name}")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = self._from_module(node)
        if _within(base, self.imports):
            self._report(node, f"imports {base}")
            return
        for alias in node.names:
            if _within(f"{base}.{alias.name}", self.imports):
                self._report(node, f"imports {base}.{alias.name}")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        root, dotted = self._resolve(node)
        # A name bound by a forbidden import was reported at the import.
        if root and not _within(root, self.imports) and _within(dotted, self.imports):
            self._report(node, f"uses {dotted}")
        self.visit(_chain_root(node))

    def visit_Call(self, node: ast.Call) -> None:
        callee = self._resolve(node.func)[1]
        if any(fnmatch.fnmatchcase(callee, pattern) for pattern in self.calls):
            self._report(node, f"calls {callee}")
            self.visit(_chain_root(node.func))
        else:
            self.visit(node.func)
        for child in [*node.args, *node.keywords]:
            self.visit(child)

    # Annotations are type-only.
    def visit_arg(self, node: ast.arg) -> None:
        pass

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for child in [*node.decorator_list, node.args, *node.body]:
            self.visit(child)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.visit(node.target)
        if node.value:
            self.visit(node.value)
