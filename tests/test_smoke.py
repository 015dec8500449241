from __future__ import annotations

from ctxflask import g
from ctxflask import request
from tests.support import variant


def test_hello(app, client, kind):
    @app.before_request
    @variant(kind)
    def before():
        g.seen = "before"

    @app.get("/<name>")
    @variant(kind)
    def hello(name):
        return f"{g.seen} {name} {request.method}"

    response = client.get("/you")
    assert response.status_code == 200
    assert response.text == "before you GET"
