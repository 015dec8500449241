"""Debug mode as in Flask 3.1: the ``DEBUG`` setting from the environment, and the error
that explains a file read from a form sent without ``multipart/form-data``."""

from __future__ import annotations

import io

import pytest

import ctxflask
from ctxflask import render_template_string
from ctxflask import request
from ctxflask.debughelpers import DebugFilesKeyError


@pytest.mark.parametrize(
    ("value", "expected"), [(None, False), ("1", True), ("0", False), ("", False)]
)
def test_debug_setting_is_a_bool_read_from_the_environment(
    monkeypatch, value, expected
):
    monkeypatch.delenv("CTXFLASK_DEBUG", raising=False)
    if value is None:
        monkeypatch.delenv("FLASK_DEBUG", raising=False)
    else:
        monkeypatch.setenv("FLASK_DEBUG", value)
    app = ctxflask.Flask("debugged")
    assert app.config["DEBUG"] is expected
    assert app.debug is expected
    with app.app_context():
        assert render_template_string("{{ config.DEBUG }}") == str(expected)


def _upload_view(app, kind):
    if kind == "sync":

        @app.post("/upload")
        def upload():
            return request.files["document"].filename or "unnamed"

    else:

        @app.post("/upload")
        async def upload():
            return request.files["document"].filename or "unnamed"


def test_debug_mode_explains_a_form_sent_without_multipart(app, client, kind):
    app.debug = True
    _upload_view(app, kind)
    with pytest.raises(DebugFilesKeyError) as caught:
        client.post("/upload", data={"document": "notes.txt"})
    message = str(caught.value)
    assert "multipart/form-data" in message
    assert "'notes.txt'" in message
    assert isinstance(caught.value, KeyError)


def test_without_debug_a_missing_file_is_a_400(app, client, kind):
    _upload_view(app, kind)
    assert client.post("/upload", data={"document": "notes.txt"}).status_code == 400


def test_a_multipart_upload_is_read_in_debug_mode(app, client, kind):

    app.debug = True
    _upload_view(app, kind)
    response = client.post(
        "/upload", data={"document": (io.BytesIO(b"text"), "notes.txt")}
    )
    assert response.text == "notes.txt"
