from __future__ import annotations

import pytest
import pytest_asyncio

import ctxflask
from ctxflask.globals import _cv_app
from ctxflask.globals import _cv_request
from ctxflask.testing import asgi_client


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # A run that collected no tests is a broken run, not a green one.
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.USAGE_ERROR


@pytest.fixture(autouse=True)
def leak_guard():
    """Fail any test that leaves an application or request context pushed."""
    yield
    leaked = [
        ctx for ctx in (_cv_request.get(None), _cv_app.get(None)) if ctx is not None
    ]
    if leaked:
        pytest.fail(f"contexts left pushed: {leaked!r}")


@pytest.fixture
def app() -> ctxflask.Flask:
    app = ctxflask.Flask("flask_test", root_path=__file__.rsplit("/", 1)[0])
    app.config.update(TESTING=True, SECRET_KEY="test key")
    return app


@pytest.fixture(params=["wsgi", "asgi", "asgi-thread"])
def entry_point(request: pytest.FixtureRequest) -> str:
    """The entry point a test's ``client`` goes through: ``app``, or ``app.asgi`` with
    async steps on the server's loop (``ASYNC_STEPS = "loop"``) or in worker threads
    (``"thread"``)."""
    return request.param


@pytest.fixture
def client(app: ctxflask.Flask, entry_point: str):
    """The test client, through the WSGI and through the ASGI entry point, in both of
    its modes."""
    if entry_point == "asgi-thread":
        app.config["ASYNC_STEPS"] = "thread"
    return app.test_client(asgi=entry_point != "wsgi")


@pytest_asyncio.fixture
async def async_client(app: ctxflask.Flask):
    """An httpx client calling ``app.asgi`` in-process, for asyncio tests that send many
    concurrent requests (``asyncio.gather``)."""
    async with asgi_client(app) as client:
        yield client


@pytest.fixture
def app_ctx(app: ctxflask.Flask):
    with app.app_context() as ctx:
        yield ctx


@pytest.fixture
def req_ctx(app: ctxflask.Flask):
    with app.test_request_context() as ctx:
        yield ctx


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    """Run a test once with sync and once with async views and hooks (see ``variant``)."""
    return request.param
