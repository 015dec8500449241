"""pytest plugin (``-p ecosystem.as_flask``): ctxflask answers for ``flask``.

A ``-p`` plugin is imported while pytest parses its options, before any conftest.py or
test module, so the suite's ``import flask`` already finds ctxflask. At the end it says
which ``flask`` the suite ran on (``flask: ctxflask``), for the runner to check.
"""

from __future__ import annotations

import sys

import pytest

import ctxflask

ctxflask.install_as_flask()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    flask = sys.modules.get("flask")
    if flask is None:
        which = "not imported"
    else:
        which = "ctxflask" if flask.Flask is ctxflask.Flask else repr(flask)
    terminalreporter.write_line(f"flask: {which}")
