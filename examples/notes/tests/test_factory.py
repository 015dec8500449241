from __future__ import annotations

import os
from datetime import date

from notes import create_app


def test_config_defaults_and_test_config():
    assert not create_app().testing
    assert create_app({"TESTING": True}).testing


def test_database_defaults_to_the_instance_folder_beside_the_package():
    app = create_app()
    project = os.path.dirname(app.root_path)
    assert app.config["DATABASE"] == os.path.join(project, "instance", "notes.sqlite")


def test_static_css_is_served_by_the_static_route(client):
    response = client.get("/static/style.css")
    assert response.status_code == 200
    assert response.mimetype == "text/css"
    assert response.data.startswith(b"/* Notes: a plain layout. */")


def test_layout_links_the_stylesheet(client):
    assert b'href="/static/style.css"' in client.get("/").data


def test_missing_static_file_is_404(client):
    assert client.get("/static/nope.css").status_code == 404


def test_context_processor_fills_title_and_footer(client):
    text = client.get("/").text
    assert "<title>All notes - Test Notes</title>" in text
    assert f"<footer>Test Notes, {date.today().year}</footer>" in text


def test_unknown_page_renders_the_404_template(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "<title>Not found - Test Notes</title>" in response.text
    assert "There is no page at /no/such/page." in response.text


def test_excerpt_filter(app):
    excerpt = app.jinja_env.filters["excerpt"]
    assert excerpt("a  b c") == "a b c"
    assert excerpt("a b c d", 3) == "a b c …"
