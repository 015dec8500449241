"""docs/migration.md cannot rot: its Python examples are run.

The guide's convention: a block fenced as ```` ```python ```` is a complete program, run
here in a process of its own (some call ``install_as_flask()``, which changes the process
for good), in an empty directory; it checks its own claims with ``assert`` and must exit
0. A block fenced as ```` ```python no-run ```` is an excerpt (it needs a database or a
server): it is only compiled. Any other ``python`` fence is an error, so that an example
cannot drop out of the run by a typo.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "migration.md"
TIMEOUT = 60

_FENCE = re.compile(r"^```(\S*)[ \t]*(.*)$")


class Block:
    """A fenced code block of the guide: its info string, first line and text."""

    def __init__(self, lang: str, options: str, line: int, text: str) -> None:
        self.lang = lang
        self.options = options
        self.line = line
        self.text = text

    @property
    def runs(self) -> bool:
        return self.lang == "python" and not self.options

    def __repr__(self) -> str:
        return f"docs/migration.md:{self.line}"


def blocks() -> list[Block]:
    """Every fenced block of the guide, in order."""
    found: list[Block] = []
    lines = GUIDE.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        start = i + 1
        i += 1
        while i < len(lines) and lines[i] != "```":
            i += 1
        if i == len(lines):
            raise AssertionError(f"docs/migration.md:{start}: the block is not closed")
        text = "\n".join(lines[start:i]) + "\n"
        found.append(Block(match[1], match[2].strip(), start, text))
        i += 1
    return found


def python_blocks() -> list[Block]:
    return [b for b in blocks() if b.lang in ("python", "py", "python3")]


RUNNABLE = [b for b in python_blocks() if b.runs]
EXCERPTS = [b for b in python_blocks() if not b.runs]


def test_every_python_block_is_a_program_or_a_marked_excerpt():
    wrong = [
        b
        for b in python_blocks()
        if b.lang != "python" or b.options not in ("", "no-run")
    ]
    assert not wrong, (
        f"{wrong}: fence Python as ```python (a program, run) or ```python no-run"
        " (an excerpt, compiled)"
    )
    # Both parts of the guide have their programs.
    assert len(RUNNABLE) >= 10


@pytest.mark.parametrize("block", EXCERPTS, ids=repr)
def test_excerpt_compiles(block: Block):
    compile(block.text, repr(block), "exec")


@pytest.mark.parametrize("block", RUNNABLE, ids=repr)
def test_program_runs(block: Block, tmp_path: Path):
    program = tmp_path / "example.py"
    program.write_text(block.text, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(program)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, (
        f"{block!r} exited with {result.returncode}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
