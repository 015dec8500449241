"""Registration, login and logout; the logged-in user is loaded into ``g.user``."""

from __future__ import annotations

import functools

from werkzeug.security import check_password_hash
from werkzeug.security import generate_password_hash

from ctxflask import Blueprint
from ctxflask import flash
from ctxflask import g
from ctxflask import redirect
from ctxflask import render_template
from ctxflask import request
from ctxflask import session
from ctxflask import url_for

from .db import get_db

bp = Blueprint("auth", __name__, url_prefix="/auth")


@bp.before_app_request
def load_logged_in_user():
    user_id = session.get("user_id")
    if user_id is None:
        g.user = None
    else:
        g.user = (
            get_db().execute("SELECT * FROM user WHERE id = ?", (user_id,)).fetchone()
        )


def login_required(view):
    """Redirect to the login page when no user is logged in."""

    @functools.wraps(view)
    def wrapped_view(**kwargs):
        if g.user is None:
            flash("Please log in first.", "error")
            return redirect(url_for("auth.login", next=request.path))
        return view(**kwargs)

    return wrapped_view


@bp.route("/register", methods=("GET", "POST"))
def register():
    if request.method == "POST":
        username = request.form.get("username", "").strip()
        password = request.form.get("password", "")
        errors = []
        if not username:
            errors.append("Username is required.")
        if len(password) < 4:
            errors.append("Password must have at least 4 characters.")
        if not errors:
            db = get_db()
            try:
                db.execute(
                    "INSERT INTO user (username, password) VALUES (?, ?)",
                    (username, generate_password_hash(password)),
                )
                db.commit()
            except db.IntegrityError:
                errors.append(f"User {username} is already registered.")
            else:
                flash("Registered. You can log in now.", "success")
                return redirect(url_for("auth.login"))
        for error in errors:
            flash(error, "error")
    return render_template("auth/register.html")


@bp.route("/login", methods=("GET", "POST"))
def login():
    if request.method == "POST":
        username = request.form.get("username", "")
        user = (
            get_db()
            .execute("SELECT * FROM user WHERE username = ?", (username,))
            .fetchone()
        )
        if user is None or not check_password_hash(
            user["password"], request.form.get("password", "")
        ):
            flash("Incorrect username or password.", "error")
        else:
            session.clear()
            session["user_id"] = user["id"]
            flash(f"Welcome back, {user['username']}!", "success")
            target = request.args.get("next", "")
            # Only local paths: an absolute URL here would be an open redirect.
            if not target.startswith("/") or target.startswith("//"):
                target = url_for("notes.index")
            return redirect(target)
    return render_template("auth/login.html")


@bp.route("/logout")
def logout():
    session.clear()
    flash("You have been logged out.", "success")
    return redirect(url_for("notes.index"))
