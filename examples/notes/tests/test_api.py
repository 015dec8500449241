from __future__ import annotations

import pytest
from notes.db import get_db

GROCERIES = {
    "id": 1,
    "title": "Groceries",
    "body": "eggs milk bread",
    "author": "test",
    "url": "/api/notes/1",
}


def test_list_notes(client):
    response = client.get("/api/notes")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    notes = response.get_json()["notes"]
    assert [note["id"] for note in notes] == [1, 2]
    assert notes[0] == GROCERIES


def test_get_one_note_from_the_async_view(client):
    response = client.get("/api/notes/1")
    assert response.status_code == 200
    assert response.get_json() == GROCERIES


def test_missing_note_is_a_json_404(client):
    response = client.get("/api/notes/99")
    assert response.status_code == 404
    assert response.mimetype == "application/json"
    assert response.get_json()["error"] == "Not Found"


def test_stats_from_the_async_function_view(client):
    response = client.get("/api/stats")
    assert response.status_code == 200
    assert response.get_json() == {"notes": 2, "users": 2}


def test_method_not_allowed_lists_the_allowed_methods(client):
    response = client.put("/api/notes", json={})
    assert response.status_code == 405
    assert sorted(response.headers["Allow"].split(", ")) == [
        "GET",
        "HEAD",
        "OPTIONS",
        "POST",
    ]


def test_create_needs_a_login(client):
    response = client.post("/api/notes", json={"title": "t", "body": "b"})
    assert response.status_code == 401
    assert response.get_json()["error"] == "Unauthorized"


def test_create_a_note(client, auth, app):
    auth.login()
    response = client.post("/api/notes", json={"title": "Trip", "body": "tent"})
    assert response.status_code == 201
    assert response.headers["Location"] == "/api/notes/3"
    assert response.get_json() == {
        "id": 3,
        "title": "Trip",
        "body": "tent",
        "author": "test",
        "url": "/api/notes/3",
    }
    assert client.get("/api/notes/3").get_json()["title"] == "Trip"


@pytest.mark.parametrize(
    ("payload", "errors"),
    [
        ({"title": "", "body": "b"}, ["Title is required."]),
        ({"title": "t"}, ["The note is empty."]),
    ],
)
def test_create_reports_validation_errors(client, auth, payload, errors):
    auth.login()
    response = client.post("/api/notes", json=payload)
    assert response.status_code == 400
    assert response.get_json() == {"errors": errors}


def test_create_needs_a_json_object(client, auth):
    auth.login()
    response = client.post("/api/notes", data="title=t")
    assert response.status_code == 400
    assert response.get_json() == {
        "error": "Bad Request",
        "description": "Send the note as a JSON object.",
    }


def test_delete_own_note_from_the_async_view(client, auth, app):
    auth.login()
    response = client.delete("/api/notes/1")
    assert response.status_code == 204
    assert response.data == b""
    assert client.get("/api/notes/1").status_code == 404
    with app.app_context():
        assert get_db().execute("SELECT COUNT(*) FROM note").fetchone()[0] == 1


def test_delete_someone_elses_note_is_forbidden(client, auth):
    auth.login()
    response = client.delete("/api/notes/2")
    assert response.status_code == 403
    assert response.get_json() == {
        "error": "Forbidden",
        "description": "You can only delete your own notes.",
    }


def test_delete_needs_a_login(client):
    assert client.delete("/api/notes/1").status_code == 401
