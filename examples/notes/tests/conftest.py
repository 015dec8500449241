from __future__ import annotations

import os
import sys

import pytest
from werkzeug.security import generate_password_hash

# The application package sits beside this folder; it is not installed.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from notes import create_app
from notes.db import get_db
from notes.db import init_db

# A cheap hash: the default one is deliberately slow, and every test logs in.
PASSWORD_HASH = generate_password_hash("test-password", method="pbkdf2:sha256:1000")
OTHER_HASH = generate_password_hash("other-password", method="pbkdf2:sha256:1000")


@pytest.fixture
def app(tmp_path):
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test",
            "DATABASE": str(tmp_path / "notes.sqlite"),
            "SITE_NAME": "Test Notes",
        }
    )
    with app.app_context():
        init_db()
        db = get_db()
        db.executemany(
            "INSERT INTO user (username, password) VALUES (?, ?)",
            [("test", PASSWORD_HASH), ("other", OTHER_HASH)],
        )
        db.executemany(
            "INSERT INTO note (title, body, author_id, created) VALUES (?, ?, ?, ?)",
            [
                ("Groceries", "eggs milk bread", 1, "2024-01-02 10:00:00"),
                (
                    "Long thoughts",
                    "one two three four five six seven eight nine ten",
                    2,
                    "2024-01-03 11:00:00",
                ),
            ],
        )
        db.commit()
    return app


# `client` (each test once through `app` and once through `app.asgi`), `async_client`,
# `live_server` and the context guard come from ctxflask's pytest plugin, given `app`.


@pytest.fixture(
    params=[
        pytest.param(name, marks=pytest.mark.ctxflask_live_server(server=name))
        for name in ("uvicorn", "gunicorn")
    ]
)
def served(app, monkeypatch, request):
    """A real server (uvicorn, then gunicorn) serving this test's database: the plugin's
    ``live_server``, importing ``live_app.py``."""
    monkeypatch.setenv("NOTES_TEST_DATABASE", app.config["DATABASE"])
    return request.getfixturevalue("live_server")


@pytest.fixture(autouse=True)
def no_leaked_contexts(ctxflask_context_guard):
    """Every test fails if it leaves an application or request context pushed."""


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


class AuthActions:
    def __init__(self, client):
        self._client = client

    def login(self, username="test", password=None, **kwargs):
        if password is None:
            password = f"{username}-password"
        return self._client.post(
            "/auth/login",
            data={"username": username, "password": password},
            **kwargs,
        )

    def logout(self, **kwargs):
        return self._client.get("/auth/logout", **kwargs)


@pytest.fixture
def auth(client):
    return AuthActions(client)
