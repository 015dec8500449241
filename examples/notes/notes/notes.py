"""The HTML pages: the list of notes, a note, and the form that writes one."""

from __future__ import annotations

from ctxflask import abort
from ctxflask import Blueprint
from ctxflask import flash
from ctxflask import g
from ctxflask import redirect
from ctxflask import render_template
from ctxflask import request
from ctxflask import url_for

from .auth import login_required
from .db import get_db

bp = Blueprint("notes", __name__)

MAX_TITLE = 80


def get_note(note_id):
    """The note ``note_id`` with its author's name, or a 404."""
    note = (
        get_db()
        .execute(
            "SELECT n.id, title, body, created, author_id, username"
            " FROM note n JOIN user u ON n.author_id = u.id WHERE n.id = ?",
            (note_id,),
        )
        .fetchone()
    )
    if note is None:
        abort(404)
    return note


def validate(form):
    """The validation errors of a note form, as messages."""
    errors = []
    title = form.get("title", "").strip()
    if not title:
        errors.append("Title is required.")
    elif len(title) > MAX_TITLE:
        errors.append(f"Title must have at most {MAX_TITLE} characters.")
    if not form.get("body", "").strip():
        errors.append("The note is empty.")
    return errors


@bp.route("/")
def index():
    notes = (
        get_db()
        .execute(
            "SELECT n.id, title, body, created, username"
            " FROM note n JOIN user u ON n.author_id = u.id ORDER BY created DESC, n.id DESC"
        )
        .fetchall()
    )
    return render_template("notes/index.html", notes=notes)


@bp.route("/notes/<int:note_id>")
def detail(note_id):
    return render_template("notes/detail.html", note=get_note(note_id))


@bp.route("/notes/new", methods=("GET", "POST"))
@login_required
def create():
    if request.method == "POST":
        errors = validate(request.form)
        if not errors:
            db = get_db()
            cursor = db.execute(
                "INSERT INTO note (title, body, author_id) VALUES (?, ?, ?)",
                (
                    request.form["title"].strip(),
                    request.form["body"].strip(),
                    g.user["id"],
                ),
            )
            db.commit()
            flash("Note saved.", "success")
            return redirect(url_for("notes.detail", note_id=cursor.lastrowid))
        for error in errors:
            flash(error, "error")
    return render_template("notes/create.html")
