"""The SQLite database: one connection per application context, kept on ``g``."""

from __future__ import annotations

import os
import sqlite3

import click

from ctxflask import current_app
from ctxflask import g


def get_db():
    """The connection of the current application context, opened on first use."""
    if "db" not in g:
        path = current_app.config["DATABASE"]
        if path != ":memory:":
            os.makedirs(os.path.dirname(path), exist_ok=True)
        # check_same_thread=False: under ASGI, ctxflask runs async views on the event
        # loop's thread and sync hooks, views and teardowns on worker threads, so one
        # request may use its connection from several threads (one at a time). sqlite3
        # refuses that by default. Under WSGI every step runs on the request's thread.
        g.db = sqlite3.connect(
            path, detect_types=sqlite3.PARSE_DECLTYPES, check_same_thread=False
        )
        g.db.row_factory = sqlite3.Row
    return g.db


def close_db(e=None):
    db = g.pop("db", None)
    if db is not None:
        db.close()


def init_db():
    """Drop and create the tables."""
    db = get_db()
    with current_app.open_resource("schema.sql") as f:
        db.executescript(f.read().decode("utf8"))


def init_app(app):
    app.teardown_appcontext(close_db)

    # app.cli.command runs the command in the app's context (a plain click command
    # added with app.cli.add_command gets one from `ctxflask init-db`, not from the
    # test runner: as in Flask).
    @app.cli.command("init-db")
    def init_db_command():
        """Clear the existing data and create new tables."""
        init_db()
        click.echo("Initialized the database.")
