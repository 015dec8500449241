"""JSON responses and request bodies: jsonify, the app's JSON provider, get_json, forms,
files, raw data, body limits and trusted hosts."""

from __future__ import annotations

import decimal
import io
import json
import typing as t

import pytest

import ctxflask
from ctxflask import jsonify
from ctxflask import request
from ctxflask.json.provider import DefaultJSONProvider
from tests.support import variant

# -- jsonify --------------------------------------------------------------------------------


def test_jsonify_dict(app_ctx):
    response = jsonify({"b": 1, "a": [True, None]})
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Content-Type"] == "application/json"
    assert response.get_data() == b'{"a":[true,null],"b":1}\n'


def test_jsonify_kwargs_is_an_object(app_ctx):
    response = jsonify(name="x", count=2)
    assert response.get_data() == b'{"count":2,"name":"x"}\n'


def test_jsonify_one_list_is_that_list(app_ctx):
    assert jsonify([1, 2, 3]).get_data() == b"[1,2,3]\n"


def test_jsonify_several_args_is_a_list(app_ctx):
    assert jsonify(1, "two", {"three": 3}).get_data() == b'[1,"two",{"three":3}]\n'


def test_jsonify_without_arguments_is_null(app_ctx):
    assert jsonify().get_data() == b"null\n"


def test_jsonify_rejects_args_and_kwargs_together(app_ctx):
    with pytest.raises(TypeError, match="args or kwargs"):
        jsonify(1, a=2)


def test_jsonify_sorts_keys_by_default(app_ctx):
    response = jsonify({"zebra": 1, "apple": {"y": 1, "x": 2}, "mango": 3})
    assert response.get_data() == b'{"apple":{"x":2,"y":1},"mango":3,"zebra":1}\n'


def test_jsonify_escapes_non_ascii_by_default(app_ctx):
    assert jsonify(text="café ☕").get_data() == b'{"text":"caf\\u00e9 \\u2615"}\n'


def test_jsonify_keeps_non_ascii_without_ensure_ascii(app, app_ctx):
    app.json.ensure_ascii = False
    response = jsonify(text="café ☕")
    assert response.get_data() == '{"text":"café ☕"}\n'.encode()
    assert response.get_json() == {"text": "café ☕"}


def test_jsonify_is_indented_in_debug_mode(app, app_ctx):
    app.debug = True
    assert jsonify(b=[1], a=1).get_data(as_text=True) == (
        '{\n  "a": 1,\n  "b": [\n    1\n  ]\n}\n'
    )


def test_jsonify_is_compact_outside_debug_mode(app, app_ctx):
    app.debug = False
    assert jsonify(b=[1, 2], a={"c": 1}).get_data() == b'{"a":{"c":1},"b":[1,2]}\n'


def test_jsonify_outside_an_app_context_raises():
    with pytest.raises(RuntimeError, match="Working outside of application context"):
        jsonify(a=1)


def test_jsonify_from_a_view(app, client, kind):
    @app.get("/")
    @variant(kind)
    def index():
        return jsonify(path=request.path, items=[1, 2])

    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json == {"items": [1, 2], "path": "/"}


def test_jsonify_with_status_in_a_tuple(app, client, kind):
    @app.get("/")
    @variant(kind)
    def index():
        return jsonify(error="nope"), 422

    response = client.get("/")
    assert response.status_code == 422
    assert response.json == {"error": "nope"}


# -- the app's JSON provider ----------------------------------------------------------------


class Money:
    def __init__(self, cents: int) -> None:
        self.cents = cents


class MoneyProvider(DefaultJSONProvider):
    sort_keys = False

    @staticmethod
    def default(o: t.Any) -> t.Any:
        if isinstance(o, Money):
            return f"{o.cents / 100:.2f} EUR"
        return DefaultJSONProvider.default(o)


def test_custom_provider_instance_serializes_views_and_jsonify(app, client, kind):
    app.json = MoneyProvider(app)

    @app.get("/dict")
    @variant(kind)
    def as_dict():
        return {"total": Money(1250), "a": decimal.Decimal("1.5")}

    @app.get("/jsonify")
    @variant(kind)
    def as_jsonify():
        return jsonify(z=1, price=Money(99))

    assert client.get("/dict").data == b'{"total":"12.50 EUR","a":"1.5"}\n'
    assert client.get("/jsonify").data == b'{"z":1,"price":"0.99 EUR"}\n'


def test_default_provider_rejects_unknown_types(app, client, kind):
    @app.get("/")
    @variant(kind)
    def index():
        return {"total": Money(1)}

    with pytest.raises(TypeError, match="Money is not JSON serializable"):
        client.get("/")


def test_json_provider_class_on_a_flask_subclass(kind):
    class MoneyFlask(ctxflask.Flask):
        json_provider_class = MoneyProvider

    app = MoneyFlask("money")
    app.testing = True
    assert isinstance(app.json, MoneyProvider)

    @app.get("/")
    @variant(kind)
    def index():
        return [Money(5), {"b": 1, "a": 2}]

    assert app.test_client().get("/").data == b'["0.05 EUR",{"b":1,"a":2}]\n'


def test_custom_provider_loads_request_json(app, client, kind):
    class DecimalProvider(DefaultJSONProvider):
        def loads(self, s: str | bytes, **kwargs: t.Any) -> t.Any:
            kwargs.setdefault("parse_float", decimal.Decimal)
            return super().loads(s, **kwargs)

    app.json = DecimalProvider(app)

    @app.post("/")
    @variant(kind)
    def index():
        value = request.get_json()["price"]
        return f"{type(value).__name__} {value}"

    response = client.post("/", data='{"price": 0.10}', content_type="application/json")
    assert response.data == b"Decimal 0.10"


def test_custom_provider_mimetype(app, client, kind):
    class ProblemProvider(DefaultJSONProvider):
        mimetype = "application/problem+json"

    app.json = ProblemProvider(app)

    @app.get("/")
    @variant(kind)
    def index():
        return {"title": "bad"}

    response = client.get("/")
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json == {"title": "bad"}


# -- request JSON ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_get_json_reads_the_json_body(app, client, kind, method):
    @app.route("/", methods=[method])
    @variant(kind)
    def index():
        data = request.get_json()
        return {"got": data, "same": request.json == data, "is_json": request.is_json}

    response = client.open("/", method=method, json={"a": [1, 2], "b": "é"})
    assert response.status_code == 200
    assert response.json == {
        "got": {"a": [1, 2], "b": "é"},
        "same": True,
        "is_json": True,
    }


def test_get_json_of_a_scalar_document(app, client, kind):
    @app.post("/")
    @variant(kind)
    def index():
        return repr(request.get_json())

    response = client.post("/", data="42", content_type="application/json")
    assert response.data == b"42"


def test_invalid_json_is_a_400_without_details(app, client, kind):
    @app.post("/")
    @variant(kind)
    def index():
        return repr(request.get_json())

    response = client.post("/", data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert b"Failed to decode JSON object" not in response.data
    assert b"Expecting property name" not in response.data


def test_invalid_json_is_a_400_with_details_in_debug_mode(app, client, kind):
    app.debug = True

    @app.post("/")
    @variant(kind)
    def index():
        return repr(request.json)

    response = client.post("/", data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert b"Failed to decode JSON object" in response.data


def test_invalid_json_400_reaches_a_400_handler(app, client, kind):
    @app.errorhandler(400)
    @variant(kind)
    def bad_request(e):
        return {"error": "bad json"}, 400

    @app.post("/")
    @variant(kind)
    def index():
        return repr(request.get_json())

    response = client.post("/", data="[1,", content_type="application/json")
    assert response.status_code == 400
    assert response.json == {"error": "bad json"}


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", None]
)
def test_json_with_wrong_content_type_is_a_415(app, client, kind, content_type):
    @app.post("/")
    @variant(kind)
    def index():
        return repr(request.json)

    response = client.post("/", data='{"a": 1}', content_type=content_type)
    assert response.status_code == 415


def test_get_json_silent_returns_none_on_errors(app, client, kind):
    @app.post("/")
    @variant(kind)
    def index():
        return repr(request.get_json(silent=True))

    invalid = client.post("/", data="{bad", content_type="application/json")
    assert invalid.status_code == 200
    assert invalid.data == b"None"
    wrong_type = client.post("/", data='{"a": 1}', content_type="text/plain")
    assert wrong_type.status_code == 200
    assert wrong_type.data == b"None"
    valid = client.post("/", json={"a": 1})
    assert valid.data == b"{'a': 1}"


def test_get_json_force_ignores_the_content_type(app, client, kind):
    @app.post("/")
    @variant(kind)
    def index():
        return {"forced": request.get_json(force=True)}

    response = client.post("/", data='{"a": [1]}', content_type="text/plain")
    assert response.status_code == 200
    assert response.json == {"forced": {"a": [1]}}


def test_get_json_force_still_rejects_invalid_json(app, client, kind):
    @app.post("/")
    @variant(kind)
    def index():
        return repr(request.get_json(force=True))

    response = client.post("/", data="nope", content_type="text/plain")
    assert response.status_code == 400


def test_get_json_then_get_data_give_the_same_body(app, client, kind):
    @app.post("/")
    @variant(kind)
    def index():
        parsed = request.get_json()
        return {"parsed": parsed, "raw": request.get_data(as_text=True)}

    response = client.post("/", data='{"k": "v"}', content_type="application/json")
    assert response.json == {"parsed": {"k": "v"}, "raw": '{"k": "v"}'}


# -- forms, files and raw data --------------------------------------------------------------


def test_urlencoded_form(app, client, kind):
    @app.post("/")
    @variant(kind)
    def index():
        return {
            "name": request.form["name"],
            "tags": request.form.getlist("tag"),
            "files": list(request.files),
        }

    response = client.post("/", data={"name": "é x", "tag": ["a", "b"]})
    assert response.status_code == 200
    assert response.json == {"name": "é x", "tags": ["a", "b"], "files": []}


def test_multipart_upload_gives_form_and_files(app, client, kind):
    @app.post("/upload")
    @variant(kind)
    def upload():
        f = request.files["f"]
        return {
            "filename": f.filename,
            "content": f.read().decode(),
            "content_type": f.content_type,
            "field": request.form["field"],
            "form_keys": sorted(request.form),
        }

    response = client.post(
        "/upload",
        data={
            "f": (io.BytesIO(b"file contents"), "a.txt", "text/plain"),
            "field": "value",
        },
    )
    assert response.status_code == 200
    assert response.json == {
        "filename": "a.txt",
        "content": "file contents",
        "content_type": "text/plain",
        "field": "value",
        "form_keys": ["field"],
    }


def test_multipart_upload_of_several_files(app, client, kind):
    @app.post("/upload")
    @variant(kind)
    def upload():
        return {f.filename: f.read().decode() for f in request.files.getlist("docs")}

    response = client.post(
        "/upload",
        data={"docs": [(io.BytesIO(b"one"), "1.txt"), (io.BytesIO(b"two"), "2.txt")]},
    )
    assert response.json == {"1.txt": "one", "2.txt": "two"}


def test_raw_body_via_data_and_get_data(app, client, kind):
    @app.put("/")
    @variant(kind)
    def index():
        return {
            "data": request.data.decode("latin-1"),
            "get_data": request.get_data().decode("latin-1"),
            "as_text": request.get_data(as_text=True),
            "length": request.content_length,
        }

    response = client.put(
        "/", data=b"raw \x01 bytes", content_type="application/octet-stream"
    )
    assert response.json == {
        "data": "raw \x01 bytes",
        "get_data": "raw \x01 bytes",
        "as_text": "raw \x01 bytes",
        "length": 11,
    }


def test_data_is_empty_after_form_parsing(app, client, kind):
    @app.post("/")
    @variant(kind)
    def index():
        return {"form": request.form["a"], "data": request.get_data(as_text=True)}

    response = client.post("/", data={"a": "1"})
    assert response.json == {"form": "1", "data": ""}


def test_body_is_read_in_before_request_and_the_view(app, client, kind):
    @app.before_request
    @variant(kind)
    def before():
        request.environ["test.seen"] = request.get_json()["n"]

    @app.post("/")
    @variant(kind)
    def index():
        return {"before": request.environ["test.seen"], "view": request.json["n"]}

    assert client.post("/", json={"n": 3}).json == {"before": 3, "view": 3}


# -- body limits ----------------------------------------------------------------------------


@pytest.fixture
def echo(app, kind):
    """Routes reading the body in different ways."""

    @app.post("/data")
    @variant(kind)
    def data():
        return f"{len(request.get_data())} bytes"

    @app.post("/form")
    @variant(kind)
    def form():
        return f"fields={sorted(request.form)} files={sorted(request.files)}"

    @app.post("/json")
    @variant(kind)
    def json_body():
        return f"{len(request.get_json())} items"

    return app


def test_max_content_length_rejects_a_larger_raw_body(echo, client):
    echo.config["MAX_CONTENT_LENGTH"] = 10
    assert client.post("/data", data=b"x" * 11).status_code == 413
    response = client.post("/data", data=b"x" * 10)
    assert response.status_code == 200
    assert response.data == b"10 bytes"


def test_max_content_length_rejects_a_larger_form(echo, client):
    echo.config["MAX_CONTENT_LENGTH"] = 20
    assert client.post("/form", data={"a": "x" * 30}).status_code == 413
    assert client.post("/form", data={"a": "x"}).data == b"fields=['a'] files=[]"


def test_max_content_length_rejects_a_larger_upload(echo, client):
    echo.config["MAX_CONTENT_LENGTH"] = 1000
    response = client.post("/form", data={"f": (io.BytesIO(b"x" * 1000), "big.bin")})
    assert response.status_code == 413
    response = client.post("/form", data={"f": (io.BytesIO(b"x" * 5), "small.bin")})
    assert response.data == b"fields=[] files=['f']"


def test_max_content_length_rejects_a_larger_json_body(echo, client):
    echo.config["MAX_CONTENT_LENGTH"] = 10
    assert client.post("/json", json=list(range(10))).status_code == 413
    assert client.post("/json", json=[1, 2]).data == b"2 items"


def test_max_content_length_413_reaches_a_413_handler(echo, client, kind):
    echo.config["MAX_CONTENT_LENGTH"] = 1

    @echo.errorhandler(413)
    @variant(kind)
    def too_large(e):
        return f"limit {request.max_content_length}", 413

    response = client.post("/data", data=b"xx")
    assert response.status_code == 413
    assert response.data == b"limit 1"


def test_413_response_goes_through_after_request_and_teardown(echo, client, kind):
    echo.config["MAX_CONTENT_LENGTH"] = 1
    torn_down: list[BaseException | None] = []

    @echo.after_request
    @variant(kind)
    def after(response):
        response.headers["X-After"] = "ran"
        return response

    @echo.teardown_request
    @variant(kind)
    def teardown(exc):
        torn_down.append(exc)

    response = client.post("/data", data=b"xx")
    assert response.status_code == 413
    assert response.headers["X-After"] == "ran"
    assert torn_down == [None]


def test_request_max_content_length_defaults_to_the_config(app, client, kind):
    app.config["MAX_CONTENT_LENGTH"] = 1234

    @app.get("/")
    @variant(kind)
    def index():
        return repr(request.max_content_length)

    assert client.get("/").data == b"1234"
    app.config["MAX_CONTENT_LENGTH"] = None
    assert client.get("/").data == b"None"


def test_before_request_can_lower_max_content_length(echo, client, kind):
    @echo.before_request
    @variant(kind)
    def limit():
        if request.path == "/data":
            request.max_content_length = 5

    assert client.post("/data", data=b"x" * 6).status_code == 413
    assert client.post("/data", data=b"x" * 5).data == b"5 bytes"
    assert client.post("/form", data={"a": "x" * 100}).status_code == 200


def test_before_request_can_raise_max_content_length(echo, client, kind):
    echo.config["MAX_CONTENT_LENGTH"] = 5

    @echo.before_request
    @variant(kind)
    def allow_more():
        if request.args.get("big"):
            request.max_content_length = 100

    assert client.post("/data", data=b"x" * 50).status_code == 413
    response = client.post("/data?big=1", data=b"x" * 50)
    assert response.status_code == 200
    assert response.data == b"50 bytes"


def test_max_form_memory_size_rejects_a_large_text_field(echo, client):
    echo.config["MAX_FORM_MEMORY_SIZE"] = 100_000
    multipart = "multipart/form-data"
    response = client.post("/form", data={"big": "x" * 150_000}, content_type=multipart)
    assert response.status_code == 413
    response = client.post("/form", data={"small": "x" * 1000}, content_type=multipart)
    assert response.data == b"fields=['small'] files=[]"


def test_max_form_memory_size_does_not_limit_files(echo, client):
    echo.config["MAX_FORM_MEMORY_SIZE"] = 100_000
    response = client.post(
        "/form", data={"f": (io.BytesIO(b"x" * 300_000), "big.bin"), "a": "short"}
    )
    assert response.status_code == 200
    assert response.data == b"fields=['a'] files=['f']"


def test_max_form_memory_size_does_not_limit_urlencoded_forms(echo, client):
    """As in Werkzeug: a urlencoded body is bounded by MAX_CONTENT_LENGTH only."""
    echo.config["MAX_FORM_MEMORY_SIZE"] = 50
    response = client.post("/form", data={"a": "x" * 500})
    assert response.status_code == 200
    assert response.data == b"fields=['a'] files=[]"


def test_before_request_can_set_max_form_memory_size(echo, client, kind):
    @echo.before_request
    @variant(kind)
    def limit():
        request.max_form_memory_size = 100_000

    multipart = "multipart/form-data"
    response = client.post("/form", data={"big": "x" * 150_000}, content_type=multipart)
    assert response.status_code == 413


def test_max_form_parts_rejects_too_many_parts(echo, client):
    echo.config["MAX_FORM_PARTS"] = 3
    multipart = "multipart/form-data"
    many = {f"field{i}": "v" for i in range(5)}
    assert client.post("/form", data=many, content_type=multipart).status_code == 413
    few = {"a": "1", "b": "2", "f": (io.BytesIO(b"x"), "f.txt")}
    response = client.post("/form", data=few, content_type=multipart)
    assert response.data == b"fields=['a', 'b'] files=['f']"


def test_max_form_parts_counts_files(echo, client):
    echo.config["MAX_FORM_PARTS"] = 2
    # Fields are encoded before files: the limit is passed at the file's part.
    data = {"a": "1", "b": "2", "f": (io.BytesIO(b"x"), "f.txt")}
    assert client.post("/form", data=data).status_code == 413
    data = {"a": "1", "f": (io.BytesIO(b"x"), "f.txt")}
    assert client.post("/form", data=data).data == b"fields=['a'] files=['f']"


def test_before_request_can_set_max_form_parts(echo, client, kind):
    @echo.before_request
    @variant(kind)
    def limit():
        request.max_form_parts = 1

    multipart = "multipart/form-data"
    data = {"a": "1", "b": "2"}
    assert client.post("/form", data=data, content_type=multipart).status_code == 413


def test_limits_are_the_app_config_defaults(app):
    assert app.config["MAX_CONTENT_LENGTH"] is None
    assert app.config["MAX_FORM_MEMORY_SIZE"] == 500_000
    assert app.config["MAX_FORM_PARTS"] == 1_000
    with app.test_request_context():
        assert request.max_content_length is None
        assert request.max_form_memory_size == 500_000
        assert request.max_form_parts == 1_000


# -- trusted hosts --------------------------------------------------------------------------


@pytest.fixture
def host_app(app, kind):
    app.config["TRUSTED_HOSTS"] = ["example.com", ".trusted.org"]

    @app.get("/")
    @variant(kind)
    def index():
        return request.host

    return app


@pytest.mark.parametrize(
    "base_url",
    [
        "http://example.com",
        "http://example.com:8080",
        "http://trusted.org",
        "http://a.trusted.org",
    ],
)
def test_trusted_hosts_accepts_listed_hosts(host_app, client, base_url):
    response = client.get("/", base_url=base_url)
    assert response.status_code == 200
    assert response.data == base_url.removeprefix("http://").encode()


@pytest.mark.parametrize(
    "base_url",
    ["http://evil.com", "http://example.com.evil.com", "http://nottrusted.org"],
)
def test_trusted_hosts_rejects_other_hosts_with_400(host_app, client, base_url):
    response = client.get("/", base_url=base_url)
    assert response.status_code == 400


def test_untrusted_host_400_reaches_a_400_handler(host_app, client, kind):
    @host_app.errorhandler(400)
    @variant(kind)
    def bad_host(e):
        return f"bad host: {type(e).__name__}", 400

    response = client.get("/", headers={"Host": "evil.com"})
    assert response.status_code == 400
    assert response.data == b"bad host: SecurityError"


def test_without_trusted_hosts_any_host_is_accepted(app, client, kind):
    @app.get("/")
    @variant(kind)
    def index():
        return request.host

    assert (
        client.get("/", base_url="http://anything.invalid").data == b"anything.invalid"
    )


def test_json_module_round_trip_through_the_client(app, client, kind):
    """The test client's ``json=`` uses the app's provider, as does ``response.json``."""
    app.json = MoneyProvider(app)

    @app.post("/")
    @variant(kind)
    def index():
        return request.get_data(as_text=True)

    response = client.post("/", json={"b": Money(100), "a": 1})
    assert json.loads(response.data) == {"b": "1.00 EUR", "a": 1}
    assert response.data == b'{"b": "1.00 EUR", "a": 1}'
