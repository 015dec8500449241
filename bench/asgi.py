"""In-process ASGI benchmark: per-request cost of calling each ASGI app directly.

No server, no sockets: each request is ``await app(scope, receive, send)`` on one asyncio
event loop, with the scope built once per scenario (copied per call), a ``receive`` that
returns the request body then waits (a quiet client) and a ``send`` that collects the
messages. ctxflask (``app.asgi``), Starlette, Quart and Flask (through
``asgiref.wsgi.WsgiToAsgi``) are timed in interleaved rounds within one run.

Run ``python -m bench.asgi --help`` for the options.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import importlib.metadata
import json
import subprocess
import sys
import time
import traceback
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import asdict
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter_ns
from typing import Any

from bench.apps import Scenario
from bench.asgi_apps import ASGIApp
from bench.asgi_apps import CONCURRENCY
from bench.asgi_apps import DISTRIBUTIONS
from bench.asgi_apps import FRAMEWORKS
from bench.asgi_apps import Message
from bench.asgi_apps import SCENARIOS
from bench.timing import environment
from bench.timing import render_table
from bench.timing import report_problems
from bench.timing import Result
from bench.timing import write_json

CANDIDATE = "ctxflask"
#: The frameworks ctxflask is compared with, in the order of the ratio columns.
BASELINES: tuple[str, ...] = ("starlette", "quart", "flask-wsgitoasgi", "raw-asgi")
#: Target ratios ctxflask/baseline per (scenario, baseline); lower is better.
TARGETS: dict[tuple[str, str], float] = {
    ("async", "starlette"): 1.0,
    ("concurrent", "starlette"): 1.0,
    ("sync", "starlette"): 0.7,
    ("async", "quart"): 0.15,
}
#: What we aim for beyond the target, printed beside it.
AIMS: dict[tuple[str, str], float] = {}
#: How long one check request may take before the app is declared hung.
CHECK_TIMEOUT = 10.0
#: Short probes after the warm-up that size the rounds (see :func:`size_calls`).
SIZING_PROBES = 4


@dataclass(frozen=True)
class Config:
    """How much to run: rounds, and seconds per round and of warm-up per contender."""

    rounds: int
    round_seconds: float
    warmup_seconds: float
    calls: int | None = None  # a fixed count per round instead of sizing by time


FULL = Config(rounds=15, round_seconds=0.2, warmup_seconds=0.2)
QUICK = Config(rounds=3, round_seconds=0.015, warmup_seconds=0.02)


# -- the minimal in-process server ------------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    """One scenario's request, built once: the scope and the ``http.request`` messages."""

    scope: dict[str, Any]
    messages: tuple[Message, ...]


def build_exchange(scenario: Scenario) -> Exchange:
    """The ASGI ``http`` scope of *scenario* and its body message, as uvicorn sends them."""
    body = b""
    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"user-agent", b"bench.asgi"),
        (b"accept", b"*/*"),
    ]
    if scenario.json_body is not None:
        body = json.dumps(scenario.json_body).encode()
        headers += [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": scenario.method,
        "scheme": "http",
        "path": scenario.path,
        "raw_path": scenario.path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    message = {"type": "http.request", "body": body, "more_body": False}
    return Exchange(scope, (message,))


async def request(app: ASGIApp, exchange: Exchange) -> list[Message]:
    """Send one request to *app*; return the messages it sent back."""
    pending = list(reversed(exchange.messages))
    sent: list[Message] = []

    async def receive() -> Message:
        if pending:
            return pending.pop()
        # The body is all in: the client stays connected and quiet until cancelled.
        never: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        return await never

    async def send(message: Message) -> None:
        sent.append(message)

    await app(dict(exchange.scope), receive, send)
    return sent


def make_caller(
    app: ASGIApp, exchange: Exchange, concurrency: int
) -> Callable[[], Awaitable[object]]:
    """A zero-argument coroutine function sending one request, or *concurrency* at once."""
    if concurrency == 1:
        return functools.partial(request, app, exchange)

    async def gathered() -> None:
        await asyncio.gather(*(request(app, exchange) for _ in range(concurrency)))

    return gathered


def parse_response(messages: Sequence[Message]) -> tuple[int | None, str, bytes]:
    """(status, content type, body) of the messages an app sent."""
    status: int | None = None
    content_type = ""
    chunks = []
    for message in messages:
        if message["type"] == "http.response.start":
            status = message["status"]
            for name, value in message.get("headers", ()):
                if bytes(name).lower() == b"content-type":
                    content_type = bytes(value).decode("latin-1")
        elif message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))
    return status, content_type, b"".join(chunks)


def check_body(
    where: str, status: int | None, content_type: str, data: bytes, scenario: Scenario
) -> str | None:
    """Why (status, content type, body) is a wrong answer to *scenario*, or None."""
    if status != 200:
        return f"{where}: status {status!r}, expected 200; body {data[:300]!r}"
    if scenario.kind == "json":
        try:
            got: Any = json.loads(data)
        except ValueError:
            return f"{where}: body is not JSON ({content_type!r}): {data[:300]!r}"
    else:
        got = data.decode("utf-8", "replace")
    if got != scenario.expected:
        return f"{where}: body {got!r}, expected {scenario.expected!r}"
    return None


def check_messages(
    where: str, messages: Sequence[Message], scenario: Scenario
) -> str | None:
    """Why *messages* are a wrong answer to *scenario*, or None if they are right."""
    return check_body(where, *parse_response(messages), scenario)


async def check_answer(name: str, app: ASGIApp, scenario: Scenario) -> str | None:
    """Return why *app* answers *scenario* wrongly, or None if it answers correctly."""
    concurrency = CONCURRENCY.get(scenario.name, 1)
    where = f"{name} {scenario.method} {scenario.path} (x{concurrency})"
    exchange = build_exchange(scenario)
    try:
        answers = await asyncio.wait_for(
            asyncio.gather(*(request(app, exchange) for _ in range(concurrency))),
            CHECK_TIMEOUT * concurrency,
        )
    except TimeoutError:
        return f"{where}: no complete answer within {CHECK_TIMEOUT:g} s per request"
    except Exception:
        return f"{where} raised:\n{traceback.format_exc()}"
    for messages in answers:
        problem = check_messages(where, messages, scenario)
        if problem is not None:
            return problem
    return None


async def verify(apps: dict[str, ASGIApp], scenarios: Sequence[Scenario]) -> list[str]:
    """Check every app on every scenario; return the problems found."""
    problems = []
    for scenario in scenarios:
        for name, app in apps.items():
            problem = await check_answer(name, app, scenario)
            if problem is not None:
                problems.append(problem)
    return problems


class Lifespan:
    """Drive an app's ``lifespan`` scope: startup before the requests, shutdown after.

    An app that raises at once on the scope (``WsgiToAsgi``) does not support it, which
    the ASGI spec allows; it is then served without.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.outbox: asyncio.Queue[Message] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": {},
        }
        await self.app(scope, self.inbox.get, self.outbox.put)

    async def _exchange(self, phase: str) -> bool:
        assert self.task is not None
        await self.inbox.put({"type": f"lifespan.{phase}"})
        answer = asyncio.ensure_future(self.outbox.get())
        done, _ = await asyncio.wait(
            {answer, self.task}, timeout=CHECK_TIMEOUT, return_when="FIRST_COMPLETED"
        )
        if answer not in done:
            answer.cancel()
            if not done:
                raise RuntimeError(
                    f"lifespan {phase}: no answer in {CHECK_TIMEOUT:g} s"
                )
            return False  # the app ended the scope (or raised): no lifespan support
        message = answer.result()
        if message["type"] != f"lifespan.{phase}.complete":
            raise RuntimeError(f"lifespan {phase}: {message}")
        return True

    async def startup(self) -> bool:
        """Start the app up; False when it does not support ``lifespan``."""
        self.task = asyncio.create_task(self._run())
        supported = await self._exchange("startup")
        if not supported and not self.task.cancelled():
            self.task.exception()  # retrieved: the raise only said "unsupported"
        return supported

    async def shutdown(self) -> None:
        """Shut the app down, if it started up."""
        if self.task is not None and not self.task.done():
            await self._exchange("shutdown")
            await asyncio.wait_for(self.task, CHECK_TIMEOUT)


# -- timing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AsyncContender:
    """Something to time: *call* sends *requests* requests; *calls* of it per round."""

    name: str
    call: Callable[[], Awaitable[object]]
    calls: int
    requests: int


async def time_calls(call: Callable[[], Awaitable[object]], calls: int) -> float:
    """Await *call()* *calls* times; return the mean microseconds per call."""
    loop = range(calls)
    start = perf_counter_ns()
    for _ in loop:
        await call()
    return (perf_counter_ns() - start) / calls / 1000.0


async def run_for(call: Callable[[], Awaitable[object]], seconds: float) -> float:
    """Await *call()* for about *seconds* (at least 3 times); return µs per call."""
    calls = 0
    start = perf_counter_ns()
    deadline = start + int(seconds * 1e9)
    while calls < 3 or perf_counter_ns() < deadline:
        await call()
        calls += 1
    return (perf_counter_ns() - start) / calls / 1000.0


async def size_calls(call: Callable[[], Awaitable[object]], config: Config) -> int:
    """Warm *call* up; return how many calls make a round of *config*.

    The estimate is the fastest of a few short probes, the one least disturbed by
    other work on the machine (a disturbed probe would make every round too short).
    """
    await run_for(call, config.warmup_seconds)
    if config.calls is not None:
        return config.calls
    probes = [
        await run_for(call, config.warmup_seconds / SIZING_PROBES)
        for _ in range(SIZING_PROBES)
    ]
    return max(1, round(config.round_seconds * 1e6 / min(probes)))


async def run_interleaved(
    contenders: Sequence[AsyncContender], rounds: int
) -> dict[str, list[float]]:
    """Time *contenders* in alternating rounds (the order flips every round, as in
    :func:`bench.timing.run_interleaved`); return µs per *request* of each round."""
    samples: dict[str, list[float]] = {c.name: [] for c in contenders}
    for index in range(rounds):
        order = contenders if index % 2 == 0 else list(reversed(contenders))
        for contender in order:
            gc.collect()
            per_call = await time_calls(contender.call, contender.calls)
            samples[contender.name].append(per_call / contender.requests)
    return samples


@dataclass
class ScenarioResult:
    """The figures of one scenario: one :class:`Result` per baseline, sharing samples."""

    scenario: str
    requests_per_call: int
    calls: dict[str, int]
    by_baseline: dict[str, Result]
    samples: dict[str, list[float]]

    @property
    def medians(self) -> dict[str, float]:
        any_result = next(iter(self.by_baseline.values()))
        return any_result.medians

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view of the result."""
        return {
            "scenario": self.scenario,
            "requests_per_call": self.requests_per_call,
            "calls_per_round": self.calls,
            "median_us": self.medians,
            "min_us": {name: min(s) for name, s in self.samples.items()},
            "max_us": {name: max(s) for name, s in self.samples.items()},
            "rounds_us": self.samples,
            "ratios": {
                f"{r.candidate}/{baseline}": {
                    "ratio": r.ratio,
                    "target": r.target,
                    "aim": AIMS.get((self.scenario, baseline)),
                    "meets_target": r.meets_target,
                }
                for baseline, r in self.by_baseline.items()
            },
        }


async def run(
    apps: dict[str, ASGIApp], scenarios: Sequence[Scenario], config: Config
) -> list[ScenarioResult]:
    """Time every scenario on every app, interleaved; return one result per scenario."""
    candidate = CANDIDATE if CANDIDATE in apps else None
    results = []
    for scenario in scenarios:
        started = time.perf_counter()
        exchange = build_exchange(scenario)
        concurrency = CONCURRENCY.get(scenario.name, 1)
        contenders = []
        for name, app in apps.items():
            call = make_caller(app, exchange, concurrency)
            count = await size_calls(call, config)
            contenders.append(AsyncContender(name, call, count, concurrency))
        samples = await run_interleaved(contenders, config.rounds)
        print(
            f"  {scenario.name}: {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
            flush=True,
        )
        calls = {c.name: c.calls for c in contenders}
        by_baseline = {
            baseline: Result(
                scenario=scenario.name,
                baseline=baseline,
                candidate=candidate,
                samples=samples,
                calls=calls,
                target=TARGETS.get((scenario.name, baseline)),
            )
            for baseline in BASELINES
            if baseline in apps
        }
        if not by_baseline:  # no baseline loaded: keep the medians all the same
            by_baseline[""] = Result(
                scenario.name, next(iter(apps)), None, samples, calls
            )
        results.append(
            ScenarioResult(scenario.name, concurrency, calls, by_baseline, samples)
        )
    return results


# -- reporting --------------------------------------------------------------------------


def _fmt_us(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _fmt_ratio(result: Result | None, aim: float | None) -> str:
    """One comparison's cell: the ratio, then its target (with aim and verdict)."""
    if result is None or result.ratio is None:
        return "-"
    cell = f"{result.ratio:.3f}x"
    if result.target is not None:
        verdict = "ok" if result.meets_target else "MISSED"
        cell += f" (target <= {result.target:g}x"
        if aim is not None:
            cell += f", aim {aim:g}x"
        cell += f": {verdict})"
    return cell


def _label(result: ScenarioResult) -> str:
    if result.requests_per_call > 1:
        return f"{result.scenario} (x{result.requests_per_call})"
    return result.scenario


def format_tables(results: Sequence[ScenarioResult], names: Sequence[str]) -> str:
    """The median µs per request of every framework; then ctxflask's ratio to each
    baseline (lower is better), with the targets."""
    medians = [["scenario", *(f"{n} µs" for n in names)]]
    for result in results:
        medians.append(
            [_label(result), *(_fmt_us(result.medians.get(n)) for n in names)]
        )
    text = render_table(medians)
    baselines = [b for b in BASELINES if b in names and CANDIDATE in names]
    if baselines:
        ratios = [["scenario", *(f"{CANDIDATE}/{b}" for b in baselines)]]
        for result in results:
            ratios.append(
                [
                    _label(result),
                    *(
                        _fmt_ratio(
                            result.by_baseline.get(b), AIMS.get((result.scenario, b))
                        )
                        for b in baselines
                    ),
                ]
            )
        text += "\n\n" + render_table(ratios)
    # ctxflask's other settings (thread mode, the watchdog off): each beside the baselines
    # and beside ctxflask's defaults, from the same interleaved rounds.
    variants = [n for n in names if n.startswith(f"{CANDIDATE}-")]
    if variants and CANDIDATE in names:
        against = [CANDIDATE, *(b for b in BASELINES if b in names)]
        rows = [
            ["scenario", *(f"{v}/{b}" for v in variants for b in against)],
            *(
                [
                    _label(result),
                    *(
                        _fmt_plain_ratio(result.medians, v, b)
                        for v in variants
                        for b in against
                    ),
                ]
                for result in results
            ),
        ]
        text += "\n\n" + render_table(rows)
    return text


def _fmt_plain_ratio(medians: dict[str, float], name: str, baseline: str) -> str:
    if medians.get(name) is None or not medians.get(baseline):
        return "-"
    return f"{medians[name] / medians[baseline]:.3f}x"


def version_of(distribution: str) -> str:
    """The installed version of *distribution*, or "unknown"."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def source_revision() -> str:
    """The git commit of the work tree, with "+changes" when ctxflask/ has local edits
    (so a figure can be traced to the code it measured); "unknown" outside git."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "status", "--porcelain", "--", "ctxflask"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}+changes" if changes else commit


def load_apps(names: Sequence[str]) -> tuple[dict[str, ASGIApp], list[str]]:
    """Build the ASGI app of each framework in *names*; say which failed and why."""
    apps: dict[str, ASGIApp] = {}
    failures = []
    for name in names:
        try:
            apps[name] = FRAMEWORKS[name]()
        except Exception as exc:
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
    return apps, failures


# -- command line -----------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.asgi",
        description="In-process ASGI per-request cost: ctxflask, Starlette, Quart and"
        " Flask (WsgiToAsgi), interleaved.",
    )
    parser.add_argument(
        "--rounds", type=int, help=f"rounds per app (default {FULL.rounds})"
    )
    parser.add_argument(
        "--calls",
        type=int,
        help="calls per round for every app (default: sized so that a round lasts"
        f" about {FULL.round_seconds:g} s)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="short rounds, for a smoke run"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH")
    parser.add_argument(
        "--scenario",
        action="append",
        choices=[s.name for s in SCENARIOS],
        help="run only this scenario (repeatable)",
    )
    parser.add_argument(
        "--framework",
        action="append",
        choices=list(FRAMEWORKS),
        help="time only this framework (repeatable; default all)",
    )
    args = parser.parse_args(argv)
    for option in ("rounds", "calls"):
        value = getattr(args, option)
        if value is not None and value < 1:
            parser.error(f"--{option} must be at least 1")
    return args


async def amain(args: argparse.Namespace) -> int:
    """Start the apps up, verify them, time them, report; on the one event loop."""
    base = QUICK if args.quick else FULL
    config = Config(
        rounds=args.rounds or base.rounds,
        round_seconds=base.round_seconds,
        warmup_seconds=base.warmup_seconds,
        calls=args.calls,
    )
    scenarios = [
        s for s in SCENARIOS if args.scenario is None or s.name in args.scenario
    ]
    names = [n for n in FRAMEWORKS if args.framework is None or n in args.framework]
    revision = source_revision()  # before the run: the tree may change meanwhile
    apps, failures = load_apps(names)
    for failure in failures:
        print(f"not timed: {failure}", flush=True)
    if not apps:
        print("Aborting: no app could be built.", file=sys.stderr)
        return 2

    lifespans = {name: Lifespan(app) for name, app in apps.items()}
    try:
        for name, lifespan in lifespans.items():
            try:
                await lifespan.startup()
            except Exception as exc:
                print(f"Aborting: {name} failed to start up: {exc}", file=sys.stderr)
                return 2
        problems = await verify(apps, scenarios)
        if report_problems(problems, "app"):
            return 2

        sizing = (
            f"{config.calls} calls"
            if config.calls
            else f"~{config.round_seconds:g} s (calls sized per app)"
        )
        print(
            f"ASGI in-process: {config.rounds} interleaved rounds of {sizing}, one"
            " asyncio loop; median µs per request",
            flush=True,
        )
        results = await run(apps, scenarios, config)
    finally:
        for lifespan in lifespans.values():
            try:
                await lifespan.shutdown()
            except Exception as exc:
                print(f"shutdown: {exc}", file=sys.stderr)

    print()
    print(format_tables(results, list(apps)))

    if args.json:
        versions = {
            name: version_of(dist) if dist else ""
            for name, dist in {
                **DISTRIBUTIONS,
                "werkzeug": "werkzeug",
                "asgiref": "asgiref",
                "anyio": "anyio",
            }.items()
        }
        payload = {
            "benchmark": "asgi-inprocess",
            "environment": environment(),
            "versions": versions,
            "ctxflask_source": revision,
            "frameworks": list(apps),
            "not_timed": failures,
            "config": asdict(config),
            "results": [result.as_dict() for result in results],
        }
        write_json(args.json, payload)
        print(f"\nwrote {args.json}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the options and run the benchmark on a fresh asyncio event loop."""
    return asyncio.run(amain(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
