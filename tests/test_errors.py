"""Error handlers, exception propagation, and what teardown and signals see of errors."""

from __future__ import annotations

import logging
import typing as t

import pytest
from werkzeug.exceptions import BadRequest
from werkzeug.exceptions import BadRequestKeyError
from werkzeug.exceptions import Forbidden
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import InternalServerError
from werkzeug.exceptions import NotFound

from ctxflask import abort
from ctxflask import got_request_exception
from ctxflask import make_response
from ctxflask import request
from tests.support import variant


class AppError(Exception):
    pass


class ChildError(AppError):
    pass


class GrandChildError(ChildError):
    pass


@pytest.fixture
def production(app):
    """The app as deployed: not testing, exceptions not propagated."""
    app.config["TESTING"] = False
    return app


# -- handlers by status code ----------------------------------------------------------------


def test_404_handler_for_an_unknown_url(app, client, kind):
    @app.errorhandler(404)
    @variant(kind)
    def not_found(e):
        assert isinstance(e, NotFound)
        return f"no page at {request.path}", 404

    response = client.get("/missing")
    assert response.status_code == 404
    assert response.data == b"no page at /missing"


def test_404_handler_for_abort_in_a_view(app, client, kind):
    @app.errorhandler(404)
    @variant(kind)
    def not_found(e):
        return f"handled: {e.description}", 404

    @app.get("/item")
    @variant(kind)
    def item():
        abort(404, description="no such item")

    response = client.get("/item")
    assert response.status_code == 404
    assert response.data == b"handled: no such item"


def test_404_without_handler_is_the_default_error_page(app, client):
    response = client.get("/missing")
    assert response.status_code == 404
    assert b"Not Found" in response.data
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"


def test_405_handler_for_a_wrong_method(app, client, kind):
    @app.get("/only-get")
    @variant(kind)
    def only_get():
        return "got"

    @app.errorhandler(405)
    @variant(kind)
    def not_allowed(e):
        return f"{request.method} not allowed", 405

    response = client.post("/only-get")
    assert response.status_code == 405
    assert response.data == b"POST not allowed"
    assert client.get("/only-get").data == b"got"


def test_405_without_handler_lists_allowed_methods(app, client, kind):
    @app.get("/only-get")
    @variant(kind)
    def only_get():
        return "got"

    response = client.delete("/only-get")
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


def test_500_handler_for_abort_500(app, client, kind):
    @app.errorhandler(500)
    @variant(kind)
    def server_error(e):
        return f"handled {e.code}", 500

    @app.get("/")
    @variant(kind)
    def index():
        abort(500)

    response = client.get("/")
    assert response.status_code == 500
    assert response.data == b"handled 500"


def test_abort_with_a_response_sends_that_response(app, client, kind):
    @app.errorhandler(HTTPException)
    @variant(kind)
    def never(e):
        return "not this", 500

    @app.get("/")
    @variant(kind)
    def index():
        abort(make_response("custom abort", 418, {"X-Abort": "1"}))

    response = client.get("/")
    assert response.status_code == 418
    assert response.data == b"custom abort"
    assert response.headers["X-Abort"] == "1"


def test_handler_may_return_any_status(app, client, kind):
    @app.errorhandler(404)
    @variant(kind)
    def not_found(e):
        return {"error": "not found", "path": request.path}

    response = client.get("/nope")
    assert response.status_code == 200
    assert response.json == {"error": "not found", "path": "/nope"}


# -- handlers by exception class ------------------------------------------------------------


def test_handler_for_an_exception_class(app, client, kind):
    @app.errorhandler(AppError)
    @variant(kind)
    def app_error(e):
        return f"app error: {e}", 418

    @app.get("/")
    @variant(kind)
    def index():
        raise AppError("boom")

    response = client.get("/")
    assert response.status_code == 418
    assert response.data == b"app error: boom"


def test_most_specific_exception_class_handler_wins(app, client, kind):
    # Registered child first, so that registration order cannot be what decides.
    @app.errorhandler(ChildError)
    @variant(kind)
    def child(e):
        return f"child handler: {type(e).__name__}", 400

    @app.errorhandler(AppError)
    @variant(kind)
    def base(e):
        return f"base handler: {type(e).__name__}", 400

    @app.errorhandler(Exception)
    @variant(kind)
    def anything(e):
        return f"exception handler: {type(e).__name__}", 400

    errors = {"base": AppError, "child": ChildError, "grandchild": GrandChildError}
    errors["other"] = LookupError

    @app.get("/<name>")
    @variant(kind)
    def index(name):
        raise errors[name]()

    assert client.get("/base").data == b"base handler: AppError"
    assert client.get("/child").data == b"child handler: ChildError"
    assert client.get("/grandchild").data == b"child handler: GrandChildError"
    assert client.get("/other").data == b"exception handler: LookupError"


def test_exception_class_handler_also_gets_http_errors(app, client, kind):
    @app.errorhandler(Exception)
    @variant(kind)
    def anything(e):
        return f"caught {type(e).__name__}", 599

    response = client.get("/missing")
    assert response.status_code == 599
    assert response.data == b"caught NotFound"


def test_routing_redirects_are_never_handled(app, client, kind):
    @app.errorhandler(Exception)
    @variant(kind)
    def anything(e):
        return "handled", 500

    @app.get("/folder/")
    @variant(kind)
    def folder():
        return "folder"

    response = client.get("/folder")
    assert response.status_code == 308
    assert response.headers["Location"] in ("/folder/", "http://localhost/folder/")
    assert client.get("/folder/").data == b"folder"


def test_code_handler_beats_class_handler_for_http_exceptions(app, client, kind):
    @app.errorhandler(HTTPException)
    @variant(kind)
    def any_http(e):
        return f"generic {e.code}", e.code

    @app.errorhandler(404)
    @variant(kind)
    def not_found(e):
        return "specific 404", 404

    @app.get("/<int:code>")
    @variant(kind)
    def index(code):
        abort(code)

    assert client.get("/404").data == b"specific 404"
    assert client.get("/missing/page").data == b"specific 404"
    response = client.get("/403")
    assert response.status_code == 403
    assert response.data == b"generic 403"


def test_handler_for_an_http_exception_subclass(app, client, kind):
    class Gone(HTTPException):
        code = 410
        description = "gone for good"

    @app.errorhandler(Gone)
    @variant(kind)
    def gone(e):
        return f"custom: {e.description}", 410

    @app.get("/")
    @variant(kind)
    def index():
        raise Gone()

    response = client.get("/")
    assert response.status_code == 410
    assert response.data == b"custom: gone for good"


def test_register_error_handler(app, client, kind):
    @variant(kind)
    def forbidden(e):
        return "registered 403", 403

    @variant(kind)
    def app_error(e):
        return "registered class", 409

    app.register_error_handler(403, forbidden)
    app.register_error_handler(AppError, app_error)

    @app.get("/<what>")
    @variant(kind)
    def index(what):
        if what == "forbidden":
            raise Forbidden()
        raise ChildError()

    assert client.get("/forbidden").data == b"registered 403"
    response = client.get("/class")
    assert response.status_code == 409
    assert response.data == b"registered class"


def test_handler_for_non_http_exception_returning_a_tuple(app, client, kind):
    @app.errorhandler(KeyError)
    @variant(kind)
    def missing(e):
        return {"missing": e.args[0]}, 422, {"X-Error": "missing-key"}

    @app.get("/")
    @variant(kind)
    def index():
        return {}["wanted"]

    response = client.get("/")
    assert response.status_code == 422
    assert response.headers["X-Error"] == "missing-key"
    assert response.json == {"missing": "wanted"}


def test_class_handler_not_used_for_unrelated_exceptions(app, client, kind):
    @app.errorhandler(AppError)
    @variant(kind)
    def app_error(e):
        return "handled", 400

    @app.get("/")
    @variant(kind)
    def index():
        raise ValueError("not an AppError")

    with pytest.raises(ValueError, match="not an AppError"):
        client.get("/")


# -- registration errors --------------------------------------------------------------------


def test_registering_a_handler_for_a_non_exception_class_raises(app):
    with pytest.raises(ValueError, match="not a subclass of Exception"):
        app.register_error_handler(int, lambda e: "x")
    with pytest.raises(ValueError, match="not a subclass of Exception"):

        @app.errorhandler(dict)
        def handler(e):
            return "x"


def test_registering_a_handler_for_an_exception_instance_raises(app):
    with pytest.raises(TypeError, match="instance"):
        app.register_error_handler(ValueError("an instance"), lambda e: "x")


def test_registering_a_handler_for_an_unknown_code_raises(app):
    with pytest.raises(ValueError, match="'999' is not a recognized HTTP error code"):
        app.register_error_handler(999, lambda e: "x")
    with pytest.raises(ValueError, match="not a recognized HTTP error code"):

        @app.errorhandler(200)
        def handler(e):
            return "x"


def test_failed_registration_registers_nothing(app, client):
    with pytest.raises(ValueError):  # noqa: PT011 - the message is tested above
        app.register_error_handler(999, lambda e: "x")
    assert client.get("/missing").status_code == 404
    assert b"Not Found" in client.get("/missing").data


# -- propagation and the 500 page -----------------------------------------------------------


def test_exception_propagates_out_of_the_client_in_testing(app, client, kind):
    @app.get("/")
    @variant(kind)
    def index():
        raise ZeroDivisionError("in testing")

    with pytest.raises(ZeroDivisionError, match="in testing"):
        client.get("/")


def test_exception_propagates_in_debug_mode(app, client, kind):
    app.config.update(TESTING=False, DEBUG=True)

    @app.get("/")
    @variant(kind)
    def index():
        raise ZeroDivisionError("in debug")

    with pytest.raises(ZeroDivisionError, match="in debug"):
        client.get("/")


def test_unhandled_exception_is_a_logged_500_when_not_testing(
    production, client, kind, caplog
):
    app = production

    @app.get("/boom")
    @variant(kind)
    def boom():
        raise ZeroDivisionError("logged")

    with caplog.at_level(logging.ERROR, logger=app.logger.name):
        response = client.get("/boom")
    assert response.status_code == 500
    assert b"Internal Server Error" in response.data
    records = [r for r in caplog.records if r.name == app.logger.name]
    assert len(records) == 1
    assert records[0].levelno == logging.ERROR
    assert records[0].getMessage() == "Exception on /boom [GET]"
    assert records[0].exc_info is not None
    assert type(records[0].exc_info[1]) is ZeroDivisionError
    assert str(records[0].exc_info[1]) == "logged"


def test_handled_exception_is_not_logged(production, client, kind, caplog):
    app = production

    @app.errorhandler(AppError)
    @variant(kind)
    def handled(e):
        return "handled", 400

    @app.get("/")
    @variant(kind)
    def index():
        raise AppError()

    with caplog.at_level(logging.ERROR, logger=app.logger.name):
        assert client.get("/").status_code == 400
    assert [r for r in caplog.records if r.name == app.logger.name] == []


def test_propagate_exceptions_false_in_testing_returns_500(app, client, kind):
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.get("/")
    @variant(kind)
    def index():
        raise ZeroDivisionError()

    response = client.get("/")
    assert response.status_code == 500
    assert b"Internal Server Error" in response.data


def test_propagate_exceptions_true_propagates_when_not_testing(
    production, client, kind
):
    production.config["PROPAGATE_EXCEPTIONS"] = True

    @production.get("/")
    @variant(kind)
    def index():
        raise ZeroDivisionError("propagated")

    with pytest.raises(ZeroDivisionError, match="propagated"):
        client.get("/")


def test_500_handler_receives_internal_server_error_with_original_exception(
    production, client, kind
):
    app = production
    received: list[BaseException] = []
    raised = ZeroDivisionError("the original")

    @app.errorhandler(500)
    @variant(kind)
    def server_error(e):
        received.append(e)
        return f"500 handler: {type(e.original_exception).__name__}", 500

    @app.get("/")
    @variant(kind)
    def index():
        raise raised

    response = client.get("/")
    assert response.status_code == 500
    assert response.data == b"500 handler: ZeroDivisionError"
    assert len(received) == 1
    assert type(received[0]) is InternalServerError
    assert received[0].original_exception is raised


def test_internal_server_error_class_handler_gets_unhandled_exceptions(
    production, client, kind
):
    @production.errorhandler(InternalServerError)
    @variant(kind)
    def server_error(e):
        return f"class handler: {e.original_exception}", 500

    @production.get("/")
    @variant(kind)
    def index():
        raise KeyError("k")

    response = client.get("/")
    assert response.status_code == 500
    assert response.data == b"class handler: 'k'"


def test_500_handler_response_goes_through_after_request(production, client, kind):
    @production.errorhandler(500)
    @variant(kind)
    def server_error(e):
        return "handled", 500

    @production.after_request
    @variant(kind)
    def after(response):
        response.headers["X-After"] = "ran"
        return response

    @production.get("/")
    @variant(kind)
    def index():
        raise ZeroDivisionError()

    response = client.get("/")
    assert response.status_code == 500
    assert response.headers["X-After"] == "ran"


def test_error_in_the_500_handler_is_not_handled_again(production, client, kind):
    calls: list[str] = []

    @production.errorhandler(500)
    @variant(kind)
    def server_error(e):
        calls.append(type(e.original_exception).__name__)
        raise RuntimeError("the handler failed")

    @production.get("/")
    @variant(kind)
    def index():
        raise ZeroDivisionError()

    with pytest.raises(RuntimeError, match="the handler failed"):
        client.get("/")
    assert calls == ["ZeroDivisionError"]


def test_error_in_a_class_handler_goes_to_the_500_handler(production, client, kind):
    @production.errorhandler(AppError)
    @variant(kind)
    def app_error(e):
        raise KeyError("raised by the handler")

    @production.errorhandler(500)
    @variant(kind)
    def server_error(e):
        return f"500 for {type(e.original_exception).__name__}", 500

    @production.get("/")
    @variant(kind)
    def index():
        raise AppError()

    response = client.get("/")
    assert response.status_code == 500
    assert response.data == b"500 for KeyError"


# -- got_request_exception ------------------------------------------------------------------


def test_got_request_exception_signal_gets_the_exception(production, client, kind):
    received: list[tuple[t.Any, BaseException, str]] = []
    raised = ZeroDivisionError("signalled")

    @variant(kind)
    def receiver(sender, exception, **extra):
        received.append((sender, exception, request.path))

    @production.get("/fail")
    @variant(kind)
    def index():
        raise raised

    with got_request_exception.connected_to(receiver, production):
        response = client.get("/fail")
    assert response.status_code == 500
    assert received == [(production, raised, "/fail")]


def test_got_request_exception_is_sent_before_propagating_in_testing(app, client, kind):
    received: list[BaseException] = []

    @variant(kind)
    def receiver(sender, exception, **extra):
        received.append(exception)

    @app.get("/")
    @variant(kind)
    def index():
        raise ZeroDivisionError()

    with (
        got_request_exception.connected_to(receiver, app),
        pytest.raises(ZeroDivisionError),
    ):
        client.get("/")
    assert len(received) == 1
    assert type(received[0]) is ZeroDivisionError


def test_got_request_exception_not_sent_for_handled_exceptions(app, client, kind):
    received: list[BaseException] = []

    @variant(kind)
    def receiver(sender, exception, **extra):
        received.append(exception)

    @app.errorhandler(AppError)
    @variant(kind)
    def handled(e):
        return "handled", 400

    @app.get("/<what>")
    @variant(kind)
    def index(what):
        if what == "http":
            abort(403)
        raise AppError()

    with got_request_exception.connected_to(receiver, app):
        assert client.get("/app").status_code == 400
        assert client.get("/http").status_code == 403
        assert client.get("/missing/url").status_code == 404
    assert received == []


# -- teardown and errors --------------------------------------------------------------------


def test_teardown_receives_a_propagated_exception(app, client, kind):
    received: list[BaseException | None] = []
    raised = ZeroDivisionError("unhandled")

    @app.teardown_request
    @variant(kind)
    def teardown(exc):
        received.append(exc)

    @app.get("/")
    @variant(kind)
    def index():
        raise raised

    with pytest.raises(ZeroDivisionError):
        client.get("/")
    assert received == [raised]


def test_teardown_receives_the_exception_behind_a_500(production, client, kind):
    received: list[BaseException | None] = []
    raised = ZeroDivisionError("unhandled")

    @production.teardown_request
    @variant(kind)
    def teardown(exc):
        received.append(exc)

    @production.get("/")
    @variant(kind)
    def index():
        raise raised

    assert client.get("/").status_code == 500
    assert received == [raised]


def test_teardown_receives_none_when_a_handler_handled_the_error(app, client, kind):
    received: list[BaseException | None] = []

    @app.teardown_request
    @variant(kind)
    def teardown(exc):
        received.append(exc)

    @app.errorhandler(AppError)
    @variant(kind)
    def handled(e):
        return "handled", 400

    @app.get("/<what>")
    @variant(kind)
    def index(what):
        if what == "http":
            abort(404)
        raise AppError()

    assert client.get("/app").status_code == 400
    assert client.get("/http").status_code == 404
    assert received == [None, None]


def test_teardown_appcontext_receives_a_propagated_exception(app, client, kind):
    received: list[BaseException | None] = []
    raised = ZeroDivisionError("unhandled")

    @app.teardown_appcontext
    @variant(kind)
    def teardown(exc):
        received.append(exc)

    @app.get("/")
    @variant(kind)
    def index():
        raise raised

    with pytest.raises(ZeroDivisionError):
        client.get("/")
    assert received == [raised]


# -- trapping -------------------------------------------------------------------------------


def test_trap_http_exceptions_propagates_http_errors(app, client, kind):
    app.config["TRAP_HTTP_EXCEPTIONS"] = True

    @app.get("/")
    @variant(kind)
    def index():
        abort(403)

    with pytest.raises(Forbidden):
        client.get("/")
    with pytest.raises(NotFound):
        client.get("/missing")


def test_trapped_http_exception_still_uses_a_registered_handler(app, client, kind):
    app.config["TRAP_HTTP_EXCEPTIONS"] = True

    @app.errorhandler(403)
    @variant(kind)
    def forbidden(e):
        return "handled while trapped", 403

    @app.get("/")
    @variant(kind)
    def index():
        abort(403)

    assert client.get("/").data == b"handled while trapped"


def test_missing_form_key_is_a_400(app, client, kind):
    @app.post("/")
    @variant(kind)
    def index():
        return request.form["x"]

    response = client.post("/", data={"y": "1"})
    assert response.status_code == 400
    assert b"KeyError" not in response.data
    assert client.post("/", data={"x": "present"}).data == b"present"


def test_missing_form_key_propagates_with_trap_bad_request_errors(app, client, kind):
    app.config["TRAP_BAD_REQUEST_ERRORS"] = True

    @app.post("/")
    @variant(kind)
    def index():
        return request.form["x"]

    with pytest.raises(BadRequestKeyError) as info:
        client.post("/", data={"y": "1"})
    assert info.value.args == ("x",)


def test_trap_bad_request_errors_traps_every_bad_request(app, client, kind):
    app.config["TRAP_BAD_REQUEST_ERRORS"] = True

    @app.get("/")
    @variant(kind)
    def index():
        abort(400)

    with pytest.raises(BadRequest):
        client.get("/")


def test_missing_form_key_propagates_in_debug_mode(app, client, kind):
    app.debug = True

    @app.post("/")
    @variant(kind)
    def index():
        return request.form["x"]

    with pytest.raises(BadRequestKeyError):
        client.post("/", data={"y": "1"})


def test_missing_form_key_names_the_key_in_debug_when_not_trapped(app, client, kind):
    app.config.update(DEBUG=True, TRAP_BAD_REQUEST_ERRORS=False)

    @app.post("/")
    @variant(kind)
    def index():
        return request.form["x"]

    response = client.post("/", data={"y": "1"})
    assert response.status_code == 400
    assert b"KeyError: &#39;x&#39;" in response.data


# -- errors in hooks ------------------------------------------------------------------------


def test_abort_in_before_request_goes_through_error_handlers(app, client, kind):
    calls: list[str] = []

    @app.before_request
    @variant(kind)
    def before():
        abort(401)

    @app.errorhandler(401)
    @variant(kind)
    def unauthorized(e):
        return "please log in", 401

    @app.after_request
    @variant(kind)
    def after(response):
        calls.append(f"after {response.status_code}")
        return response

    @app.get("/")
    @variant(kind)
    def index():
        calls.append("view")
        return "secret"

    response = client.get("/")
    assert response.status_code == 401
    assert response.data == b"please log in"
    assert calls == ["after 401"]


def test_exception_in_before_request_uses_a_class_handler(app, client, kind):
    @app.before_request
    @variant(kind)
    def before():
        raise AppError("from before_request")

    @app.errorhandler(AppError)
    @variant(kind)
    def handled(e):
        return f"handled {e}", 400

    @app.get("/")
    @variant(kind)
    def index():
        return "view"

    response = client.get("/")
    assert response.status_code == 400
    assert response.data == b"handled from before_request"


def test_exception_in_after_request_propagates_in_testing(app, client, kind):
    """Errors from after_request are not errors of the view: class handlers are not
    consulted, and in testing the exception propagates."""
    calls: list[str] = []

    @app.errorhandler(AppError)
    @variant(kind)
    def handled(e):
        calls.append("class handler")
        return "handled", 400

    @app.after_request
    @variant(kind)
    def after(response):
        raise AppError("from after_request")

    @app.get("/")
    @variant(kind)
    def index():
        return "view"

    with pytest.raises(AppError, match="from after_request"):
        client.get("/")
    assert calls == []


def test_exception_in_after_request_goes_to_the_500_handler(production, client, kind):
    failures: list[str] = []

    @production.after_request
    @variant(kind)
    def after(response):
        if not failures:
            failures.append("failed once")
            raise AppError("from after_request")
        response.headers["X-After"] = "second pass"
        return response

    @production.errorhandler(500)
    @variant(kind)
    def server_error(e):
        return f"500: {e.original_exception}", 500

    @production.get("/")
    @variant(kind)
    def index():
        return "view"

    response = client.get("/")
    assert response.status_code == 500
    assert response.data == b"500: from after_request"
    assert response.headers["X-After"] == "second pass"


def test_exception_in_after_request_of_the_error_response_is_logged(
    production, client, kind, caplog
):
    @production.after_request
    @variant(kind)
    def after(response):
        raise AppError("always")

    @production.errorhandler(500)
    @variant(kind)
    def server_error(e):
        return "500 handled", 500

    @production.get("/")
    @variant(kind)
    def index():
        return "view"

    with caplog.at_level(logging.ERROR, logger=production.logger.name):
        response = client.get("/")
    assert response.status_code == 500
    assert response.data == b"500 handled"
    messages = [
        r.getMessage() for r in caplog.records if r.name == production.logger.name
    ]
    assert messages == [
        "Exception on / [GET]",
        "Request finalizing failed with an error while handling an error",
    ]
