"""Import time: a whole Python process that imports ctxflask, beside Flask, Starlette and
Quart.

Each figure is the wall time of ``python -c "import X"`` as a fresh process (started
with this interpreter, in the project's folder), from spawn to exit: what a server
worker, a CLI command or a test run pays before it can serve. ``python -c pass`` is timed
too: the interpreter's own start, the floor of every row. The runs are interleaved (the
order flips every run) after one untimed run each, and the figure is the median.

The children run without ``PYTHONDONTWRITEBYTECODE``: ctxflask is imported from the
source tree, which would otherwise never get ``.pyc`` files while the peers, installed
in site-packages, were compiled by pip. The untimed run writes ctxflask's bytecode
caches, as ``pip install`` did the peers'.

``-X importtime`` of ``import ctxflask`` (median over a few runs) then lists what the
import pulls in: the modules ctxflask imports from other packages, by cumulative time,
with the module of ours that imports each, and ctxflask's own modules. These are what a
lazy import could save.

Run ``python -m bench.imports --help`` for the options.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.asgi import source_revision
from bench.asgi import version_of
from bench.timing import environment
from bench.timing import render_table
from bench.timing import write_json

CANDIDATE = "ctxflask"
FLOOR = "python"
#: Name -> the statement timed. ``import starlette`` alone loads nothing but a version
#: string, so Starlette's row imports its application class, as an app does.
STATEMENTS: dict[str, str] = {
    "ctxflask": "import ctxflask",
    "flask": "import flask",
    "starlette": "from starlette.applications import Starlette",
    "quart": "import quart",
    FLOOR: "pass",
}
#: Distributions, for the versions reported.
DISTRIBUTIONS: dict[str, str] = {
    "ctxflask": "ctxflask",
    "flask": "flask",
    "starlette": "starlette",
    "quart": "quart",
}
#: Targets: ctxflask's median over the peer's, at most (lower is better).
TARGETS: dict[str, float] = {"flask": 1.0}
REPO_ROOT = Path(__file__).resolve().parent.parent
RUN_TIMEOUT = 60.0
#: How many entries each importtime list keeps.
TOP = 15


@dataclass(frozen=True)
class Config:
    """How much to run."""

    runs: int  # timed runs per statement
    importtime_runs: int


FULL = Config(runs=15, importtime_runs=5)
QUICK = Config(runs=5, importtime_runs=2)


def _environ() -> dict[str, str]:
    """This process's environment without the variables that change an import (bytecode
    caches written and used, as for an installed package)."""
    env = dict(os.environ)
    for name in (
        "PYTHONPROFILEIMPORTTIME",
        "PYTHONSTARTUP",
        "PYTHONINSPECT",
        "PYTHONDONTWRITEBYTECODE",
    ):
        env.pop(name, None)
    return env


def python(*args: str) -> subprocess.CompletedProcess[str]:
    """Run this interpreter with *args* in the project's folder; raise if it fails."""
    done = subprocess.run(
        [sys.executable, *args],
        cwd=REPO_ROOT,
        env=_environ(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"python {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}"
        )
    return done


def time_process(statement: str) -> float:
    """Milliseconds from spawning ``python -c statement`` to its exit."""
    started = time.perf_counter()
    python("-c", statement)
    return (time.perf_counter() - started) * 1000.0


def time_interleaved(names: Sequence[str], runs: int) -> dict[str, list[float]]:
    """Each statement once untimed, then *runs* timed runs in flipping order."""
    for name in names:
        python("-c", STATEMENTS[name])
    samples: dict[str, list[float]] = {name: [] for name in names}
    for index in range(runs):
        order = names if index % 2 == 0 else list(reversed(names))
        for name in order:
            samples[name].append(time_process(STATEMENTS[name]))
    return samples


# -- -X importtime ----------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One line of ``-X importtime``: a module, its own and cumulative time (µs), the
    module whose import brought it in (None at the top)."""

    module: str
    self_us: int
    cumulative_us: int
    parent: str | None


def parse_importtime(stderr: str) -> list[Entry]:
    """The entries of an ``-X importtime`` report, with the parent of each.

    A module's line comes after the lines of the modules it imported, indented two
    spaces deeper: the parent of a line is the first line after it one level up.
    """
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative, name = line[len("import time:") :].split("|", 2)
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        rows.append((name.strip(), int(self_us), int(cumulative), depth))
    entries: list[Entry] = []
    above: dict[int, str] = {}  # depth -> the nearest module after, at that depth
    for module, self_us, cumulative, depth in reversed(rows):
        entries.append(Entry(module, self_us, cumulative, above.get(depth - 1)))
        above[depth] = module
    entries.reverse()
    return entries


def is_ours(module: str | None) -> bool:
    return module is not None and (
        module == CANDIDATE or module.startswith(f"{CANDIDATE}.")
    )


def importtime(statement: str, runs: int) -> dict[str, dict[str, Any]]:
    """Median self and cumulative µs per module over *runs* runs of ``-X importtime``
    of *statement*, leaving out what ``python -c pass`` imports at start-up."""
    startup = {
        e.module
        for e in parse_importtime(python("-X", "importtime", "-c", "pass").stderr)
    }
    selfs: dict[str, list[int]] = defaultdict(list)
    cumulatives: dict[str, list[int]] = defaultdict(list)
    parents: dict[str, str | None] = {}
    for _ in range(runs):
        for entry in parse_importtime(
            python("-X", "importtime", "-c", statement).stderr
        ):
            if entry.module in startup:
                continue
            selfs[entry.module].append(entry.self_us)
            cumulatives[entry.module].append(entry.cumulative_us)
            parents[entry.module] = entry.parent
    return {
        module: {
            "self_us": statistics.median(selfs[module]),
            "cumulative_us": statistics.median(cumulatives[module]),
            "imported_by": parents[module],
        }
        for module in selfs
    }


def offenders(modules: dict[str, dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The lists to act on: modules of other packages that ctxflask's modules import
    (by cumulative time), ctxflask's own modules (cumulative), and every module by its
    own time."""

    def ranked(keep: Any, key: str) -> list[dict[str, Any]]:
        chosen = [{"module": m, **f} for m, f in modules.items() if keep(m, f)]
        chosen.sort(key=lambda row: row[key], reverse=True)
        return chosen[:TOP]

    return {
        "direct_imports": ranked(
            lambda m, f: not is_ours(m) and is_ours(f["imported_by"]), "cumulative_us"
        ),
        "own_modules": ranked(lambda m, f: is_ours(m), "cumulative_us"),
        "self_time": ranked(lambda m, f: True, "self_us"),
    }


def format_offenders(lists: dict[str, list[dict[str, Any]]]) -> str:
    """The three lists as tables (ms)."""
    titles = {
        "direct_imports": "imported by ctxflask's modules, by cumulative time",
        "own_modules": "ctxflask's own modules, by cumulative time",
        "self_time": "every module, by its own time",
    }
    parts = []
    for key, title in titles.items():
        rows = [["module", "cumulative ms", "self ms", "imported by"]]
        for row in lists[key]:
            rows.append(
                [
                    row["module"],
                    f"{row['cumulative_us'] / 1000:.1f}",
                    f"{row['self_us'] / 1000:.1f}",
                    row["imported_by"] or "-",
                ]
            )
        parts.append(f"{title}:\n{render_table(rows)}")
    return "\n\n".join(parts)


# -- report -----------------------------------------------------------------------------


def summarize(samples: dict[str, list[float]]) -> dict[str, Any]:
    """Medians, the interpreter's floor taken off, and ctxflask's ratio to each peer."""
    medians = {name: statistics.median(s) for name, s in samples.items()}
    floor = medians.get(FLOOR)
    ratios = {}
    if CANDIDATE in medians:
        for peer in medians:
            if peer in (CANDIDATE, FLOOR):
                continue
            net = None
            if floor is not None and medians[peer] > floor:
                net = (medians[CANDIDATE] - floor) / (medians[peer] - floor)
            ratios[peer] = {
                "ratio": medians[CANDIDATE] / medians[peer],
                "net_ratio": net,
                "target": TARGETS.get(peer),
            }
    return {
        "median_ms": medians,
        "net_ms": None
        if floor is None
        else {n: m - floor for n, m in medians.items() if n != FLOOR},
        "ratios": ratios,
    }


def format_table(summary: dict[str, Any]) -> str:
    """Median ms per statement (and without the interpreter's start), ctxflask's ratio."""
    medians = summary["median_ms"]
    net = summary["net_ms"] or {}
    ratios = summary["ratios"]
    rows = [
        [
            "import",
            "median ms",
            "minus python -c pass",
            f"{CANDIDATE}/it",
            "(minus python)",
            "target",
            "",
        ]
    ]
    for name, value in medians.items():
        ratio = ratios.get(name)
        cell, net_cell, target, verdict = "-", "-", "-", ""
        if ratio is not None:
            cell = f"{ratio['ratio']:.3f}x"
            if ratio["net_ratio"] is not None:
                net_cell = f"{ratio['net_ratio']:.3f}x"
            if ratio["target"] is not None:
                target = f"<= {ratio['target']:g}x"
                verdict = "ok" if ratio["ratio"] <= ratio["target"] else "MISSED"
        rows.append(
            [
                STATEMENTS[name],
                f"{value:.1f}",
                f"{net[name]:.1f}" if name in net else "-",
                cell,
                net_cell,
                target,
                verdict,
            ]
        )
    return render_table(rows)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.imports",
        description="Whole-process import time of ctxflask beside Flask, Starlette and"
        " Quart (interleaved runs, medians), and -X importtime's top offenders.",
    )
    parser.add_argument(
        "--runs", type=int, help=f"timed runs per import (default {FULL.runs})"
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer runs, for a smoke run"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH")
    parser.add_argument(
        "--module",
        action="append",
        choices=[n for n in STATEMENTS if n != FLOOR],
        help="time only this import (repeatable; default all)",
    )
    args = parser.parse_args(argv)
    if args.runs is not None and args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Time the imports, list the offenders, print (and write JSON if asked)."""
    args = parse_args(argv)
    base = QUICK if args.quick else FULL
    runs = args.runs or base.runs
    names = [
        n for n in STATEMENTS if n == FLOOR or args.module is None or n in args.module
    ]
    revision = source_revision()
    print(
        f"import time: {runs} interleaved runs of each whole process; median ms"
        " (lower is better)",
        flush=True,
    )
    try:
        samples = time_interleaved(names, runs)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"Aborting: {exc}", file=sys.stderr)
        return 2
    summary = summarize(samples)
    print()
    print(format_table(summary))

    lists: dict[str, list[dict[str, Any]]] = {}
    modules: dict[str, dict[str, Any]] = {}
    if CANDIDATE in names:
        modules = importtime(STATEMENTS[CANDIDATE], base.importtime_runs)
        lists = offenders(modules)
        print(
            f"\n-X importtime of {STATEMENTS[CANDIDATE]!r}, median of"
            f" {base.importtime_runs} runs (start-up modules left out):\n"
        )
        print(format_offenders(lists))

    if args.json:
        payload = {
            "benchmark": "imports",
            "environment": {**environment(), "cpus": str(os.cpu_count())},
            "versions": {
                n: version_of(d) for n, d in DISTRIBUTIONS.items() if n in names
            },
            "ctxflask_source": revision,
            "statements": {n: STATEMENTS[n] for n in names},
            "runs": runs,
            "rounds_ms": samples,
            **summary,
            "importtime_runs": base.importtime_runs,
            "importtime_total_modules": len(modules),
            "offenders": lists,
        }
        write_json(args.json, payload)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
