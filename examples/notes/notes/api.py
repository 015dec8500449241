"""The JSON API under ``/api``: class-based views for the notes, sync and async."""

from __future__ import annotations

import asyncio

from werkzeug.exceptions import HTTPException

from ctxflask import abort
from ctxflask import Blueprint
from ctxflask import g
from ctxflask import jsonify
from ctxflask import request
from ctxflask import url_for
from ctxflask.views import MethodView

from .db import get_db
from .notes import get_note
from .notes import validate

bp = Blueprint("api", __name__, url_prefix="/api")


def note_json(note):
    return {
        "id": note["id"],
        "title": note["title"],
        "body": note["body"],
        "author": note["username"],
        "url": url_for("api.note", note_id=note["id"]),
    }


class NoteList(MethodView):
    """``/api/notes``: list the notes, or write one (logged in)."""

    def get(self):
        rows = (
            get_db()
            .execute(
                "SELECT n.id, title, body, username"
                " FROM note n JOIN user u ON n.author_id = u.id ORDER BY n.id"
            )
            .fetchall()
        )
        return {"notes": [note_json(row) for row in rows]}

    def post(self):
        if g.user is None:
            abort(401)
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            abort(400, "Send the note as a JSON object.")
        errors = validate(data)
        if errors:
            return {"errors": errors}, 400
        db = get_db()
        cursor = db.execute(
            "INSERT INTO note (title, body, author_id) VALUES (?, ?, ?)",
            (data["title"].strip(), data["body"].strip(), g.user["id"]),
        )
        db.commit()
        note = note_json(get_note(cursor.lastrowid))
        return note, 201, {"Location": note["url"]}


class NoteItem(MethodView):
    """``/api/notes/<id>``: read a note, or delete one of your own. Async handlers."""

    async def get(self, note_id):
        await asyncio.sleep(0)  # stands for a call to some other service
        return note_json(get_note(note_id))

    async def delete(self, note_id):
        note = get_note(note_id)
        if g.user is None:
            abort(401)
        if note["author_id"] != g.user["id"]:
            abort(403, "You can only delete your own notes.")
        db = get_db()
        db.execute("DELETE FROM note WHERE id = ?", (note_id,))
        db.commit()
        await asyncio.sleep(0)
        return "", 204


bp.add_url_rule("/notes", view_func=NoteList.as_view("notes"))
bp.add_url_rule("/notes/<int:note_id>", view_func=NoteItem.as_view("note"))


@bp.get("/stats")
async def stats():
    await asyncio.sleep(0)
    db = get_db()
    (notes,) = db.execute("SELECT COUNT(*) FROM note").fetchone()
    (users,) = db.execute("SELECT COUNT(*) FROM user").fetchone()
    return jsonify(notes=notes, users=users)


@bp.errorhandler(HTTPException)
def json_error(error):
    """Errors of the API's views are JSON, not HTML pages."""
    return {"error": error.name, "description": error.description}, error.code


# A handler registered for a status code wins over one registered for an exception
# class, even the app's over the blueprint's: the app's HTML 404 page would answer the
# API's 404s without this one.
bp.register_error_handler(404, json_error)
