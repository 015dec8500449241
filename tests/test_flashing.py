"""Message flashing: ``flash`` stores messages in the session, ``get_flashed_messages`` takes
them out on a later request (across a redirect), with categories and filters; the
``message_flashed`` signal reaches sync and async receivers."""

from __future__ import annotations

import typing as t

import pytest

from ctxflask import flash
from ctxflask import Flask
from ctxflask import get_flashed_messages
from ctxflask import message_flashed
from ctxflask import redirect
from ctxflask import request
from tests.support import variant


@pytest.fixture
def flashing_app(app: Flask, kind: str) -> Flask:
    """``POST /flash`` flashes each ``message`` form value (``category:text`` or
    ``text``) and redirects to ``/``; ``GET /`` returns the flashed messages as JSON, with
    ``categories`` and ``filter`` (comma separated) query arguments; ``GET /other`` reads
    none."""

    @app.post("/flash")
    @variant(kind)
    def flash_messages() -> t.Any:
        for value in request.form.getlist("message"):
            category, sep, text = value.partition(":")
            if sep:
                flash(text, category)
            else:
                flash(value)
        return redirect("/")

    @app.get("/")
    @variant(kind)
    def show() -> t.Any:
        wanted = request.args.get("filter")
        return {
            "messages": get_flashed_messages(
                with_categories="categories" in request.args,
                category_filter=wanted.split(",") if wanted else (),
            )
        }

    @app.get("/other")
    @variant(kind)
    def other() -> str:
        return "no messages read"

    return app


def messages(client, query: str = "") -> list[t.Any]:
    response = client.get(f"/{query}")
    assert response.status_code == 200
    return response.get_json()["messages"]


def test_flashed_message_shows_on_the_next_request_after_a_redirect(
    flashing_app: Flask, client
) -> None:
    response = client.post("/flash", data={"message": "saved"})

    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert messages(client) == ["saved"]


def test_flashed_messages_show_once(flashing_app: Flask, client) -> None:
    client.post("/flash", data={"message": "saved"})

    assert messages(client) == ["saved"]
    assert messages(client) == []


def test_client_following_the_redirect_sees_the_message(
    flashing_app: Flask, client
) -> None:
    response = client.post(
        "/flash", data={"message": "followed"}, follow_redirects=True
    )

    assert response.status_code == 200
    assert response.get_json() == {"messages": ["followed"]}


def test_messages_keep_their_order_and_categories(flashing_app: Flask, client) -> None:
    client.post("/flash", data={"message": ["first", "error:second", "info:third"]})

    assert messages(client, "?categories") == [
        ["message", "first"],
        ["error", "second"],
        ["info", "third"],
    ]


def test_category_filter_keeps_only_those_categories(
    flashing_app: Flask, client
) -> None:
    client.post(
        "/flash", data={"message": ["a", "error:b", "info:c", "warning:d", "error:e"]}
    )

    assert messages(client, "?filter=error,warning") == ["b", "d", "e"]


def test_category_filter_with_categories(flashing_app: Flask, client) -> None:
    client.post("/flash", data={"message": ["a", "error:b", "info:c"]})

    assert messages(client, "?categories&filter=info") == [["info", "c"]]


def test_filtered_read_still_takes_every_message_out_of_the_session(
    flashing_app: Flask, client
) -> None:
    client.post("/flash", data={"message": ["a", "error:b"]})

    assert messages(client, "?filter=error") == ["b"]
    assert messages(client) == []


def test_messages_wait_for_a_request_that_reads_them(
    flashing_app: Flask, client
) -> None:
    client.post("/flash", data={"message": "kept"})

    response = client.get("/other")
    assert response.text == "no messages read"

    assert messages(client) == ["kept"]


def test_messages_accumulate_until_read(flashing_app: Flask, client) -> None:
    client.post("/flash", data={"message": "one"})
    client.post("/flash", data={"message": "two"})

    assert messages(client) == ["one", "two"]


def test_flashes_are_stored_in_the_session_as_flask_does(
    flashing_app: Flask, client
) -> None:
    client.post("/flash", data={"message": ["plain", "error:bad"]})

    with client.session_transaction() as session:
        assert session["_flashes"] == [("message", "plain"), ("error", "bad")]


def test_messages_put_in_the_session_by_a_test_are_shown(
    flashing_app: Flask, client
) -> None:
    with client.session_transaction() as session:
        session["_flashes"] = [("info", "from the test")]

    assert messages(client, "?categories") == [["info", "from the test"]]


def test_repeated_reads_in_one_request_give_the_same_messages(
    app: Flask, client, kind: str
) -> None:
    @app.post("/flash")
    @variant(kind)
    def flash_one() -> str:
        flash("hello", "info")
        return ""

    @app.get("/")
    @variant(kind)
    def read_twice() -> t.Any:
        first = get_flashed_messages()
        second = get_flashed_messages(with_categories=True)
        filtered = get_flashed_messages(category_filter=["error"])
        return {"first": first, "second": second, "filtered": filtered}

    client.post("/flash")
    response = client.get("/")

    assert response.get_json() == {
        "first": ["hello"],
        "second": [["info", "hello"]],
        "filtered": [],
    }


def test_message_flashed_and_read_in_the_same_request(
    app: Flask, client, kind: str
) -> None:
    @app.get("/")
    @variant(kind)
    def flash_and_read() -> t.Any:
        if "flash" in request.args:
            flash("now")
        return {"messages": get_flashed_messages()}

    assert messages(client, "?flash") == ["now"]
    assert messages(client) == []


def test_flash_from_a_hook(app: Flask, client, kind: str) -> None:
    @app.before_request
    @variant(kind)
    def greet() -> None:
        if request.path == "/login":
            flash("welcome", "success")

    @app.get("/login")
    @variant(kind)
    def login() -> str:
        return "logged in"

    @app.get("/")
    @variant(kind)
    def show() -> t.Any:
        return {"messages": get_flashed_messages(with_categories=True)}

    assert client.get("/login").text == "logged in"
    assert messages(client) == [["success", "welcome"]]


def test_get_flashed_messages_in_a_test_request_context(app: Flask) -> None:
    with app.test_request_context():
        flash("one")
        flash("two", "error")

        assert get_flashed_messages() == ["one", "two"]
        assert get_flashed_messages(with_categories=True) == [
            ("message", "one"),
            ("error", "two"),
        ]


def test_flash_needs_a_request(app: Flask) -> None:
    with app.app_context(), pytest.raises(RuntimeError) as exc_info:
        flash("nowhere to keep it")

    assert str(exc_info.value).startswith("Working outside of request context.")


def test_get_flashed_messages_needs_a_request(app: Flask) -> None:
    with pytest.raises(RuntimeError) as exc_info:
        get_flashed_messages()

    assert str(exc_info.value).startswith("Working outside of request context.")


# -- the message_flashed signal ---------------------------------------------------------


def test_message_flashed_reaches_sync_and_async_receivers(
    app: Flask, client, kind: str
) -> None:
    received: list[tuple[t.Any, ...]] = []

    @variant(kind)
    def receiver(sender: Flask, message: str, category: str) -> None:
        received.append((sender, message, category, request.path))

    @app.post("/flash")
    @variant(kind)
    def flash_two() -> str:
        flash("first")
        flash("second", "error")
        return "flashed"

    with message_flashed.connected_to(receiver, app):
        response = client.post("/flash")

    assert response.status_code == 200
    assert received == [
        (app, "first", "message", "/flash"),
        (app, "second", "error", "/flash"),
    ]


def test_message_flashed_receivers_of_another_app_are_not_called(
    app: Flask, client, kind: str
) -> None:
    received: list[str] = []

    @variant(kind)
    def receiver(sender: Flask, message: str, category: str) -> None:
        received.append(message)

    @app.post("/flash")
    @variant(kind)
    def flash_one() -> str:
        flash("for this app")
        return ""

    other = Flask("another_app")
    with message_flashed.connected_to(receiver, other):
        client.post("/flash")

    assert received == []


def test_message_flashed_sync_and_async_receivers_together(
    app: Flask, client, entry_point: str
) -> None:
    """Both kinds of receivers on one signal, called in the order they connected."""
    order: list[str] = []

    def sync_receiver(sender: Flask, message: str, category: str) -> None:
        order.append(f"sync {message}")

    async def async_receiver(sender: Flask, message: str, category: str) -> None:
        order.append(f"async {message}")

    @app.post("/flash")
    def flash_one() -> str:
        flash("hi")
        return ""

    with (
        message_flashed.connected_to(sync_receiver, app),
        message_flashed.connected_to(async_receiver, app),
    ):
        client.post("/flash")

    assert order == ["sync hi", "async hi"]
