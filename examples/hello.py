"""A small ctxflask app: sync and async views side by side.

Run it with the development server (WSGI):   python examples/hello.py
or with a production WSGI server:            gunicorn examples.hello:app
"""

from __future__ import annotations

import asyncio
import os

from ctxflask import Flask
from ctxflask import g
from ctxflask import request
from ctxflask import session

app = Flask(__name__)
app.secret_key = os.environ.get("SECRET_KEY", "change me: only for the example")


@app.before_request
def count_visits() -> None:
    session["visits"] = session.get("visits", 0) + 1
    g.visits = session["visits"]


@app.get("/")
def hello() -> str:
    name = request.args.get("name", "World")
    return f"Hello, {name}! (visit {g.visits})\n"


@app.get("/async")
async def hello_async() -> dict[str, object]:
    await asyncio.sleep(0.01)  # the event loop is free meanwhile
    return {"hello": request.args.get("name", "World"), "visits": g.visits}


@app.get("/stream")
def stream() -> object:
    def lines():  # runs inside the request's contexts until its last line
        for i in range(3):
            yield f"{request.path} line {i}\n"

    return lines()


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "5000")))
