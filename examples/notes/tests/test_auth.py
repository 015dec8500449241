from __future__ import annotations

import pytest
from notes.db import get_db

from ctxflask import g
from ctxflask import session


def test_register_page(client):
    response = client.get("/auth/register")
    assert response.status_code == 200
    assert "<title>Register - Test Notes</title>" in response.text


def test_register_creates_the_user_and_redirects_to_login(client, app):
    response = client.post(
        "/auth/register", data={"username": "ada", "password": "lovelace"}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/auth/login"
    with app.app_context():
        row = get_db().execute("SELECT * FROM user WHERE username = 'ada'").fetchone()
    assert row is not None

    page = client.get("/auth/login").text
    assert '<p class="flash success">Registered. You can log in now.</p>' in page


@pytest.mark.parametrize(
    ("username", "password", "messages"),
    [
        ("", "long enough", ["Username is required."]),
        ("ada", "abc", ["Password must have at least 4 characters."]),
        (
            "",
            "",
            ["Username is required.", "Password must have at least 4 characters."],
        ),
        ("test", "whatever", ["User test is already registered."]),
    ],
)
def test_register_validation_errors_are_flashed(client, username, password, messages):
    response = client.post(
        "/auth/register", data={"username": username, "password": password}
    )
    assert response.status_code == 200
    for message in messages:
        assert f'<p class="flash error">{message}</p>' in response.text
    # The form keeps what was typed.
    assert f'name="username" id="username" value="{username}"' in response.text


def test_login_page(client):
    response = client.get("/auth/login")
    assert response.status_code == 200
    assert "<title>Log in - Test Notes</title>" in response.text


def test_login_sets_the_session_and_flashes_a_welcome(client, auth):
    response = auth.login()
    assert response.status_code == 302
    assert response.headers["Location"] == "/"

    with client:
        page = client.get("/")
        assert session["user_id"] == 1
        assert g.user["username"] == "test"
    assert '<p class="flash success">Welcome back, test!</p>' in page.text
    assert '<span class="user">test</span>' in page.text
    assert 'href="/auth/logout"' in page.text


def test_flash_is_shown_once(client, auth):
    auth.login()
    assert "Welcome back" in client.get("/").text
    assert "Welcome back" not in client.get("/").text


@pytest.mark.parametrize(
    ("username", "password"), [("nobody", "test-password"), ("test", "wrong")]
)
def test_login_rejects_bad_credentials(client, auth, username, password):
    response = auth.login(username, password)
    assert response.status_code == 200
    assert '<p class="flash error">Incorrect username or password.</p>' in response.text
    with client.session_transaction() as sess:
        assert "user_id" not in sess


def test_logout_clears_the_session_and_flashes(client, auth):
    auth.login()
    client.get("/")  # consume the welcome message
    with client:
        response = auth.logout(follow_redirects=True)
        assert "user_id" not in session
        assert g.user is None
    assert response.request.path == "/"
    assert '<p class="flash success">You have been logged out.</p>' in response.text
    assert 'href="/auth/login"' in response.text


def test_login_follows_a_local_next_and_ignores_another_site(client):
    response = client.post(
        "/auth/login?next=/notes/new",
        data={"username": "test", "password": "test-password"},
    )
    assert response.headers["Location"] == "/notes/new"
    client.get("/auth/logout")
    response = client.post(
        "/auth/login?next=//evil.example/",
        data={"username": "test", "password": "test-password"},
    )
    assert response.headers["Location"] == "/"
