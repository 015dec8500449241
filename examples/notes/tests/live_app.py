"""The application as the ``live_server`` fixture's server imports it (``live_app:app``):
its database is the test's, named by the ``NOTES_TEST_DATABASE`` environment variable."""

from __future__ import annotations

import os

from notes import create_app

app = create_app(
    {
        "SECRET_KEY": "live test",
        "DATABASE": os.environ["NOTES_TEST_DATABASE"],
        "SITE_NAME": "Test Notes",
    }
)
