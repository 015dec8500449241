"""Memory: RSS of one uvicorn worker holding 1,000 WebSocket connections, and 1,000
concurrent slow requests, for ctxflask beside Starlette and Quart.

Per framework and case, a fresh uvicorn process (one worker, so the process is the
worker; uvloop and httptools, as deployed) serves ``bench.memory_apps`` on 127.0.0.1.
After a warm-up (a few requests, one WebSocket exchange, one slow request) its idle
RSS is read from ``/proc/<pid>/status`` (``VmRSS``); then:

- ``websockets``: the client opens the connections (100 handshakes at a time), sends a
  message on each and waits for its echo, so every one is accepted and in the app's
  receive loop; with all of them open, ``VmRSS`` and ``VmHWM`` are read;
- ``slow``: the client sends ``GET /slow`` (a view awaiting ``asyncio.sleep(2)``) on as
  many connections at once; ``VmRSS`` is sampled every 20 ms until the last answer,
  and the peak sample is kept, with ``VmHWM``, and how many requests the client had in
  flight at once (every answer must be 200 ``slow``).

The client is this process (asyncio: ``websockets`` for the WebSockets, raw sockets for
HTTP). The open-files soft limit is raised as far as the hard limit allows, here and in
the server. Every case is bounded in time. Run ``python -m bench.memory --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from dataclasses import dataclass
from typing import Any

from bench.asgi import source_revision
from bench.asgi import version_of
from bench.memory_apps import FRAMEWORKS
from bench.memory_apps import PING_TEXT
from bench.memory_apps import SLOW_TEXT
from bench.server import HOST
from bench.server import Server
from bench.server import start_command
from bench.timing import environment
from bench.timing import render_table
from bench.timing import write_json

CANDIDATE = "ctxflask"
CASES: tuple[str, ...] = ("websockets", "slow")
#: Handshakes / connects in progress at once (the listen backlog is left room).
OPENING_BATCH = 100
START_TIMEOUT = 30.0
#: How long one case may take, at most, before it is abandoned as failed.
CASE_TIMEOUT = 90.0
SAMPLE_EVERY = 0.02
#: Targets: none are set yet; the issue asks for the figures beside Starlette's.
TARGETS: dict[tuple[str, str], float] = {}


@dataclass(frozen=True)
class Config:
    """How much to run."""

    connections: int
    slow_seconds: float


FULL = Config(connections=1000, slow_seconds=2.0)
QUICK = Config(connections=200, slow_seconds=1.0)


def raise_open_files_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit; return the soft one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 16)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ValueError, OSError):
        return soft
    return wanted


def _raise_in_child() -> None:  # the server's preexec_fn
    raise_open_files_limit()


def read_status(pid: int) -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` of *pid*, in KiB, from ``/proc/<pid>/status``."""
    figures = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                figures[key] = int(value.split()[0])
    return figures


# -- the client -------------------------------------------------------------------------


async def send_get(port: int, path: str) -> tuple[Any, Any]:
    """Connect and send ``GET path`` (``Connection: close``); return (reader, writer)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    return reader, writer


async def read_answer(reader: Any, writer: Any) -> tuple[int, bytes]:
    """Read an answer to the end of the connection, close it: (status, body)."""
    try:
        data = await reader.read()
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    if b"transfer-encoding: chunked" in head.lower():
        body = _unchunk(body)
    return status, body


async def http_get(port: int, path: str, seconds: float) -> tuple[int, bytes]:
    """One ``GET`` on a new connection, within *seconds*: (status, body)."""
    async with asyncio.timeout(seconds):
        return await read_answer(*await send_get(port, path))


def _unchunk(data: bytes) -> bytes:
    out = []
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out.append(rest[:size])
        data = rest[size + 2 :]
    return b"".join(out)


async def wait_ready(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{server.name}: uvicorn exited ({server.process.returncode}):\n"
                + server.log_tail()
            )
        try:
            status, body = await http_get(server.port, "/ping", 1.0)
        except (OSError, TimeoutError):
            await asyncio.sleep(0.1)
            continue
        if status != 200 or body.decode() != PING_TEXT:
            raise RuntimeError(f"{server.name}: /ping answered {status} {body[:200]!r}")
        return
    raise RuntimeError(f"{server.name}: not answering after {START_TIMEOUT:g} s")


async def open_websocket(port: int, index: int, gate: asyncio.Semaphore) -> Any:
    """Open one WebSocket to ``/ws`` and check its echo; return the connection."""
    from websockets.asyncio.client import connect

    async with gate:
        connection = await connect(
            f"ws://{HOST}:{port}/ws", ping_interval=None, open_timeout=30
        )
        message = f"hello {index}"
        await connection.send(message)
        echo = await asyncio.wait_for(connection.recv(), 30)
    if echo != message:
        await connection.close()
        raise RuntimeError(f"WebSocket echo {echo!r}, expected {message!r}")
    return connection


async def warm_up(server: Server) -> None:
    """A few requests, one WebSocket exchange and one slow request: what a first use
    imports or allocates once is in the idle figure, not the per-connection one."""
    for _ in range(20):
        await http_get(server.port, "/ping", 10.0)
    connection = await open_websocket(server.port, 0, asyncio.Semaphore(1))
    await connection.close()
    status, body = await http_get(server.port, "/slow", 30.0)
    if status != 200 or body.decode() != SLOW_TEXT:
        raise RuntimeError(f"{server.name}: /slow answered {status} {body[:200]!r}")


async def hold_websockets(server: Server, count: int) -> dict[str, Any]:
    """Open *count* WebSockets, read the worker's memory with all open, close them."""
    gate = asyncio.Semaphore(OPENING_BATCH)
    started = time.monotonic()
    opened = await asyncio.gather(
        *(open_websocket(server.port, i, gate) for i in range(count)),
        return_exceptions=True,
    )
    connections = [c for c in opened if not isinstance(c, BaseException)]
    failures = [c for c in opened if isinstance(c, BaseException)]
    try:
        await asyncio.sleep(0.5)  # the server settles: nothing in flight
        status = read_status(server.process.pid)
    finally:
        await asyncio.gather(*(c.close() for c in connections), return_exceptions=True)
    if failures:
        raise RuntimeError(
            f"{len(failures)} of {count} WebSockets failed; first: {failures[0]!r}"
        )
    return {
        "open": len(connections),
        "peak_rss_kib": status["VmRSS"],
        "hwm_kib": status["VmHWM"],
        "opening_s": time.monotonic() - started,
    }


async def slow_requests(server: Server, count: int, seconds: float) -> dict[str, Any]:
    """Send *count* slow requests at once; sample the worker's RSS until all answer."""
    gate = asyncio.Semaphore(OPENING_BATCH)
    spans: list[tuple[float, float]] = []
    answers: list[tuple[int, bytes]] = []

    async def one() -> None:
        async with gate:
            reader, writer = await send_get(server.port, "/slow")
            sent = time.monotonic()
        async with asyncio.timeout(seconds + 60):
            answers.append(await read_answer(reader, writer))
        spans.append((sent, time.monotonic()))

    peak = 0
    tasks = [asyncio.ensure_future(one()) for _ in range(count)]
    everything = asyncio.gather(*tasks, return_exceptions=True)
    while not everything.done():
        peak = max(peak, read_status(server.process.pid)["VmRSS"])
        await asyncio.wait([everything], timeout=SAMPLE_EVERY)
    outcomes = everything.result()
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    wrong = [a for a in answers if a != (200, SLOW_TEXT.encode())]
    if errors or wrong:
        first = errors[0] if errors else wrong[0]
        raise RuntimeError(
            f"{len(errors) + len(wrong)} of {count} slow requests failed; first: {first!r}"
        )
    status = read_status(server.process.pid)
    return {
        "answered": len(answers),
        "max_in_flight": max_overlap(spans),
        "peak_rss_kib": peak,
        "hwm_kib": status["VmHWM"],
        "median_latency_s": statistics.median(end - begin for begin, end in spans),
    }


def max_overlap(spans: Sequence[tuple[float, float]]) -> int:
    """The most intervals open at one instant."""
    events = sorted([(b, 1) for b, _ in spans] + [(e, -1) for _, e in spans])
    current = best = 0
    for _, step in events:
        current += step
        best = max(best, current)
    return best


# -- the run ----------------------------------------------------------------------------


def uvicorn_command(framework: str) -> list[str]:
    return [
        sys.executable,
        *("-m", "uvicorn", "--factory", FRAMEWORKS[framework]),
        *("--host", HOST, "--port", "{port}", "--workers", "1"),
        *("--loop", "uvloop", "--http", "httptools", "--ws", "websockets"),
        *("--backlog", "2048", "--log-level", "warning", "--no-access-log"),
    ]


async def measure(framework: str, case: str, config: Config) -> dict[str, Any]:
    """One fresh server, warmed up; its idle memory, then under *case*."""
    env = dict(os.environ, BENCH_SLOW_SECONDS=f"{config.slow_seconds:g}")
    server = start_command(
        f"memory-{framework}-{case}",
        uvicorn_command(framework),
        env=env,
        preexec_fn=_raise_in_child,
    )
    try:
        await wait_ready(server)
        await warm_up(server)
        await asyncio.sleep(0.3)
        idle = read_status(server.process.pid)["VmRSS"]
        if case == "websockets":
            figures = await hold_websockets(server, config.connections)
        else:
            figures = await slow_requests(
                server, config.connections, config.slow_seconds
            )
    finally:
        server.stop()
    growth = figures["peak_rss_kib"] - idle
    return {
        "framework": framework,
        "case": case,
        "idle_rss_kib": idle,
        **figures,
        "growth_kib": growth,
        "per_connection_kib": growth / config.connections,
    }


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """RSS per framework and case (MiB), growth per connection (KiB), ratios."""
    table = [
        [
            "case",
            "framework",
            "idle MiB",
            "loaded MiB",
            "VmHWM MiB",
            "KiB/conn",
            f"{CANDIDATE}/it loaded",
        ]
    ]
    ours = {r["case"]: r for r in rows if r["framework"] == CANDIDATE}
    for row in rows:
        own = ours.get(row["case"])
        ratio = "-"
        if own is not None and row["framework"] != CANDIDATE:
            ratio = f"{own['peak_rss_kib'] / row['peak_rss_kib']:.3f}x"
        table.append(
            [
                row["case"],
                row["framework"],
                f"{row['idle_rss_kib'] / 1024:.1f}",
                f"{row['peak_rss_kib'] / 1024:.1f}",
                f"{row['hwm_kib'] / 1024:.1f}",
                f"{row['per_connection_kib']:.1f}",
                ratio,
            ]
        )
    return render_table(table)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.memory",
        description="RSS of one uvicorn worker with many open WebSockets and with many"
        " concurrent slow requests: ctxflask beside Starlette and Quart.",
    )
    parser.add_argument(
        "--connections",
        type=int,
        help=f"WebSockets / slow requests at once (default {FULL.connections})",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK.connections} connections, {QUICK.slow_seconds:g} s slow views",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH")
    parser.add_argument(
        "--framework",
        action="append",
        choices=list(FRAMEWORKS),
        help="serve only this framework (repeatable; default all)",
    )
    parser.add_argument(
        "--case", action="append", choices=CASES, help="run only this case (repeatable)"
    )
    args = parser.parse_args(argv)
    if args.connections is not None and args.connections < 1:
        parser.error("--connections must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    base = QUICK if args.quick else FULL
    config = Config(
        connections=args.connections or base.connections,
        slow_seconds=base.slow_seconds,
    )
    limit = raise_open_files_limit()
    if limit != resource.RLIM_INFINITY and limit < config.connections + 64:
        print(
            f"the open-files limit ({limit}) is below {config.connections} connections:"
            " raise the hard limit (ulimit -Hn) or pass --connections",
            file=sys.stderr,
        )
        return 2
    names = [n for n in FRAMEWORKS if args.framework is None or n in args.framework]
    cases = [c for c in CASES if args.case is None or c in args.case]
    revision = source_revision()
    print(
        f"memory: one uvicorn worker (uvloop, httptools, websockets) per framework and"
        f" case; {config.connections} WebSockets / {config.connections} concurrent"
        f" requests to a view sleeping {config.slow_seconds:g} s; RSS of the worker",
        flush=True,
    )
    rows = []
    for case in cases:
        for name in names:
            started = time.monotonic()
            try:
                row = asyncio.run(
                    asyncio.wait_for(measure(name, case, config), CASE_TIMEOUT)
                )
            except (RuntimeError, OSError, TimeoutError) as exc:
                print(f"Aborting: {name} {case}: {exc!r}", file=sys.stderr)
                return 2
            print(
                f"  {case} {name}: idle {row['idle_rss_kib'] / 1024:.1f} MiB, loaded"
                f" {row['peak_rss_kib'] / 1024:.1f} MiB, {row.get('open', row.get('max_in_flight'))} at once"
                f" ({time.monotonic() - started:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
            rows.append(row)
    print()
    print(format_table(rows))
    if args.json:
        payload = {
            "benchmark": "memory",
            "environment": {**environment(), "cpus": str(os.cpu_count())},
            "versions": {
                n: version_of(n)
                for n in (*names, "uvicorn", "uvloop", "httptools", "websockets")
            },
            "ctxflask_source": revision,
            "config": asdict(config),
            "open_files_limit": limit,
            "results": rows,
        }
        write_json(args.json, payload)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
