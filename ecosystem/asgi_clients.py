"""pytest plugin (``-p ecosystem.asgi_clients``): every ``app.test_client()`` goes through
``app.asgi``, so an extension's suite, written for WSGI, tests the ASGI entry point as is.

It says how many clients it made (``ASGI test clients: N``): a suite that sends no
request through a test client tests nothing of ASGI.
"""

from __future__ import annotations

import typing as t

import pytest

import ctxflask

# The switch, for when this plugin is loaded alone (importing ctxflask imports no flask).
from ecosystem import as_flask  # noqa: F401

if t.TYPE_CHECKING:
    from ctxflask.testing import FlaskClient

_made = 0
_original = ctxflask.Flask.test_client


def _asgi_test_client(
    self: ctxflask.Flask,
    use_cookies: bool = True,
    *,
    asgi: bool = True,
    **kwargs: t.Any,
) -> FlaskClient:
    global _made
    _made += asgi
    return _original(self, use_cookies, asgi=asgi, **kwargs)


# On the class, so subclasses and clients made by extensions (Flask-Login's
# FlaskLoginClient through test_client_class) get it too.
ctxflask.Flask.test_client = _asgi_test_client  # type: ignore[method-assign]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    terminalreporter.write_line(f"ASGI test clients: {_made}")
