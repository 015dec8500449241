"""Server throughput: ctxflask, Starlette and Quart under uvicorn with one worker each.

Each framework's app (``bench.asgi_apps``) runs in its own uvicorn process on 127.0.0.1,
on a free port, all started before the first round and stopped at the end. A load
generator on loopback drives one server at a time: ``wrk`` if it is installed (Debian:
``apt-get install wrk``), else a small asyncio-socket load generator of this module, run
in as many processes as ``--threads``. The rounds are interleaved across frameworks (the
order flips every round) and the figure is the median requests/s.

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
from bench.asgi import check_body
from bench.asgi import source_revision
from bench.asgi import version_of
from bench.asgi_apps import DISTRIBUTIONS
from bench.asgi_apps import FRAMEWORKS
from bench.asgi_apps import SCENARIOS as ASGI_SCENARIOS
from bench.timing import environment
from bench.timing import render_table
from bench.timing import write_json

HOST = "127.0.0.1"
CANDIDATE = "ctxflask"
#: The frameworks served (Flask is left out: under WsgiToAsgi it is not an ASGI design).
SERVED: tuple[str, ...] = ("ctxflask", "starlette", "quart")
BASELINES: tuple[str, ...] = ("starlette", "quart")
#: The scenarios sent (GET only, so wrk needs no script); ``sync`` can be left out.
SCENARIO_NAMES: tuple[str, ...] = ("async", "json", "sync")
SCENARIOS: dict[str, Scenario] = {
    s.name: s for s in ASGI_SCENARIOS if s.name in SCENARIO_NAMES
}
REPO_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class Config:
    """How much to run."""

    rounds: int
    duration: float  # seconds per measured run
    warmup: float  # seconds of load per server and scenario before the rounds
    threads: int
    connections: int


FULL = Config(rounds=3, duration=5.0, warmup=1.0, threads=2, connections=64)
QUICK = Config(rounds=1, duration=1.0, warmup=0.5, threads=2, connections=16)


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
    """One uvicorn process serving one framework's app."""

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

    def stop(self) -> None:
        """SIGTERM (uvicorn shuts down gracefully), then SIGKILL if it lingers."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def start_server(name: str, loop: str, http: str) -> Server:
    """Start uvicorn with one worker on a free port of 127.0.0.1 for *name*'s app."""
    factory = FRAMEWORKS[name]
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        f"{factory.__module__}:{factory.__name__}",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        "1",
        "--loop",
        loop,
        "--http",
        http,
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    log = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log")  # noqa: SIM115
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a Ctrl-C reaches us only; we stop it ourselves
    )
    return Server(name, port, process, log)


def wait_ready(server: Server, client: httpx.Client) -> None:
    """Wait until *server* answers HTTP; raise if it exits or takes too long."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{server.name}: uvicorn exited ({server.process.returncode}):\n"
                + server.log_tail()
            )
        try:
            client.get(f"{server.base_url}/async", timeout=1.0)
        except httpx.TransportError:
            time.sleep(0.1)
            continue
        return
    raise RuntimeError(f"{server.name}: not answering after {START_TIMEOUT:g} s")


@contextlib.contextmanager
def running_servers(
    names: Sequence[str], loop: str, http: str
) -> Iterator[list[Server]]:
    """Start a server per framework, wait until all answer; stop them all on exit."""
    servers: list[Server] = []
    try:
        for name in names:
            servers.append(start_server(name, loop, http))
        with httpx.Client() as client:
            for server in servers:
                wait_ready(server, client)
        yield servers
    finally:
        for server in servers:
            server.stop()


def verify(servers: Sequence[Server], scenarios: Sequence[Scenario]) -> list[str]:
    """Check every server on every scenario over HTTP; return the problems found."""
    problems = []
    with httpx.Client() as client:
        for scenario in scenarios:
            for server in servers:
                where = f"{server.name} {scenario.method} {scenario.path}"
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
    """Requests/s of every round per framework, and their medians."""

    scenario: str
    loads: dict[str, list[Load]]

    @property
    def medians(self) -> dict[str, float]:
        return {
            name: statistics.median(load.requests_per_s for load in loads)
            for name, loads in self.loads.items()
        }

    def ratio(self, baseline: str) -> float | None:
        """ctxflask's median requests/s over *baseline*'s (higher is better)."""
        medians = self.medians
        if CANDIDATE not in medians or baseline not in medians:
            return None
        return medians[CANDIDATE] / medians[baseline]

    @property
    def errors(self) -> dict[str, int]:
        return {
            name: sum(x.errors for x in loads) for name, loads in self.loads.items()
        }

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view of the result."""
        return {
            "scenario": self.scenario,
            "median_requests_per_s": self.medians,
            "rounds": {
                name: [asdict(load) for load in loads]
                for name, loads in self.loads.items()
            },
            "errors": self.errors,
            "ratios": {
                f"{CANDIDATE}/{baseline}": self.ratio(baseline)
                for baseline in BASELINES
                if baseline in self.loads and CANDIDATE in self.loads
            },
        }


def format_table(results: Sequence[ScenarioResult], names: Sequence[str]) -> str:
    """Median requests/s per framework, and ctxflask's ratio to each baseline."""
    baselines = [b for b in BASELINES if b in names and CANDIDATE in names]
    rows = [
        [
            "scenario",
            *(f"{n} req/s" for n in names),
            *(f"{CANDIDATE}/{b}" for b in baselines),
        ]
    ]
    for result in results:
        medians = result.medians
        rows.append(
            [
                result.scenario,
                *(f"{medians[n]:,.0f}" for n in names),
                *(f"{result.ratio(b):.3f}x" for b in baselines),
            ]
        )
    return render_table(rows)


def run(
    servers: Sequence[Server],
    scenarios: Sequence[Scenario],
    config: Config,
    python_load: PythonLoad | None,
) -> list[ScenarioResult]:
    """Warm every server up on each scenario, then time interleaved rounds."""

    def load(server: Server, scenario: Scenario, seconds: float) -> Load:
        if python_load is not None:
            return python_load.run(server.port, scenario.path, seconds)
        return run_wrk(server.base_url + scenario.path, seconds, config)

    results = []
    for scenario in scenarios:
        started = time.perf_counter()
        for server in servers:
            load(server, scenario, config.warmup)
        loads: dict[str, list[Load]] = {server.name: [] for server in servers}
        for index in range(config.rounds):
            order = servers if index % 2 == 0 else list(reversed(servers))
            for server in order:
                loads[server.name].append(load(server, scenario, config.duration))
        result = ScenarioResult(scenario.name, loads)
        figures = ", ".join(f"{n} {v:,.0f}" for n, v in result.medians.items())
        print(
            f"  {scenario.name}: {figures} req/s ({time.perf_counter() - started:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
        results.append(result)
    return results


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.server",
        description="Requests/s under uvicorn (one worker each): ctxflask, Starlette"
        " and Quart, interleaved rounds, load from 127.0.0.1.",
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
        "--scenario",
        action="append",
        choices=list(SCENARIOS),
        help="run only this scenario (repeatable; default all)",
    )
    parser.add_argument(
        "--framework",
        action="append",
        choices=list(SERVED),
        help="serve only this framework (repeatable; default all)",
    )
    parser.add_argument(
        "--loadgen",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator: wrk if installed (auto), or the built-in asyncio one",
    )
    parser.add_argument(
        "--loop",
        default="auto",
        choices=("auto", "asyncio", "uvloop"),
        help="uvicorn --loop",
    )
    parser.add_argument(
        "--http",
        default="auto",
        choices=("auto", "h11", "httptools"),
        help="uvicorn --http",
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
    """Start the servers, verify them, load them in rounds, report."""
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
    scenarios = [
        s
        for s in SCENARIOS.values()
        if args.scenario is None or s.name in args.scenario
    ]
    names = [n for n in SERVED if args.framework is None or n in args.framework]

    use_wrk = args.loadgen == "wrk" or (
        args.loadgen == "auto" and shutil.which("wrk") is not None
    )
    if args.loadgen == "wrk" and shutil.which("wrk") is None:
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    loadgen = (
        wrk_version() if use_wrk else "python asyncio sockets (bench.server fallback)"
    )
    loop, http = resolve_uvicorn(args.loop, args.http)
    revision = source_revision()  # before the run: the tree may change meanwhile

    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    python_load = None if use_wrk else PythonLoad(config)
    try:
        with running_servers(names, loop, http) as servers:
            problems = verify(servers, scenarios)
            if problems:
                print(
                    "Aborting: not every server answers every scenario correctly.",
                    file=sys.stderr,
                )
                for problem in problems:
                    print(f"  - {problem}", file=sys.stderr)
                return 2
            print(
                f"uvicorn {version_of('uvicorn')}, 1 worker each (loop {loop}, http {http});"
                f" load: {loadgen}, {config.threads} threads, {config.connections}"
                f" connections; {config.rounds} interleaved rounds of"
                f" {config.duration:g} s; median requests/s (higher is better)",
                flush=True,
            )
            results = run(servers, scenarios, config, python_load)
    finally:
        if python_load is not None:
            python_load.close()

    print()
    print(format_table(results, names))
    errors = {
        f"{r.scenario}/{name}": count
        for r in results
        for name, count in r.errors.items()
        if count
    }
    if errors:
        print(f"\nerrors (non-2xx, socket errors, timeouts): {errors}")

    if args.json:
        versions = {name: version_of(DISTRIBUTIONS[name]) for name in names}
        versions["uvicorn"] = version_of("uvicorn")
        payload = {
            "benchmark": "asgi-server",
            "environment": {**environment(), "cpus": str(os.cpu_count())},
            "versions": versions,
            "ctxflask_source": revision,
            "server": {"uvicorn_loop": loop, "uvicorn_http": http, "workers": 1},
            "load_generator": loadgen,
            "config": asdict(config),
            "results": [result.as_dict() for result in results],
        }
        write_json(args.json, payload)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
