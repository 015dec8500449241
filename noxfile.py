"""Developer sessions: ``nox -s tests``, ``lint``, ``typing``, ``extensions``, ``bench``,
``faults``."""

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
    folders = ("ctxflask", "tests", "bench", "examples", "ecosystem")
    session.run("ruff", "check", *folders, "noxfile.py")
    session.run("ruff", "format", "--check", *folders)
    session.run("lint-imports", "--no-cache")


@nox.session(python="3.11")
def typing(session: nox.Session) -> None:
    session.install("-e", ".[typing]")
    session.run("mypy")


@nox.session(python="3.11")
def extensions(session: nox.Session) -> None:
    """Flask extensions' own test suites (from their sdists) on Flask 3.1.3 and on
    ctxflask, test clients through WSGI and through ASGI; writes docs/extensions.md."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "ecosystem.run_suites", "--install", *session.posargs)


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """In-process per-request cost beside Flask (WSGI); ratios, medians of interleaved
    rounds. Pass options after ``--``, e.g. ``nox -s bench -- --quick``; a first word
    names another benchmark: ``asgi`` (in-process ASGI), ``server`` (uvicorn, gunicorn
    and granian, one worker each), ``imports`` (import time), ``memory`` (RSS of a
    uvicorn worker), ``breakdown`` (the parts of a request's cost, each timed alone) or
    ``report`` (all of them but the breakdown, writing bench/results.md and
    bench/results.png), e.g. ``nox -s bench -- server --quick``."""
    session.install("-e", ".[bench]")
    args = list(session.posargs)
    others = ("asgi", "server", "imports", "memory", "breakdown", "report")
    module = args.pop(0) if args[:1] and args[0] in others else "inprocess"
    session.run("python", "-m", f"bench.{module}", *args)


@nox.session(python="3.11")
def faults(session: nox.Session) -> None:
    """Bad inputs and faults against every real server (tests/test_faults.py, marker
    ``faults``): body limits, short bodies, cookies, traversal, hostile headers,
    errors in each step, disconnects, load and memory. Also part of ``tests``."""
    session.install("-e", ".[test]")
    session.run("pytest", "-m", "faults", *session.posargs)
