"""``app.logger``: its name and level, the default handler (``wsgi.errors`` under WSGI,
stderr under ASGI and outside requests), ``has_level_handler``, and logged unhandled
exceptions."""

from __future__ import annotations

import io
import itertools
import logging
import re
from collections.abc import Iterator

import pytest

from ctxflask import abort
from ctxflask import current_app
from ctxflask import Flask
from ctxflask.logging import default_handler
from ctxflask.logging import has_level_handler
from tests.support import variant

_names = itertools.count()


def detached_root() -> logging.Logger:
    """A root logger of its own (WARNING, no handlers), to hang loggers under.

    pytest puts capture handlers on the real root logger and on every logger that does
    not propagate, so cutting a logger off from the root with ``propagate = False`` would
    not leave it without handlers: it gets a parent of its own instead."""
    return logging.RootLogger(logging.WARNING)


@pytest.fixture(autouse=True)
def app_logger(app: Flask) -> Iterator[logging.Logger]:
    """The app's logger is the process-wide ``logging.getLogger(app.name)``: each test
    starts with it free of handlers and level, under a detached root."""
    logger = logging.getLogger(app.name)
    saved = (logger.handlers[:], logger.level, logger.parent)
    logger.handlers = []
    logger.parent = detached_root()
    logger.setLevel(logging.NOTSET)  # also clears logging's cache of enabled levels
    yield logger
    logger.handlers, level, logger.parent = saved
    logger.setLevel(level)


class Records(logging.Handler):
    """Keep the records it handles."""

    def __init__(self, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def hierarchy() -> Iterator[tuple[logging.Logger, logging.Logger]]:
    """A fresh ``parent`` and ``parent.child`` pair of loggers, under a detached root."""
    parent = logging.getLogger(f"ctxflask_logging_test_{next(_names)}")
    parent.parent = detached_root()
    child = logging.getLogger(f"{parent.name}.child")
    parent.setLevel(logging.NOTSET)  # clears logging's cache of enabled levels
    yield parent, child
    for logger in (parent, child):
        logger.handlers = []
        logger.setLevel(logging.NOTSET)


# -- the logger -------------------------------------------------------------------------


def test_logger_is_the_logging_logger_named_after_the_app(app: Flask) -> None:
    assert app.logger.name == "flask_test"
    assert app.logger is logging.getLogger("flask_test")


def test_logger_is_created_once_per_app(app: Flask) -> None:
    assert app.logger is app.logger
    assert app.logger.handlers.count(default_handler) == 1


def test_logger_has_no_level_of_its_own_outside_debug_mode(app: Flask) -> None:
    assert app.logger.level == logging.NOTSET


def test_debug_mode_sets_the_logger_to_debug_level(app: Flask) -> None:
    app.debug = True

    assert app.logger.level == logging.DEBUG


def test_debug_mode_keeps_a_level_set_by_logging_configuration(
    app: Flask, app_logger: logging.Logger
) -> None:
    app_logger.setLevel(logging.ERROR)
    app.debug = True

    assert app.logger.level == logging.ERROR


def test_default_handler_is_added_when_nothing_takes_the_records(app: Flask) -> None:
    assert app.logger.handlers == [default_handler]


def test_default_handler_is_not_added_when_a_handler_takes_the_records(
    app: Flask, app_logger: logging.Logger
) -> None:
    configured = Records()
    app_logger.addHandler(configured)

    assert app.logger.handlers == [configured]


def test_default_handler_is_not_added_under_a_configured_parent(
    hierarchy: tuple[logging.Logger, logging.Logger],
) -> None:
    parent, child = hierarchy
    configured = Records()
    parent.addHandler(configured)

    app = Flask(child.name)

    assert app.logger is child
    assert child.handlers == []


def test_default_handler_is_added_when_handlers_skip_the_loggers_level(
    hierarchy: tuple[logging.Logger, logging.Logger],
) -> None:
    parent, child = hierarchy
    parent.addHandler(Records(level=logging.CRITICAL))

    app = Flask(child.name)

    assert app.logger.getEffectiveLevel() == logging.WARNING
    assert child.handlers == [default_handler]


# -- has_level_handler ------------------------------------------------------------------


def test_has_level_handler_false_without_handlers(
    hierarchy: tuple[logging.Logger, logging.Logger],
) -> None:
    _, child = hierarchy

    assert has_level_handler(child) is False


def test_has_level_handler_finds_the_loggers_own_handler(
    hierarchy: tuple[logging.Logger, logging.Logger],
) -> None:
    _, child = hierarchy
    child.addHandler(Records())

    assert has_level_handler(child) is True


def test_has_level_handler_finds_a_parents_handler(
    hierarchy: tuple[logging.Logger, logging.Logger],
) -> None:
    parent, child = hierarchy
    parent.addHandler(Records(level=logging.WARNING))

    assert has_level_handler(child) is True


def test_has_level_handler_stops_where_propagation_stops(
    hierarchy: tuple[logging.Logger, logging.Logger],
) -> None:
    parent, child = hierarchy
    parent.addHandler(Records())
    child.propagate = False
    try:
        assert has_level_handler(child) is False
    finally:
        child.propagate = True


def test_has_level_handler_ignores_handlers_above_the_effective_level(
    hierarchy: tuple[logging.Logger, logging.Logger],
) -> None:
    parent, child = hierarchy
    parent.addHandler(Records(level=logging.ERROR))
    child.setLevel(logging.INFO)

    assert has_level_handler(child) is False

    child.setLevel(logging.ERROR)

    assert has_level_handler(child) is True


# -- where the default handler writes ---------------------------------------------------

LINE = re.compile(r"^\[[^\]]+\] WARNING in test_logging: from the view\n$")


def test_default_handler_writes_to_wsgi_errors_under_wsgi_and_stderr_under_asgi(
    app: Flask,
    client,
    entry_point: str,
    kind: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    @app.route("/")
    @variant(kind)
    def index() -> str:
        current_app.logger.warning("from the view")
        return "logged"

    errors = io.StringIO()
    response = client.get("/", errors_stream=errors)

    assert response.status_code == 200
    assert response.text == "logged"
    stderr = capsys.readouterr().err
    if entry_point == "wsgi":
        assert LINE.match(errors.getvalue())
        assert stderr == ""
    else:
        assert errors.getvalue() == ""
        assert LINE.match(stderr)


def test_default_handler_writes_to_stderr_outside_requests(
    app: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    with app.app_context():
        app.logger.error("from a command")
    app.logger.error("from no context")

    lines = capsys.readouterr().err.splitlines()
    assert [line.split("] ", 1)[1] for line in lines] == [
        "ERROR in test_logging: from a command",
        "ERROR in test_logging: from no context",
    ]


def test_debug_messages_are_not_written_outside_debug_mode(
    app: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    app.logger.debug("not shown")
    app.logger.info("not shown either")

    assert capsys.readouterr().err == ""


def test_debug_messages_are_written_in_debug_mode(
    app: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    app.debug = True
    app.logger.debug("shown")

    assert capsys.readouterr().err.endswith("] DEBUG in test_logging: shown\n")


# -- unhandled exceptions ---------------------------------------------------------------


def test_unhandled_exception_is_logged_with_its_traceback(
    app: Flask, app_logger: logging.Logger, client, kind: str
) -> None:
    records = Records()
    app_logger.addHandler(records)
    app.config["TESTING"] = False
    error = ValueError("boom")

    @app.route("/fail")
    @variant(kind)
    def fail() -> str:
        raise error

    response = client.get("/fail")

    assert response.status_code == 500
    [record] = records.records
    assert record.levelno == logging.ERROR
    assert record.getMessage() == "Exception on /fail [GET]"
    assert record.exc_info is not None
    assert record.exc_info[1] is error


def test_exception_with_a_handler_is_not_logged(
    app: Flask, app_logger: logging.Logger, client, kind: str
) -> None:
    records = Records()
    app_logger.addHandler(records)
    app.config["TESTING"] = False

    @app.errorhandler(ValueError)
    @variant(kind)
    def handle(e: ValueError) -> tuple[str, int]:
        return "handled", 400

    @app.route("/fail")
    @variant(kind)
    def fail() -> str:
        raise ValueError("boom")

    response = client.get("/fail")

    assert response.status_code == 400
    assert response.text == "handled"
    assert records.records == []


def test_http_errors_are_not_logged(
    app: Flask, app_logger: logging.Logger, client, kind: str
) -> None:
    records = Records()
    app_logger.addHandler(records)
    app.config["TESTING"] = False

    @app.route("/missing")
    @variant(kind)
    def missing() -> str:
        abort(404)

    assert client.get("/missing").status_code == 404
    assert client.get("/no-such-route").status_code == 404
    assert records.records == []


def test_propagated_exception_is_raised_not_logged(
    app: Flask, app_logger: logging.Logger, client, kind: str
) -> None:
    """With TESTING, the exception reaches the test instead of becoming a logged 500."""
    records = Records()
    app_logger.addHandler(records)

    @app.route("/fail")
    @variant(kind)
    def fail() -> str:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        client.get("/fail")
    assert records.records == []
