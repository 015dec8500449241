"""Where a request's time goes: the parts of ctxflask's per-request cost, each timed alone.

Two breakdowns, best of several rounds of ``timeit`` (µs per call), in-process:

- ``wsgi-echo``: ``POST /echo`` (the JSON body sent back) split by subtraction between
  views that do less and less of it: the plain request, reading the body
  (``request.get_data()``), the content-type check (``request.is_json``), a JSON
  response of a fixed document, and the whole echo; beside them the standard library's
  ``json.loads`` and encoding of the document alone.
- ``asgi-async``: the work every ``GET /async`` does under ``app.asgi`` that Flask's
  model requires, each part alone: the request context from the scope (its request
  object included), pushing both contexts with the (remembered) route match and popping
  them, and the response with its ASGI header list; beside them the whole request, and
  Starlette's and the raw ASGI app's whole requests (``bench.asgi``'s harness).

Run ``python -m bench.breakdown`` (``--rounds`` to change the rounds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import timeit
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

from werkzeug.test import EnvironBuilder

from bench.apps import ECHO_PAYLOAD
from bench.asgi import build_exchange
from bench.asgi import request as asgi_request
from bench.asgi_apps import FRAMEWORKS
from bench.asgi_apps import SCENARIOS as ASGI_SCENARIOS
from bench.inprocess import make_caller
from bench.timing import render_table

CALLS = 5000


def best_us(fn: Callable[[], object], rounds: int, calls: int = CALLS) -> float:
    """The fastest of ``rounds`` rounds of ``calls`` calls, in µs per call."""
    return min(timeit.repeat(fn, number=calls, repeat=rounds)) / calls * 1e6


def wsgi_echo(rounds: int) -> list[tuple[str, float]]:
    """The parts of ``POST /echo`` under WSGI, by subtraction."""
    import ctxflask
    from ctxflask import jsonify
    from ctxflask import request

    app = ctxflask.Flask("breakdown")
    views: dict[str, Callable[[], Any]] = {
        "plain": lambda: "ok",
        "is_json": lambda: (request.is_json, "ok")[1],
        "get_data": lambda: (request.get_data(), "ok")[1],
        "jsonify": lambda: jsonify(ECHO_PAYLOAD),
        "echo": lambda: jsonify(request.get_json()),
    }
    for name, view in views.items():
        app.add_url_rule(f"/{name}", name, view, methods=["POST"])
    body = json.dumps(ECHO_PAYLOAD).encode()

    def timed(name: str) -> float:
        environ = EnvironBuilder(
            path=f"/{name}", method="POST", data=body, content_type="application/json"
        ).get_environ()
        return best_us(make_caller(app, environ, body), rounds)

    us = {name: timed(name) for name in views}
    encoder = json.JSONEncoder(sort_keys=True, separators=(",", ":"))
    return [
        ("the request (POST, view returns a str)", us["plain"]),
        ("+ request.get_data()", us["get_data"] - us["plain"]),
        ("+ request.is_json", us["is_json"] - us["plain"]),
        ("+ jsonify(the document) instead of a str", us["jsonify"] - us["plain"]),
        ("the whole echo", us["echo"]),
        ("json.loads of the body alone", best_us(lambda: json.loads(body), rounds)),
        ("its encoding alone", best_us(lambda: encoder.encode(ECHO_PAYLOAD), rounds)),
    ]


def asgi_async(rounds: int) -> list[tuple[str, float]]:
    """The parts of ``GET /async`` under ``app.asgi`` that Flask's model requires."""
    from ctxflask.asgi.body import NO_BODY
    from ctxflask.asgi.scope import ScopeEnviron
    from ctxflask.core.wrappers import response_headers

    scenario = next(s for s in ASGI_SCENARIOS if s.name == "async")
    exchange = build_exchange(scenario)
    asgi = FRAMEWORKS["ctxflask"]()
    app = asgi.app  # type: ignore[attr-defined]

    def make_context() -> Any:
        return asgi.request_context(ScopeEnviron(dict(exchange.scope), NO_BODY))  # type: ignore[attr-defined]

    def push_and_pop() -> None:
        ctx = make_context()
        ctx._push()  # matches the route, as a request's push does
        ctx._pop(None)

    made = best_us(make_context, rounds)
    parts = [
        ("request context from the scope", made),
        ("+ push (route match) and pop", best_us(push_and_pop, rounds) - made),
    ]
    with app.test_request_context(scenario.path) as ctx:
        req = ctx.request

        def respond() -> None:
            response_headers(app.make_response(scenario.expected), req, True)

        parts.append(("make_response(str) and ASGI headers", best_us(respond, rounds)))
    for name in ("ctxflask", "starlette", "raw-asgi"):
        parts.append((f"whole request: {name}", _whole(FRAMEWORKS[name](), rounds)))
    return parts


def _whole(app: Any, rounds: int) -> float:
    """The whole ``GET /async`` request to ``app``, through ``bench.asgi``'s harness."""
    exchange = build_exchange(next(s for s in ASGI_SCENARIOS if s.name == "async"))

    async def main() -> float:
        for _ in range(1000):
            await asgi_request(app, exchange)
        best = float("inf")
        for _ in range(rounds):
            start = time.perf_counter()
            for _ in range(CALLS):
                await asgi_request(app, exchange)
            best = min(best, (time.perf_counter() - start) / CALLS * 1e6)
        return best

    return asyncio.run(main())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.breakdown", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--rounds", type=int, default=9, help="rounds (default 9)")
    args = parser.parse_args(argv)
    for title, parts in (
        ("WSGI POST /echo", wsgi_echo(args.rounds)),
        ("ASGI GET /async (async view)", asgi_async(args.rounds)),
    ):
        print(f"{title}: µs, best of {args.rounds} rounds of {CALLS:,} calls")
        print(render_table([["part", "µs"], *[[p, f"{us:.2f}"] for p, us in parts]]))
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
