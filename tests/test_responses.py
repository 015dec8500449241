"""Turning view return values into responses, and the hooks and signals around it."""

from __future__ import annotations

import typing as t
from http import HTTPStatus

import pytest
from anyio.lowlevel import checkpoint
from markupsafe import Markup
from werkzeug.datastructures import Headers
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response as WerkzeugResponse

import ctxflask
from ctxflask import after_this_request
from ctxflask import g
from ctxflask import has_request_context
from ctxflask import make_response
from ctxflask import request
from ctxflask import request_finished
from ctxflask import request_started
from ctxflask.wrappers import Response
from tests.support import variant

# -- plain bodies ---------------------------------------------------------------------------


def test_str_return_is_utf8_html(app, client, kind):
    @app.get("/")
    @variant(kind)
    def index():
        return "héllo"

    response = client.get("/")
    assert response.status_code == 200
    assert response.data == "héllo".encode()
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Content-Length"] == str(len("héllo".encode()))


def test_bytes_return_is_sent_as_is(app, client, kind):
    @app.get("/")
    @variant(kind)
    def index():
        return b"\x00raw\xff"

    response = client.get("/")
    assert response.status_code == 200
    assert response.data == b"\x00raw\xff"
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Content-Length"] == "5"


def test_bytearray_return_is_sent_as_is(app, client, kind):
    @app.get("/")
    @variant(kind)
    def index():
        return bytearray(b"array body")

    response = client.get("/")
    assert response.status_code == 200
    assert response.data == b"array body"


def test_dict_return_is_json(app, client, kind):
    @app.get("/")
    @variant(kind)
    def index():
        return {"b": [1, 2], "a": None}

    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.data == b'{"a":null,"b":[1,2]}\n'
    assert response.get_json() == {"a": None, "b": [1, 2]}


def test_list_return_is_json(app, client, kind):
    @app.get("/")
    @variant(kind)
    def index():
        return [1, "two", {"three": 3}]

    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json == [1, "two", {"three": 3}]


def test_dict_in_tuple_is_json_with_status_and_headers(app, client, kind):
    @app.get("/")
    @variant(kind)
    def index():
        return {"created": True}, 201, {"X-Id": "7"}

    response = client.get("/")
    assert response.status_code == 201
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Id"] == "7"
    assert response.json == {"created": True}


# -- tuples ---------------------------------------------------------------------------------


@pytest.fixture
def statuses(app):
    """The full status line of each response as the app made it (the reason phrase is
    not part of what an ASGI server receives, so it is read on the app's side)."""
    seen: list[str] = []

    @app.after_request
    def record(response):
        seen.append(response.status)
        return response

    return seen


def test_tuple_with_int_status(app, client, kind, statuses):
    @app.get("/")
    @variant(kind)
    def index():
        return "made", 201

    response = client.get("/")
    assert response.status_code == 201
    assert response.data == b"made"
    assert statuses == ["201 CREATED"]


def test_tuple_with_str_status(app, client, kind, statuses):
    @app.get("/")
    @variant(kind)
    def index():
        return "teapot", "418 I Am A Teapot"

    response = client.get("/")
    assert response.status_code == 418
    assert response.data == b"teapot"
    assert statuses == ["418 I Am A Teapot"]


def test_tuple_with_str_status_code_only(app, client, kind, statuses):
    @app.get("/")
    @variant(kind)
    def index():
        return "created", "201"

    assert client.get("/").status_code == 201
    assert statuses == ["201 CREATED"]


@pytest.mark.parametrize(
    "headers",
    [
        {"X-One": "1", "X-Two": "2"},
        [("X-One", "1"), ("X-Two", "2")],
        Headers([("X-One", "1"), ("X-Two", "2")]),
    ],
    ids=["dict", "list", "Headers"],
)
def test_tuple_with_headers(app, client, kind, headers):
    @app.get("/")
    @variant(kind)
    def index():
        return "with headers", headers

    response = client.get("/")
    assert response.status_code == 200
    assert response.data == b"with headers"
    assert response.headers["X-One"] == "1"
    assert response.headers["X-Two"] == "2"
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"


def test_tuple_with_status_and_headers(app, client, kind):
    @app.get("/")
    @variant(kind)
    def index():
        return "gone", 410, [("X-Reason", "removed"), ("Content-Type", "text/plain")]

    response = client.get("/")
    assert response.status_code == 410
    assert response.data == b"gone"
    assert response.headers["X-Reason"] == "removed"
    assert response.headers["Content-Type"] == "text/plain"


def test_response_object_is_used_as_is(app, client, kind):
    @app.get("/")
    @variant(kind)
    def index():
        return Response(
            "custom", status=202, headers={"X-Own": "yes"}, mimetype="text/plain"
        )

    response = client.get("/")
    assert response.status_code == 202
    assert response.data == b"custom"
    assert response.headers["X-Own"] == "yes"
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_tuple_status_and_headers_override_and_extend_a_response_object(
    app, client, kind
):
    @app.get("/")
    @variant(kind)
    def index():
        inner = Response("inner", status=202, headers={"X-Own": "inner", "X-Kept": "k"})
        return inner, 203, {"X-Own": "outer", "X-Added": "a"}

    response = client.get("/")
    assert response.status_code == 203
    assert response.data == b"inner"
    assert response.headers["X-Own"] == "outer"
    assert response.headers.getlist("X-Own") == ["outer"]
    assert response.headers["X-Kept"] == "k"
    assert response.headers["X-Added"] == "a"


def test_werkzeug_response_is_coerced_to_the_app_response_class(app, client, kind):
    seen: list[type] = []

    @app.get("/")
    @variant(kind)
    def index():
        return WerkzeugResponse("plain werkzeug", status=201, mimetype="text/plain")

    @app.after_request
    @variant(kind)
    def record(response):
        seen.append(type(response))
        return response

    response = client.get("/")
    assert response.status_code == 201
    assert response.data == b"plain werkzeug"
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert seen == [app.response_class]


def test_wsgi_callable_return_is_called_with_the_request_environ(app, client, kind):
    def wsgi_app(environ, start_response):
        start_response(
            "202 Accepted",
            [("Content-Type", "text/plain"), ("X-Path", environ["PATH_INFO"])],
        )
        return [b"from ", b"wsgi"]

    @app.get("/wsgi")
    @variant(kind)
    def index():
        return wsgi_app

    response = client.get("/wsgi")
    assert response.status_code == 202
    assert response.data == b"from wsgi"
    assert response.headers["X-Path"] == "/wsgi"
    assert response.headers["Content-Type"] == "text/plain"


def test_str_subclass_return_is_its_text(app, client, kind):
    @app.get("/")
    @variant(kind)
    def index():
        return Markup("<b>bold</b>")

    response = client.get("/")
    assert response.data == b"<b>bold</b>"
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"


def test_tuple_with_http_status_enum(app, client, kind, statuses):
    @app.get("/")
    @variant(kind)
    def index():
        return "accepted", HTTPStatus.ACCEPTED

    response = client.get("/")
    assert response.status_code == 202
    assert statuses == ["202 ACCEPTED"]


def test_http_exception_return_is_its_error_page(app, client, kind):
    @app.get("/")
    @variant(kind)
    def index():
        return NotFound("nothing here")

    response = client.get("/")
    assert response.status_code == 404
    assert b"nothing here" in response.data
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"


# -- streamed bodies ------------------------------------------------------------------------


def test_sync_generator_streams_with_request_and_g_available(app, client, kind):
    @app.before_request
    @variant(kind)
    def before():
        g.greeting = "hello"

    @app.get("/stream")
    @variant(kind)
    def index():
        def generate():
            yield f"{g.greeting} "
            yield request.args["name"]
            yield f" {has_request_context()}"

        return generate()

    response = client.get("/stream?name=world")
    assert response.status_code == 200
    assert response.data == b"hello world True"
    assert "Content-Length" not in response.headers
    response.close()


def test_async_generator_streams_with_request_and_g_available(app, client, kind):
    @app.before_request
    @variant(kind)
    def before():
        g.greeting = "hello"

    @app.get("/stream")
    @variant(kind)
    def index():
        async def generate():
            await checkpoint()
            yield f"{g.greeting} "
            await checkpoint()
            yield request.args["name"].encode()
            yield f" {has_request_context()}"

        return generate()

    response = client.get("/stream?name=world")
    assert response.status_code == 200
    assert response.data == b"hello world True"
    response.close()


def test_generator_chunks_are_produced_after_the_view_returns(app, client, kind):
    """The generator body runs after the view (and after_request), while streaming."""
    events: list[str] = []

    @app.get("/stream")
    @variant(kind)
    def index():
        def generate():
            events.append("first chunk")
            yield "a"
            events.append("second chunk")
            yield "b"

        events.append("view returned")
        return generate()

    @app.after_request
    @variant(kind)
    def after(response):
        events.append("after_request")
        return response

    response = client.get("/stream")
    assert response.data == b"ab"
    assert events == ["view returned", "after_request", "first chunk", "second chunk"]
    response.close()


def test_iterator_return_is_streamed(app, client, kind):
    @app.get("/")
    @variant(kind)
    def index():
        return iter(["one ", b"two ", "three"])

    response = client.get("/")
    assert response.status_code == 200
    assert response.data == b"one two three"
    response.close()


def test_streamed_tuple_takes_status_and_headers(app, client, kind):
    @app.get("/")
    @variant(kind)
    def index():
        def generate():
            yield "chunk"

        return generate(), 206, {"X-Stream": "1"}

    response = client.get("/")
    assert response.status_code == 206
    assert response.headers["X-Stream"] == "1"
    assert response.data == b"chunk"
    response.close()


# -- invalid return values ------------------------------------------------------------------


@pytest.mark.parametrize("value", [("a",), ("a", 200, {}, "extra")], ids=["1", "4"])
def test_tuple_of_wrong_length_raises_type_error(app, client, kind, value):
    @app.get("/")
    @variant(kind)
    def index():
        return value

    with pytest.raises(TypeError, match=r"\(body, status, headers\)"):
        client.get("/")


def test_none_return_raises_type_error_naming_the_view(app, client, kind):
    @app.get("/")
    @variant(kind)
    def nothing():
        return None

    with pytest.raises(TypeError, match="did not return a valid response") as info:
        client.get("/")
    assert "'nothing'" in str(info.value)
    assert "None" in str(info.value)


def test_none_body_in_tuple_raises_type_error(app, client, kind):
    @app.get("/")
    @variant(kind)
    def index():
        return None, 200

    with pytest.raises(TypeError, match="did not return a valid response"):
        client.get("/")


class _Opaque:
    pass


@pytest.mark.parametrize(
    ("value", "type_name"), [(42, "int"), (_Opaque(), "_Opaque"), (1.5, "float")]
)
def test_unsupported_return_type_raises_type_error_listing_allowed_types(
    app, client, kind, value, type_name
):
    @app.get("/")
    @variant(kind)
    def index():
        return value

    with pytest.raises(TypeError) as info:
        client.get("/")
    message = str(info.value)
    assert "string, dict, list, tuple" in message
    assert "WSGI callable" in message
    assert message.endswith(f"but it was a {type_name}.")


# -- make_response --------------------------------------------------------------------------


def test_make_response_without_arguments_is_empty(app, client, kind):
    @app.get("/")
    @variant(kind)
    def index():
        response = make_response()
        response.headers["X-Empty"] = "yes"
        return response

    response = client.get("/")
    assert response.status_code == 200
    assert response.data == b""
    assert response.headers["X-Empty"] == "yes"
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"


def test_make_response_with_one_argument(app, client, kind):
    @app.get("/")
    @variant(kind)
    def index():
        response = make_response("body")
        response.headers["X-Added"] = "1"
        return response

    response = client.get("/")
    assert response.status_code == 200
    assert response.data == b"body"
    assert response.headers["X-Added"] == "1"


def test_make_response_with_one_tuple_argument(app, client, kind):
    @app.get("/")
    @variant(kind)
    def index():
        response = make_response(("tuple body", 202))
        response.headers["X-Added"] = "1"
        return response

    response = client.get("/")
    assert response.status_code == 202
    assert response.data == b"tuple body"
    assert response.headers["X-Added"] == "1"


def test_make_response_with_several_arguments_is_a_tuple(app, client, kind):
    @app.get("/")
    @variant(kind)
    def index():
        response = make_response("several", 404, {"X-From": "args"})
        response.headers["X-Added"] = "1"
        return response

    response = client.get("/")
    assert response.status_code == 404
    assert response.data == b"several"
    assert response.headers["X-From"] == "args"
    assert response.headers["X-Added"] == "1"


def test_make_response_of_a_dict_is_json(app, client, kind):
    @app.get("/")
    @variant(kind)
    def index():
        response = make_response({"k": "v"})
        response.set_cookie("c", "1")
        return response

    response = client.get("/")
    assert response.headers["Content-Type"] == "application/json"
    assert response.json == {"k": "v"}
    assert response.headers["Set-Cookie"].startswith("c=1;")


# -- the response class ---------------------------------------------------------------------


def test_response_class_default_mimetype_is_html(app_ctx):
    response = Response("x")
    assert response.mimetype == "text/html"
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert ctxflask.Flask.response_class is Response


def test_custom_response_class_is_used_for_str_returns(app, client, kind):
    class TextResponse(Response):
        default_mimetype = "text/plain"

    app.response_class = TextResponse

    @app.get("/")
    @variant(kind)
    def index():
        return "plain"

    @app.get("/bytes")
    @variant(kind)
    def as_bytes():
        return b"plain bytes"

    response = client.get("/")
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.data == b"plain"
    response = client.get("/bytes")
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_response_class_subclass_does_not_change_other_apps(app, client, kind):
    class TextResponse(Response):
        default_mimetype = "text/plain"

    other = ctxflask.Flask("other")
    other.response_class = TextResponse

    @app.get("/")
    @variant(kind)
    def index():
        return "html"

    @other.get("/")
    @variant(kind)
    def other_index():
        return "text"

    assert other.test_client().get("/").headers["Content-Type"] == (
        "text/plain; charset=utf-8"
    )
    assert client.get("/").headers["Content-Type"] == "text/html; charset=utf-8"
    assert other.test_client().get("/").headers["Content-Type"] == (
        "text/plain; charset=utf-8"
    )


@pytest.mark.parametrize("body", [b"", b"hello", "é".encode() * 100])
@pytest.mark.parametrize(
    "mimetype", [None, "application/json", "text/plain", "application/xml"]
)
def test_from_bytes_builds_the_same_response_as_the_constructor(body, mimetype):
    fast = Response._from_bytes(body, mimetype)
    slow = Response(body, mimetype=mimetype)
    assert type(fast) is Response
    assert fast.status == slow.status
    assert fast.status_code == slow.status_code
    assert fast.headers.to_wsgi_list() == slow.headers.to_wsgi_list()
    assert fast.get_data() == slow.get_data() == body
    assert fast.direct_passthrough is slow.direct_passthrough
    assert fast.is_sequence is slow.is_sequence is True
    assert fast.mimetype == slow.mimetype == (mimetype or "text/html")


def test_from_bytes_without_a_default_mimetype_sends_no_content_type():
    class Untyped(Response):
        default_mimetype = None

    fast, slow = Untyped._from_bytes(b"x"), Untyped(b"x")
    assert fast.headers.to_wsgi_list() == slow.headers.to_wsgi_list()
    assert "Content-Type" not in fast.headers


def test_from_bytes_responses_are_independent():
    first = Response._from_bytes(b"one")
    second = Response._from_bytes(b"two")
    first.headers["X-First"] = "1"
    first.call_on_close(lambda: None)
    assert "X-First" not in second.headers
    assert second._on_close == []
    assert second.get_data() == b"two"


def test_response_subclass_overriding_init_uses_its_own_init(app, client, kind):
    class StampedResponse(Response):
        def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
            super().__init__(*args, **kwargs)
            self.headers["X-Stamped"] = "yes"

    assert Response._fast_init is True
    assert StampedResponse._fast_init is False
    app.response_class = StampedResponse

    @app.get("/")
    @variant(kind)
    def index():
        return "stamped"

    response = client.get("/")
    assert response.data == b"stamped"
    assert response.headers["X-Stamped"] == "yes"


def test_response_subclass_overriding_set_data_is_not_fast(app, client, kind):
    class UpperResponse(Response):
        def set_data(self, value: t.Any) -> None:
            if isinstance(value, str):
                value = value.upper()
            super().set_data(value)

    assert UpperResponse._fast_init is False
    app.response_class = UpperResponse

    @app.get("/")
    @variant(kind)
    def index():
        return "shout"

    assert client.get("/").data == b"SHOUT"


def test_response_subclass_with_other_default_status_is_used(app, client, kind):
    class CreatedResponse(Response):
        default_status = 201

    app.response_class = CreatedResponse

    @app.get("/")
    @variant(kind)
    def index():
        return "created"

    response = client.get("/")
    assert response.status_code == 201
    assert response.data == b"created"


def test_response_subclass_without_automatic_content_length(app, client, kind):
    class NoLengthResponse(Response):
        automatically_set_content_length = False

    app.response_class = NoLengthResponse

    @app.get("/")
    @variant(kind)
    def index():
        return "no length"

    response = client.get("/")
    assert response.data == b"no length"
    assert "Content-Length" not in response.headers


def test_response_subclass_without_default_mimetype_sends_no_content_type(
    app, client, kind
):
    class UntypedResponse(Response):
        default_mimetype = None

    assert UntypedResponse(b"x").headers.get("Content-Type") is None
    app.response_class = UntypedResponse

    @app.get("/")
    @variant(kind)
    def index():
        return "untyped"

    response = client.get("/")
    assert response.data == b"untyped"
    assert response.headers.get("Content-Type") is None


def test_default_mimetype_changed_after_use_applies_to_later_responses(
    app, client, kind
):
    class ConfigurableResponse(Response):
        pass

    app.response_class = ConfigurableResponse

    @app.get("/")
    @variant(kind)
    def index():
        return "body"

    assert client.get("/").headers["Content-Type"] == "text/html; charset=utf-8"
    ConfigurableResponse.default_mimetype = "text/plain"
    assert client.get("/").headers["Content-Type"] == "text/plain; charset=utf-8"


# -- HEAD and bodiless statuses -------------------------------------------------------------


def test_head_has_no_body_and_the_get_content_length(app, client, kind):
    @app.get("/")
    @variant(kind)
    def index():
        return "twelve bytes"

    get = client.get("/")
    head = client.head("/")
    assert head.status_code == 200
    assert head.data == b""
    assert head.headers["Content-Length"] == get.headers["Content-Length"] == "12"
    assert head.headers["Content-Type"] == get.headers["Content-Type"]


def test_head_of_a_streamed_view_has_no_body(app, client, kind):
    produced: list[str] = []

    @app.get("/")
    @variant(kind)
    def index():
        def generate():
            produced.append("chunk")
            yield "streamed"

        return generate()

    response = client.head("/")
    assert response.status_code == 200
    assert response.data == b""
    response.close()
    assert produced == []


@pytest.mark.parametrize("status", [204, 304])
def test_bodiless_statuses_send_no_body(app, client, kind, status):
    @app.get("/")
    @variant(kind)
    def index():
        return "ignored body", status

    response = client.get("/")
    assert response.status_code == status
    assert response.data == b""


@pytest.mark.parametrize("status", [204, 304])
def test_bodiless_statuses_do_not_run_a_streamed_body(app, client, kind, status):
    produced: list[str] = []

    @app.get("/")
    @variant(kind)
    def index():
        def generate():
            produced.append("chunk")
            yield "ignored"

        return generate(), status

    response = client.get("/")
    assert response.status_code == status
    assert response.data == b""
    response.close()
    assert produced == []


# -- hooks around the response --------------------------------------------------------------


def test_after_request_can_replace_the_response(app, client, kind):
    @app.get("/")
    @variant(kind)
    def index():
        return "original"

    @app.after_request
    @variant(kind)
    def replace(response):
        return Response(f"replaced {response.get_data(as_text=True)}", status=201)

    response = client.get("/")
    assert response.status_code == 201
    assert response.data == b"replaced original"


def test_after_request_runs_in_reverse_registration_order(app, client, kind):
    @app.get("/")
    @variant(kind)
    def index():
        return "body"

    @app.after_request
    @variant(kind)
    def registered_first(response):
        response.headers.add("X-Order", "first")
        return response

    @app.after_request
    @variant(kind)
    def registered_second(response):
        response.headers.add("X-Order", "second")
        return response

    response = client.get("/")
    assert response.headers.getlist("X-Order") == ["second", "first"]


def test_after_request_receives_the_previous_hooks_response(app, client, kind):
    @app.get("/")
    @variant(kind)
    def index():
        return "body"

    @app.after_request
    @variant(kind)
    def runs_last(response):
        return Response(f"{response.get_data(as_text=True)} -> last")

    @app.after_request
    @variant(kind)
    def runs_first(response):
        return Response(f"{response.get_data(as_text=True)} -> first")

    assert client.get("/").data == b"body -> first -> last"


def test_after_this_request_runs_before_after_request(app, client, kind):
    @app.after_request
    @variant(kind)
    def after(response):
        response.headers.add("X-Order", "after_request")
        return response

    @app.get("/")
    @variant(kind)
    def index():
        @after_this_request
        @variant(kind)
        def only_this(response):
            response.headers.add("X-Order", "after_this_request")
            return response

        return "body"

    response = client.get("/")
    assert response.headers.getlist("X-Order") == [
        "after_this_request",
        "after_request",
    ]
    assert client.get("/").headers.getlist("X-Order") == [
        "after_this_request",
        "after_request",
    ]


def test_after_this_request_applies_to_one_request_only(app, client, kind):
    @app.get("/")
    @variant(kind)
    def index():
        if request.args.get("mark"):

            @after_this_request
            @variant(kind)
            def mark(response):
                response.headers["X-Marked"] = "1"
                return response

        return "body"

    assert client.get("/?mark=1").headers["X-Marked"] == "1"
    assert "X-Marked" not in client.get("/").headers


def test_before_request_return_value_short_circuits_the_view(app, client, kind):
    calls: list[str] = []

    @app.before_request
    @variant(kind)
    def before():
        calls.append("before")
        return "from before", 403

    @app.before_request
    @variant(kind)
    def never():
        calls.append("second before")

    @app.get("/")
    @variant(kind)
    def index():
        calls.append("view")
        return "from view"

    @app.after_request
    @variant(kind)
    def after(response):
        calls.append("after")
        response.headers["X-After"] = "ran"
        return response

    response = client.get("/")
    assert response.status_code == 403
    assert response.data == b"from before"
    assert response.headers["X-After"] == "ran"
    assert calls == ["before", "after"]


def test_before_request_returning_none_continues_to_the_view(app, client, kind):
    @app.before_request
    @variant(kind)
    def before():
        g.value = "set before"

    @app.get("/")
    @variant(kind)
    def index():
        return g.value

    assert client.get("/").data == b"set before"


# -- signals --------------------------------------------------------------------------------


def test_request_started_and_finished_signals(app, client, kind):
    events: list[t.Any] = []

    @variant(kind)
    def started(sender, **extra):
        events.append(("started", sender, request.path, extra))

    @variant(kind)
    def finished(sender, response, **extra):
        events.append(("finished", sender, response.status_code, response.get_data()))

    @app.get("/signal")
    @variant(kind)
    def index():
        events.append("view")
        return "signalled", 201

    @app.after_request
    @variant(kind)
    def after(response):
        events.append("after_request")
        return response

    with (
        request_started.connected_to(started, app),
        request_finished.connected_to(finished, app),
    ):
        response = client.get("/signal")
    assert response.status_code == 201
    assert events == [
        ("started", app, "/signal", {}),
        "view",
        "after_request",
        ("finished", app, 201, b"signalled"),
    ]
    events.clear()
    client.get("/signal")
    assert events == ["view", "after_request"]


def test_async_signal_receivers_are_awaited(app, client):
    """Specific to async receivers: their effect is visible once the request is done."""
    done: list[str] = []

    async def started(sender, **extra):
        await checkpoint()
        g.started = True
        done.append("started")

    async def finished(sender, response, **extra):
        await checkpoint()
        done.append(f"finished {response.status_code}")

    @app.get("/")
    def index():
        return f"started={g.get('started')}"

    with (
        request_started.connected_to(started, app),
        request_finished.connected_to(finished, app),
    ):
        response = client.get("/")
    assert response.data == b"started=True"
    assert done == ["started", "finished 200"]


def test_request_finished_sees_the_response_after_after_request(app, client, kind):
    statuses: list[tuple[int, str | None]] = []

    @variant(kind)
    def finished(sender, response, **extra):
        statuses.append((response.status_code, response.headers.get("X-After")))

    @app.get("/")
    @variant(kind)
    def index():
        return "x"

    @app.after_request
    @variant(kind)
    def after(response):
        response.headers["X-After"] = "1"
        return response

    with request_finished.connected_to(finished, app):
        client.get("/")
    assert statuses == [(200, "1")]
