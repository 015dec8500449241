"""Shared timing and reporting helpers: interleaved rounds, medians, the ratio table.

Contenders are timed in alternating rounds within one run so that machine noise
(frequency scaling, other processes) hits each of them alike. The order flips every
round (A B, B A, A B, ...) so neither always runs right after the other.
"""

from __future__ import annotations

import gc
import json
import platform
import statistics
import sys
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from time import perf_counter_ns
from typing import Any


@dataclass(frozen=True)
class Contender:
    """Something to time: *call* performs one request; *calls* per round."""

    name: str
    call: Callable[[], object]
    calls: int


def time_calls(call: Callable[[], object], calls: int) -> float:
    """Run *call* *calls* times; return the mean microseconds per call."""
    loop = range(calls)
    start = perf_counter_ns()
    for _ in loop:
        call()
    return (perf_counter_ns() - start) / calls / 1000.0


def run_interleaved(
    contenders: Sequence[Contender], rounds: int, warmup: int
) -> dict[str, list[float]]:
    """Time *contenders* in alternating rounds; return µs per call of each round by name."""
    for contender in contenders:
        for _ in range(min(warmup, contender.calls)):
            contender.call()
    samples: dict[str, list[float]] = {c.name: [] for c in contenders}
    for index in range(rounds):
        order = contenders if index % 2 == 0 else list(reversed(contenders))
        for contender in order:
            gc.collect()
            samples[contender.name].append(time_calls(contender.call, contender.calls))
    return samples


@dataclass
class Result:
    """The figures of one scenario: per-round samples and their medians."""

    scenario: str
    baseline: str
    candidate: str | None
    samples: dict[str, list[float]]
    calls: dict[str, int]
    target: float | None = None
    medians: dict[str, float] = field(init=False)

    def __post_init__(self) -> None:
        self.medians = {name: statistics.median(s) for name, s in self.samples.items()}

    @property
    def ratio(self) -> float | None:
        """Median µs of the candidate over median µs of the baseline."""
        if self.candidate is None or self.candidate not in self.medians:
            return None
        return self.medians[self.candidate] / self.medians[self.baseline]

    @property
    def meets_target(self) -> bool | None:
        """Whether the ratio is within the target (None when either is missing)."""
        ratio = self.ratio
        if ratio is None or self.target is None:
            return None
        return ratio <= self.target

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view of the result."""
        return {
            "scenario": self.scenario,
            "calls_per_round": self.calls,
            "median_us": self.medians,
            "min_us": {name: min(s) for name, s in self.samples.items()},
            "max_us": {name: max(s) for name, s in self.samples.items()},
            "rounds_us": self.samples,
            "ratio": self.ratio,
            "target": self.target,
            "meets_target": self.meets_target,
        }


def _fmt_us(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def format_table(
    results: Sequence[Result], baseline: str, candidate: str | None
) -> str:
    """Render *results* as a plain-text table (median µs/request, ratio, target)."""
    names = [baseline] if candidate is None else [baseline, candidate]
    header = ["scenario", *(f"{n} µs" for n in names)]
    if candidate is not None:
        header += [f"{candidate}/{baseline}", "target", ""]
    rows = [header]
    for result in results:
        row = [result.scenario, *(_fmt_us(result.medians.get(n)) for n in names)]
        if candidate is not None:
            ratio = result.ratio
            verdict = {True: "ok", False: "MISSED", None: ""}[result.meets_target]
            row += [
                "-" if ratio is None else f"{ratio:.3f}x",
                "-" if result.target is None else f"<= {result.target:g}x",
                verdict,
            ]
        rows.append(row)
    return render_table(rows)


def render_table(rows: Sequence[Sequence[str]]) -> str:
    """Rows as aligned plain text under a rule after the first (the header): the first
    column left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for number, row in enumerate(rows):
        cells = [
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if number == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def environment() -> dict[str, str]:
    """Interpreter and machine facts worth keeping next to the figures."""
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
    }


def report_problems(problems: Sequence[str], what: str) -> bool:
    """Print *problems* (wrong answers found before any timing) under a line saying the
    run stops because not every *what* answers every scenario correctly; return whether
    there were any."""
    if not problems:
        return False
    print(
        f"Aborting: not every {what} answers every scenario correctly.", file=sys.stderr
    )
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)
    return True


def write_json(path: str | Path, payload: dict[str, Any]) -> None:
    """Write *payload* to *path* as indented JSON."""
    Path(path).write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
