"""Developer sessions: ``nox -s tests``, ``lint``, ``typing``, ``bench``."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typing"]
nox.options.reuse_existing_virtualenvs = True


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)
    session.run("pytest", "examples/notes/tests")


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """ruff, and the layer contracts of pyproject.toml (import-linter)."""
    session.install("-e", ".[lint]")
    session.run("ruff", "check", "ctxflask", "tests", "bench", "examples", "noxfile.py")
    session.run("ruff", "format", "--check", "ctxflask", "tests", "bench", "examples")
    session.run("lint-imports", "--no-cache")


@nox.session(python="3.11")
def typing(session: nox.Session) -> None:
    session.install("-e", ".[typing]")
    session.run("mypy")


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """In-process per-request cost beside Flask (WSGI); ratios, medians of interleaved
    rounds. Pass options after ``--``, e.g. ``nox -s bench -- --quick``; a first word
    ``asgi`` or ``server`` runs ``bench.asgi`` or ``bench.server`` instead, e.g.
    ``nox -s bench -- asgi --quick``."""
    session.install("-e", ".[bench]")
    args = list(session.posargs)
    module = args.pop(0) if args[:1] in (["asgi"], ["server"]) else "inprocess"
    session.run("python", "-m", f"bench.{module}", *args)
