from __future__ import annotations

import sqlite3

import pytest
from notes.db import get_db


def test_one_connection_per_app_context_closed_at_teardown(app):
    with app.app_context():
        db = get_db()
        assert get_db() is db
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        db.execute("SELECT 1")


def test_init_db_command_recreates_empty_tables(app, runner):
    result = runner.invoke(args=["init-db"])
    assert result.exit_code == 0, result.output
    assert result.output == "Initialized the database.\n"
    with app.app_context():
        db = get_db()
        assert db.execute("SELECT COUNT(*) FROM note").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM user").fetchone()[0] == 0


def test_init_db_command_is_listed_in_help(runner):
    result = runner.invoke(args=["--help"])
    assert result.exit_code == 0, result.output
    assert "init-db" in result.output
    assert "Clear the existing data and create new tables." in result.output
