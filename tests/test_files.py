"""Static files, ``send_file`` and ``send_from_directory`` under both entry points."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest

from ctxflask import Blueprint
from ctxflask import Flask
from ctxflask import send_file
from ctxflask import send_from_directory
from ctxflask.testing import asgi_client

CONTENT = bytes(range(256)) * 40  # 10240 bytes


@pytest.fixture
def files_app(tmp_path):
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "site.css").write_text("body { color: red }")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "blob.bin").write_bytes(CONTENT)
    (tmp_path / "secret.txt").write_text("do not serve")
    (tmp_path / "bp_static").mkdir()
    (tmp_path / "bp_static" / "bp.js").write_text("let x = 1")
    app = Flask("files", root_path=str(tmp_path))
    app.config["TESTING"] = True

    @app.get("/blob")
    def blob():
        return send_file(str(tmp_path / "data" / "blob.bin"))

    @app.get("/download")
    def download():
        return send_file(
            io.BytesIO(b"generated"),
            mimetype="text/plain",
            as_attachment=True,
            download_name="report.txt",
        )

    @app.get("/files/<path:name>")
    async def files(name):
        return send_from_directory(str(tmp_path / "data"), name)

    bp = Blueprint(
        "bp", __name__, static_folder=str(tmp_path / "bp_static"), url_prefix="/bp"
    )
    app.register_blueprint(bp)
    return app


@pytest.fixture
def files_client(files_app, entry_point):
    return files_app.test_client(asgi=entry_point == "asgi")


def test_app_and_blueprint_static_routes(files_client):
    response = files_client.get("/static/site.css")
    assert response.status_code == 200
    assert response.mimetype == "text/css"
    assert response.text == "body { color: red }"
    # A blueprint's static URL path is its folder's name, under its prefix (as in Flask).
    assert files_client.get("/bp/bp_static/bp.js").text == "let x = 1"
    assert files_client.get("/static/missing.css").status_code == 404


def test_send_file_whole_with_etag_and_last_modified(files_client):
    response = files_client.get("/blob")
    assert response.status_code == 200
    assert response.data == CONTENT
    assert response.headers["Content-Length"] == str(len(CONTENT))
    assert response.headers["ETag"]
    assert response.headers["Last-Modified"]
    assert response.headers["Accept-Ranges"] == "bytes"


def test_conditional_requests_answer_304(files_client):
    etag = files_client.get("/blob").headers["ETag"]
    response = files_client.get("/blob", headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.data == b""


def test_range_requests_answer_206_with_the_slice(files_client):
    response = files_client.get("/blob", headers={"Range": "bytes=100-199"})
    assert response.status_code == 206
    assert response.data == CONTENT[100:200]
    assert response.headers["Content-Range"] == f"bytes 100-199/{len(CONTENT)}"
    assert (
        files_client.get("/blob", headers={"Range": "bytes=99999-"}).status_code == 416
    )


def test_attachment_download_name(files_client):
    response = files_client.get("/download")
    assert response.data == b"generated"
    assert response.headers["Content-Disposition"] == "attachment; filename=report.txt"


@pytest.mark.parametrize(
    "name", ["../secret.txt", "..%2Fsecret.txt", "../../etc/passwd"]
)
def test_send_from_directory_refuses_paths_leaving_the_folder(files_client, name):
    assert files_client.get(f"/files/{name}").status_code == 404


def test_send_from_directory_serves_inside_the_folder(files_client):
    assert files_client.get("/files/blob.bin").data == CONTENT


@pytest.mark.parametrize(
    ("setting", "expected"),
    [(None, "no-cache"), (60, "max-age=60"), (timedelta(hours=1), "max-age=3600")],
)
def test_max_age_comes_from_the_config(files_app, entry_point, setting, expected):
    files_app.config["SEND_FILE_MAX_AGE_DEFAULT"] = setting
    client = files_app.test_client(asgi=entry_point == "asgi")
    cache_control = client.get("/static/site.css").headers["Cache-Control"]
    assert expected in cache_control


@pytest.mark.asyncio
async def test_asgi_sends_a_file_in_chunks_without_loading_it_whole(tmp_path):
    """ASGI-specific: a large file goes out as several body messages, read piece by
    piece in worker threads."""
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (1024 * 1024))
    app = Flask("big", root_path=str(tmp_path))

    @app.get("/big")
    def big_file():
        return send_file(str(big))

    messages = []

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        messages.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/big",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"test")],
        "server": ("test", 80),
        "client": ("127.0.0.1", 1),
    }
    await app.asgi(scope, receive, send)
    bodies = [m for m in messages if m["type"] == "http.response.body"]
    assert messages[0]["status"] == 200
    assert len(bodies) > 2
    assert max(len(m["body"]) for m in bodies) < 1024 * 1024
    assert b"".join(m["body"] for m in bodies) == b"x" * (1024 * 1024)
    async with asgi_client(app) as client:
        assert len((await client.get("/big")).content) == 1024 * 1024
