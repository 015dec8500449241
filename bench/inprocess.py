"""In-process WSGI benchmark: per-request cost of calling the app object directly.

No server, no sockets: each request is ``app(environ, start_response)`` with a prebuilt
environ, so the figures are the framework's own overhead (routing, contexts, request
and response objects). Flask and ctxflask are timed in interleaved rounds.

Run ``python -m bench.inprocess --help`` for the options.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import sys
import time
import traceback
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import asdict
from dataclasses import dataclass
from io import BytesIO
from typing import Any

import flask
from werkzeug.test import EnvironBuilder

from bench.apps import make_app
from bench.apps import Scenario
from bench.apps import SCENARIOS
from bench.asgi import source_revision
from bench.timing import Contender
from bench.timing import environment
from bench.timing import format_table
from bench.timing import report_problems
from bench.timing import Result
from bench.timing import run_interleaved
from bench.timing import write_json

BASELINE = "flask"
# Target ratios candidate/flask (lower is better); scenarios without one are reported only.
TARGETS: dict[str, float] = {"hello": 0.5, "json": 0.4, "echo": 0.4, "async": 0.15}
# Flask runs every async view on a fresh event loop (asgiref, in a worker thread), so it
# is far slower there: fewer calls per round keep the run short.
FLASK_CALL_DIVISOR: dict[str, int] = {"async": 10}

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class Config:
    """How much to run."""

    rounds: int
    calls: int
    warmup: int


FULL = Config(rounds=15, calls=4000, warmup=500)
QUICK = Config(rounds=3, calls=300, warmup=30)


def _start_response(
    status: str, headers: list[tuple[str, str]], exc_info: Any = None
) -> Any:
    """A WSGI ``start_response`` that ignores its arguments."""
    return None


def build_request(scenario: Scenario) -> tuple[dict[str, Any], bytes | None]:
    """The environ of *scenario* (built once) and its request body, if any."""
    body: bytes | None = None
    if scenario.json_body is not None:
        body = json.dumps(scenario.json_body).encode()
    builder = EnvironBuilder(
        path=scenario.path,
        method=scenario.method,
        data=body,
        content_type="application/json" if body is not None else None,
    )
    try:
        return builder.get_environ(), body
    finally:
        builder.close()


def consume(response: Iterable[bytes]) -> bytes:
    """Read a WSGI response body, then ``close()`` it if it can be closed."""
    try:
        return b"".join(response)
    finally:
        close = getattr(response, "close", None)
        if close is not None:
            close()


def make_caller(
    app: WSGIApp, environ: dict[str, Any], body: bytes | None
) -> Callable[[], bytes]:
    """A zero-argument callable that sends one request to *app*; returns the body."""

    def call() -> bytes:
        env = dict(environ)
        if body is not None:
            env["wsgi.input"] = BytesIO(body)
        return consume(app(env, _start_response))

    return call


def fetch(app: WSGIApp, scenario: Scenario) -> tuple[str, str, bytes]:
    """Send *scenario* to *app* once; return (status, content type, body)."""
    environ, body = build_request(scenario)
    env = dict(environ)
    if body is not None:
        env["wsgi.input"] = BytesIO(body)
    seen: dict[str, Any] = {}

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Any:
        seen["status"] = status
        seen["headers"] = headers
        return None

    data = consume(app(env, start_response))
    headers = {key.lower(): value for key, value in seen.get("headers", [])}
    content_type = headers.get("content-type", "")
    return seen.get("status", "<start_response not called>"), content_type, data


def check_answer(name: str, app: WSGIApp, scenario: Scenario) -> str | None:
    """Return why *app* answers *scenario* wrongly, or None if it answers correctly."""
    where = f"{name} {scenario.method} {scenario.path}"
    try:
        status, content_type, data = fetch(app, scenario)
    except Exception:
        return f"{where} raised:\n{traceback.format_exc()}"
    if not status.startswith("200"):
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


def load_candidate(module_name: str) -> tuple[WSGIApp | None, str]:
    """Import *module_name* and build the app on it; on failure, say why."""
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        return None, f"import {module_name} failed ({type(exc).__name__}: {exc})"
    needed = ("Flask", "request", "jsonify")
    missing = [attr for attr in needed if not hasattr(module, attr)]
    if missing:
        return None, f"{module_name} is incomplete (no {', '.join(missing)})"
    try:
        app = make_app(module)
    except Exception as exc:
        return None, f"make_app({module_name}) failed ({type(exc).__name__}: {exc})"
    return app, f"{module_name} loaded"


def version_of(distribution: str) -> str:
    """The installed version of *distribution*, or "unknown"."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def verify(apps: dict[str, WSGIApp], scenarios: Sequence[Scenario]) -> list[str]:
    """Check every app on every scenario; return the problems found."""
    problems = []
    for scenario in scenarios:
        for name, app in apps.items():
            problem = check_answer(name, app, scenario)
            if problem is not None:
                problems.append(problem)
    return problems


def run(
    apps: dict[str, WSGIApp],
    scenarios: Sequence[Scenario],
    config: Config,
    candidate: str | None,
    flask_based: set[str],
) -> list[Result]:
    """Time every scenario on every app, interleaved; return one result per scenario.

    Apps named in *flask_based* get fewer calls where :data:`FLASK_CALL_DIVISOR` says so.
    """
    results = []
    for scenario in scenarios:
        environ, body = build_request(scenario)
        contenders = []
        for name, app in apps.items():
            calls = config.calls
            if name in flask_based:
                calls = max(1, calls // FLASK_CALL_DIVISOR.get(scenario.name, 1))
            contenders.append(Contender(name, make_caller(app, environ, body), calls))
        started = time.perf_counter()
        samples = run_interleaved(contenders, config.rounds, config.warmup)
        print(
            f"  {scenario.name}: {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
            flush=True,
        )
        results.append(
            Result(
                scenario=scenario.name,
                baseline=BASELINE,
                candidate=candidate,
                samples=samples,
                calls={c.name: c.calls for c in contenders},
                target=TARGETS.get(scenario.name),
            )
        )
    return results


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.inprocess",
        description="In-process WSGI per-request cost, flask vs ctxflask (interleaved).",
    )
    parser.add_argument(
        "--rounds", type=int, help=f"rounds per app (default {FULL.rounds})"
    )
    parser.add_argument(
        "--calls",
        type=int,
        help=f"calls per round (default {FULL.calls}; fewer for flask's async view)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="small counts, for a smoke run"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH")
    parser.add_argument(
        "--scenario",
        action="append",
        choices=[s.name for s in SCENARIOS],
        help="run only this scenario (repeatable)",
    )
    parser.add_argument(
        "--candidate",
        default="ctxflask",
        metavar="MODULE",
        help="module compared with flask (default ctxflask; 'flask' gives an A/A noise check)",
    )
    args = parser.parse_args(argv)
    for option in ("rounds", "calls"):
        value = getattr(args, option)
        if value is not None and value < 1:
            parser.error(f"--{option} must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Verify the apps, time them, print the table (and write JSON if asked)."""
    args = parse_args(argv)
    base = QUICK if args.quick else FULL
    config = Config(
        rounds=args.rounds or base.rounds,
        calls=args.calls or base.calls,
        warmup=min(base.warmup, args.calls or base.calls),
    )
    scenarios = [
        s for s in SCENARIOS if args.scenario is None or s.name in args.scenario
    ]

    revision = source_revision()  # before the run: the tree may change meanwhile
    apps: dict[str, WSGIApp] = {BASELINE: make_app(flask)}
    candidate_app, status = load_candidate(args.candidate)
    candidate: str | None = None
    if candidate_app is None:
        print(f"{status}: running flask only.", flush=True)
    else:
        candidate = args.candidate if args.candidate != BASELINE else "flask-aa"
        apps[candidate] = candidate_app

    problems = verify(apps, scenarios)
    if report_problems(problems, "app"):
        return 2

    reduced = ", ".join(f"flask {n}: /{d}" for n, d in FLASK_CALL_DIVISOR.items())
    print(
        f"WSGI in-process: {config.rounds} interleaved rounds of {config.calls} calls"
        f" ({reduced}); median µs per request",
        flush=True,
    )
    flask_based = {BASELINE}
    if candidate is not None and args.candidate == BASELINE:
        flask_based.add(candidate)  # A/A check: same counts on both sides
    results = run(apps, scenarios, config, candidate, flask_based)
    print()
    print(format_table(results, BASELINE, candidate))

    if args.json:
        versions = {name: version_of(name) for name in ("flask", "werkzeug", "asgiref")}
        if candidate is not None:
            versions[candidate] = version_of(args.candidate)
        payload = {
            "benchmark": "wsgi-inprocess",
            "environment": environment(),
            "versions": versions,
            "candidate": candidate,
            "candidate_status": status,
            "ctxflask_source": revision,
            "config": asdict(config),
            "results": [result.as_dict() for result in results],
        }
        write_json(args.json, payload)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
