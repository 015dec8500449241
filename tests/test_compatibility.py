"""docs/flask-compatibility.md matches Flask 3.1 and ctxflask: every public Flask name is
listed, and present in ctxflask exactly when not marked "not provided"."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import flask
import pytest

import ctxflask
from tests.flask_names import MODULES
from tests.flask_names import public_names

DOC = Path(__file__).parent.parent / "docs" / "flask-compatibility.md"
STATUSES = {"same", "extended", "differs", "not provided"}


def _sections() -> dict[str, list[list[str]]]:
    sections: dict[str, list[list[str]]] = {}
    current = None
    for line in DOC.read_text().splitlines():
        if line.startswith("## "):
            current = line[3:].strip()
            sections[current] = []
        elif current and line.startswith("| `"):
            sections[current].append(
                [cell.strip() for cell in line.strip("|").split("|")]
            )
    return sections


SECTIONS = _sections()


def _rows(title_start: str) -> dict[str, tuple[str, ...]]:
    (title,) = [t for t in SECTIONS if t.startswith(title_start)]
    return {row[0].strip("`"): tuple(row[1:]) for row in SECTIONS[title]}


@pytest.mark.parametrize("module", MODULES)
def test_every_public_name_of_the_flask_module_is_listed_truthfully(module):
    rows = _rows(f"`{module}` →")
    assert sorted(rows) == sorted(public_names(module))
    target = importlib.import_module("ctxflask" + module[5:])
    for name, (status, note) in rows.items():
        assert status in STATUSES, name
        assert hasattr(target, name) == (status != "not provided"), name
        if status in ("differs", "not provided"):
            assert note, f"{module}.{name} is marked {status} without a reason"


@pytest.mark.parametrize(
    ("cls", "make_flask", "make_ours"),
    [
        ("Flask", lambda: flask.Flask("x"), lambda: ctxflask.Flask("x")),
        (
            "Blueprint",
            lambda: flask.Blueprint("b", "x"),
            lambda: ctxflask.Blueprint("b", "x"),
        ),
    ],
)
def test_every_member_of_flask_and_blueprint_is_listed_truthfully(
    cls, make_flask, make_ours
):
    rows = _rows(f"`flask.{cls}` members")
    theirs = sorted(
        (n for n in dir(make_flask()) if not n.startswith("_")), key=str.lower
    )
    assert sorted(rows, key=str.lower) == theirs
    ours = make_ours()
    for name, (status, _note) in rows.items():
        assert hasattr(ours, name) == (status != "not provided"), name


def test_names_of_ctxflask_only_are_listed_with_a_note():
    rows = _rows("ctxflask only")
    extra = set(ctxflask.__all__) - set(public_names("flask"))
    assert set(rows) == extra
    assert all(note for (note,) in rows.values())
    members = re.search(r"`Flask` members of ctxflask only: (.*)\.", DOC.read_text())
    assert members is not None
    listed = set(re.findall(r"`(\w+)`", members.group(1)))
    theirs = {n for n in dir(flask.Flask("x")) if not n.startswith("_")}
    ours = {n for n in dir(ctxflask.Flask("x")) if not n.startswith("_")}
    assert listed == ours - theirs


def test_all_names_of_ctxflask_exist():
    missing = [name for name in ctxflask.__all__ if not hasattr(ctxflask, name)]
    assert missing == []
