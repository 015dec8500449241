"""The deployment targets of DESIGN.md section 7, run as real servers on loopback.

Each server runs ``tests/serverapp/app.py`` in one worker process, on 127.0.0.1 and a
free port, with the venv's executables. Per server: 300 concurrent requests over every
kind of view (sync, async, sync and async streams, uploads) each see only their own id
in every step; uploads over ``MAX_CONTENT_LENGTH`` are 413, declared or chunked;
``before_serving`` ran once before the first request, teardown once per request, and
``after_serving`` once when the server stops (SIGTERM).

One server per kind serves all the tests of that kind (the fixture is module-scoped), so
``test_after_serving_ran_once_after_stop`` stops it and comes last.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import typing as t
from http.cookiejar import CookieJar
from http.cookiejar import DefaultCookiePolicy
from pathlib import Path

import httpx
import pytest

from tests.serverapp import app as serverapp

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"

START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0
LOAD_DEADLINE = 60.0
CONCURRENT_REQUESTS = 300
LIMIT = serverapp.MAX_CONTENT_LENGTH


def granian(interface: str, target: str, *options: str) -> list[str]:
    """granian's command line for ``interface`` (asgi, wsgi): one worker process."""
    return [
        "granian",
        *("--interface", interface, "--host", HOST, "--port", "{port}"),
        *("--workers", "1", "--workers-kill-timeout", "5", *options, target),
    ]


#: Server name -> command line (``{port}`` is filled in).
SERVERS: dict[str, list[str]] = {
    "uvicorn": [
        "uvicorn",
        "tests.serverapp.app:app.asgi",
        "--host",
        HOST,
        "--port",
        "{port}",
        "--interface",
        "auto",
        "--lifespan",
        "on",
        "--no-access-log",
    ],
    "hypercorn": [
        "hypercorn",
        "tests.serverapp.app:app.asgi",
        "--bind",
        f"{HOST}:{{port}}",
        "--workers",
        "1",
        "--graceful-timeout",
        "5",
    ],
    "hypercorn-trio": [
        "hypercorn",
        "tests.serverapp.app:app.asgi",
        "--bind",
        f"{HOST}:{{port}}",
        "--worker-class",
        "trio",
        "--workers",
        "1",
        "--graceful-timeout",
        "5",
    ],
    # gunicorn's import of the app takes a name or a call, not ``app.asgi``
    # (test_gunicorn_asgi_worker_takes_app_asgi): it gets the app object, which answers
    # ASGI calls too.
    "gunicorn-asgi": [
        "gunicorn",
        "--no-control-socket",
        "-k",
        "asgi",
        "--workers",
        "1",
        "--bind",
        f"{HOST}:{{port}}",
        "--graceful-timeout",
        "5",
        "--asgi-lifespan",
        "on",
        # Idle connections outlive the test: no close racing a reused connection.
        "--keep-alive",
        "30",
        "tests.serverapp.app:app",
    ],
    "gunicorn-gthread": [
        "gunicorn",
        "--no-control-socket",
        "-k",
        "gthread",
        "--threads",
        "8",
        "--keep-alive",
        "30",
        "--workers",
        "1",
        "--bind",
        f"{HOST}:{{port}}",
        "--graceful-timeout",
        "5",
        "tests.serverapp.app:app",
    ],
    "gunicorn-sync": [
        "gunicorn",
        "--no-control-socket",
        "-k",
        "sync",
        "--workers",
        "1",
        "--bind",
        f"{HOST}:{{port}}",
        "--graceful-timeout",
        "5",
        "tests.serverapp.app:app",
    ],
    "granian-asgi": granian("asgi", "tests.serverapp.app:app.asgi"),
    "granian-wsgi": granian(
        "wsgi", "tests.serverapp.app:app", "--blocking-threads", "8"
    ),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class Server:
    """A server process on 127.0.0.1, its log, and the responses the tests got from it."""

    def __init__(self, name: str, command: list[str], folder: Path) -> None:
        self.name = name
        self.state = folder / "state"
        self.state.mkdir()
        self.log_path = folder / "server.log"
        self.port = free_port()
        self.base_url = f"http://{HOST}:{self.port}"
        #: Responses received from this server so far (each ran one teardown).
        self.served = 0
        #: What ``/count`` answered to the first request.
        self.first_counts: dict[str, t.Any] = {}
        argv = [part.format(port=self.port) for part in command]
        argv[0] = str(BIN / argv[0])
        env = {**os.environ, serverapp.STATE_ENV: str(self.state)}
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT), env.get("PYTHONPATH")) if p
        )
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in terminate)
        self.process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def wait_ready(self) -> None:
        """Poll until the server answers ``/count``, within ``START_TIMEOUT``."""
        deadline = time.monotonic() + START_TIMEOUT
        with httpx.Client(base_url=self.base_url, timeout=START_TIMEOUT) as client:
            while True:
                if self.process.poll() is not None:
                    pytest.fail(
                        f"{self.name} exited with {self.process.returncode} before"
                        f" answering:\n{self.log_tail()}"
                    )
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"{self.name} did not answer in {START_TIMEOUT} s:\n"
                        f"{self.log_tail()}"
                    )
                try:
                    # Once the socket listens, a request waits for the worker: it is
                    # answered (and counted) or the server exits.
                    response = client.get("/count")
                except httpx.TransportError:
                    time.sleep(0.05)
                    continue
                self.served += 1
                assert response.status_code == 200, self.log_tail()
                self.first_counts = response.json()
                return

    def count(self) -> dict[str, t.Any]:
        with httpx.Client(base_url=self.base_url, timeout=10) as client:
            response = client.get("/count")
        self.served += 1
        assert response.status_code == 200, self.log_tail()
        return t.cast(dict[str, t.Any], response.json())

    def terminate(self) -> tuple[int, bool]:
        """SIGTERM, wait, SIGKILL if still running: the exit code, and whether it
        had to be killed."""
        killed = False
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                killed = True
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)
        self._log.close()
        return self.process.returncode, killed

    def stop(self) -> None:
        """Stop the server as a deployment would (SIGTERM); fail if it must be killed
        or exits with an error."""
        code, killed = self.terminate()
        assert not killed, f"{self.name} ignored SIGTERM:\n{self.log_tail()}"
        # uvicorn raises the signal again once it has shut down: -SIGTERM.
        assert code in (0, -signal.SIGTERM), f"exit {code}:\n{self.log_tail()}"


@pytest.fixture(scope="module", params=list(SERVERS))
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> t.Iterator[Server]:
    name = request.param
    srv = Server(name, SERVERS[name], tmp_path_factory.mktemp(name))
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.terminate()


def no_cookies() -> httpx.Cookies:
    """A cookie jar that keeps nothing: each request starts with an empty session."""
    return httpx.Cookies(CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])))


def full(rid: str) -> str:
    return ",".join([rid] * 7)


def expected_lines(kind: str, rid: str) -> list[dict[str, str]]:
    """The body lines a request to ``kind`` answers when every step sees its own id."""
    lines = [
        {"step": "serving", "seen": "1,1"},
        {"step": "before_sync", "seen": f"{rid},{rid},{rid},{rid},None,None,None"},
        {"step": "before_async", "seen": full(rid)},
        {"step": "view", "seen": full(rid)},
    ]
    if kind.startswith("stream/"):
        lines += [{"step": f"chunk{i}", "seen": full(rid)} for i in range(3)]
    if kind.startswith("upload/"):
        body = upload_body(rid)
        lines.append({"step": "upload", "seen": f"{len(body)},{body[:16].decode()}"})
    return lines


def upload_body(rid: str) -> bytes:
    return (f"{rid}-" * 2000).encode()


def session_cookie(response: httpx.Response) -> dict[str, t.Any] | None:
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name == "session":
            value = rest.split(";", 1)[0]
            serializer = serverapp.app.session_interface.get_signing_serializer(
                serverapp.app
            )
            return t.cast(dict[str, t.Any], serializer.loads(value))
    return None


KINDS = ["sync", "async", "stream/sync", "stream/async", "upload/sync", "upload/async"]


async def send_one(client: httpx.AsyncClient, kind: str, rid: str) -> list[str]:
    """One request; the list of what it got wrong (empty when all is its own)."""
    if kind.startswith("upload/"):
        response = await client.post(
            f"/{kind}", params={"id": rid}, content=upload_body(rid)
        )
    else:
        response = await client.get(f"/{kind}", params={"id": rid})
    problems: list[str] = []
    if response.status_code != 200:
        return [f"{kind} {rid}: status {response.status_code}: {response.text[:300]!r}"]
    if kind.startswith("stream/") and "content-length" in response.headers:
        problems.append(f"{kind} {rid}: not streamed: {response.headers!r}")
    lines = [json.loads(line) for line in response.text.splitlines()]
    if lines != expected_lines(kind, rid):
        problems.append(f"{kind} {rid}: body {lines!r}")
    for header in ("x-after-sync", "x-after-async"):
        if response.headers.get(header) != full(rid):
            problems.append(f"{kind} {rid}: {header} {response.headers.get(header)!r}")
    cookie = session_cookie(response)
    if cookie != {"id": rid, "aid": rid}:
        problems.append(f"{kind} {rid}: session cookie {cookie!r}")
    return problems


async def send_mixed(base_url: str, count: int) -> tuple[list[str], int]:
    """``count`` concurrent requests over every kind of view, within the deadline:
    the problems found and the number of responses received."""
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(
        base_url=base_url, limits=limits, timeout=30, cookies=no_cookies()
    ) as client:
        jobs = [
            send_one(client, KINDS[i % len(KINDS)], f"r{i:03d}") for i in range(count)
        ]
        results = await asyncio.wait_for(
            asyncio.gather(*jobs, return_exceptions=True), LOAD_DEADLINE
        )
    problems: list[str] = []
    answered = 0
    for i, result in enumerate(results):
        if isinstance(result, BaseException):
            problems.append(f"request r{i:03d}: {type(result).__name__}: {result}")
        else:
            answered += 1
            problems += result
    return problems, answered


def read_entries(path: Path) -> list[dict[str, t.Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_concurrent_requests_each_see_only_their_own_id(server: Server):
    """Every step of 300 concurrent requests (hooks, views, stream chunks, session) sees
    its own request's id, and every one of them is a 200."""
    problems, answered = asyncio.run(send_mixed(server.base_url, CONCURRENT_REQUESTS))
    server.served += answered
    report = "\n".join(problems[:20])
    assert not problems, (
        f"{len(problems)} problems:\n{report}\n--- server log:\n{server.log_tail()}"
    )


@pytest.mark.parametrize("view", ["upload/sync", "upload/async"])
def test_upload_declared_over_the_limit_is_413(server: Server, view: str):
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        response = client.post(
            f"/{view}", params={"id": "big"}, content=b"x" * (LIMIT + 1)
        )
    server.served += 1
    assert response.status_code == 413, server.log_tail()


def chunked_body(total: int) -> t.Iterator[bytes]:
    chunk = b"y" * 8192
    sent = 0
    while sent < total:
        yield chunk
        sent += len(chunk)


@pytest.mark.parametrize("view", ["upload/sync", "upload/async"])
def test_chunked_upload_over_the_limit_is_413(server: Server, view: str):
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        request = client.build_request(
            "POST",
            f"/{view}",
            params={"id": "chunked"},
            content=chunked_body(2 * LIMIT),
        )
        assert request.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in request.headers
        response = client.send(request)
    server.served += 1
    assert response.status_code == 413, server.log_tail()


@pytest.mark.parametrize("view", ["upload/sync", "upload/async"])
def test_chunked_upload_of_exactly_the_limit_is_read_whole(server: Server, view: str):
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        response = client.post(
            f"/{view}",
            params={"id": "c1"},
            content=iter([b"c1-c1-", b"z" * (LIMIT - 6)]),
        )
    server.served += 1
    assert response.status_code == 200, server.log_tail()
    assert response.text.splitlines()[-1] == json.dumps(
        {"step": "upload", "seen": f"{LIMIT},c1-c1-zzzzzzzzzz"}
    )


def serving_entry(kind: str, pid: int, before: tuple[int, int], teardowns: int):
    """A line the app's before_serving/after_serving functions write."""
    return {
        "kind": kind,
        "pid": pid,
        "app": "tests.serverapp.app",
        "g": kind,
        "before_serving_sync": before[0],
        "before_serving_async": before[1],
        "teardown_sync": teardowns,
        "teardown_async": teardowns,
    }


def test_before_serving_ran_before_the_first_request(server: Server):
    first = server.first_counts
    assert (first["before_serving_sync"], first["before_serving_async"]) == (1, 1)
    assert (first["teardown_sync"], first["teardown_async"]) == (0, 0)


def test_before_serving_ran_once_in_an_app_context(server: Server):
    pid = server.count()["pid"]
    assert read_entries(server.state / "before_serving") == [
        serving_entry("sync", pid, (1, 0), 0),
        serving_entry("async", pid, (1, 1), 0),
    ], server.log_tail()


def wait_for_teardowns(server: Server) -> dict[str, t.Any]:
    """Ask ``/count`` until every response received has been torn down (a streamed
    body's teardown may still be running when the client has read its last chunk)."""
    deadline = time.monotonic() + 5
    while True:
        expected = server.served  # this count request is not torn down yet
        counts = server.count()
        done = counts["teardown_sync"] == counts["teardown_async"] == expected
        if done or time.monotonic() > deadline:
            return {"expected": expected, **counts}
        time.sleep(0.02)


def test_teardown_ran_once_per_request_in_its_own_context(server: Server):
    counts = wait_for_teardowns(server)
    assert counts["mismatches"] == []
    assert (counts["teardown_sync"], counts["teardown_async"]) == (
        counts["expected"],
        counts["expected"],
    ), server.log_tail()


def test_after_serving_ran_once_after_stop(server: Server):
    """Last test of each server: it stops it."""
    counts = wait_for_teardowns(server)
    served, pid = server.served, counts["pid"]
    assert read_entries(server.state / "after_serving") == []
    server.stop()
    assert read_entries(server.state / "after_serving") == [
        serving_entry("sync", pid, (1, 1), served),
        serving_entry("async", pid, (1, 1), served),
    ], server.log()
    assert "Traceback" not in server.log()


def test_uvicorn_takes_app_asgi_as_asgi3_and_runs_its_lifespan(tmp_path: Path):
    """uvicorn's interface auto-detection: taken for ASGI 2, ``app.asgi(scope)`` would
    raise a TypeError, the lifespan would fail and ``--lifespan on`` would exit."""
    srv = Server("uvicorn", SERVERS["uvicorn"], tmp_path)
    try:
        srv.wait_ready()
        with httpx.Client(base_url=srv.base_url, timeout=10) as client:
            response = client.get("/async", params={"id": "a3"})
        srv.stop()
    finally:
        srv.terminate()
    assert response.status_code == 200
    log = srv.log()
    assert "Application startup complete." in log
    assert "Application shutdown complete." in log
    assert "Traceback" not in log


def _serve_one_async_request(
    name: str, command: list[str], tmp_path: Path
) -> httpx.Response:
    srv = Server(name, command, tmp_path)
    try:
        srv.wait_ready()
        with httpx.Client(base_url=srv.base_url, timeout=10) as client:
            return client.get("/async", params={"id": "a4"})
    finally:
        srv.terminate()


def test_gunicorn_asgi_worker_takes_the_app_object_itself(tmp_path: Path):
    """``gunicorn -k asgi module:app``: called with ASGI's three arguments, the app
    object is its own ASGI entry point."""
    command = [*SERVERS["gunicorn-asgi"][:-1], "tests.serverapp.app:app"]
    response = _serve_one_async_request(
        "gunicorn -k asgi module:app", command, tmp_path
    )
    assert response.status_code == 200
    assert response.headers["x-after-async"] == full("a4")


@pytest.mark.xfail(
    strict=True,
    reason="gunicorn's app loader (gunicorn.util.import_app) takes a name or a call, not an"
    " attribute path such as app.asgi: use `gunicorn -k asgi module:app`",
)
def test_gunicorn_asgi_worker_takes_app_asgi(tmp_path: Path):
    """DESIGN.md section 7 names ``gunicorn -k asgi module:app.asgi``."""
    command = [*SERVERS["gunicorn-asgi"][:-1], "tests.serverapp.app:app.asgi"]
    response = _serve_one_async_request(
        "gunicorn -k asgi module:app.asgi", command, tmp_path
    )
    assert response.status_code == 200
