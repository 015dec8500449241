"""OpenTelemetry's Flask and ASGI instrumentations and sentry-sdk's Flask integration on
a ctxflask app, under both entry points. Run as ``python -m tests.observability.checks
NAME [ARG]``: one check in a fresh process, since ``install_as_flask()`` and the
integrations' patches of Flask's class, signals and global providers cannot be undone.
Each check prints what it saw as one JSON line; ``tests/test_observability.py`` asserts.
"""

from __future__ import annotations

import ctxflask

ctxflask.install_as_flask()  # before anything imports flask

import asyncio  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import typing as t  # noqa: E402

import httpx  # noqa: E402

from ctxflask import Flask  # noqa: E402
from ctxflask import request  # noqa: E402

#: How many concurrent ASGI requests the concurrency checks send.
CONCURRENT = 200


def make_app(tracer: t.Any = None) -> Flask:
    """Sync and async views (each making a child span when given a tracer), views that
    raise, and a stream."""
    app = Flask("observed")

    def child(n: int) -> t.Any:
        if tracer is None:
            return _Nothing()
        return tracer.start_as_current_span("child", attributes={"request.n": n})

    @app.get("/sync/<int:n>")
    def sync_view(n: int) -> str:
        with child(n):
            time.sleep(0.001)
            return str(n)

    @app.get("/async/<int:n>")
    async def async_view(n: int) -> str:
        with child(n):
            await asyncio.sleep(0.001)
            return str(n)

    @app.get("/boom/<int:n>")
    def boom(n: int) -> str:
        raise ValueError(f"boom {n}")

    @app.get("/aboom/<int:n>")
    async def aboom(n: int) -> str:
        raise ValueError(f"aboom {n}")

    @app.get("/stream/<int:n>")
    def stream(n: int) -> t.Any:
        def chunks() -> t.Iterator[str]:
            with child(n):
                yield f"{request.path} "
                yield "streamed"

        return chunks()

    return app


class _Nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        return None


def wsgi_get(app: Flask, paths: t.Iterable[str]) -> list[int]:
    client = app.test_client()
    return [client.get(path).status_code for path in paths]


def asgi_get(target: t.Any, paths: t.Iterable[str]) -> list[int]:
    """GET each path through the ASGI app ``target``, concurrently; check each body."""

    async def main() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=target)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await asyncio.gather(*(c.get(path) for path in paths))

    responses = asyncio.run(main())
    for path, response in zip(paths, responses, strict=True):
        if response.status_code == 200 and "/stream/" not in path:
            assert response.text == path.rsplit("/", 1)[1], (path, response.text)
    return [r.status_code for r in responses]


def concurrent_paths(first: int) -> list[str]:
    return [
        f"/{'sync' if n % 2 else 'async'}/{n}" for n in range(first, first + CONCURRENT)
    ]


# -- OpenTelemetry -------------------------------------------------------------------


def telemetry() -> tuple[t.Any, t.Any, t.Any, t.Any]:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        InMemorySpanExporter,
    )

    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    return tracer_provider, exporter, MeterProvider(metric_readers=[reader]), reader


def spans_seen(exporter: t.Any) -> dict[str, t.Any]:
    """The server spans (name, target, status, route), and each child span checked
    against the server span of its own request: same trace, that span its parent, that
    span's target the child's request."""
    spans = exporter.get_finished_spans()
    by_id = {s.context.span_id: s for s in spans}
    servers = []
    children = {"checked": 0, "wrong": []}
    for span in spans:
        attributes = dict(span.attributes or {})
        if span.kind.name == "SERVER":
            servers.append(
                {
                    "name": span.name,
                    "target": attributes.get("http.target"),
                    "status": attributes.get("http.status_code"),
                    "route": attributes.get("http.route"),
                }
            )
        elif span.name == "child":
            n = attributes["request.n"]
            parent = by_id.get(span.parent.span_id) if span.parent else None
            target = None if parent is None else parent.attributes.get("http.target")
            children["checked"] += 1
            if (
                parent is None
                or parent.kind.name != "SERVER"
                or parent.context.trace_id != span.context.trace_id
                or target is None
                or target.rsplit("/", 1)[1] != str(n)
            ):
                children["wrong"].append([n, target])
    return {"servers": servers, "children": children}


def metrics_seen(reader: t.Any) -> dict[str, t.Any]:
    """The duration histogram's points (target, status, count) and the active requests'
    values."""
    seen: dict[str, t.Any] = {"duration": [], "active": []}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    attributes = dict(point.attributes)
                    if metric.name == "http.server.duration":
                        seen["duration"].append(
                            [
                                attributes.get("http.target"),
                                attributes.get("http.status_code"),
                                point.count,
                            ]
                        )
                    elif metric.name == "http.server.active_requests":
                        seen["active"].append(point.value)
    seen["duration"].sort(key=repr)
    return seen


def flask_instrumentor(async_steps: str) -> dict[str, t.Any]:
    """``FlaskInstrumentor().instrument_app(app)``: requests through WSGI, ``app.asgi``
    and ``app(scope, receive, send)``, then 200 concurrent ASGI ones, then uninstrumented."""
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    tracer_provider, exporter, meter_provider, reader = telemetry()
    app = make_app(tracer_provider.get_tracer("checks"))
    app.config["ASYNC_STEPS"] = async_steps
    FlaskInstrumentor().instrument_app(
        app, tracer_provider=tracer_provider, meter_provider=meter_provider
    )
    seen: dict[str, t.Any] = {
        "wsgi": wsgi_get(app, ["/sync/1", "/async/2", "/boom/3", "/stream/4", "/no/5"]),
        "asgi": asgi_get(
            app.asgi, ["/sync/6", "/async/7", "/aboom/8", "/stream/9", "/no/10"]
        ),
        "call": asgi_get(app, ["/sync/11", "/async/12"]),
    }
    seen["concurrent"] = asgi_get(app.asgi, concurrent_paths(100))
    seen.update(spans_seen(exporter))
    seen["metrics"] = metrics_seen(reader)
    FlaskInstrumentor().uninstrument_app(app)
    exporter.clear()
    seen["after"] = asgi_get(app.asgi, ["/sync/13"])
    seen["servers_after"] = len(spans_seen(exporter)["servers"])
    seen["middleware_after"] = app._wsgi_middleware() is not None
    return seen


def flask_instrumentor_global() -> dict[str, t.Any]:
    """``FlaskInstrumentor().instrument()``, which replaces ``flask.Flask`` with a
    subclass; an app made then, through both entry points; then uninstrumented."""
    import flask
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    tracer_provider, exporter, meter_provider, _ = telemetry()
    FlaskInstrumentor().instrument(
        tracer_provider=tracer_provider, meter_provider=meter_provider
    )
    instrumented = flask.Flask is not ctxflask.Flask
    original_make = Flask
    globals()["Flask"] = flask.Flask
    try:
        app = make_app(tracer_provider.get_tracer("checks"))
    finally:
        globals()["Flask"] = original_make
    seen: dict[str, t.Any] = {
        "instrumented": instrumented,
        "wsgi": wsgi_get(app, ["/sync/1"]),
        "asgi": asgi_get(app.asgi, ["/async/2", "/sync/3"]),
    }
    seen.update(spans_seen(exporter))
    FlaskInstrumentor().uninstrument()
    seen["restored"] = flask.Flask is ctxflask.Flask
    return seen


def asgi_middleware(span_details: str) -> dict[str, t.Any]:
    """OpenTelemetry's ASGI middleware around ``app.asgi`` (with ctxflask's span details
    or its default ones), 200 concurrent requests."""
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    tracer_provider, exporter, meter_provider, reader = telemetry()
    app = make_app(tracer_provider.get_tracer("checks"))
    extra = {"default_span_details": app.asgi.span_details} if span_details else {}
    target = OpenTelemetryMiddleware(
        app.asgi,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        **extra,
    )
    seen: dict[str, t.Any] = {
        "concurrent": asgi_get(target, concurrent_paths(0)),
        "asgi": asgi_get(target, ["/no/1000"]),
    }
    seen.update(spans_seen(exporter))
    seen["metrics"] = metrics_seen(reader)
    return seen


# -- Sentry ----------------------------------------------------------------------------


def init_sentry(transport: type) -> None:
    """sentry-sdk with its Flask integration alone, every transaction sampled, and
    ``transport`` instead of the network."""
    import sentry_sdk
    from sentry_sdk.integrations.flask import FlaskIntegration

    sentry_sdk.init(
        dsn="http://key@127.0.0.1/1",
        transport=transport,
        integrations=[FlaskIntegration()],
        default_integrations=False,
        auto_enabling_integrations=False,
        traces_sample_rate=1.0,
    )


def sentry(entry: str) -> dict[str, t.Any]:
    """sentry-sdk's Flask integration, with a transport that keeps the envelopes: errors
    in a sync and an async view, and concurrent requests, through ``entry``."""
    import sentry_sdk
    from sentry_sdk.integrations.asgi import SentryAsgiMiddleware
    from sentry_sdk.transport import Transport

    envelopes: list[t.Any] = []

    class Keep(Transport):
        def capture_envelope(self, envelope: t.Any) -> None:
            envelopes.append(envelope)

    init_sentry(Keep)
    app = make_app()

    @app.before_request
    def tag() -> None:
        # Each request's own scope: the tag must reach its events only.
        sentry_sdk.set_tag("path", request.path)

    paths = ["/boom/1", "/aboom/2", *(f"/sync/{n}" for n in range(3, 23))]
    seen: dict[str, t.Any] = {
        "asgi3": asyncio.iscoroutinefunction(app.__call__),
    }
    if entry == "wsgi":
        seen["status"] = wsgi_get(app, paths)
    else:
        target = {
            "asgi": app.asgi,
            "call": app,
            "asgi-middleware": SentryAsgiMiddleware(app.asgi),
        }[entry]
        seen["status"] = asgi_get(target, paths)
    sentry_sdk.flush()
    events, transactions = [], []
    for envelope in envelopes:
        for item in envelope.items:
            payload = item.payload.json
            if item.type == "event":
                events.append(
                    {
                        "transaction": payload.get("transaction"),
                        "url": payload.get("request", {}).get("url"),
                        "error": payload["exception"]["values"][-1]["value"],
                        "tag": payload.get("tags", {}).get("path"),
                    }
                )
            elif item.type == "transaction":
                transactions.append(
                    {
                        "name": payload.get("transaction"),
                        "url": payload.get("request", {}).get("url"),
                        "status": payload["contexts"]["trace"].get("status"),
                        "tag": payload.get("tags", {}).get("path"),
                    }
                )
    seen["events"] = sorted(events, key=repr)
    seen["transactions"] = sorted(transactions, key=repr)
    return seen


CHECKS: dict[str, t.Callable[..., dict[str, t.Any]]] = {
    "flask_instrumentor": flask_instrumentor,
    "flask_instrumentor_global": flask_instrumentor_global,
    "asgi_middleware": asgi_middleware,
    "sentry": sentry,
}

if __name__ == "__main__":
    print(json.dumps(CHECKS[sys.argv[1]](*sys.argv[2:])))
