"""Blocking libraries in async views, under real servers on loopback (DESIGN.md section 9).

``tests/serverapp/blocking.py`` is an app of Flask-Login and Flask-SQLAlchemy (its default
connection pool, an sqlite file) whose ``async def`` view queries the database and reads
``current_user``. 200 concurrent requests from four logged-in users:

- with ``ASYNC_STEPS = "thread"``, under uvicorn and hypercorn: every request answers
  with its own user's data, none in over 5 s;
- with ``ASYNC_STEPS = "loop"``, the blocking pool checkout stalls the server's loop: the
  loop watchdog's warning names the view and the blocking line within a second.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.test_servers import free_port

pytest.importorskip("flask_login")
pytest.importorskip("flask_sqlalchemy")

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
USERS = ("ann", "bob", "cid", "dee")
REQUESTS = 200

COMMANDS = {
    "uvicorn": [
        "uvicorn", "tests.serverapp.blocking:app.asgi", "--host", HOST,
        "--port", "{port}", "--lifespan", "on", "--no-access-log",
    ],
    "hypercorn": [
        "hypercorn", "tests.serverapp.blocking:app.asgi", "--bind",
        f"{HOST}:{{port}}", "--workers", "1", "--graceful-timeout", "3",
    ],
}  # fmt: skip


class BlockingServer:
    def __init__(self, name: str, mode: str, folder: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://{HOST}:{self.port}"
        self.log_path = folder / "server.log"
        argv = [part.format(port=self.port) for part in COMMANDS[name]]
        argv[0] = str(BIN / argv[0])
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p
            ),
            "BLOCKING_ASYNC_STEPS": mode,
            "BLOCKING_DATABASE": f"sqlite:///{folder / 'notes.sqlite'}",
            "BLOCKING_POOL_TIMEOUT": "3",
            # In thread mode no user code runs on the loop: a stall there can only be
            # the machine's (two cores, 40 busy threads and the client); allow for it.
            "BLOCKING_LOOP_BLOCK_WARNING": "0.1" if mode == "loop" else "0.5",
        }
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    async def wait_ready(self) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=5) as client:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    pytest.fail(f"the server exited:\n{self.log()[-3000:]}")
                try:
                    await client.get("/notes")
                    return
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
        pytest.fail(f"the server did not answer:\n{self.log()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()


async def logged_in_clients(base_url: str) -> dict[str, httpx.AsyncClient]:
    clients = {}
    for name in USERS:
        client = httpx.AsyncClient(
            base_url=base_url,
            timeout=30,
            limits=httpx.Limits(max_connections=REQUESTS // len(USERS)),
        )
        assert (await client.post(f"/login/{name}")).text == "in"
        clients[name] = client
    return clients


async def concurrent_notes(
    base_url: str, paths: tuple[str, ...] = ("/notes", "/guarded")
) -> list[tuple[str, str, float, object]]:
    """200 concurrent requests, round-robin over the users and ``paths``: (user, id,
    seconds, what came back: the JSON, or the status and body)."""
    clients = await logged_in_clients(base_url)
    try:

        async def one(i: int) -> tuple[str, str, float, object]:
            user, rid = USERS[i % len(USERS)], f"r{i}"
            started = time.monotonic()
            path = paths[i % len(paths)]
            try:
                response = await clients[user].get(path, params={"id": rid})
            except httpx.HTTPError as e:
                return user, rid, time.monotonic() - started, repr(e)
            took = time.monotonic() - started
            if response.status_code != 200:
                return user, rid, took, (response.status_code, response.text[:200])
            return user, rid, took, response.json()

        return await asyncio.gather(*(one(i) for i in range(REQUESTS)))
    finally:
        for client in clients.values():
            await client.aclose()


@pytest.fixture
def serve(tmp_path):
    servers = []

    async def start(name: str, mode: str) -> BlockingServer:
        server = BlockingServer(name, mode, tmp_path)
        servers.append(server)
        await server.wait_ready()
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.mark.parametrize("name", list(COMMANDS))
def test_thread_mode_answers_every_user_with_their_own_data(serve, name):
    async def run() -> tuple[list[tuple[str, str, float, object]], str]:
        server = await serve(name, "thread")
        return await concurrent_notes(server.base_url), server.log()

    results, log = asyncio.run(run())
    wrong = [
        r
        for r in results
        if r[3]
        != {"user": r[0], "notes": [f"{r[0]} {i}" for i in range(3)], "id": r[1]}
    ]
    assert wrong == [], log[-3000:]
    slowest = max(took for _, _, took, _ in results)
    assert slowest < 5, slowest
    assert "has not run for" not in log  # the loop never stalled


def _lines_of(source: str, *needles: str) -> set[int]:
    lines = source.splitlines()
    return {i + 1 for i, line in enumerate(lines) for n in needles if n in line}


def test_loop_mode_stalls_and_the_watchdog_names_the_view_and_line(serve):
    # Read, not imported: the app switches `flask` to ctxflask, which only its server's
    # process may do.
    source = (ROOT / "tests" / "serverapp" / "blocking.py").read_text()
    blocking_lines = _lines_of(
        source, "if not current_user.is_authenticated", "return db.session.get(User"
    )

    async def run() -> tuple[float, str]:
        server = await serve("uvicorn", "loop")
        sent = time.monotonic()
        load = asyncio.ensure_future(concurrent_notes(server.base_url, ("/notes",)))
        try:
            while time.monotonic() - sent < 10:
                log = server.log()
                if "has not run for" in log:
                    return time.monotonic() - sent, log
                await asyncio.sleep(0.02)
            return float("inf"), server.log()
        finally:
            load.cancel()
            await asyncio.gather(load, return_exceptions=True)

    took, log = asyncio.run(run())
    assert took < 1.0, log[-3000:]
    warning = next(line for line in log.splitlines() if "has not run for" in line)
    assert "notes" in warning, warning
    assert any(f"blocking.py:{n}" in warning for n in blocking_lines), warning
    assert 'ASYNC_STEPS = "thread"' in warning
