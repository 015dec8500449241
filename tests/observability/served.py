"""An app served by real servers with sentry-sdk's Flask integration initialised, which
patches ``Flask.__call__``: ``uvicorn tests.observability.served:app`` and ``gunicorn -k
asgi tests.observability.served:app`` load the app object itself. Each envelope Sentry
would send is written, as one JSON line per item, to ``envelopes.jsonl`` in the folder
named by ``CTXFLASK_SERVER_STATE``."""

from __future__ import annotations

import ctxflask

ctxflask.install_as_flask()  # before anything imports flask

import json  # noqa: E402
import os  # noqa: E402
import threading  # noqa: E402
import typing as t  # noqa: E402
from pathlib import Path  # noqa: E402

from sentry_sdk.transport import Transport  # noqa: E402

from tests.observability.checks import init_sentry  # noqa: E402

OUT = Path(os.environ["CTXFLASK_SERVER_STATE"]) / "envelopes.jsonl"
_lock = threading.Lock()


class WriteDown(Transport):
    def capture_envelope(self, envelope: t.Any) -> None:
        lines = []
        for item in envelope.items:
            payload = item.payload.json or {}
            lines.append(
                json.dumps(
                    {
                        "type": item.type,
                        "transaction": payload.get("transaction"),
                        "url": payload.get("request", {}).get("url"),
                    }
                )
            )
        with _lock, OUT.open("a") as out:
            out.write("".join(f"{line}\n" for line in lines))


init_sentry(WriteDown)

app = ctxflask.Flask(__name__)


@app.get("/count")
def count() -> dict[str, int]:
    return {}


@app.get("/hello/<name>")
async def hello(name: str) -> str:
    return f"hello {name}"


@app.get("/boom")
def boom() -> str:
    raise ValueError("served boom")
