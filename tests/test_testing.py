"""The test client and ``app.test_request_context`` (DESIGN.md section 3; Flask 3.1 API)."""

from __future__ import annotations

import datetime

import pytest

import ctxflask
from ctxflask import current_app
from ctxflask import g
from ctxflask import has_app_context
from ctxflask import has_request_context
from ctxflask import redirect
from ctxflask import request
from ctxflask import session
from ctxflask.testing import FlaskClient
from tests.support import variant

# -- the client ----------------------------------------------------------------------------


def echo_method_view(app, kind):
    @app.route("/method", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    @variant(kind)
    def method():
        return request.method


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
def test_client_sends_each_method(app, client, kind, method):
    echo_method_view(app, kind)
    response = getattr(client, method)("/method")
    assert response.status_code == 200
    assert response.text == method.upper()


def test_client_open_with_method_argument(app, client, kind):
    echo_method_view(app, kind)
    response = client.open("/method", method="PUT")
    assert response.status_code == 200
    assert response.text == "PUT"


def test_client_head_gets_headers_without_body(app, client, kind):
    echo_method_view(app, kind)
    response = client.head("/method")
    assert response.status_code == 200
    assert response.data == b""
    assert response.headers["Content-Length"] == "4"  # "HEAD"


def test_client_method_not_allowed(app, client, kind):
    @app.get("/only-get")
    @variant(kind)
    def only_get():
        return "ok"

    response = client.post("/only-get")
    assert response.status_code == 405


def test_client_query_string_in_path_and_as_argument(app, client, kind):
    @app.get("/args")
    @variant(kind)
    def args():
        return {k: request.args.getlist(k) for k in sorted(request.args)}

    assert client.get("/args?a=1&a=2&b=x").get_json() == {"a": ["1", "2"], "b": ["x"]}
    response = client.get("/args", query_string={"q": "cats", "page": "2"})
    assert response.get_json() == {"page": ["2"], "q": ["cats"]}


def test_client_json_argument_sends_json(app, client, kind):
    @app.post("/json")
    @variant(kind)
    def receive():
        return {"mimetype": request.mimetype, "data": request.get_json()}

    response = client.post("/json", json={"name": "ada", "tags": [1, 2]})
    assert response.status_code == 200
    assert response.json == {
        "mimetype": "application/json",
        "data": {"name": "ada", "tags": [1, 2]},
    }


def test_client_json_argument_uses_the_apps_json_provider(app, client, kind):
    @app.post("/json")
    @variant(kind)
    def receive():
        return request.get_json()

    response = client.post("/json", json={"when": datetime.date(2024, 1, 2)})
    assert response.get_json() == {"when": "Tue, 02 Jan 2024 00:00:00 GMT"}


def test_client_data_dict_sends_a_form(app, client, kind):
    @app.post("/form")
    @variant(kind)
    def form():
        return {"mimetype": request.mimetype, "form": request.form.to_dict()}

    response = client.post("/form", data={"name": "ada", "lang": "en"})
    assert response.get_json() == {
        "mimetype": "application/x-www-form-urlencoded",
        "form": {"name": "ada", "lang": "en"},
    }


def test_client_data_bytes_sends_a_raw_body(app, client, kind):
    @app.post("/raw")
    @variant(kind)
    def raw():
        return request.get_data()[::-1]

    response = client.post("/raw", data=b"abc123", content_type="text/plain")
    assert response.data == b"321cba"


def test_client_headers_argument(app, client, kind):
    @app.get("/headers")
    @variant(kind)
    def headers():
        return request.headers["X-Token"]

    response = client.get("/headers", headers={"X-Token": "s3cret"})
    assert response.text == "s3cret"


def test_client_follow_redirects(app, client, kind):
    @app.get("/old")
    @variant(kind)
    def old():
        return redirect("/new")

    @app.get("/new")
    @variant(kind)
    def new():
        return f"arrived at {request.path}"

    response = client.get("/old")
    assert response.status_code == 302
    assert response.headers["Location"] == "/new"
    response = client.get("/old", follow_redirects=True)
    assert response.status_code == 200
    assert response.text == "arrived at /new"


def test_client_response_json_and_headers(app, client, kind):
    @app.get("/data")
    @variant(kind)
    def data():
        return {"ok": True}, 201, {"X-Custom": "yes"}

    response = client.get("/data")
    assert response.status_code == 201
    assert response.headers["X-Custom"] == "yes"
    assert response.headers["Content-Type"] == "application/json"
    assert response.get_json() == {"ok": True}
    assert response.json == {"ok": True}


# -- cookies -------------------------------------------------------------------------------


def test_client_keeps_cookies_across_requests(app, client, kind):
    @app.get("/set")
    @variant(kind)
    def set_cookie():
        response = app.make_response("set")
        response.set_cookie("flavour", "oat")
        return response

    @app.get("/read")
    @variant(kind)
    def read_cookie():
        return request.cookies.get("flavour", "none")

    assert client.get("/read").text == "none"
    assert client.get("/set").status_code == 200
    assert client.get("/read").text == "oat"
    assert client.get("/read").text == "oat"


def test_client_keeps_the_session_across_requests(app, client, kind):
    @app.get("/login/<name>")
    @variant(kind)
    def login(name):
        session["user"] = name
        return "ok"

    @app.get("/me")
    @variant(kind)
    def me():
        return session.get("user", "anonymous")

    assert client.get("/me").text == "anonymous"
    client.get("/login/ada")
    assert client.get("/me").text == "ada"
    client.get("/login/grace")
    assert client.get("/me").text == "grace"


def test_client_without_cookies_forgets_them(app, kind):
    @app.get("/login")
    @variant(kind)
    def login():
        session["user"] = "ada"
        return "ok"

    @app.get("/me")
    @variant(kind)
    def me():
        return session.get("user", "anonymous")

    client = app.test_client(use_cookies=False)
    client.get("/login")
    assert client.get("/me").text == "anonymous"


# -- `with client:` keeps the last request's contexts ----------------------------------------


def inspect_view(app, kind):
    @app.get("/inspect/<name>")
    @variant(kind)
    def inspect(name):
        was_set = "marker" in g
        session["user"] = name
        g.marker = f"set for {name}"
        return {"g_was_set": was_set}


def test_with_client_keeps_the_last_requests_contexts(app, client, kind):
    inspect_view(app, kind)
    with client:
        response = client.get("/inspect/ada?x=1")
        assert response.status_code == 200
        assert has_request_context()
        assert request.path == "/inspect/ada"
        assert request.args["x"] == "1"
        assert request.view_args == {"name": "ada"}
        assert session["user"] == "ada"
        assert g.marker == "set for ada"
        assert current_app._get_current_object() is app
    assert not has_request_context()
    assert not has_app_context()


def test_with_client_pops_the_kept_contexts_at_the_next_request(app, client, kind):
    inspect_view(app, kind)
    with client:
        client.get("/inspect/ada")
        first_g = g._get_current_object()
        response = client.get("/inspect/grace")
        # The second request did not run inside the first one's contexts.
        assert response.get_json() == {"g_was_set": False}
        assert request.path == "/inspect/grace"
        assert session["user"] == "grace"
        assert g.marker == "set for grace"
        assert g._get_current_object() is not first_g
    assert not has_request_context()
    assert not has_app_context()


def test_with_client_keeps_nothing_without_a_request(app, client):
    with client:
        assert not has_request_context()
        assert not has_app_context()


def test_without_with_block_the_client_keeps_no_context(app, client, kind):
    inspect_view(app, kind)
    client.get("/inspect/ada")
    assert not has_request_context()
    assert not has_app_context()


def test_with_client_teardown_runs_once_for_the_kept_request(app, client, kind):
    calls = []

    @app.teardown_request
    @variant(kind)
    def request_teardown(exc):
        calls.append(("request", request.path, exc))

    @app.teardown_appcontext
    @variant(kind)
    def app_teardown(exc):
        calls.append(("app", exc))

    inspect_view(app, kind)
    with client:
        client.get("/inspect/ada")
        # Teardown already ran when the request ended; the contexts are kept anyway.
        assert calls == [("request", "/inspect/ada", None), ("app", None)]
        client.get("/inspect/grace")
        assert calls == [
            ("request", "/inspect/ada", None),
            ("app", None),
            ("request", "/inspect/grace", None),
            ("app", None),
        ]
    assert len(calls) == 4


def test_with_client_keeps_the_contexts_of_the_last_redirected_request(
    app, client, kind
):
    @app.get("/old")
    @variant(kind)
    def old():
        g.hop = "old"
        return redirect("/new?from=old")

    @app.get("/new")
    @variant(kind)
    def new():
        g.hop = "new"
        return "new"

    with client:
        response = client.get("/old", follow_redirects=True)
        assert response.text == "new"
        assert request.path == "/new"
        assert request.args["from"] == "old"
        assert g.hop == "new"
    assert not has_request_context()
    assert not has_app_context()


def test_with_client_cannot_be_nested(app, client):
    with client:
        with pytest.raises(RuntimeError, match="nest"), client:
            pass
        # The outer block still works.
        client.get("/missing")
        assert request.path == "/missing"
    assert not has_request_context()


def test_client_can_be_used_in_with_block_again(app, client, kind):
    inspect_view(app, kind)
    with client:
        client.get("/inspect/ada")
    with client:
        client.get("/inspect/grace")
        assert request.path == "/inspect/grace"
    assert not has_request_context()


# -- session_transaction ---------------------------------------------------------------------


def test_session_transaction_sets_values_a_view_sees(app, client, kind):
    @app.get("/whoami")
    @variant(kind)
    def whoami():
        return f"{session.get('user', 'anonymous')} {session.get('role', '-')}"

    with client.session_transaction() as sess:
        sess["user"] = "ada"
    assert client.get("/whoami").text == "ada -"
    with client.session_transaction() as sess:
        assert sess["user"] == "ada"
        sess["role"] = "admin"
    assert client.get("/whoami").text == "ada admin"


def test_session_transaction_reads_values_a_view_set(app, client, kind):
    @app.get("/login")
    @variant(kind)
    def login():
        session["user"] = "ada"
        session["visits"] = 3
        return "ok"

    client.get("/login")
    with client.session_transaction() as sess:
        assert dict(sess) == {"user": "ada", "visits": 3}


def test_session_transaction_leaves_no_context_pushed(app, client):
    with client.session_transaction() as sess:
        assert not has_request_context()
        sess["user"] = "ada"
    assert not has_request_context()
    assert not has_app_context()


def test_session_transaction_without_cookies_raises_type_error(app):
    client = app.test_client(use_cookies=False)
    with pytest.raises(TypeError), client.session_transaction():
        pass


# -- test_request_context ------------------------------------------------------------------


def test_request_context_path_and_query_string(app):
    with app.test_request_context("/search?q=cats&page=2"):
        assert request.method == "GET"
        assert request.path == "/search"
        assert request.args.to_dict() == {"q": "cats", "page": "2"}
        assert request.url == "http://localhost/search?q=cats&page=2"


def test_request_context_query_string_argument(app):
    with app.test_request_context("/search", query_string={"q": "dogs"}):
        assert request.args["q"] == "dogs"
        assert request.full_path == "/search?q=dogs"


def test_request_context_defaults_to_root_path(app):
    with app.test_request_context():
        assert request.path == "/"
        assert request.url == "http://localhost/"


def test_request_context_method_and_json(app):
    with app.test_request_context("/api", method="POST", json={"a": [1, 2]}):
        assert request.method == "POST"
        assert request.mimetype == "application/json"
        assert request.get_json() == {"a": [1, 2]}


def test_request_context_json_uses_the_apps_json_provider(app):
    with app.test_request_context(json={"when": datetime.date(2024, 1, 2)}):
        assert request.get_json() == {"when": "Tue, 02 Jan 2024 00:00:00 GMT"}


def test_request_context_data_as_form_and_as_bytes(app):
    with app.test_request_context("/", method="POST", data={"name": "ada"}):
        assert request.form["name"] == "ada"
    with app.test_request_context(
        "/", method="POST", data=b"raw body", content_type="text/plain"
    ):
        assert request.get_data() == b"raw body"
        assert request.mimetype == "text/plain"


def test_request_context_headers(app):
    with app.test_request_context(headers={"X-Token": "abc", "Accept": "text/html"}):
        assert request.headers["X-Token"] == "abc"
        assert request.accept_mimetypes.best == "text/html"


def test_request_context_base_url(app):
    with app.test_request_context("/page", base_url="https://example.org/prefix/"):
        assert request.scheme == "https"
        assert request.host == "example.org"
        assert request.script_root == "/prefix"
        assert request.path == "/page"
        assert request.url == "https://example.org/prefix/page"


def test_request_context_full_url_as_path(app):
    with app.test_request_context("https://other.test/p?x=1"):
        assert request.scheme == "https"
        assert request.host == "other.test"
        assert request.path == "/p"
        assert request.args["x"] == "1"


def test_request_context_subdomain(app):
    app.config["SERVER_NAME"] = "example.com"
    with app.test_request_context("/x", subdomain="api"):
        assert request.host == "api.example.com"
        assert request.url == "http://api.example.com/x"


def test_request_context_url_scheme(app):
    with app.test_request_context("/x", url_scheme="https"):
        assert request.scheme == "https"
        assert request.is_secure
        assert request.url == "https://localhost/x"


def test_request_context_server_name_config(app):
    app.config["SERVER_NAME"] = "example.com:8080"
    with app.test_request_context("/x"):
        assert request.host == "example.com:8080"
        assert request.url == "http://example.com:8080/x"


def test_request_context_application_root_config(app):
    app.config["APPLICATION_ROOT"] = "/root"
    with app.test_request_context("/x"):
        assert request.script_root == "/root"
        assert request.path == "/x"
        assert request.url == "http://localhost/root/x"


def test_request_context_preferred_url_scheme_config(app):
    app.config["PREFERRED_URL_SCHEME"] = "https"
    with app.test_request_context("/x"):
        assert request.scheme == "https"
        assert request.url == "https://localhost/x"


def test_request_context_url_config_together(app):
    app.config.update(
        SERVER_NAME="example.com",
        APPLICATION_ROOT="/app",
        PREFERRED_URL_SCHEME="https",
    )
    with app.test_request_context("/x?y=1", subdomain="www"):
        assert request.url == "https://www.example.com/app/x?y=1"
        assert request.url_root == "https://www.example.com/app/"


def test_request_context_url_scheme_argument_beats_config(app):
    app.config["PREFERRED_URL_SCHEME"] = "https"
    with app.test_request_context("/x", url_scheme="http"):
        assert request.url == "http://localhost/x"


def test_request_context_matches_the_url_rule(app):
    @app.get("/items/<int:item_id>")
    def item(item_id):
        return str(item_id)

    with app.test_request_context("/items/3"):
        assert request.endpoint == "item"
        assert request.view_args == {"item_id": 3}


def test_request_context_with_client_sends_the_same_url(app, client, kind):
    app.config.update(SERVER_NAME="example.com", APPLICATION_ROOT="/app")

    @app.get("/where")
    @variant(kind)
    def where():
        return request.url

    assert client.get("/where").text == "http://example.com/app/where"


# -- test_client_class -----------------------------------------------------------------------


def test_test_client_class_customises_the_client(app):
    class TokenClient(FlaskClient):
        def __init__(self, *args, token, **kwargs):
            super().__init__(*args, **kwargs)
            self.token = token

        def open(self, *args, **kwargs):
            headers = kwargs.setdefault("headers", {})
            headers["Authorization"] = f"Bearer {self.token}"
            return super().open(*args, **kwargs)

    @app.get("/auth")
    def auth():
        return request.headers["Authorization"]

    app.test_client_class = TokenClient
    client = app.test_client(token="t0k")
    assert isinstance(client, TokenClient)
    assert client.application is app
    assert client.get("/auth").text == "Bearer t0k"


def test_test_client_class_defaults_to_flask_client(app):
    assert app.test_client_class is None
    assert type(app.test_client()) is FlaskClient


def test_test_client_class_set_on_a_subclass(tmp_path):
    class MyClient(FlaskClient):
        pass

    class MyApp(ctxflask.Flask):
        test_client_class = MyClient

    app = MyApp("my_app", root_path=str(tmp_path))
    assert type(app.test_client()) is MyClient
