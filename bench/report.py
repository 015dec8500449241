"""The results page: every benchmark in one run, written to ``bench/results.md`` with a
chart of the ratios, ``bench/results.png``.

The benchmarks run one after the other, each in a process of its own and writing its
figures as JSON (``bench.inprocess``, ``bench.asgi``, ``bench.server``,
``bench.imports``, ``bench.memory``); the page is made from those files. ``--from DIR``
makes the page from the files of an earlier run (``--json-dir DIR`` keeps them).

Run ``python -m bench.report --help`` for the options.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.asgi import source_revision
from bench.timing import environment

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
CANDIDATE = "ctxflask"
#: The benchmarks, in the order they run, and how long each may take (s).
COMPONENTS: dict[str, float] = {
    "inprocess": 300,
    "asgi": 420,
    "server": 900,
    "imports": 300,
    "memory": 420,
}
#: Peers' names as the page shows them.
PEER_NAMES: dict[str, str] = {
    "flask": "Flask",
    "starlette": "Starlette",
    "quart": "Quart",
    "flask-wsgitoasgi": "Flask (WsgiToAsgi)",
    "raw-asgi": "raw ASGI (floor)",
    "raw-wsgi": "raw WSGI (floor)",
}
PEER_COLOURS: dict[str, str] = {
    "flask": "#4c72b0",
    "starlette": "#dd8452",
    "quart": "#55a868",
    "flask-wsgitoasgi": "#8172b3",
    "raw-asgi": "#937860",
    "raw-wsgi": "#8c8c8c",
}
#: Where the load average at the start counts as a busy machine (per core).
BUSY_LOAD_PER_CPU = 0.25


# -- running ----------------------------------------------------------------------------


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_component(name: str, path: Path, quick: bool) -> dict[str, Any]:
    """Run ``bench.<name>`` with ``--json path``; its output goes to the terminal."""
    command = [sys.executable, "-m", f"bench.{name}", "--json", str(path)]
    if quick:
        command.append("--quick")
    print(f"\n== python -m bench.{name}{' --quick' if quick else ''}", flush=True)
    started = time.monotonic()
    before = load_average()
    try:
        done = subprocess.run(
            command, cwd=REPO_ROOT, timeout=COMPONENTS[name], check=False
        )
        status = "ok" if done.returncode == 0 else f"exit code {done.returncode}"
    except subprocess.TimeoutExpired:
        status = f"stopped after {COMPONENTS[name]:g} s"
    if status == "ok" and not path.exists():
        status = "wrote no figures"
    return {
        "status": status,
        "seconds": round(time.monotonic() - started, 1),
        "load_before": before,
        "load_after": load_average(),
    }


# -- the rows of the page ---------------------------------------------------------------


@dataclass
class Row:
    """ctxflask against one peer in one scenario."""

    section: str
    scenario: str
    peer: str
    ours: float
    theirs: float
    unit: str
    lower_is_better: bool
    target: float | None = None
    floor: bool = False
    reported: float | None = None  # the benchmark's own ratio, when not the medians'

    @property
    def ratio(self) -> float:
        """ctxflask's figure over the peer's, as the benchmark reports it."""
        if self.reported is not None:
            return self.reported
        return self.ours / self.theirs

    @property
    def advantage(self) -> float:
        """How many times better ctxflask does than the peer (> 1: ctxflask ahead)."""
        return 1 / self.ratio if self.lower_is_better else self.ratio

    @property
    def target_advantage(self) -> float | None:
        if self.target is None:
            return None
        return 1 / self.target if self.lower_is_better else self.target

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        if self.lower_is_better:
            return self.ratio <= self.target
        return self.ratio >= self.target

    @property
    def label(self) -> str:
        """The scenario named with its section, for tables that mix sections."""
        return f"{SECTION_LABELS[self.section]} {self.scenario}".strip()

    def ratio_text(self) -> str:
        if self.floor:
            return f"{self.ratio:.3f} of floor"
        return f"{self.ratio:.3f}x"

    def target_text(self) -> str:
        if self.target is None:
            return ""
        if self.floor:
            return f">= {self.target:g} of floor"
        return f"{'<=' if self.lower_is_better else '>='} {self.target:g}x"


SECTIONS: dict[str, str] = {
    "wsgi": "In-process WSGI: µs per request (lower is better)",
    "asgi": "In-process ASGI: µs per request (lower is better)",
    "server": "Servers, one worker: requests/s (higher is better)",
    "imports": "Import time: ms per whole process (lower is better)",
    "memory": "Memory: RSS of one uvicorn worker, MiB (lower is better)",
}


SECTION_LABELS: dict[str, str] = {
    "wsgi": "WSGI in-process",
    "asgi": "ASGI in-process",
    "server": "",
    "imports": "",
    "memory": "memory,",
}


def wsgi_rows(data: dict[str, Any]) -> list[Row]:
    rows = []
    for result in data["results"]:
        medians = result["median_us"]
        if CANDIDATE in medians and "flask" in medians:
            rows.append(
                Row(
                    "wsgi",
                    result["scenario"],
                    "flask",
                    medians[CANDIDATE],
                    medians["flask"],
                    "µs",
                    True,
                    result.get("target"),
                )
            )
    return rows


def asgi_rows(data: dict[str, Any]) -> list[Row]:
    rows = []
    for result in data["results"]:
        medians = result["median_us"]
        scenario = result["scenario"]
        if result.get("requests_per_call", 1) > 1:
            scenario += f" (x{result['requests_per_call']})"
        for key, figures in result["ratios"].items():
            candidate, _, peer = key.partition("/")
            if candidate != CANDIDATE or peer not in medians:
                continue
            rows.append(
                Row(
                    "asgi",
                    scenario,
                    peer,
                    medians[CANDIDATE],
                    medians[peer],
                    "µs",
                    True,
                    figures.get("target"),
                )
            )
    return rows


def server_rows(data: dict[str, Any]) -> list[Row]:
    rows = []
    for result in data["results"]:
        medians = result["median_requests_per_s"]
        for peer, figures in result["ratios"].items():
            if CANDIDATE not in medians or not medians.get(peer):
                continue
            rows.append(
                Row(
                    "server",
                    f"{result['group']} {result['scenario']}",
                    peer,
                    medians[CANDIDATE],
                    medians[peer],
                    "req/s",
                    False,
                    figures.get("target"),
                    figures.get("floor", False),
                    figures.get("ratio"),
                )
            )
    return rows


def import_rows(data: dict[str, Any]) -> list[Row]:
    medians = data["median_ms"]
    return [
        Row(
            "imports",
            "import",
            peer,
            medians[CANDIDATE],
            medians[peer],
            "ms",
            True,
            figures.get("target"),
        )
        for peer, figures in data["ratios"].items()
    ]


def memory_rows(data: dict[str, Any]) -> list[Row]:
    by_case: dict[str, dict[str, dict[str, Any]]] = {}
    for result in data["results"]:
        by_case.setdefault(result["case"], {})[result["framework"]] = result
    connections = data["config"]["connections"]
    labels = {
        "websockets": f"{connections:,} open WebSockets",
        "slow": f"{connections:,} concurrent slow requests",
    }
    rows = []
    for case, results in by_case.items():
        ours = results.get(CANDIDATE)
        if ours is None:
            continue
        for peer, theirs in results.items():
            if peer != CANDIDATE:
                rows.append(
                    Row(
                        "memory",
                        labels.get(case, case),
                        peer,
                        ours["peak_rss_kib"] / 1024,
                        theirs["peak_rss_kib"] / 1024,
                        "MiB",
                        True,
                    )
                )
    return rows


ROW_MAKERS = {
    "inprocess": wsgi_rows,
    "asgi": asgi_rows,
    "server": server_rows,
    "imports": import_rows,
    "memory": memory_rows,
}


# -- the chart --------------------------------------------------------------------------


def draw_chart(rows: Sequence[Row], path: Path, subtitle: str) -> None:
    """Horizontal bars of ctxflask's advantage over each peer per scenario, one panel
    per section, on a log scale centred on 1.0; the targets marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.artist import Artist
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    sections = [s for s in SECTIONS if any(r.section == s for r in rows)]
    counts = [sum(r.section == s for r in rows) for s in sections]
    figure, axes = plt.subplots(
        len(sections),
        1,
        figsize=(10, 1.6 + 0.3 * sum(counts) + 0.55 * len(sections)),
        gridspec_kw={"height_ratios": [c + 1.2 for c in counts]},
        sharex=True,
        squeeze=False,
    )
    values = [r.advantage for r in rows] + [
        t for r in rows if (t := r.target_advantage) is not None
    ]
    low = min(0.25, min(values) / 2)
    high = max(4.0, max(values) * 1.6)
    for axis, section in zip(axes[:, 0], sections, strict=True):
        chosen = [r for r in rows if r.section == section][::-1]
        positions = range(len(chosen))
        axis.barh(
            positions,
            [r.advantage - 1 for r in chosen],
            left=1,
            color=[PEER_COLOURS.get(r.peer, "#999999") for r in chosen],
            height=0.7,
        )
        for y, row in zip(positions, chosen, strict=True):
            right = row.advantage >= 1
            target = row.target_advantage
            # Past the bar's end, and past the target's mark when it lies further out.
            end, gap = row.advantage, 1.05
            if target is not None and (target > end if right else target < end):
                end, gap = target, 1.14
            axis.text(
                end * (gap if right else 1 / gap),
                y,
                f"{row.advantage:.2f}",
                va="center",
                ha="left" if right else "right",
                fontsize=7,
            )
            if target is not None:
                colour = "#2a7d2a" if row.met else "#c0392b"
                axis.plot([target], [y], marker="D", color=colour, markersize=6)
        axis.set_yticks(list(positions))
        axis.set_yticklabels(
            [f"{r.scenario} vs {PEER_NAMES.get(r.peer, r.peer)}" for r in chosen],
            fontsize=8,
        )
        axis.axvline(1.0, color="black", linewidth=1)
        # The figures' direction is in the tables; every bar reads "higher is better".
        title = SECTIONS[section].split(" (")[0]
        axis.set_title(title, fontsize=9, loc="left")
        axis.set_xscale("log")
        axis.set_xlim(low, high)
        axis.set_ylim(-0.7, len(chosen) - 0.3)
        axis.grid(axis="x", which="both", linewidth=0.3, alpha=0.5)
    ticks = [t for t in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50) if low <= t <= high]
    bottom = axes[-1, 0]
    bottom.set_xticks(ticks)
    bottom.set_xticklabels([f"{t:g}" for t in ticks])
    bottom.set_xlabel(
        "ctxflask's advantage (log scale; > 1: ctxflask ahead): the peer's cost over"
        " ctxflask's (µs, ms, MiB),\nor ctxflask's requests/s over the peer's"
        " (against a raw ASGI or WSGI app: the fraction of that floor ctxflask reaches)",
        fontsize=8,
    )
    peers = [p for p in PEER_COLOURS if any(r.peer == p for r in rows)]
    handles: list[Artist] = [
        Patch(color=PEER_COLOURS[p], label=PEER_NAMES[p]) for p in peers
    ]
    handles += [
        Line2D([], [], marker="D", color="#2a7d2a", linestyle="", label="target, met"),
        Line2D(
            [], [], marker="D", color="#c0392b", linestyle="", label="target, missed"
        ),
    ]
    height = figure.get_figheight()
    figure.suptitle(
        f"ctxflask against each peer ({subtitle})", fontsize=10, y=1 - 0.12 / height
    )
    figure.legend(
        handles=handles,
        loc="upper center",
        ncol=4,
        fontsize=8,
        frameon=False,
        bbox_to_anchor=(0.5, 1 - 0.32 / height),
    )
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.6 / height))
    figure.savefig(path, dpi=110)
    plt.close(figure)


# -- the page ---------------------------------------------------------------------------


def _figure(value: float, unit: str) -> str:
    if unit == "req/s":
        return f"{value:,.0f} req/s"
    if unit == "µs":
        return f"{value:,.1f} µs"
    if unit == "ms":
        return f"{value:,.0f} ms"
    return f"{value:,.1f} {unit}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _verdict(row: Row) -> str:
    return {True: "met", False: "**missed**", None: ""}[row.met]


def rows_table(rows: Sequence[Row], labelled: bool = False) -> str:
    return _table(
        ["scenario", "ctxflask", "peer", "peer's", "ratio", "target", ""],
        [
            [
                row.label if labelled else row.scenario,
                _figure(row.ours, row.unit),
                PEER_NAMES.get(row.peer, row.peer),
                _figure(row.theirs, row.unit),
                row.ratio_text(),
                row.target_text(),
                _verdict(row),
            ]
            for row in rows
        ],
    )


def offenders_section(data: dict[str, Any]) -> str:
    lists = data.get("offenders") or {}
    titles = {
        "direct_imports": "Modules of other packages that ctxflask's modules import,"
        " by cumulative time (a dependency shared by several modules is charged to the"
        " first that imports it)",
        "own_modules": "ctxflask's own modules, by cumulative time",
        "self_time": "Every module imported, by its own time",
    }
    parts = []
    for key, title in titles.items():
        if not lists.get(key):
            continue
        parts.append(f"{title}:\n")
        parts.append(
            _table(
                ["module", "cumulative ms", "self ms", "imported by"],
                [
                    [
                        f"`{entry['module']}`",
                        f"{entry['cumulative_us'] / 1000:.1f}",
                        f"{entry['self_us'] / 1000:.1f}",
                        f"`{entry['imported_by']}`" if entry["imported_by"] else "-",
                    ]
                    for entry in lists[key]
                ],
            )
        )
        parts.append("")
    return "\n".join(parts)


def memory_section(data: dict[str, Any]) -> str:
    table = _table(
        [
            "case",
            "framework",
            "idle RSS",
            "loaded RSS",
            "VmHWM",
            "growth per connection",
            "at once",
        ],
        [
            [
                result["case"],
                result["framework"],
                f"{result['idle_rss_kib'] / 1024:.1f} MiB",
                f"{result['peak_rss_kib'] / 1024:.1f} MiB",
                f"{result['hwm_kib'] / 1024:.1f} MiB",
                f"{result['per_connection_kib']:.1f} KiB",
                str(result.get("open", result.get("max_in_flight", ""))),
            ]
            for result in data["results"]
        ],
    )
    return table


def machine_lines(
    data: dict[str, dict[str, Any]], runs: dict[str, dict[str, Any]]
) -> list[str]:
    env = next((d["environment"] for d in data.values() if "environment" in d), None)
    env = env or environment()
    cpu = "unknown CPU"
    memory = ""
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as info:
        for line in info:
            if line.startswith("MemTotal"):
                memory = f", {int(line.split()[1]) / 1024 / 1024:.0f} GiB of memory"
                break
    lines = [
        f"- Machine: {os.cpu_count()} CPUs ({cpu}){memory}; {env['platform']};"
        f" {env['implementation']} {env['python']}.",
    ]
    if runs:
        lines.append(
            "- Load average (1 min) before and after each benchmark: "
            + "; ".join(
                f"{name} {run['load_before'][0]:.1f} -> {run['load_after'][0]:.1f}"
                f" ({run['seconds']:.0f} s)"
                for name, run in runs.items()
            )
            + "."
        )
    return lines


def busy(runs: dict[str, dict[str, Any]]) -> bool:
    cpus = os.cpu_count() or 1
    return any(
        max(run["load_before"][0], run["load_after"][0]) > BUSY_LOAD_PER_CPU * cpus
        for run in runs.values()
    )


def versions_line(data: dict[str, dict[str, Any]]) -> str:
    versions: dict[str, str] = {}
    for figures in data.values():
        versions.update(figures.get("versions", {}))
    # The benchmarks' names for ctxflask's settings and wrappers, and the raw apps, are
    # not distributions.
    aliases = ("ctxflask-", "flask-wsgitoasgi")
    return ", ".join(
        f"{name} {version}"
        for name, version in sorted(versions.items())
        if version and version != "unknown" and not name.startswith(aliases)
    )


def write_page(
    data: dict[str, dict[str, Any]],
    runs: dict[str, dict[str, Any]],
    out: Path,
    quick: bool,
    note: str | None,
    started: str,
) -> None:
    """Write ``results.md`` and ``results.png`` into *out*."""
    rows = [
        row
        for name, maker in ROW_MAKERS.items()
        if name in data
        for row in maker(data[name])
    ]
    sources = {
        n: d["ctxflask_source"] for n, d in data.items() if d.get("ctxflask_source")
    }
    revisions = sorted(set(sources.values())) or [source_revision()]
    if len(revisions) == 1:
        measured = f"git revision `{revisions[0]}`"
    else:  # commits landed while the benchmarks ran: say which one measured what
        measured = "git revisions " + ", ".join(
            f"`{revision}` ({name})" for name, revision in sources.items()
        )
    chart = out / "results.png"
    if rows:
        draw_chart(rows, chart, f"{started}, ctxflask {', '.join(revisions)}")

    lines = [
        "# Benchmark results",
        "",
        "Written by `python -m bench.report` (see [README.md](README.md) for what each"
        " benchmark measures and how). Every ratio is ctxflask's figure over the peer's,"
        " both from the same run, in rounds interleaved between them.",
        "",
        f"- Run: started {started}, ctxflask at {measured}"
        + (
            " (`+changes`: with edits not yet committed in `ctxflask/`)"
            if any("+" in r for r in revisions)
            else ""
        )
        + (" — a `--quick` smoke run: the figures are rough." if quick else "."),
        *machine_lines(data, runs),
        f"- Versions: {versions_line(data)}.",
    ]
    server = data.get("server")
    if server:
        lines.append(
            f"- Servers: load from `{server['load_generator']}`,"
            f" {server['config']['threads']} thread,"
            f" {server['config']['connections']} connections,"
            f" {server['config']['duration']:g} s per round,"
            f" rounds per server: {server['config']['rounds']}; one worker per server."
        )
    if runs and busy(runs):
        lines.append(
            "- **Noisy:** the machine has 2 cores and was shared with other work during"
            " this run (see the load averages): the absolute figures move between runs."
            " The ratios, taken within one run from interleaved rounds, are what counts."
        )
    if note:
        lines.append(f"- Note: {note}")
    failed = {n: r["status"] for n, r in runs.items() if r["status"] != "ok"}
    if failed:
        lines.append(
            "- Not measured: "
            + "; ".join(f"`bench.{n}` ({status})" for n, status in failed.items())
            + "."
        )
    lines += ["", "![ctxflask against each peer](results.png)", ""]

    targeted = [r for r in rows if r.target is not None]
    if targeted:
        met = sum(bool(r.met) for r in targeted)
        lines += [
            "## Against the targets",
            "",
            f"{met} of {len(targeted)} targets met.",
            "",
            rows_table(targeted, labelled=True),
            "",
        ]
    for section, title in SECTIONS.items():
        chosen = [r for r in rows if r.section == section]
        if not chosen:
            continue
        lines += [f"## {title}", "", rows_table(chosen), ""]
        if section == "server":
            lines += [
                "Each ratio is the median of the rounds' ratios (a round's ctxflask"
                " figure over the peer's in the same round, run back to back), which"
                " cancels the machine's drift between rounds; the figures beside it"
                " are each server's median.",
                "",
            ]
        if section == "imports":
            imports = data["imports"]
            floor = imports["median_ms"].get("python")
            if floor is not None:
                lines += [
                    f"`python -c pass` (the interpreter's start, in every row):"
                    f" {floor:.0f} ms. Net of it, ctxflask's import over each peer's: "
                    + ", ".join(
                        f"{PEER_NAMES.get(p, p)} {f['net_ratio']:.2f}x"
                        for p, f in imports["ratios"].items()
                        if f.get("net_ratio") is not None
                    )
                    + ".",
                    "",
                    f'`python -X importtime -c "import ctxflask"`, median of'
                    f" {imports['importtime_runs']} runs, the modules imported at"
                    " start-up left out: what a lazy import could save.",
                    "",
                    offenders_section(imports),
                ]
        if section == "memory":
            lines += [memory_section(data["memory"]), ""]
    (out / "results.md").write_text("\n".join(lines).rstrip() + "\n")


# -- command line -----------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.report",
        description="Run every benchmark and write bench/results.md and"
        " bench/results.png.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke runs of every benchmark"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=list(COMPONENTS),
        help="run only this benchmark (repeatable; default all)",
    )
    parser.add_argument(
        "--from",
        dest="source",
        metavar="DIR",
        help="make the page from the JSON files of an earlier run (--json-dir)",
    )
    parser.add_argument(
        "--json-dir", metavar="DIR", help="keep each benchmark's JSON figures in DIR"
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        default=str(BENCH_DIR),
        help="where results.md and results.png go (default bench/)",
    )
    parser.add_argument("--note", help="a line of context added to the page")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    names = [n for n in COMPONENTS if args.only is None or n in args.only]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-report-") as scratch:
        folder = Path(args.source or args.json_dir or scratch)
        folder.mkdir(parents=True, exist_ok=True)
        quick = args.quick
        started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        if args.source is None:
            for name in names:
                runs[name] = run_component(name, folder / f"{name}.json", args.quick)
            (folder / "runs.json").write_text(
                json.dumps(
                    {"quick": args.quick, "started": started, "runs": runs}, indent=2
                )
                + "\n"
            )
        elif (folder / "runs.json").exists():
            saved = json.loads((folder / "runs.json").read_text())
            runs, quick = saved["runs"], saved["quick"]
            started = saved.get("started", started)
        data = {
            name: json.loads((folder / f"{name}.json").read_text())
            for name in names
            if (folder / f"{name}.json").exists()
        }
        if not data:
            print("no figures to report", file=sys.stderr)
            return 2
        write_page(data, runs, out, quick, args.note, started)
    print(f"\nwrote {out / 'results.md'} and {out / 'results.png'}")
    failed = [n for n, r in runs.items() if r["status"] != "ok"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
