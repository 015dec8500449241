"""Run Flask extensions' own test suites on Flask 3.1.3 and on ctxflask, and compare.

Each suite comes from the extension's sdist and runs three times, each in its own pytest
process with this interpreter, with the suite's own pytest configuration:

- ``flask``: on the real Flask 3.1.3, the baseline;
- ``ctxflask-wsgi``: on ctxflask (``-p ecosystem.as_flask``: ``install_as_flask()``);
- ``ctxflask-asgi``: the same, every ``app.test_client()`` through ``app.asgi``
  (``-p ecosystem.asgi_clients``).

A test that passes on Flask and not on ctxflask fails the run unless
``ecosystem/expected_differences.toml`` lists it with a reason; a listed test that does
pass fails it too (a stale expectation, as a strict xfail). The table goes to
``docs/extensions.md``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
import xml.etree.ElementTree as ET
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
EXPECTATIONS = Path(__file__).with_name("expected_differences.toml")
FLASK = "3.1.3"


@dataclass(frozen=True)
class Suite:
    name: str
    version: str
    #: What the suite's own files ask for to run its tests (the extension's own
    #: dependencies come from its metadata).
    test_requires: tuple[str, ...]
    #: pytest arguments of the suite's own CI command.
    args: tuple[str, ...] = ()
    #: Said under the table: why the suite runs with what it runs with.
    note: str = ""


SUITES = (
    # requirements/tests.txt (coverage aside).
    Suite("Flask-Login", "0.6.3", ("pytest", "semantic-version", "asgiref", "blinker")),
    # pyproject.toml [dependency-groups] test and test-babel: tox.ini runs both.
    Suite("Flask-WTF", "1.3.0", ("pytest", "Flask-Babel", "flask-reuploaded")),
    # requirements/tests.in (coverage aside).
    Suite(
        "Flask-SQLAlchemy",
        "3.1.1",
        ("pytest", "blinker", "sqlalchemy>=2.0.16,<2.1"),
        note="runs with SQLAlchemy < 2.1, the series it was released for: under 2.1, 154"
        " of its tests fail on Flask itself (its dataclass model bases), which would"
        " compare nothing. Its tests make no request through a test client.",
    ),
    # tox.ini: ``pytest --doctest-modules tests`` (coverage aside).
    Suite("Flask-CORS", "6.0.5", ("pytest",), ("--doctest-modules", "tests")),
)

#: Each mode's pytest plugins: ``-p`` loads them before any conftest.py imports flask.
MODES: dict[str, tuple[str, ...]] = {
    "flask": (),
    "ctxflask-wsgi": ("-p", "ecosystem.as_flask"),
    "ctxflask-asgi": ("-p", "ecosystem.as_flask", "-p", "ecosystem.asgi_clients"),
}
OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed")

#: (suite, mode, test) -> the reason it may pass on Flask and not on ctxflask.
Expected = dict[tuple[str, str, str], str]


@dataclass
class Run:
    suite: Suite
    mode: str
    log: Path
    returncode: int
    outcomes: dict[str, str] = field(default_factory=dict)  # junit id -> outcome
    messages: dict[str, str] = field(default_factory=dict)  # junit id -> why, 1 line
    #: What the plugins said: the flask imported, the clients made through app.asgi.
    flask: str | None = None
    asgi_clients: int | None = None

    def count(self, outcome: str) -> int:
        return Counter(self.outcomes.values())[outcome]

    def passed(self) -> set[str]:
        return {test for test, outcome in self.outcomes.items() if outcome == "passed"}

    def why(self, test: str) -> str:
        return self.messages.get(test) or self.outcomes.get(test, "not run")


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args], check=True)


def fetch(suite: Suite, cache: Path) -> Path:
    """The extracted sdist, downloaded once per name and version into ``cache``."""
    base = cache / f"{suite.name}-{suite.version}"
    tree = base / "tree"
    if tree.is_dir():
        return tree
    shutil.rmtree(base, ignore_errors=True)
    spec = f"{suite.name}=={suite.version}"
    sdists = base / "sdist"
    pip("download", "-q", "--no-deps", "--no-binary", ":all:", spec, "-d", str(sdists))
    (sdist,) = sdists.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        archive.extractall(base / "extract", filter="data")
    (top,) = (base / "extract").iterdir()  # an sdist has one top-level directory
    top.rename(tree)  # last: an interrupted download is never taken for a tree
    return tree


def own_requirements(suite: Suite) -> list[Requirement]:
    """The installed extension's dependencies, without extras, Flask aside."""
    reqs = map(Requirement, importlib.metadata.requires(suite.name) or [])
    return [
        req
        for req in reqs
        if canonicalize_name(req.name) != "flask"
        and (req.marker is None or req.marker.evaluate({"extra": ""}))
    ]


def install(suites: list[Suite]) -> None:
    """The extensions with ``--no-deps`` (none of them brings its own Flask), then what
    they and their tests need, with Flask pinned to the baseline's version."""
    pip("install", "-q", "--no-deps", *(f"{s.name}=={s.version}" for s in suites))
    importlib.invalidate_caches()
    needs = {str(req) for s in suites for req in own_requirements(s)}
    needs |= {req for s in suites for req in s.test_requires}
    pip("install", "-q", f"flask=={FLASK}", *sorted(needs))


def check_installed(suites: list[Suite]) -> list[str]:
    problems = []
    for name, version in [("Flask", FLASK)] + [(s.name, s.version) for s in suites]:
        try:
            found = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found = "none"
        if found != version:
            problems.append(
                f"{name} {version} is needed, found {found}: pass --install"
            )
    return problems


def pytest_config(tree: Path) -> Path:
    """The suite's own pytest config file, found in pytest's order, or an empty one:
    never ctxflask's pyproject.toml."""
    for name, section in (
        ("pytest.ini", ""),
        (".pytest.ini", ""),
        ("pyproject.toml", "[tool.pytest"),
        ("tox.ini", "[pytest]"),
        ("setup.cfg", "[tool:pytest]"),
    ):
        path = tree / name
        if path.is_file() and section in path.read_text(encoding="utf-8"):
            return path
    empty = tree.parent / "empty-pytest.ini"
    empty.write_text("[pytest]\n", encoding="utf-8")
    return empty


def run(suite: Suite, tree: Path, mode: str) -> Run:
    out = tree.parent / "results"
    out.mkdir(exist_ok=True)
    xml, log = out / f"{mode}.xml", out / f"{mode}.log"
    xml.unlink(missing_ok=True)
    # Only the plugins named here, as in the suites' own CI: this environment's others
    # change the runs (pytest-asyncio warns at start, an error under their filters).
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    if mode != "flask":
        path = [str(ROOT), os.environ.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(filter(None, path))
    config = pytest_config(tree)
    cmd = [
        *(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfE"),
        *("--tb=short", "--rootdir", str(tree), "-c", str(config)),
        f"--basetemp={out / (mode + '-tmp')}",
        f"--junitxml={xml}",
        *MODES[mode],
        *suite.args,
    ]
    with log.open("w", encoding="utf-8") as stream:
        proc = subprocess.run(cmd, cwd=tree, env=env, stdout=stream, stderr=stream)
    result = Run(suite, mode, log, proc.returncode)
    if xml.is_file():
        read_junit(xml, result)
    for line in log.read_text(encoding="utf-8").splitlines():
        if line.startswith("ASGI test clients: "):
            result.asgi_clients = int(line.rpartition(" ")[2])
        elif line.startswith("flask: "):
            result.flask = line.partition(" ")[2]
    return result


def read_junit(xml: Path, result: Run) -> None:
    for case in ET.parse(xml).iter("testcase"):
        test = f"{case.get('classname')}::{case.get('name')}"
        children = {child.tag: child for child in case}
        outcome, detail = "passed", None
        # A failed test may also have a teardown error: the failure says more.
        for tag, name in (("failure", "failed"), ("error", "error"), ("skipped", "")):
            if tag in children:
                detail = children[tag]
                xfail = detail.get("type") == "pytest.xfail"
                outcome = name or ("xfailed" if xfail else "skipped")
                break
        result.outcomes[test] = outcome
        if detail is not None:
            message = (detail.get("message") or detail.text or "").strip()
            result.messages[test] = message.splitlines()[0][:200] if message else ""


def load_expectations() -> Expected:
    if not EXPECTATIONS.is_file():
        return {}
    entries = tomllib.loads(EXPECTATIONS.read_text(encoding="utf-8"))
    expected: Expected = {}
    for entry in entries.get("difference", []):
        suite, mode, test = entry["suite"], entry["mode"], entry["test"]
        if (
            suite not in {s.name for s in SUITES}
            or mode not in MODES
            or mode == "flask"
        ):
            raise SystemExit(f"{EXPECTATIONS}: no suite {suite!r} or mode {mode!r}")
        if not entry.get("reason"):
            raise SystemExit(f"{EXPECTATIONS}: {test} has no reason")
        expected[suite, mode, test] = entry["reason"]
    return expected


def compare(
    runs: dict[tuple[str, str], Run], expected: Expected
) -> tuple[dict[tuple[str, str], list[str]], list[str]]:
    """Per ctxflask run, the tests that pass on Flask and not there; and the problems
    that fail the run: such tests not expected, stale expectations, broken runs."""
    lost: dict[tuple[str, str], list[str]] = {}
    problems = []
    for (name, mode), result in runs.items():
        if result.returncode not in (0, 1) or not result.outcomes:
            problems.append(
                f"{name} {mode}: pytest exited {result.returncode}: {result.log}"
            )
        if mode == "flask":
            continue
        if result.flask != "ctxflask":
            problems.append(f"{name} {mode}: ran on flask {result.flask}: {result.log}")
        lost[name, mode] = sorted(runs[name, "flask"].passed() - result.passed())
        for test in lost[name, mode]:
            if (name, mode, test) not in expected:
                problems.append(
                    f"{name} {mode}: {test} passes on Flask, not here: {result.why(test)}"
                )
        for suite, emode, test in expected:
            if (suite, emode) == (name, mode) and test not in lost[name, mode]:
                problems.append(
                    f"{name} {mode}: {test} is listed as a difference but is none (stale)"
                )
    return lost, problems


def versions(suites: list[Suite]) -> str:
    """What the results depend on, the installed versions."""
    names = ["Flask", "Werkzeug", "pytest"]
    for suite in suites:
        names += [suite.name, *(r.name for r in own_requirements(suite))]
        names += [Requirement(r).name for r in suite.test_requires]
    found = {}
    for name in names:
        key = canonicalize_name(name)
        if key not in found:
            try:
                meta = importlib.metadata.metadata(key)
                found[key] = f"{meta['Name']} {meta['Version']}"
            except importlib.metadata.PackageNotFoundError:
                pass
    listed = sorted(found.values(), key=str.lower)
    return ", ".join([f"Python {platform.python_version()}", *listed])


def report(
    suites: list[Suite],
    runs: dict[tuple[str, str], Run],
    lost: dict[tuple[str, str], list[str]],
    expected: Expected,
) -> str:
    lines = [
        "# Flask extensions' own test suites on ctxflask",
        "",
        "Generated by `python -m ecosystem.run_suites --install` (`nox -s extensions`):"
        " do not edit it by hand.",
        "",
        "Each extension's own tests, from its sdist, run on Flask 3.1.3 (*Flask*), on"
        " ctxflask through `ctxflask.install_as_flask()` with the suite's test clients"
        " through `app` (`ctxflask-wsgi`), and the same with every `app.test_client()`"
        " through `app.asgi` (`ctxflask-asgi`). *ASGI clients* counts the test clients"
        " that went through `app.asgi` (0: the suite sends no request through one).",
        "",
        f"Versions: {versions(suites)}.",
        "",
        "| extension | mode | passed | failed | errors | skipped | xfailed"
        " | ASGI clients | Flask: passed | failed | errors | skipped | xfailed |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for suite in suites:
        base = runs[suite.name, "flask"]
        for mode in [m for m in MODES if m != "flask"]:
            result = runs[suite.name, mode]
            clients = "" if result.asgi_clients is None else str(result.asgi_clients)
            cells = [
                f"{suite.name} {suite.version}",
                mode,
                *(str(result.count(o)) for o in OUTCOMES),
                clients,
                *(str(base.count(o)) for o in OUTCOMES),
            ]
            lines.append("| " + " | ".join(cells) + " |")

    lines += [""] + [f"{s.name} {s.version}: {s.note}" for s in suites if s.note]
    lines += ["", "## Tests that pass on Flask and not on ctxflask", ""]
    for (name, mode), tests in lost.items():
        for test in tests:
            reason = expected.get((name, mode, test))
            note = f" Expected: {reason}" if reason else ""
            lines.append(
                f"- {name}, {mode}: `{test}`: {runs[name, mode].why(test)}.{note}"
            )
    if lines[-1] == "":
        lines.append("None.")

    lines += ["", "## Tests that do not pass on Flask 3.1.3 either", ""]
    for suite in suites:
        base = runs[suite.name, "flask"]
        for test, outcome in sorted(base.outcomes.items()):
            if outcome in ("failed", "error"):
                lines.append(f"- {suite.name}: `{test}` ({outcome}): {base.why(test)}")
    if lines[-1] == "":
        lines.append("None.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ecosystem.run_suites",
        description="Run Flask extensions' own test suites on Flask 3.1.3 and on"
        " ctxflask (test clients through WSGI, then ASGI), and compare. Writes"
        " docs/extensions.md when it runs every suite.",
    )
    parser.add_argument(
        "--install",
        action="store_true",
        help="first install the extensions (--no-deps), what they and their tests need,"
        f" and Flask {FLASK}, into this interpreter's environment",
    )
    parser.add_argument(
        "--suite",
        action="append",
        choices=[s.name for s in SUITES],
        help="run this suite only (repeatable); docs/extensions.md is left as it is",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "ctxflask-ecosystem",
        help="where the sdists are extracted and the logs kept (default: %(default)s)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=ROOT / "docs" / "extensions.md",
        help="the report (default: %(default)s)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="pytest processes at once (default: %(default)s)",
    )
    args = parser.parse_args(argv)

    start = time.monotonic()
    suites = [s for s in SUITES if not args.suite or s.name in args.suite]
    names = {s.name for s in suites}
    expected = {k: v for k, v in load_expectations().items() if k[0] in names}
    args.cache.mkdir(parents=True, exist_ok=True)
    trees = {s.name: fetch(s, args.cache) for s in suites}
    if args.install:
        install(suites)
    if problems := check_installed(suites):
        print("\n".join(problems), file=sys.stderr)
        return 2

    jobs = [(s, mode) for s in suites for mode in MODES]
    with ThreadPoolExecutor(args.jobs) as pool:
        done = pool.map(lambda job: run(job[0], trees[job[0].name], job[1]), jobs)
        runs = {(r.suite.name, r.mode): r for r in done}
    for r in runs.values():
        counts = ", ".join(f"{r.count(o)} {o}" for o in OUTCOMES)
        print(f"{r.suite.name} {r.suite.version}, {r.mode}: {counts} ({r.log})")

    lost, problems = compare(runs, expected)
    if not args.suite:
        args.output.write_text(report(suites, runs, lost, expected), encoding="utf-8")
        print(f"Wrote {args.output}.")
    print("\n".join(problems) or "ctxflask passes every test that Flask passes.")
    print(f"{time.monotonic() - start:.1f} s")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
