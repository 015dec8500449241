from __future__ import annotations

import pytest
from notes.db import get_db


def test_index_lists_notes_newest_first(client):
    text = client.get("/").text
    assert text.index("Long thoughts") < text.index("Groceries")
    assert '<a href="/notes/1">Groceries</a>' in text
    assert "by other on 2024-01-03" in text


def test_index_cuts_long_notes_with_the_excerpt_filter(client):
    text = client.get("/").text
    assert "<p>one two three four five six seven eight …</p>" in text
    assert "<p>eggs milk bread</p>" in text


def test_anonymous_nav_offers_login_and_register(client):
    text = client.get("/").text
    assert 'href="/auth/login"' in text
    assert 'href="/auth/register"' in text
    assert 'href="/notes/new"' not in text


def test_detail_page(client):
    response = client.get("/notes/2")
    assert response.status_code == 200
    assert "<title>Long thoughts - Test Notes</title>" in response.text
    assert "one two three four five six seven eight nine ten" in response.text


def test_missing_note_is_the_html_404_page(client):
    response = client.get("/notes/99")
    assert response.status_code == 404
    assert "There is no page at /notes/99." in response.text


def test_create_requires_login(client):
    response = client.get("/notes/new")
    assert response.status_code == 302
    assert response.headers["Location"] == "/auth/login?next=/notes/new"
    page = client.get(response.headers["Location"]).text
    assert '<p class="flash error">Please log in first.</p>' in page


def test_create_saves_the_note_and_redirects_to_it(client, auth, app):
    auth.login()
    assert client.get("/notes/new").status_code == 200
    response = client.post(
        "/notes/new", data={"title": " Trip ", "body": "pack the tent"}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/notes/3"
    with app.app_context():
        note = get_db().execute("SELECT * FROM note WHERE id = 3").fetchone()
    assert (note["title"], note["body"], note["author_id"]) == (
        "Trip",
        "pack the tent",
        1,
    )

    page = client.get("/notes/3").text
    assert '<p class="flash success">Note saved.</p>' in page


@pytest.mark.parametrize(
    ("title", "body", "messages"),
    [
        ("", "text", ["Title is required."]),
        ("x" * 81, "text", ["Title must have at most 80 characters."]),
        ("Title", "   ", ["The note is empty."]),
        ("", "", ["Title is required.", "The note is empty."]),
    ],
)
def test_create_flashes_validation_errors(client, auth, app, title, body, messages):
    auth.login()
    client.get("/")  # consume the welcome message
    response = client.post("/notes/new", data={"title": title, "body": body})
    assert response.status_code == 200
    flashed = [
        line.strip()
        for line in response.text.splitlines()
        if line.strip().startswith('<p class="flash')
    ]
    assert flashed == [f'<p class="flash error">{m}</p>' for m in messages]
    assert f'value="{title}"' in response.text
    with app.app_context():
        assert get_db().execute("SELECT COUNT(*) FROM note").fetchone()[0] == 2
