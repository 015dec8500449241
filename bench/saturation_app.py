"""The app of ``bench.saturation``: slow sync views, and an async ping behind ordinary
(unmarked) sync hooks. Served with ``uvicorn --factory bench.saturation_app:make_asgi``."""

from __future__ import annotations

import os
import time
from typing import Any

import ctxflask


def make_app() -> ctxflask.Flask:
    app = ctxflask.Flask(__name__)
    app.config["WORKER_THREADS"] = int(os.environ.get("SATURATION_WORKERS", "40"))
    app.config["ASYNC_STEPS"] = os.environ.get("SATURATION_ASYNC_STEPS", "loop")
    app.config["LOOP_BLOCK_WARNING"] = None

    @app.before_request
    def stamp() -> None:  # an ordinary sync hook, as most Flask apps have
        ctxflask.g.started = time.perf_counter()

    @app.teardown_request
    def done(exc: BaseException | None) -> None:
        ctxflask.g.pop("started", None)

    @app.get("/slow")
    def slow() -> str:
        time.sleep(float(ctxflask.request.args.get("s", "1")))
        return "slow"

    @app.get("/ping")
    async def ping() -> str:
        return "pong"

    return app


def make_asgi() -> Any:
    return make_app().asgi
