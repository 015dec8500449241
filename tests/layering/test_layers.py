"""The package keeps its layer contracts (pyproject.toml's [tool.importlinter]), and a wrong
arrow breaks them: the contracts are what CI checks, so they are tested like code."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")


def _lint_imports(cwd: Path, *pythonpath: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in pythonpath)
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_package_keeps_its_layer_contracts():
    result = _lint_imports(ROOT, ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken." in result.stdout


def _copy_of_the_package(tmp_path: Path) -> Path:
    shutil.copytree(
        ROOT / "ctxflask",
        tmp_path / "ctxflask",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_an_import_from_the_core_up_to_the_pipeline_breaks_the_layers(tmp_path):
    copy = _copy_of_the_package(tmp_path)
    with (copy / "ctxflask" / "core" / "ctx.py").open("a") as f:
        f.write("\nfrom .. import pipeline  # noqa: E402\n")
    result = _lint_imports(copy, copy, ROOT)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "ctxflask.core is not allowed to import ctxflask.pipeline" in result.stdout
    assert "ctxflask.core.ctx -> ctxflask.pipeline" in result.stdout


def test_a_driver_importing_the_other_driver_breaks_the_layers(tmp_path):
    copy = _copy_of_the_package(tmp_path)
    with (copy / "ctxflask" / "wsgi.py").open("a") as f:
        f.write("\nfrom . import asgi  # noqa: E402\n")
    result = _lint_imports(copy, copy, ROOT)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "ctxflask.wsgi -> ctxflask.asgi" in result.stdout


def test_a_thread_started_outside_the_bridge_breaks_the_crossings(tmp_path):
    copy = _copy_of_the_package(tmp_path)
    with (copy / "ctxflask" / "asgi" / "http.py").open("a") as f:
        f.write("\nimport anyio.to_thread  # noqa: E402\n")
    result = _lint_imports(copy, copy, ROOT)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "ctxflask.asgi.http:" in result.stdout
    assert "imports anyio.to_thread" in result.stdout
