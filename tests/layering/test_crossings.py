"""Tests of the crossings contract, on throw-away packages under ``tmp_path``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path

import grimp
import pytest
from importlinter.domain.contract import InvalidContractOptions

from tests.layering.crossings import CrossingsContract

MakePackage = Callable[[dict[str, str]], str]

REPO = Path(__file__).resolve().parents[2]

# The configuration proposed for ctxflask's pyproject.toml, with the package name left open.
PYPROJECT = """\
[tool.importlinter]
root_package = "{pkg}"
include_external_packages = true
contract_types = ["crossings: tests.layering.crossings.CrossingsContract"]

[[tool.importlinter.contracts]]
name = "Only the bridge starts threads and loops, or crosses between them"
type = "crossings"
allowed_modules = ["{pkg}.bridge"]
forbidden_imports = ["threading", "_thread", "concurrent.futures", "queue", "anyio.to_thread", "anyio.from_thread"]
forbidden_calls = ["asyncio.new_event_loop", "asyncio.run", "anyio.run", "trio.run", "anyio.from_thread.start_blocking_portal", "*.run_until_complete", "*.run_forever"]
broken_contract_guidance = "Threads, event loops and crossings between them belong in {pkg}.bridge."
"""

OPTIONS = {
    "forbidden_imports": [
        "threading",
        "_thread",
        "concurrent.futures",
        "queue",
        "anyio.to_thread",
        "anyio.from_thread",
    ],
    "forbidden_calls": [
        "asyncio.new_event_loop",
        "asyncio.run",
        "anyio.run",
        "trio.run",
        "anyio.from_thread.start_blocking_portal",
        "*.run_until_complete",
        "*.run_forever",
    ],
}

# Everything the contract must report, as a module's source.
CROSSINGS = """\
import threading
from anyio import from_thread
import anyio.to_thread
from concurrent.futures import ThreadPoolExecutor
import asyncio as aio

def work(coro, loop):
    aio.new_event_loop()
    loop.run_until_complete(coro)
    return threading.Lock(), from_thread.run(work), ThreadPoolExecutor
"""


@pytest.fixture
def make_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MakePackage:
    """Write a package (``{"relative/path.py": source}``) and return its unique name."""

    def make(files: dict[str, str]) -> str:
        pkg = f"crossings_{uuid.uuid4().hex[:12]}"
        for relative, source in {"__init__.py": "", **files}.items():
            path = tmp_path / pkg / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            for package in [path.parent, *path.parent.parents]:
                if package == tmp_path:
                    break
                (package / "__init__.py").touch()
            path.write_text(textwrap.dedent(source))
        monkeypatch.syspath_prepend(str(tmp_path))
        return pkg

    return make


def check(pkg: str, allowed: tuple[str, ...] = ("bridge",)) -> list[str]:
    """The contract's violations for ``pkg``, allowing ``pkg.<each of allowed>``."""
    graph = grimp.build_graph(pkg, include_external_packages=True, cache_dir=None)
    contract = CrossingsContract(
        name="crossings",
        session_options={"root_packages": [pkg], "include_external_packages": "True"},
        contract_options={
            "allowed_modules": [f"{pkg}.{name}" for name in allowed],
            **OPTIONS,
        },
    )
    result = contract.check(graph, verbose=False)
    violations: list[str] = result.metadata["violations"]
    assert result.kept == (violations == [])
    return violations


def test_clean_package_passes(make_package: MakePackage) -> None:
    pkg = make_package(
        {
            "views.py": """\
            import asyncio
            import contextvars
            import anyio

            async def both(a, b):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(a)
                    tg.start_soon(b)
                await asyncio.sleep(0)

            def run(app):
                return app.run()
            """,
            "bridge/__init__.py": "",
        }
    )
    assert check(pkg) == []


def test_import_threading_names_module_and_line(make_package: MakePackage) -> None:
    pkg = make_package({"bridge.py": "", "wsgi.py": '"""Doc."""\n\nimport threading\n'})
    assert check(pkg) == [f"{pkg}.wsgi:3  imports threading  (import threading)"]


@pytest.mark.parametrize(
    ("source", "what"),
    [
        ("from anyio import from_thread", "imports anyio.from_thread"),
        ("from anyio import from_thread as ft", "imports anyio.from_thread"),
        ("import anyio.to_thread", "imports anyio.to_thread"),
        ("import anyio.from_thread as ft", "imports anyio.from_thread"),
        ("from anyio.from_thread import BlockingPortal", "imports anyio.from_thread"),
        (
            "from concurrent.futures import ThreadPoolExecutor",
            "imports concurrent.futures",
        ),
        ("from concurrent import futures", "imports concurrent.futures"),
        ("import concurrent.futures.thread", "imports concurrent.futures.thread"),
        ("import _thread, queue", "imports _thread"),
        ("import _thread, queue", "imports queue"),
        ("from threading import Thread", "imports threading"),
    ],
)
def test_forbidden_imports_fail(
    make_package: MakePackage, source: str, what: str
) -> None:
    pkg = make_package({"bridge.py": "", "sub/mod.py": f"x = 1\n{source}\n"})
    assert f"{pkg}.sub.mod:2  {what}  ({source})" in check(pkg)


def test_import_inside_a_function_fails(make_package: MakePackage) -> None:
    pkg = make_package(
        {"bridge.py": "", "mod.py": "def f():\n    import queue\n    return queue\n"}
    )
    assert check(pkg) == [f"{pkg}.mod:2  imports queue  (import queue)"]


@pytest.mark.parametrize(
    ("source", "line", "what"),
    [
        (
            "import asyncio as aio\naio.new_event_loop()",
            2,
            "calls asyncio.new_event_loop",
        ),
        (
            "from asyncio import new_event_loop as nel\nloop = nel()",
            2,
            "calls asyncio.new_event_loop",
        ),
        ("import asyncio\nasyncio.run(main())", 2, "calls asyncio.run"),
        ("from anyio import run\nrun(main)", 2, "calls anyio.run"),
        ("import trio\n\n\ntrio.run(main)", 4, "calls trio.run"),
        ("loop.run_until_complete(x)", 1, "calls loop.run_until_complete"),
        ("self._loop.run_forever()", 1, "calls self._loop.run_forever"),
        (
            "import asyncio\nasyncio.get_event_loop().run_until_complete(x)",
            2,
            "calls asyncio.get_event_loop().run_until_complete",
        ),
        (
            "import anyio.from_thread\nanyio.from_thread.start_blocking_portal()",
            2,
            "calls anyio.from_thread.start_blocking_portal",
        ),
        # Reaching a forbidden module through ``import anyio``, which is allowed.
        (
            "import anyio\nanyio.to_thread.run_sync(f)",
            2,
            "uses anyio.to_thread.run_sync",
        ),
        (
            "import anyio\nportal = anyio.from_thread.BlockingPortal",
            2,
            "uses anyio.from_thread.BlockingPortal",
        ),
    ],
)
def test_forbidden_calls_and_uses_fail(
    make_package: MakePackage, source: str, line: int, what: str
) -> None:
    pkg = make_package(
        {
            "bridge.py": "",
            "mod.py": f"def f(main, loop, x, self):\n{textwrap.indent(source, '    ')}\n",
        }
    )
    text = source.splitlines()[line - 1]
    assert f"{pkg}.mod:{line + 1}  {what}  ({text})" in check(pkg)


def test_every_crossing_is_reported_once(make_package: MakePackage) -> None:
    pkg = make_package({"bridge.py": "", "server.py": CROSSINGS})
    assert check(pkg) == [
        f"{pkg}.server:1  imports threading  (import threading)",
        f"{pkg}.server:2  imports anyio.from_thread  (from anyio import from_thread)",
        f"{pkg}.server:3  imports anyio.to_thread  (import anyio.to_thread)",
        f"{pkg}.server:4  imports concurrent.futures  (from concurrent.futures import ThreadPoolExecutor)",
        f"{pkg}.server:8  calls asyncio.new_event_loop  (aio.new_event_loop())",
        f"{pkg}.server:9  calls loop.run_until_complete  (loop.run_until_complete(coro))",
    ]


def test_crossings_in_the_bridge_pass(make_package: MakePackage) -> None:
    pkg = make_package(
        {
            "bridge/__init__.py": CROSSINGS,
            "bridge/drivers.py": CROSSINGS,
            "bridge/inner/workers.py": CROSSINGS,
            "app.py": "from . import bridge\nfrom .bridge import drivers\n",
        }
    )
    assert check(pkg) == []
    # The same modules are checked when nothing is allowed.
    assert len(check(pkg, allowed=())) == 3 * 6


def test_a_module_named_like_the_bridge_is_not_allowed(
    make_package: MakePackage,
) -> None:
    pkg = make_package(
        {"bridge/__init__.py": "", "bridge_helpers.py": "import threading\n"}
    )
    assert check(pkg) == [
        f"{pkg}.bridge_helpers:1  imports threading  (import threading)"
    ]


@pytest.mark.parametrize(
    "guard", ["TYPE_CHECKING", "t.TYPE_CHECKING", "typing.TYPE_CHECKING"]
)
def test_type_checking_imports_pass(make_package: MakePackage, guard: str) -> None:
    pkg = make_package(
        {
            "bridge.py": "",
            "mod.py": f"""\
            import typing
            import typing as t
            from typing import TYPE_CHECKING

            import anyio

            if {guard}:
                import threading
                from anyio.from_thread import BlockingPortal
                from concurrent import futures
            else:
                import queue

            def f(portal: BlockingPortal, p: anyio.from_thread.BlockingPortal) -> futures.Future[None]:
                local: anyio.to_thread.CapacityLimiter = anyio.Lock()
                return local
            """,
        }
    )
    assert check(pkg) == [f"{pkg}.mod:12  imports queue  (import queue)"]


def test_anyio_alone_passes(make_package: MakePackage) -> None:
    pkg = make_package(
        {
            "bridge.py": "",
            "mod.py": """\
            import anyio
            import anyio.abc
            from anyio import create_task_group, CancelScope

            async def f(tg: anyio.abc.TaskGroup):
                with CancelScope():
                    async with create_task_group() as tg:
                        tg.start_soon(anyio.sleep, 0)
            """,
        }
    )
    assert check(pkg) == []


def test_relative_imports_resolve_inside_the_package(make_package: MakePackage) -> None:
    pkg = make_package(
        {
            "bridge.py": "def run():\n    pass\n",
            "sub/__init__.py": "from ..bridge import run\nrun()\n",
            "sub/threading.py": "",
            "sub/mod.py": "from . import threading\nfrom .. import bridge\nbridge.run()\n",
        }
    )
    assert check(pkg) == []


def test_a_directory_without_init_is_read_and_reported(
    tmp_path: Path, make_package: MakePackage
) -> None:
    pkg = make_package({"bridge.py": "", "core/app.py": ""})
    (tmp_path / pkg / "core" / "__init__.py").unlink()
    (tmp_path / pkg / "core" / "json").mkdir()
    (tmp_path / pkg / "core" / "json" / "__init__.py").write_text("import queue\n")
    (tmp_path / pkg / "core" / "body.py").write_text(
        "x = 1\nfrom ..bridge import y\nimport threading\n"
    )
    (tmp_path / pkg / "not-a-package").mkdir()
    (tmp_path / pkg / "not-a-package" / "script.py").write_text("import threading\n")
    path = tmp_path / pkg / "core"
    assert check(pkg) == [
        f"{pkg}.core.app:1  is not in the import graph  ({path / 'app.py'})",
        f"{pkg}.core.body:1  is not in the import graph  ({path / 'body.py'})",
        f"{pkg}.core.body:3  imports threading  (import threading)",
        f"{pkg}.core.json:1  imports queue  (import queue)",
        f"{pkg}.core.json:1  is not in the import graph  ({path / 'json' / '__init__.py'})",
    ]


def test_an_unknown_allowed_module_is_an_error(make_package: MakePackage) -> None:
    pkg = make_package({"bridge.py": ""})
    with pytest.raises(ValueError, match=r"Module '.*\.brigde' does not exist"):
        check(pkg, allowed=("brigde",))


def test_misspelled_option_is_an_error() -> None:
    with pytest.raises(InvalidContractOptions) as error:
        CrossingsContract(
            name="crossings",
            session_options={"root_packages": ["x"]},
            contract_options={**OPTIONS, "allowed_module": ["x.bridge"]},
        )
    assert "allowed_module" in error.value.errors


def lint_imports(tmp_path: Path, pkg: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "pyproject.toml"
    config.write_text(PYPROJECT.format(pkg=pkg))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)]),
        "COLUMNS": "80",
    }
    return subprocess.run(
        [Path(sys.executable).with_name("lint-imports"), "--no-cache", str(config)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_lint_imports_reports_a_broken_contract(
    tmp_path: Path, make_package: MakePackage
) -> None:
    pkg = make_package(
        {
            "bridge/__init__.py": CROSSINGS,
            "wsgi.py": "import threading\nthreads = [threading.Thread()]\n",
            "asgi/body.py": "import anyio.from_thread\n",
            "asgi/ws.py": "import anyio\n\nx = anyio.from_thread.run(f)[i]\n",
        }
    )
    result = lint_imports(tmp_path, pkg)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Contracts: 0 kept, 1 broken." in result.stdout
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert (
        f"{pkg}.asgi.body:1  imports anyio.from_thread  (import anyio.from_thread)"
        in lines
    )
    # Long lines are not wrapped, and the source's brackets are not taken for markup.
    assert (
        f"{pkg}.asgi.ws:3  uses anyio.from_thread.run  (x = anyio.from_thread.run(f)[i])"
        in lines
    )
    assert f"{pkg}.wsgi:1  imports threading  (import threading)" in lines
    assert not [line for line in lines if re.match(rf"{pkg}\.bridge(\.\w+)*:\d", line)]
    assert "Threads, event loops and crossings between them belong in" in result.stdout


def test_lint_imports_keeps_a_clean_contract(
    tmp_path: Path, make_package: MakePackage
) -> None:
    pkg = make_package({"bridge/__init__.py": CROSSINGS, "app.py": "import anyio\n"})
    result = lint_imports(tmp_path, pkg)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 1 kept, 0 broken." in result.stdout
