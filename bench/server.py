"""Server throughput: ctxflask beside its peers under the servers it is deployed with.

Each row is a group of servers of one kind, one worker each, on 127.0.0.1 and free
ports, one process per app (see :func:`groups`):

- ``uvicorn`` (uvloop and httptools, as deployed): ctxflask (``app.asgi``), Starlette,
  Quart, and a hand-written ASGI app (``bench.server_apps.raw_asgi``), the server's
  floor: ctxflask's requests/s over the raw app's is its "fraction of floor";
- ``gunicorn-sync`` and ``gunicorn-gthread``: ctxflask's WSGI app beside Flask 3.1's
  and a hand-written WSGI app (``bench.server_apps.raw_wsgi``), these servers' floor;
- ``gunicorn-asgi`` (``-k asgi``, uvloop): ctxflask's app object beside Starlette;
- ``granian-asgi``: ctxflask, Starlette, Quart and the raw app; ``granian-wsgi``:
  ctxflask beside Flask and the raw WSGI app.

A group's servers run together, and only while the group is measured. A load generator
on loopback drives one server at a time: ``wrk`` if it is installed (Debian:
``apt-get install wrk``), else a small asyncio-socket load generator of this module. The
rounds are interleaved across a group's servers (the order flips every round) and the
figure is the median requests/s.

Only 127.0.0.1 is ever contacted. Run ``python -m bench.server --help`` for the options.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import importlib.util
import multiprocessing
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from typing import IO

import httpx

from bench.apps import Scenario
from bench.apps import SCENARIOS as WSGI_SCENARIOS
from bench.asgi import check_body
from bench.asgi import source_revision
from bench.asgi import version_of
from bench.asgi_apps import SCENARIOS as ASGI_SCENARIOS
from bench.timing import environment
from bench.timing import render_table
from bench.timing import report_problems
from bench.timing import write_json

HOST = "127.0.0.1"
CANDIDATE = "ctxflask"
#: The peers whose requests/s is the server's floor: ctxflask's ratio to one is reported
#: as the fraction of the floor ctxflask reaches.
FLOOR = "raw-asgi"
WSGI_FLOOR = "raw-wsgi"
FLOORS = (FLOOR, WSGI_FLOOR)
REPO_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

_ASGI = {s.name: s for s in ASGI_SCENARIOS}
_WSGI = {s.name: s for s in WSGI_SCENARIOS}

#: Targets (ctxflask's requests/s over the peer's, at least): (group, scenario, peer).
TARGETS: dict[tuple[str, str, str], float] = {
    ("uvicorn", "async", "starlette"): 1.0,
    ("uvicorn", "sync", "starlette"): 1.3,
    ("uvicorn", "async", FLOOR): 0.6,
    ("gunicorn-sync", "hello", "flask"): 1.5,
}
#: The distribution behind each app name, for the versions reported.
DISTRIBUTIONS: dict[str, str] = {
    "ctxflask": "ctxflask",
    "starlette": "starlette",
    "quart": "quart",
    "flask": "flask",
    FLOOR: "",
    WSGI_FLOOR: "",
}


@dataclass(frozen=True)
class Config:
    """How much to run."""

    rounds: int
    duration: float  # seconds per measured run
    warmup: float  # seconds of load per server and scenario before the rounds
    threads: int
    connections: int


FULL = Config(rounds=9, duration=1.0, warmup=1.0, threads=1, connections=32)
QUICK = Config(rounds=1, duration=1.0, warmup=0.5, threads=1, connections=16)


# -- what is served ---------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """Servers of one kind, one per app; the scenarios sent and which apps get each."""

    name: str
    description: str
    commands: dict[str, list[str]]  # app name -> command line ("{port}" filled in)
    scenarios: tuple[tuple[Scenario, tuple[str, ...]], ...]
    version: str  # the server's distribution

    def peers(self, scenario: str) -> list[str]:
        """The apps ctxflask is compared with on *scenario*."""
        for s, names in self.scenarios:
            if s.name == scenario:
                return [n for n in names if n != CANDIDATE]
        return []


def _uvicorn(target: str, loop: str, http: str) -> list[str]:
    return [
        sys.executable,
        *("-m", "uvicorn", "--factory", target, "--host", HOST, "--port", "{port}"),
        *("--workers", "1", "--loop", loop, "--http", http),
        *("--log-level", "warning", "--no-access-log"),
    ]


def _gunicorn(worker: str, target: str, *options: str) -> list[str]:
    return [
        sys.executable,
        *("-m", "gunicorn", "--no-control-socket", "-k", worker, *options),
        *("--workers", "1", "--bind", f"{HOST}:{{port}}", "--log-level", "warning"),
        target,
    ]


def _granian(interface: str, target: str, *options: str) -> list[str]:
    return [
        str(BIN / "granian"),
        *("--interface", interface, "--host", HOST, "--port", "{port}"),
        *("--workers", "1", "--log-level", "warning", *options, target),
    ]


def groups(loop: str, http: str) -> list[Group]:
    """Every group of servers, in the order they run."""
    asgi_factories = {
        "ctxflask": "bench.asgi_apps:ctxflask_asgi",
        "starlette": "bench.asgi_apps:starlette_asgi",
        "quart": "bench.asgi_apps:quart_asgi",
        FLOOR: "bench.server_apps:raw_asgi_factory",
    }
    wsgi_apps = {
        "ctxflask": "bench.server_apps:ctxflask_wsgi",
        "flask": "bench.server_apps:flask_wsgi",
        WSGI_FLOOR: "bench.server_apps:raw_wsgi",
    }
    frameworks = ("ctxflask", "starlette", "quart")
    wsgi_hello = ((_WSGI["hello"], ("ctxflask", "flask", WSGI_FLOOR)),)
    return [
        Group(
            "uvicorn",
            f"uvicorn, 1 worker, --loop {loop} --http {http}",
            {n: _uvicorn(t, loop, http) for n, t in asgi_factories.items()},
            (
                (_ASGI["async"], (*frameworks, FLOOR)),
                (_ASGI["json"], (*frameworks, FLOOR)),
                (_ASGI["sync"], (*frameworks, FLOOR)),
            ),
            "uvicorn",
        ),
        Group(
            "gunicorn-sync",
            "gunicorn -k sync, 1 worker (WSGI)",
            {n: _gunicorn("sync", t) for n, t in wsgi_apps.items()},
            wsgi_hello,
            "gunicorn",
        ),
        Group(
            "gunicorn-gthread",
            "gunicorn -k gthread --threads 8, 1 worker (WSGI)",
            {
                n: _gunicorn("gthread", t, "--threads", "8")
                for n, t in wsgi_apps.items()
            },
            wsgi_hello,
            "gunicorn",
        ),
        Group(
            "gunicorn-asgi",
            "gunicorn -k asgi --asgi-loop uvloop, 1 worker",
            {
                n: _gunicorn(
                    "asgi", f"bench.server_apps:{n}_app", "--asgi-loop", "uvloop"
                )
                for n in ("ctxflask", "starlette")
            },
            ((_ASGI["async"], ("ctxflask", "starlette")),),
            "gunicorn",
        ),
        Group(
            "granian-asgi",
            "granian --interface asgi --loop uvloop, 1 worker",
            {
                n: _granian("asgi", t, "--loop", "uvloop", "--factory")
                for n, t in asgi_factories.items()
            },
            ((_ASGI["async"], (*frameworks, FLOOR)),),
            "granian",
        ),
        Group(
            "granian-wsgi",
            "granian --interface wsgi, 1 worker",
            {n: _granian("wsgi", t) for n, t in wsgi_apps.items()},
            wsgi_hello,
            "granian",
        ),
    ]


def select(
    all_groups: Sequence[Group],
    servers: Sequence[str] | None,
    scenarios: Sequence[str] | None,
    frameworks: Sequence[str] | None,
) -> list[Group]:
    """The groups, scenarios and apps the options ask for (groups left empty dropped)."""
    chosen = []
    for group in all_groups:
        if servers is not None and group.name not in servers:
            continue
        kept = []
        for scenario, names in group.scenarios:
            if scenarios is not None and scenario.name not in scenarios:
                continue
            names = tuple(n for n in names if frameworks is None or n in frameworks)
            if names:
                kept.append((scenario, names))
        if kept:
            used = {n for _, names in kept for n in names}
            commands = {n: c for n, c in group.commands.items() if n in used}
            chosen.append(
                Group(
                    group.name, group.description, commands, tuple(kept), group.version
                )
            )
    return chosen


# -- servers ----------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port of 127.0.0.1 that is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def resolve_uvicorn(loop: str, http: str) -> tuple[str, str]:
    """What uvicorn's ``auto`` picks for the event loop and the HTTP parser here."""
    if loop == "auto":
        loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    if http == "auto":
        http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return loop, http


@dataclass
class Server:
    """One server process (and the workers it forks) serving one app."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: IO[bytes]

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log_tail(self, lines: int = 20) -> str:
        self.log.flush()
        text = Path(self.log.name).read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def _signal_group(self, signum: int) -> None:
        # The server was started in a session of its own: its process group holds the
        # workers it forked, and nothing else.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    def stop(self) -> None:
        """SIGTERM to the server and its workers (a graceful shutdown), then SIGKILL if
        they linger."""
        if self.process.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.process.wait()
        self._signal_group(signal.SIGKILL)  # a worker its parent left behind
        self.log.close()


def start_command(name: str, command: Sequence[str], **popen: Any) -> Server:
    """Start *command* (``{port}`` filled with a free port of 127.0.0.1) as *name*."""
    port = free_port()
    argv = [part.replace("{port}", str(port)) for part in command]
    log = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log")  # noqa: SIM115
    process = subprocess.Popen(
        argv,
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a Ctrl-C reaches us only; we stop it ourselves
        **popen,
    )
    return Server(name, port, process, log)


def wait_ready(server: Server, client: httpx.Client, path: str) -> None:
    """Wait until *server* answers HTTP on *path*; raise if it exits or takes too long."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{server.name}: server exited ({server.process.returncode}):\n"
                + server.log_tail()
            )
        try:
            client.get(server.base_url + path, timeout=1.0)
        except httpx.TransportError:
            time.sleep(0.1)
            continue
        return
    raise RuntimeError(f"{server.name}: not answering after {START_TIMEOUT:g} s")


@contextlib.contextmanager
def running_group(group: Group) -> Iterator[dict[str, Server]]:
    """Start the group's servers, wait until all answer; stop them all on exit."""
    servers: dict[str, Server] = {}
    try:
        for name, command in group.commands.items():
            servers[name] = start_command(f"{group.name}-{name}", command)
        with httpx.Client() as client:
            for name, server in servers.items():
                first = next(s for s, names in group.scenarios if name in names)
                wait_ready(server, client, first.path)
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def verify(group: Group, servers: dict[str, Server]) -> list[str]:
    """Check every server on each of its scenarios over HTTP; return the problems."""
    problems = []
    with httpx.Client() as client:
        for scenario, names in group.scenarios:
            for name in names:
                server = servers[name]
                where = f"{group.name} {name} {scenario.method} {scenario.path}"
                try:
                    response = client.request(
                        scenario.method, server.base_url + scenario.path, timeout=10.0
                    )
                except httpx.HTTPError as exc:
                    problems.append(f"{where}: {type(exc).__name__}: {exc}")
                    continue
                problem = check_body(
                    where,
                    response.status_code,
                    response.headers.get("content-type", ""),
                    response.content,
                    scenario,
                )
                if problem is not None:
                    problems.append(problem)
    return problems


# -- load generators --------------------------------------------------------------------


@dataclass
class Load:
    """The outcome of one run of the load generator."""

    requests_per_s: float
    requests: int
    errors: int  # non-2xx/3xx answers, socket errors, timeouts
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    notes: list[str] = field(default_factory=list)


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _parse_ms(text: str) -> float | None:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    return float(match[1]) * _UNITS_MS[match[2]] if match else None


def parse_wrk(output: str) -> Load:
    """The figures of wrk's report (run with ``--latency``)."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    total = re.search(r"^\s*(\d+) requests in ", output, re.M)
    if rps is None or total is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    errors = 0
    notes = []
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non_2xx:
        errors += int(non_2xx[1])
    sockets = re.search(r"Socket errors:(.*)$", output, re.M)
    if sockets:
        errors += sum(int(n) for n in re.findall(r"\d+", sockets[1]))
        notes.append(f"socket errors:{sockets[1]}")
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    return Load(
        requests_per_s=float(rps[1]),
        requests=int(total[1]),
        errors=errors,
        latency_p50_ms=_parse_ms(p50[1]) if p50 else None,
        latency_p99_ms=_parse_ms(p99[1]) if p99 else None,
        notes=notes,
    )


def run_wrk(url: str, seconds: float, config: Config) -> Load:
    """One wrk run against *url* (a 127.0.0.1 address)."""
    command = [
        "wrk",
        f"-t{config.threads}",
        f"-c{config.connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        url,
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 30, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
    return parse_wrk(done.stdout)


def wrk_version() -> str:
    """wrk's version line (``wrk -v`` prints it and exits non-zero)."""
    done = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    lines = (done.stdout or done.stderr).strip().splitlines()
    version = re.sub(r"\s*\[.*", "", lines[0]) if lines else "(unknown version)"
    return version if version.startswith("wrk") else f"wrk {version}"


async def _python_connection(
    port: int, request: bytes, deadline: float, counts: list[int]
) -> None:
    """Keep one connection busy with request after request until *deadline*."""
    try:
        reader, writer = await asyncio.open_connection(HOST, port)
    except OSError:
        counts[1] += 1
        return
    try:
        while time.monotonic() < deadline:
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            chunked = False
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding" and b"chunked" in value.lower():
                    chunked = True
            if chunked:
                while (size := int((await reader.readline()).strip(), 16)) > 0:
                    await reader.readexactly(size + 2)
                await reader.readline()
            else:
                await reader.readexactly(length)
            counts[0 if status_line.startswith(b"HTTP/1.1 200") else 1] += 1
    except (OSError, asyncio.IncompleteReadError, ValueError):
        counts[1] += 1
    finally:
        writer.close()


def python_load_process(
    port: int, path: str, connections: int, seconds: float
) -> tuple[int, int, float]:
    """In a worker process: keep *connections* busy for *seconds*; return (answers
    with 200, errors, elapsed seconds)."""
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()
    counts = [0, 0]

    async def main() -> float:
        started = time.monotonic()
        deadline = started + seconds
        await asyncio.gather(
            *(
                _python_connection(port, request, deadline, counts)
                for _ in range(connections)
            )
        )
        return time.monotonic() - started

    elapsed = asyncio.run(main())
    return counts[0], counts[1], elapsed


class PythonLoad:
    """The fallback load generator: asyncio sockets in ``threads`` processes (so it is
    not held to one core by the GIL), keep-alive HTTP/1.1, one request at a time per
    connection. It is slower than wrk: compare its figures only with each other."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=config.threads, mp_context=multiprocessing.get_context("fork")
        )

    def run(self, port: int, path: str, seconds: float) -> Load:
        config = self.config
        shares = [
            config.connections // config.threads
            + (1 if i < config.connections % config.threads else 0)
            for i in range(config.threads)
        ]
        futures = [
            self.pool.submit(python_load_process, port, path, share, seconds)
            for share in shares
            if share
        ]
        outcomes = [f.result(timeout=seconds + 30) for f in futures]
        ok = sum(o[0] for o in outcomes)
        errors = sum(o[1] for o in outcomes)
        rps = sum(o[0] / o[2] for o in outcomes if o[2] > 0)
        return Load(requests_per_s=rps, requests=ok + errors, errors=errors)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


# -- the run ----------------------------------------------------------------------------


@dataclass
class ScenarioResult:
    """Requests/s of every round per app, for one group and scenario."""

    group: str
    scenario: str
    loads: dict[str, list[Load]]

    @property
    def medians(self) -> dict[str, float]:
        return {
            name: statistics.median(load.requests_per_s for load in loads)
            for name, loads in self.loads.items()
        }

    @property
    def peers(self) -> list[str]:
        return [name for name in self.loads if name != CANDIDATE]

    def ratio(self, peer: str) -> float | None:
        """ctxflask's requests/s over *peer*'s (higher is better): the median of the
        rounds' ratios, each round's ctxflask figure over the peer's in the same round.

        Rounds of the same index run back to back, so a machine that slows down or
        speeds up between rounds (other work on it) changes both figures of a round
        alike, and the ratio cancels it; the medians' ratio does not.
        """
        ours = self.loads.get(CANDIDATE)
        theirs = self.loads.get(peer)
        if not ours or not theirs:
            return None
        pairs = [
            a.requests_per_s / b.requests_per_s
            for a, b in zip(ours, theirs, strict=True)
            if b.requests_per_s > 0
        ]
        return statistics.median(pairs) if pairs else None

    def ratio_of_medians(self, peer: str) -> float | None:
        """ctxflask's median requests/s over *peer*'s."""
        medians = self.medians
        if CANDIDATE not in medians or not medians.get(peer):
            return None
        return medians[CANDIDATE] / medians[peer]

    def target(self, peer: str) -> float | None:
        return TARGETS.get((self.group, self.scenario, peer))

    @property
    def errors(self) -> dict[str, int]:
        return {
            name: sum(x.errors for x in loads) for name, loads in self.loads.items()
        }

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view of the result."""
        return {
            "group": self.group,
            "scenario": self.scenario,
            "median_requests_per_s": self.medians,
            "rounds": {
                name: [asdict(load) for load in loads]
                for name, loads in self.loads.items()
            },
            "errors": self.errors,
            "ratios": {
                peer: {
                    "ratio": self.ratio(peer),
                    "ratio_of_medians": self.ratio_of_medians(peer),
                    "target": self.target(peer),
                    "floor": peer in FLOORS,
                }
                for peer in self.peers
            },
        }


def format_table(results: Sequence[ScenarioResult]) -> str:
    """One row per (server, scenario, peer): ctxflask's and the peer's median
    requests/s, the ratio (the fraction of the floor against the raw app) and target."""
    rows = [
        [
            "server",
            "scenario",
            f"{CANDIDATE} req/s",
            "peer",
            "peer req/s",
            f"{CANDIDATE}/peer",
            "target",
            "",
        ]
    ]
    for result in results:
        medians = result.medians
        own = f"{medians[CANDIDATE]:,.0f}" if CANDIDATE in medians else "-"
        for peer in result.peers:
            ratio = result.ratio(peer)
            target = result.target(peer)
            verdict = ""
            if ratio is not None and target is not None:
                verdict = "ok" if ratio >= target else "MISSED"
            cell = "-" if ratio is None else f"{ratio:.3f}x"
            if peer in FLOORS and ratio is not None:
                cell = f"{ratio:.3f} of floor"
            rows.append(
                [
                    result.group,
                    result.scenario,
                    own,
                    peer,
                    f"{medians[peer]:,.0f}",
                    cell,
                    "-" if target is None else f">= {target:g}",
                    verdict,
                ]
            )
        if not result.peers:
            rows.append([result.group, result.scenario, own, "-", "-", "-", "-", ""])
    return render_table(rows)


def run_group(
    group: Group,
    servers: dict[str, Server],
    config: Config,
    python_load: PythonLoad | None,
) -> list[ScenarioResult]:
    """Warm the group's servers up on each scenario, then time interleaved rounds."""

    def load(server: Server, scenario: Scenario, seconds: float) -> Load:
        if python_load is not None:
            return python_load.run(server.port, scenario.path, seconds)
        return run_wrk(server.base_url + scenario.path, seconds, config)

    results = []
    for scenario, names in group.scenarios:
        started = time.perf_counter()
        for name in names:
            load(servers[name], scenario, config.warmup)
        loads: dict[str, list[Load]] = {name: [] for name in names}
        for index in range(config.rounds):
            order = names if index % 2 == 0 else tuple(reversed(names))
            for name in order:
                loads[name].append(load(servers[name], scenario, config.duration))
        result = ScenarioResult(group.name, scenario.name, loads)
        figures = ", ".join(f"{n} {v:,.0f}" for n, v in result.medians.items())
        print(
            f"  {group.name} {scenario.name}: {figures} req/s"
            f" ({time.perf_counter() - started:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
        results.append(result)
    return results


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    all_groups = groups("uvloop", "httptools")
    parser = argparse.ArgumentParser(
        prog="python -m bench.server",
        description="Requests/s of ctxflask and its peers under uvicorn, gunicorn and"
        " granian (one worker each), interleaved rounds, load from 127.0.0.1.",
    )
    parser.add_argument(
        "--rounds", type=int, help=f"rounds per server (default {FULL.rounds})"
    )
    parser.add_argument(
        "--duration",
        type=float,
        help=f"seconds per round (default {FULL.duration:g}; wrk takes whole seconds)",
    )
    parser.add_argument(
        "--threads", type=int, help=f"load generator threads (default {FULL.threads})"
    )
    parser.add_argument(
        "--connections",
        type=int,
        help=f"open connections (default {FULL.connections})",
    )
    parser.add_argument(
        "--quick", action="store_true", help="one short round, for a smoke run"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH")
    parser.add_argument(
        "--server",
        action="append",
        choices=[g.name for g in all_groups],
        help="run only this group of servers (repeatable; default all)",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=sorted({s.name for g in all_groups for s, _ in g.scenarios}),
        help="run only this scenario (repeatable; default all)",
    )
    parser.add_argument(
        "--framework",
        action="append",
        choices=list(DISTRIBUTIONS),
        help="serve only this app (repeatable; default all)",
    )
    parser.add_argument(
        "--loadgen",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator: wrk if installed (auto), or the built-in asyncio one",
    )
    parser.add_argument(
        "--loop",
        default="uvloop",
        choices=("auto", "asyncio", "uvloop"),
        help="uvicorn --loop (default uvloop, as deployed)",
    )
    parser.add_argument(
        "--http",
        default="httptools",
        choices=("auto", "h11", "httptools"),
        help="uvicorn --http (default httptools, as deployed)",
    )
    args = parser.parse_args(argv)
    for option in ("rounds", "threads", "connections"):
        value = getattr(args, option)
        if value is not None and value < 1:
            parser.error(f"--{option} must be at least 1")
    if args.duration is not None and args.duration < 1:
        parser.error("--duration must be at least 1 second")
    return args


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    sys.exit(128 + signum)  # unwinds through the finally blocks: servers are stopped


def main(argv: Sequence[str] | None = None) -> int:
    """Per group: start its servers, verify them, load them in rounds; report."""
    args = parse_args(argv)
    base = QUICK if args.quick else FULL
    config = Config(
        rounds=args.rounds or base.rounds,
        duration=args.duration or base.duration,
        warmup=base.warmup,
        threads=args.threads or base.threads,
        connections=args.connections or base.connections,
    )
    if config.threads > config.connections:
        config = Config(**{**asdict(config), "threads": config.connections})
    loop, http = resolve_uvicorn(args.loop, args.http)
    missing = [m for m in (loop, http) if importlib.util.find_spec(m) is None]
    missing = [m for m in missing if m not in ("asyncio", "h11")]
    if missing:
        print(
            f"not installed: {', '.join(missing)} (pip install -e '.[bench]')",
            file=sys.stderr,
        )
        return 2
    chosen = select(groups(loop, http), args.server, args.scenario, args.framework)
    if not chosen:
        print("nothing to run: no group serves that selection", file=sys.stderr)
        return 2

    use_wrk = args.loadgen == "wrk" or (
        args.loadgen == "auto" and shutil.which("wrk") is not None
    )
    if args.loadgen == "wrk" and shutil.which("wrk") is None:
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    loadgen = (
        wrk_version() if use_wrk else "python asyncio sockets (bench.server fallback)"
    )
    revision = source_revision()  # before the run: the tree may change meanwhile

    print(
        f"load: {loadgen}, {config.threads} thread(s), {config.connections}"
        f" connections; {config.rounds} interleaved rounds of {config.duration:g} s"
        " per server; median requests/s (higher is better)",
        flush=True,
    )
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    python_load = None if use_wrk else PythonLoad(config)
    results: list[ScenarioResult] = []
    try:
        for group in chosen:
            print(f"{group.name}: {group.description}", file=sys.stderr, flush=True)
            with running_group(group) as servers:
                problems = verify(group, servers)
                if report_problems(problems, "server"):
                    return 2
                results += run_group(group, servers, config, python_load)
    finally:
        if python_load is not None:
            python_load.close()

    print()
    print(format_table(results))
    errors = {
        f"{r.group}/{r.scenario}/{name}": count
        for r in results
        for name, count in r.errors.items()
        if count
    }
    if errors:
        print(f"\nerrors (non-2xx, socket errors, timeouts): {errors}")

    if args.json:
        names = {n for g in chosen for n in g.commands}
        versions = {n: version_of(DISTRIBUTIONS[n]) for n in names if DISTRIBUTIONS[n]}
        for server in sorted({g.version for g in chosen}):
            versions[server] = version_of(server)
        for extra in ("uvloop", "httptools"):
            versions[extra] = version_of(extra)
        payload = {
            "benchmark": "servers",
            "environment": {**environment(), "cpus": str(os.cpu_count())},
            "versions": versions,
            "ctxflask_source": revision,
            "load_generator": loadgen,
            "config": asdict(config),
            "groups": {
                g.name: {
                    "description": g.description,
                    "commands": {
                        n: [Path(p).name if p == sys.executable else p for p in c]
                        for n, c in g.commands.items()
                    },
                }
                for g in chosen
            },
            "results": [result.as_dict() for result in results],
        }
        write_json(args.json, payload)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
