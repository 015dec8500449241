"""Pool saturation: how long an ``async def`` ping waits while slow sync views fill the
worker threads.

One uvicorn process (127.0.0.1, a free port) serves ``bench.saturation_app``: sync views
that sleep (``/slow``, 1 s by default) and an async ``/ping`` behind ordinary sync
``before_request`` and ``teardown_request`` hooks. The run sends ``--slow`` concurrent
slow requests (60) to a pool of ``--workers`` threads (40), and meanwhile one ping every
20 ms for as long as the slow ones last; it reports the pings' latency (median, p99,
max, in ms). Only 127.0.0.1 is contacted. ``python -m bench.saturation --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

import httpx

from bench.server import free_port
from bench.server import HOST
from bench.server import REPO_ROOT
from bench.server import Server


def start(workers: int, async_steps: str) -> Server:
    port = free_port()
    env = dict(os.environ)
    env.update(SATURATION_WORKERS=str(workers), SATURATION_ASYNC_STEPS=async_steps)
    log = tempfile.NamedTemporaryFile(prefix="bench-saturation-", suffix=".log")  # noqa: SIM115
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "bench.saturation_app:make_asgi",
            "--host",
            HOST,
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return Server("saturation", port, process, log)


async def measure(base_url: str, slow: int, seconds: float) -> list[float]:
    limits = httpx.Limits(max_connections=slow + 4)
    async with httpx.AsyncClient(
        base_url=base_url, limits=limits, timeout=30
    ) as client:
        for _ in range(50):  # until it answers
            try:
                await client.get("/ping")
                break
            except httpx.TransportError:
                await asyncio.sleep(0.1)
        slow_requests = [
            asyncio.create_task(client.get("/slow", params={"s": seconds}))
            for _ in range(slow)
        ]
        await asyncio.sleep(0.1)  # the slow views hold the threads now
        pings: list[float] = []
        while not all(task.done() for task in slow_requests):
            started = time.perf_counter()
            response = await client.get("/ping")
            pings.append((time.perf_counter() - started) * 1000)
            if response.text != "pong":
                raise RuntimeError(f"unexpected ping answer {response.text!r}")
            await asyncio.sleep(0.02)
        for task in slow_requests:
            if (await task).text != "slow":
                raise RuntimeError("a slow request failed")
        return pings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.saturation")
    parser.add_argument("--slow", type=int, default=60, help="slow requests at once")
    parser.add_argument("--workers", type=int, default=40, help="WORKER_THREADS")
    parser.add_argument("--seconds", type=float, default=1.0, help="each slow view")
    parser.add_argument(
        "--async-steps", choices=["loop", "thread"], default="loop", help="ASYNC_STEPS"
    )
    args = parser.parse_args(argv)
    server = start(args.workers, args.async_steps)
    try:
        pings = asyncio.run(measure(server.base_url, args.slow, args.seconds))
    finally:
        server.stop()
    pings.sort()
    p99 = pings[min(len(pings) - 1, round(0.99 * (len(pings) - 1)))]
    print(
        f"{args.slow} sync views sleeping {args.seconds:g} s on {args.workers} threads"
        f" (ASYNC_STEPS={args.async_steps!r}): {len(pings)} async pings behind sync"
        f" hooks, median {statistics.median(pings):.1f} ms, p99 {p99:.1f} ms,"
        f" max {pings[-1]:.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
