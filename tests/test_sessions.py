"""Sessions: the signed-cookie session, its cookie, and custom session interfaces.

Behaviour is Flask 3.1's, checked through the test client with sync and async views and
hooks.
"""

from __future__ import annotations

import base64
import json
import time
import typing as t
import uuid
from datetime import datetime
from datetime import timedelta
from datetime import UTC

import pytest
from itsdangerous import TimestampSigner
from itsdangerous import URLSafeTimedSerializer
from markupsafe import Markup
from werkzeug.http import parse_date

from ctxflask import after_this_request
from ctxflask import current_app
from ctxflask import g
from ctxflask import request
from ctxflask import Response
from ctxflask import session
from ctxflask.sessions import NullSession
from ctxflask.sessions import SecureCookieSession
from ctxflask.sessions import SecureCookieSessionInterface
from ctxflask.sessions import session_json_serializer
from ctxflask.sessions import SessionInterface
from ctxflask.sessions import SessionMixin
from tests.support import variant

if t.TYPE_CHECKING:
    from werkzeug.test import TestResponse

    from ctxflask import Flask

Attrs = dict[str, str | None]


# -- helpers -------------------------------------------------------------------------------


def parse_set_cookie(header: str) -> tuple[str, str, Attrs]:
    """Split a ``Set-Cookie`` header into name, value and attributes (lower-cased keys;
    flag attributes map to ``None``)."""
    first, *rest = header.split(";")
    name, _, value = first.strip().partition("=")
    attrs: Attrs = {}
    for part in rest:
        key, sep, val = part.strip().partition("=")
        attrs[key.lower()] = val if sep else None
    return name, value, attrs


def cookies_named(
    response: TestResponse, name: str = "session"
) -> list[tuple[str, Attrs]]:
    return [
        (value, attrs)
        for n, value, attrs in map(
            parse_set_cookie, response.headers.getlist("Set-Cookie")
        )
        if n == name
    ]


def the_cookie(response: TestResponse, name: str = "session") -> tuple[str, Attrs]:
    """The one ``Set-Cookie`` for ``name`` in ``response``."""
    found = cookies_named(response, name)
    assert len(found) == 1, response.headers.getlist("Set-Cookie")
    return found[0]


def expires_of(attrs: Attrs) -> datetime:
    value = attrs.get("expires")
    assert value is not None, attrs
    parsed = parse_date(value)
    assert parsed is not None, value
    return parsed


def sign(
    app: Flask, data: t.Any, monkeypatch: pytest.MonkeyPatch, age: float = 0
) -> str:
    """A session cookie value for ``data`` signed by the app's own serializer, with a
    signature timestamp ``age`` seconds in the past."""
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    assert serializer is not None
    then = int(time.time() - age)
    with monkeypatch.context() as m:
        m.setattr(TimestampSigner, "get_timestamp", lambda self: then)
        return t.cast(str, serializer.dumps(data))


def loads_cookie(
    value: str, *keys: str | bytes, max_age: int | None = None
) -> tuple[t.Any, datetime]:
    """Verify a session cookie with exactly ``keys`` (the last signs); return the data and
    the signature's timestamp."""
    serializer = URLSafeTimedSerializer(
        list(keys),
        salt="cookie-session",
        serializer=session_json_serializer,
        signer_kwargs={"key_derivation": "hmac", "digest_method": "sha1"},
    )
    return t.cast(
        "tuple[t.Any, datetime]",
        serializer.loads(value, max_age=max_age, return_timestamp=True),
    )


def add_get_set_views(app: Flask, kind: str) -> None:
    """``/set/<value>`` stores ``session["value"]``; ``/get`` returns it or ``"<none>"``."""

    @app.get("/set/<value>")
    @variant(kind)
    def set_value(value):
        session["value"] = value
        return "stored"

    @app.get("/get")
    @variant(kind)
    def get_value():
        return session.get("value", "<none>")


@pytest.fixture
def other_kind(kind: str) -> str:
    return {"sync": "async", "async": "sync"}[kind]


# -- the cookie round trip -------------------------------------------------------------------


def test_value_set_in_one_request_is_read_in_the_next(app, client, kind):
    add_get_set_views(app, kind)

    assert client.get("/set/alice").text == "stored"
    response = client.get("/get")

    assert response.status_code == 200
    assert response.text == "alice"


def test_new_client_starts_with_an_empty_session(app, client, kind):
    add_get_set_views(app, kind)
    client.get("/set/alice")

    fresh = app.test_client()

    assert fresh.get("/get").text == "<none>"


def test_key_deleted_in_a_request_is_gone_in_the_next(app, client, kind):
    add_get_set_views(app, kind)

    @app.get("/delete")
    @variant(kind)
    def delete():
        session["other"] = 1
        del session["value"]
        return "deleted"

    client.get("/set/alice")
    client.get("/delete")

    assert client.get("/get").text == "<none>"


def test_later_write_replaces_the_stored_value(app, client, kind):
    add_get_set_views(app, kind)

    client.get("/set/alice")
    client.get("/set/bob")

    assert client.get("/get").text == "bob"


# -- cookie attributes from the configuration -------------------------------------------------


def test_default_cookie_attributes(app, client, kind):
    add_get_set_views(app, kind)

    value, attrs = the_cookie(client.get("/set/alice"))

    assert value != ""
    assert attrs == {"httponly": None, "path": "/"}


def test_cookie_name_comes_from_session_cookie_name(app, client, kind):
    app.config["SESSION_COOKIE_NAME"] = "sid"
    add_get_set_views(app, kind)

    response = client.get("/set/alice")

    assert cookies_named(response, "session") == []
    the_cookie(response, "sid")
    assert client.get("/get").text == "alice"


def test_cookie_with_the_default_name_is_ignored_under_another_name(
    app, client, kind, monkeypatch
):
    add_get_set_views(app, kind)
    client.set_cookie("session", sign(app, {"value": "alice"}, monkeypatch))
    assert client.get("/get").text == "alice"

    app.config["SESSION_COOKIE_NAME"] = "sid"

    assert client.get("/get").text == "<none>"


def test_cookie_domain_comes_from_session_cookie_domain(app, client, kind):
    app.config["SESSION_COOKIE_DOMAIN"] = "example.com"
    add_get_set_views(app, kind)

    _, attrs = the_cookie(client.get("/set/alice"))

    assert attrs["domain"] == "example.com"


def test_cookie_path_comes_from_session_cookie_path(app, client, kind):
    app.config["SESSION_COOKIE_PATH"] = "/shop"
    add_get_set_views(app, kind)

    _, attrs = the_cookie(client.get("/set/alice"))

    assert attrs["path"] == "/shop"


def test_cookie_path_defaults_to_application_root(app, client, kind):
    app.config["APPLICATION_ROOT"] = "/app"
    add_get_set_views(app, kind)

    _, attrs = the_cookie(client.get("/set/alice"))

    assert attrs["path"] == "/app"
    # The client requests under the root, so the cookie comes back.
    assert client.get("/get").text == "alice"


def test_session_cookie_path_wins_over_application_root(app, client, kind):
    app.config.update(APPLICATION_ROOT="/app", SESSION_COOKIE_PATH="/app/private")
    add_get_set_views(app, kind)

    _, attrs = the_cookie(client.get("/set/alice"))

    assert attrs["path"] == "/app/private"


def test_httponly_is_left_out_when_disabled(app, client, kind):
    app.config["SESSION_COOKIE_HTTPONLY"] = False
    add_get_set_views(app, kind)

    _, attrs = the_cookie(client.get("/set/alice"))

    assert "httponly" not in attrs


def test_secure_comes_from_session_cookie_secure(app, client, kind):
    app.config["SESSION_COOKIE_SECURE"] = True
    add_get_set_views(app, kind)

    _, attrs = the_cookie(client.get("/set/alice"))

    assert "secure" in attrs
    assert attrs["secure"] is None


@pytest.mark.parametrize("samesite", ["Lax", "Strict", "None"])
def test_samesite_comes_from_session_cookie_samesite(app, client, kind, samesite):
    app.config["SESSION_COOKIE_SAMESITE"] = samesite
    add_get_set_views(app, kind)

    _, attrs = the_cookie(client.get("/set/alice"))

    assert attrs["samesite"] == samesite


def test_partitioned_comes_from_session_cookie_partitioned(app, client, kind):
    app.config["SESSION_COOKIE_PARTITIONED"] = True
    add_get_set_views(app, kind)

    _, attrs = the_cookie(client.get("/set/alice"))

    assert "partitioned" in attrs


def test_cookie_has_no_samesite_secure_or_partitioned_by_default(app, client, kind):
    add_get_set_views(app, kind)

    _, attrs = the_cookie(client.get("/set/alice"))

    assert "samesite" not in attrs
    assert "secure" not in attrs
    assert "partitioned" not in attrs
    assert "domain" not in attrs


# -- no secret key: the null session ------------------------------------------------------------


def test_without_secret_key_session_reads_as_empty_null_session(app, client, kind):
    app.config["SECRET_KEY"] = None
    seen = {}

    @app.get("/")
    @variant(kind)
    def index():
        current = session._get_current_object()  # type: ignore[attr-defined]
        seen.update(
            null=app.session_interface.is_null_session(current),
            type=type(current),
            get=session.get("user"),
            contains="user" in session,
            length=len(session),
            items=dict(session),
            permanent=session.permanent,
        )
        return "ok"

    response = client.get("/")

    assert response.status_code == 200
    assert response.text == "ok"
    assert response.headers.getlist("Set-Cookie") == []
    assert seen == {
        "null": True,
        "type": NullSession,
        "get": None,
        "contains": False,
        "length": 0,
        "items": {},
        "permanent": False,
    }


def _set(s):
    s["user"] = "alice"


def _delete(s):
    del s["user"]


def _permanent(s):
    s.permanent = True


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(_set, id="setitem"),
        pytest.param(_delete, id="delitem"),
        pytest.param(lambda s: s.clear(), id="clear"),
        pytest.param(lambda s: s.pop("user", None), id="pop"),
        pytest.param(lambda s: s.popitem(), id="popitem"),
        pytest.param(lambda s: s.update(user="alice"), id="update"),
        pytest.param(lambda s: s.setdefault("user", "alice"), id="setdefault"),
        pytest.param(_permanent, id="permanent"),
    ],
)
def test_without_secret_key_writing_the_session_raises_runtime_error(
    app, client, kind, write
):
    app.config["SECRET_KEY"] = None
    errors: list[BaseException] = []

    @app.get("/")
    @variant(kind)
    def index():
        try:
            write(session)
        except Exception as e:
            errors.append(e)
        return "ok"

    response = client.get("/")

    assert response.status_code == 200
    assert response.headers.getlist("Set-Cookie") == []
    assert len(errors) == 1
    assert type(errors[0]) is RuntimeError
    assert "secret key" in str(errors[0]).lower()


def test_without_secret_key_an_uncaught_write_error_reaches_the_test(app, client, kind):
    app.config["SECRET_KEY"] = None

    @app.get("/")
    @variant(kind)
    def index():
        session["user"] = "alice"
        return "unreachable"

    with pytest.raises(RuntimeError, match="secret key"):
        client.get("/")


def test_session_transaction_without_secret_key_raises(app, client):
    app.config["SECRET_KEY"] = None

    with pytest.raises(RuntimeError), client.session_transaction():
        pass


# -- Vary: Cookie ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "read",
    [
        pytest.param(lambda: session.get("user"), id="get"),
        pytest.param(lambda: "user" in session, id="contains"),
        pytest.param(lambda: len(session), id="len"),
        pytest.param(lambda: list(session), id="iter"),
        pytest.param(lambda: session.permanent, id="permanent"),
    ],
)
def test_reading_the_session_adds_vary_cookie_without_setting_it(
    app, client, kind, read
):
    @app.get("/")
    @variant(kind)
    def index():
        read()
        return "ok"

    response = client.get("/")

    assert response.headers["Vary"] == "Cookie"
    assert response.headers.getlist("Set-Cookie") == []


def test_reading_an_existing_session_adds_vary_cookie_without_setting_it(
    app, client, kind
):
    add_get_set_views(app, kind)
    client.get("/set/alice")

    response = client.get("/get")

    assert response.text == "alice"
    assert response.headers["Vary"] == "Cookie"
    assert response.headers.getlist("Set-Cookie") == []


def test_writing_the_session_adds_vary_cookie(app, client, kind):
    add_get_set_views(app, kind)

    response = client.get("/set/alice")

    assert response.headers["Vary"] == "Cookie"


def test_session_read_only_in_before_request_adds_vary_cookie(app, client, kind):
    @app.before_request
    @variant(kind)
    def before():
        g.user = session.get("user")

    @app.get("/")
    @variant(kind)
    def index():
        return "ok"

    response = client.get("/")

    assert response.headers["Vary"] == "Cookie"


def test_untouched_session_adds_no_vary_header(app, client, kind):
    @app.get("/")
    @variant(kind)
    def index():
        return "ok"

    response = client.get("/")

    assert response.status_code == 200
    assert "Vary" not in response.headers


def test_untouched_existing_session_adds_no_vary_header(app, client, kind):
    add_get_set_views(app, kind)

    @app.get("/plain")
    @variant(kind)
    def plain():
        return "ok"

    client.get("/set/alice")
    response = client.get("/plain")

    assert response.status_code == 200
    assert "Vary" not in response.headers


def test_vary_cookie_is_appended_to_the_views_vary_header(app, client, kind):
    @app.get("/")
    @variant(kind)
    def index():
        session.get("user")
        return "ok", {"Vary": "Accept-Encoding"}

    response = client.get("/")

    assert response.headers["Vary"] == "Accept-Encoding, Cookie"


# -- when no cookie is set --------------------------------------------------------------------


def test_request_that_never_touches_the_session_sets_no_cookie(app, client, kind):
    @app.get("/")
    @variant(kind)
    def index():
        return "ok"

    response = client.get("/")

    assert response.status_code == 200
    assert response.headers.getlist("Set-Cookie") == []


def test_untouched_existing_non_permanent_session_is_not_sent_again(app, client, kind):
    add_get_set_views(app, kind)

    @app.get("/plain")
    @variant(kind)
    def plain():
        return "ok"

    client.get("/set/alice")
    response = client.get("/plain")

    assert response.headers.getlist("Set-Cookie") == []
    assert client.get("/get").text == "alice"


def test_session_emptied_within_one_request_only_deletes_the_cookie(app, client, kind):
    """An empty session is never stored: a session changed back to empty deletes the
    cookie instead."""

    @app.get("/")
    @variant(kind)
    def index():
        session["a"] = 1
        del session["a"]
        return "ok"

    value, attrs = the_cookie(client.get("/"))

    assert value == ""
    assert attrs["max-age"] == "0"
    assert expires_of(attrs) < datetime.now(UTC)


# -- deleting the cookie ----------------------------------------------------------------------


def test_clearing_the_session_deletes_the_cookie(app, client, kind):
    add_get_set_views(app, kind)

    @app.get("/clear")
    @variant(kind)
    def clear():
        session.clear()
        return "cleared"

    client.get("/set/alice")
    response = client.get("/clear")

    value, attrs = the_cookie(response)
    assert value == ""
    assert expires_of(attrs) < datetime.now(UTC)
    assert attrs["path"] == "/"
    assert response.headers["Vary"] == "Cookie"
    assert client.get("/get").text == "<none>"


def test_popping_the_last_key_deletes_the_cookie(app, client, kind):
    add_get_set_views(app, kind)

    @app.get("/logout")
    @variant(kind)
    def logout():
        session.pop("value")
        return "bye"

    client.get("/set/alice")
    value, attrs = the_cookie(client.get("/logout"))

    assert value == ""
    assert expires_of(attrs) < datetime.now(UTC)
    assert client.get("/get").text == "<none>"


def test_cookie_deletion_uses_the_configured_path_domain_and_flags(app, client, kind):
    app.config.update(
        SESSION_COOKIE_DOMAIN="example.com",
        SESSION_COOKIE_PATH="/shop",
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )

    @app.get("/clear")
    @variant(kind)
    def clear():
        session.clear()
        return "cleared"

    value, attrs = the_cookie(client.get("/clear"))

    assert value == ""
    assert expires_of(attrs) < datetime.now(UTC)
    assert attrs["domain"] == "example.com"
    assert attrs["path"] == "/shop"
    assert "secure" in attrs
    assert attrs["samesite"] == "Lax"


def test_cookie_deletion_under_application_root_uses_that_path(app, client, kind):
    app.config["APPLICATION_ROOT"] = "/app"
    add_get_set_views(app, kind)

    @app.get("/clear")
    @variant(kind)
    def clear():
        session.clear()
        return "cleared"

    client.get("/set/alice")
    value, attrs = the_cookie(client.get("/clear"))

    assert value == ""
    assert attrs["path"] == "/app"
    assert client.get("/get").text == "<none>"


# -- permanent sessions -----------------------------------------------------------------------


def add_permanent_views(app: Flask, kind: str) -> None:
    """``/login`` makes a permanent session; ``/plain`` does not touch the session."""

    @app.get("/login")
    @variant(kind)
    def login():
        session.permanent = True
        session["user"] = "alice"
        return "in"

    @app.get("/plain")
    @variant(kind)
    def plain():
        return "ok"

    @app.get("/user")
    @variant(kind)
    def user():
        return f"{session.get('user', '<none>')} permanent={session.permanent}"


@pytest.mark.parametrize(
    ("lifetime", "seconds"),
    [
        pytest.param(timedelta(days=3), 3 * 86400, id="timedelta-days"),
        pytest.param(timedelta(minutes=5), 300, id="timedelta-minutes"),
        pytest.param(3600, 3600, id="int-seconds"),
    ],
)
def test_permanent_session_cookie_expires_after_the_lifetime(
    app, client, kind, lifetime, seconds
):
    app.config["PERMANENT_SESSION_LIFETIME"] = lifetime
    add_permanent_views(app, kind)

    before = datetime.now(UTC).replace(microsecond=0)
    response = client.get("/login")
    after = datetime.now(UTC)

    _, attrs = the_cookie(response)
    expires = expires_of(attrs)
    assert before + timedelta(seconds=seconds) <= expires
    assert expires <= after + timedelta(seconds=seconds)
    assert client.get("/user").text == "alice permanent=True"


def test_non_permanent_session_cookie_has_no_expiry(app, client, kind):
    add_get_set_views(app, kind)

    _, attrs = the_cookie(client.get("/set/alice"))

    assert "expires" not in attrs
    assert "max-age" not in attrs


def test_making_a_session_non_permanent_again_drops_the_expiry(app, client, kind):
    add_permanent_views(app, kind)

    @app.get("/forget-me")
    @variant(kind)
    def forget_me():
        session.permanent = False
        return "ok"

    client.get("/login")
    _, attrs = the_cookie(client.get("/forget-me"))

    assert "expires" not in attrs
    assert client.get("/user").text == "alice permanent=False"


def test_permanent_session_is_refreshed_by_untouched_requests(app, client, kind):
    app.config["SESSION_REFRESH_EACH_REQUEST"] = True
    add_permanent_views(app, kind)
    client.get("/login")

    before = datetime.now(UTC).replace(microsecond=0)
    response = client.get("/plain")

    assert response.text == "ok"
    value, attrs = the_cookie(response)
    assert expires_of(attrs) >= before + app.permanent_session_lifetime
    assert loads_cookie(value, "test key")[0] == {"_permanent": True, "user": "alice"}
    assert response.headers["Vary"] == "Cookie"


def test_refreshed_permanent_cookie_is_signed_again_with_a_new_timestamp(
    app, client, kind, monkeypatch
):
    add_permanent_views(app, kind)
    old = sign(app, {"_permanent": True, "user": "alice"}, monkeypatch, age=10 * 86400)
    client.set_cookie("session", old)

    before = datetime.now(UTC).replace(microsecond=0)
    value, _ = the_cookie(client.get("/plain"))

    data, signed_at = loads_cookie(value, "test key")
    assert data == {"_permanent": True, "user": "alice"}
    assert signed_at >= before
    assert value != old


def test_permanent_session_is_not_refreshed_when_refresh_is_disabled(app, client, kind):
    app.config["SESSION_REFRESH_EACH_REQUEST"] = False
    add_permanent_views(app, kind)
    client.get("/login")

    response = client.get("/plain")

    assert response.text == "ok"
    assert response.headers.getlist("Set-Cookie") == []
    assert client.get("/user").text == "alice permanent=True"


def test_modified_permanent_session_is_saved_with_expiry_when_refresh_is_disabled(
    app, client, kind
):
    app.config["SESSION_REFRESH_EACH_REQUEST"] = False
    add_permanent_views(app, kind)

    _, attrs = the_cookie(client.get("/login"))

    assert "expires" in attrs


def test_refresh_does_not_apply_to_non_permanent_sessions(app, client, kind):
    app.config["SESSION_REFRESH_EACH_REQUEST"] = True
    add_get_set_views(app, kind)
    client.get("/set/alice")

    response = client.get("/get")

    assert response.text == "alice"
    assert response.headers.getlist("Set-Cookie") == []


# -- in-place mutation and session.modified ---------------------------------------------------


def add_cart_views(app: Flask, kind: str, mark_modified: bool) -> None:
    @app.get("/start")
    @variant(kind)
    def start():
        session["cart"] = ["apple"]
        session["profile"] = {"name": "alice"}
        return "ok"

    @app.get("/add")
    @variant(kind)
    def add():
        session["cart"].append("pear")
        session["profile"]["name"] = "bob"
        if mark_modified:
            session.modified = True
        return "ok"

    @app.get("/show")
    @variant(kind)
    def show():
        return {"cart": session["cart"], "name": session["profile"]["name"]}


def test_mutating_a_nested_value_without_marking_modified_is_not_saved(
    app, client, kind
):
    add_cart_views(app, kind, mark_modified=False)
    client.get("/start")

    response = client.get("/add")

    assert response.headers.getlist("Set-Cookie") == []
    assert client.get("/show").get_json() == {"cart": ["apple"], "name": "alice"}


def test_mutating_a_nested_value_and_marking_modified_is_saved(app, client, kind):
    add_cart_views(app, kind, mark_modified=True)
    client.get("/start")

    response = client.get("/add")

    the_cookie(response)
    assert client.get("/show").get_json() == {"cart": ["apple", "pear"], "name": "bob"}


# -- secret key rotation ----------------------------------------------------------------------


def test_cookie_signed_with_a_fallback_key_is_accepted(app, client, kind, monkeypatch):
    add_get_set_views(app, kind)
    app.config["SECRET_KEY"] = "old key"
    client.set_cookie("session", sign(app, {"value": "alice"}, monkeypatch))

    app.config.update(
        SECRET_KEY="new key", SECRET_KEY_FALLBACKS=["older key", "old key"]
    )

    assert client.get("/get").text == "alice"


def test_cookie_signed_with_the_current_key_is_accepted_alongside_fallbacks(
    app, client, kind
):
    add_get_set_views(app, kind)
    app.config["SECRET_KEY_FALLBACKS"] = ["old key"]

    client.get("/set/alice")

    assert client.get("/get").text == "alice"


def test_session_from_a_fallback_key_is_saved_signed_with_the_current_key(
    app, client, kind, monkeypatch
):
    add_get_set_views(app, kind)

    @app.get("/touch")
    @variant(kind)
    def touch():
        session["seen"] = True
        return session["value"]

    app.config["SECRET_KEY"] = "old key"
    client.set_cookie("session", sign(app, {"value": "alice"}, monkeypatch))
    app.config.update(SECRET_KEY="new key", SECRET_KEY_FALLBACKS=["old key"])

    response = client.get("/touch")

    assert response.text == "alice"
    value, _ = the_cookie(response)
    assert loads_cookie(value, "new key")[0] == {"value": "alice", "seen": True}
    # Without the fallbacks, the re-signed cookie is still readable...
    app.config["SECRET_KEY_FALLBACKS"] = None
    assert client.get("/get").text == "alice"
    # ...and it was signed with the new key only: the old key alone rejects it.
    app.config["SECRET_KEY"] = "old key"
    assert client.get("/get").text == "<none>"


# -- invalid cookies --------------------------------------------------------------------------


def _tampered(app: Flask, monkeypatch: pytest.MonkeyPatch) -> str:
    genuine = sign(app, {"value": "alice"}, monkeypatch)
    forged = base64.urlsafe_b64encode(json.dumps({"value": "admin"}).encode())
    _, _, rest = genuine.partition(".")
    return forged.decode().rstrip("=") + "." + rest


def _garbage(app: Flask, monkeypatch: pytest.MonkeyPatch) -> str:
    return "this-is-not-a-session"


def _signature_stripped(app: Flask, monkeypatch: pytest.MonkeyPatch) -> str:
    return sign(app, {"value": "alice"}, monkeypatch).rsplit(".", 1)[0]


def _unknown_key(app: Flask, monkeypatch: pytest.MonkeyPatch) -> str:
    stranger = URLSafeTimedSerializer(
        "somebody else's key",
        salt="cookie-session",
        serializer=session_json_serializer,
        signer_kwargs={"key_derivation": "hmac", "digest_method": "sha1"},
    )
    return stranger.dumps({"value": "alice"})


def _other_salt(app: Flask, monkeypatch: pytest.MonkeyPatch) -> str:
    other = URLSafeTimedSerializer(
        "test key", salt="not-the-session", serializer=session_json_serializer
    )
    return other.dumps({"value": "alice"})


def _expired_permanent(app: Flask, monkeypatch: pytest.MonkeyPatch) -> str:
    lifetime = app.permanent_session_lifetime.total_seconds()
    data = {"_permanent": True, "value": "alice"}
    return sign(app, data, monkeypatch, age=lifetime + 3600)


def _expired_non_permanent(app: Flask, monkeypatch: pytest.MonkeyPatch) -> str:
    lifetime = app.permanent_session_lifetime.total_seconds()
    return sign(app, {"value": "alice"}, monkeypatch, age=lifetime + 3600)


@pytest.mark.parametrize(
    "make_cookie",
    [
        pytest.param(_tampered, id="tampered"),
        pytest.param(_garbage, id="garbage"),
        pytest.param(_signature_stripped, id="signature-stripped"),
        pytest.param(_unknown_key, id="unknown-key"),
        pytest.param(_other_salt, id="other-salt"),
        pytest.param(_expired_permanent, id="expired-permanent"),
        pytest.param(_expired_non_permanent, id="expired-non-permanent"),
    ],
)
def test_invalid_cookie_gives_an_empty_session(
    app, client, kind, monkeypatch, make_cookie
):
    add_get_set_views(app, kind)
    client.set_cookie("session", make_cookie(app, monkeypatch))

    response = client.get("/get")

    assert response.status_code == 200
    assert response.text == "<none>"


def test_expiry_of_a_cookie_follows_an_int_lifetime(app, client, kind, monkeypatch):
    app.config["PERMANENT_SESSION_LIFETIME"] = 60
    add_get_set_views(app, kind)
    data = {"_permanent": True, "value": "alice"}

    client.set_cookie("session", sign(app, data, monkeypatch, age=30))
    assert client.get("/get").text == "alice"

    client.set_cookie("session", sign(app, data, monkeypatch, age=120))
    assert client.get("/get").text == "<none>"


def test_session_can_be_written_after_an_invalid_cookie(app, client, kind):
    add_get_set_views(app, kind)
    client.set_cookie("session", "garbage")

    assert client.get("/set/bob").status_code == 200
    assert client.get("/get").text == "bob"


def test_signed_cookie_with_an_undecodable_payload_gives_an_empty_session(
    app, client, kind
):
    """ctxflask-specific: Flask 3.1 only catches bad signatures, so a correctly signed
    payload that is not tagged JSON raises there; ctxflask documents (sessions.py) that any
    unusable cookie gives an empty session."""
    add_get_set_views(app, kind)
    serializer = app.session_interface.get_signing_serializer(app)
    signer = serializer.make_signer(serializer.salt)
    payload = base64.urlsafe_b64encode(b"{not json").decode().rstrip("=")
    client.set_cookie("session", signer.sign(payload).decode())

    response = client.get("/get")

    assert response.status_code == 200
    assert response.text == "<none>"


# -- tagged values ----------------------------------------------------------------------------


def test_tagged_values_survive_the_round_trip(app, client, kind):
    moment = datetime(2024, 2, 29, 13, 14, 15, tzinfo=UTC)
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    stored = {
        "tuple": (1, "two", (3,)),
        "bytes": b"\x00\xffbin",
        "datetime": moment,
        "uuid": ident,
        "markup": Markup("<b>bold</b>"),
        "nested": {" t": ["looks", "tagged"], "inner": {" di": {"x": 1}}},
        "list": [(1, 2), b"x"],
    }
    loaded: dict[str, t.Any] = {}

    @app.get("/store")
    @variant(kind)
    def store():
        session.update(stored)
        return "ok"

    @app.get("/load")
    @variant(kind)
    def load():
        loaded.update(session)
        return "ok"

    client.get("/store")
    client.get("/load")

    assert loaded == stored
    assert type(loaded["tuple"]) is tuple
    assert type(loaded["tuple"][2]) is tuple
    assert type(loaded["bytes"]) is bytes
    assert type(loaded["datetime"]) is datetime
    assert type(loaded["uuid"]) is uuid.UUID
    assert type(loaded["markup"]) is Markup
    assert type(loaded["list"][0]) is tuple


# -- client.session_transaction -------------------------------------------------------------


def test_session_transaction_writes_are_seen_by_the_next_request(app, client, kind):
    add_get_set_views(app, kind)

    with client.session_transaction() as sess:
        sess["value"] = "from the test"

    assert client.get("/get").text == "from the test"


def test_session_transaction_reads_what_a_request_stored(app, client, kind):
    add_get_set_views(app, kind)
    client.get("/set/alice")

    with client.session_transaction() as sess:
        assert dict(sess) == {"value": "alice"}


def test_session_transactions_build_on_each_other(app, client, kind):
    add_get_set_views(app, kind)

    with client.session_transaction() as sess:
        sess["value"] = "first"
        sess["keep"] = 1
    with client.session_transaction() as sess:
        assert sess["keep"] == 1
        sess["value"] = "second"

    assert client.get("/get").text == "second"


def test_session_transaction_clearing_removes_the_session(app, client, kind):
    add_get_set_views(app, kind)
    client.get("/set/alice")

    with client.session_transaction() as sess:
        sess.clear()

    assert client.get("/get").text == "<none>"


def test_session_of_the_last_request_is_inspectable_in_a_with_client_block(
    app, client, kind
):
    add_get_set_views(app, kind)

    with client:
        client.get("/set/alice")
        assert session["value"] == "alice"


# -- session flags ----------------------------------------------------------------------------


def test_secure_cookie_session_flags_track_top_level_changes_only():
    s = SecureCookieSession({"cart": ["apple"]})
    assert s.new is False
    assert s.modified is False

    s["cart"].append("pear")
    assert s.modified is False

    s["user"] = "alice"
    assert s.modified is True
    assert s.new is False


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda s: s.__setitem__("a", 1), id="setitem"),
        pytest.param(lambda s: s.__delitem__("x"), id="delitem"),
        pytest.param(lambda s: s.update(a=1), id="update"),
        pytest.param(lambda s: s.pop("x"), id="pop"),
        pytest.param(lambda s: s.popitem(), id="popitem"),
        pytest.param(lambda s: s.clear(), id="clear"),
        pytest.param(lambda s: s.setdefault("a", 1), id="setdefault"),
    ],
)
def test_secure_cookie_session_changes_mark_it_modified(change):
    s = SecureCookieSession({"x": 1})

    change(s)

    assert s.modified is True


def test_session_flags_during_a_request(app, client, kind):
    flags: list[tuple[bool, bool, bool]] = []

    @app.get("/")
    @variant(kind)
    def index():
        session.get("user")
        flags.append((session.new, session.modified, session.accessed))
        session["user"] = "alice"
        flags.append((session.new, session.modified, session.accessed))
        return "ok"

    client.get("/")

    assert flags == [(False, False, True), (False, True, True)]


def test_session_opened_from_a_cookie_is_not_new_nor_modified(app, client, kind):
    add_get_set_views(app, kind)
    flags: list[tuple[bool, bool]] = []

    @app.get("/flags")
    @variant(kind)
    def flags_view():
        flags.append((session.new, session.modified))
        return session["value"]

    client.get("/set/alice")

    assert client.get("/flags").text == "alice"
    assert flags == [(False, False)]


# -- one session object per request -----------------------------------------------------------


def test_session_is_the_same_object_in_hooks_and_view(app, client, kind):
    seen: list[object] = []

    @app.before_request
    @variant(kind)
    def before():
        seen.append(session._get_current_object())

    @app.get("/")
    @variant(kind)
    def index():
        seen.append(session._get_current_object())
        return "ok"

    @app.after_request
    @variant(kind)
    def after(response):
        seen.append(session._get_current_object())
        return response

    client.get("/")

    assert len(seen) == 3
    assert seen[0] is seen[1] is seen[2]


def test_session_value_set_in_before_request_is_seen_by_view_of_other_kind(
    app, client, kind, other_kind
):
    @app.before_request
    @variant(kind)
    def before():
        session["from"] = f"before-{kind}"

    @app.get("/")
    @variant(other_kind)
    def index():
        session["view"] = f"view-{other_kind}"
        return session["from"]

    @app.after_request
    @variant(kind)
    def after(response):
        response.headers["X-Seen"] = f"{session['from']} {session['view']}"
        return response

    response = client.get("/")

    assert response.text == f"before-{kind}"
    assert response.headers["X-Seen"] == f"before-{kind} view-{other_kind}"
    with client.session_transaction() as sess:
        assert dict(sess) == {"from": f"before-{kind}", "view": f"view-{other_kind}"}


def test_session_written_by_after_request_is_saved(app, client, kind, other_kind):
    add_get_set_views(app, other_kind)

    @app.after_request
    @variant(kind)
    def after(response):
        if request.path.startswith("/set/"):
            session["value"] = session["value"].upper()
        return response

    client.get("/set/alice")

    assert client.get("/get").text == "ALICE"


def test_session_written_by_after_this_request_is_saved(app, client, kind, other_kind):
    @app.get("/")
    @variant(other_kind)
    def index():
        @after_this_request
        @variant(kind)
        def later(response):
            session["later"] = "yes"
            return response

        return "ok"

    client.get("/")

    with client.session_transaction() as sess:
        assert sess["later"] == "yes"


# -- a custom SessionInterface ----------------------------------------------------------------


class ServerSideSession(dict, SessionMixin):  # type: ignore[type-arg]
    """A session whose data stays on the server; the cookie holds its id."""

    def __init__(self, sid: str, data: dict[str, t.Any] | None = None) -> None:
        super().__init__(data or {})
        self.sid = sid


class MemorySessionInterface(SessionInterface):
    """Keeps sessions in a dict keyed by a random id sent as the cookie; records calls."""

    def __init__(self, events: list[str]) -> None:
        self.events = events
        self.store: dict[str, dict[str, t.Any]] = {}
        self.saved_flags: list[bool] = []

    def open_session(self, app, request_):
        self.events.append("open")
        sid = request_.cookies.get(self.get_cookie_name(app))
        if sid in self.store:
            return ServerSideSession(sid, self.store[sid])
        return ServerSideSession(uuid.uuid4().hex)

    def save_session(self, app, session_, response):
        self.events.append("save")
        self.saved_flags.append(session_.accessed)
        self.store[session_.sid] = dict(session_)
        response.set_cookie(
            self.get_cookie_name(app), session_.sid, path=self.get_cookie_path(app)
        )


@pytest.fixture
def events() -> list[str]:
    return []


@pytest.fixture
def memory(app, events) -> MemorySessionInterface:
    interface = MemorySessionInterface(events)
    app.session_interface = interface
    return interface


def test_custom_interface_opens_before_before_request_and_saves_after_after_request(
    app, client, kind, events, memory
):
    @app.before_request
    @variant(kind)
    def before():
        events.append("before_request")

    @app.get("/")
    @variant(kind)
    def index():
        events.append("view")
        return "ok"

    @app.after_request
    @variant(kind)
    def after(response):
        events.append("after_request")
        return response

    @app.teardown_request
    @variant(kind)
    def teardown(exc):
        events.append("teardown")

    response = client.get("/")

    assert response.status_code == 200
    assert events == [
        "open",
        "before_request",
        "view",
        "after_request",
        "save",
        "teardown",
    ]


def test_custom_interface_is_opened_and_saved_once_per_request(
    app, client, kind, events, memory
):
    @app.get("/")
    @variant(kind)
    def index():
        session["n"] = session.get("n", 0) + 1
        return str(session["n"])

    assert client.get("/").text == "1"
    assert client.get("/").text == "2"
    assert events == ["open", "save", "open", "save"]


def test_custom_interface_is_used_even_when_the_view_ignores_the_session(
    app, client, kind, events, memory
):
    @app.get("/")
    @variant(kind)
    def index():
        return "ok"

    client.get("/")

    assert events == ["open", "save"]


def test_custom_interface_keeps_data_server_side(app, client, kind, memory):
    add_get_set_views(app, kind)

    response = client.get("/set/alice")
    sid, _ = the_cookie(response)

    assert memory.store[sid] == {"value": "alice"}
    assert "alice" not in sid
    assert client.get("/get").text == "alice"


def test_custom_interface_session_is_shared_by_hooks_and_view_of_both_kinds(
    app, client, kind, other_kind, memory
):
    @app.before_request
    @variant(kind)
    def before():
        session["from"] = "before"

    @app.get("/")
    @variant(other_kind)
    def index():
        return session["from"]

    response = client.get("/")
    sid, _ = the_cookie(response)

    assert response.text == "before"
    assert memory.store[sid] == {"from": "before"}


def test_custom_open_session_runs_inside_the_request_context(app, client, kind):
    seen: list[tuple[str, str]] = []

    class Recording(MemorySessionInterface):
        def open_session(self, app, request_):
            seen.append((request.path, current_app.name))
            return super().open_session(app, request_)

    app.session_interface = Recording([])

    @app.get("/here")
    @variant(kind)
    def here():
        return "ok"

    client.get("/here")

    assert seen == [("/here", app.name)]


def test_custom_save_session_gets_the_response_returned_by_after_request(
    app, client, kind, memory
):
    @app.get("/")
    @variant(kind)
    def index():
        session["a"] = 1
        return "original"

    @app.after_request
    @variant(kind)
    def replace(response):
        return Response("replaced")

    response = client.get("/")

    assert response.text == "replaced"
    sid, _ = the_cookie(response)
    assert memory.store[sid] == {"a": 1}


def test_custom_session_untouched_by_the_request_is_not_marked_accessed(
    app, client, kind, memory
):
    """Flask 3.1.3: ``SessionMixin.accessed`` is false until the request context hands
    the session out (through ``session``)."""

    @app.get("/plain")
    @variant(kind)
    def plain():
        return "ok"

    @app.get("/read")
    @variant(kind)
    def read():
        session.get("x")
        return "ok"

    client.get("/plain")
    client.get("/read")

    assert memory.saved_flags == [False, True]


def test_open_session_returning_none_gives_a_null_session_and_no_save(
    app, client, kind, events
):
    class Unavailable(MemorySessionInterface):
        def open_session(self, app, request_):
            self.events.append("open")

    app.session_interface = Unavailable(events)
    errors: list[BaseException] = []

    @app.get("/")
    @variant(kind)
    def index():
        assert len(session) == 0
        try:
            session["a"] = 1
        except RuntimeError as e:
            errors.append(e)
        return "ok"

    response = client.get("/")

    assert response.status_code == 200
    assert response.headers.getlist("Set-Cookie") == []
    assert events == ["open"]
    assert len(errors) == 1


def test_save_session_of_a_cookie_interface_subclass_runs_on_every_request(
    app, client, kind, events
):
    class Audited(SecureCookieSessionInterface):
        def save_session(self, app, session_, response):
            events.append("save")
            response.headers["X-Session-Saved"] = "yes"
            super().save_session(app, session_, response)

    app.session_interface = Audited()

    @app.get("/")
    @variant(kind)
    def index():
        return "ok"

    response = client.get("/")

    assert events == ["save"]
    assert response.headers["X-Session-Saved"] == "yes"


def test_open_session_override_of_a_cookie_interface_subclass_runs_first(
    app, client, kind, events
):
    class Audited(SecureCookieSessionInterface):
        def open_session(self, app, request_):
            events.append("open")
            return super().open_session(app, request_)

    app.session_interface = Audited()

    @app.before_request
    @variant(kind)
    def before():
        events.append("before_request")

    @app.get("/")
    @variant(kind)
    def index():
        events.append("view")
        return "ok"

    client.get("/")

    assert events == ["open", "before_request", "view"]


# -- null session helpers of SessionInterface -------------------------------------------------


def test_make_null_session_returns_a_null_session(app):
    null = SessionInterface().make_null_session(app)

    assert type(null) is NullSession
    assert len(null) == 0
    with pytest.raises(RuntimeError, match="secret key"):
        null["a"] = 1


def test_is_null_session_recognises_only_null_sessions(app):
    interface = SessionInterface()

    assert interface.is_null_session(NullSession()) is True
    assert interface.is_null_session(interface.make_null_session(app)) is True
    assert interface.is_null_session(SecureCookieSession()) is False
    assert interface.is_null_session({}) is False
    assert interface.is_null_session(None) is False


def test_null_session_class_can_be_replaced(app, client, kind):
    class QuietNullSession(NullSession):
        pass

    class Interface(SecureCookieSessionInterface):
        null_session_class = QuietNullSession

    interface = Interface()
    app.session_interface = interface
    app.config["SECRET_KEY"] = None
    seen: list[type] = []

    @app.get("/")
    @variant(kind)
    def index():
        seen.append(type(session._get_current_object()))
        return "ok"

    assert client.get("/").status_code == 200
    assert seen == [QuietNullSession]
    assert type(interface.make_null_session(app)) is QuietNullSession
    assert interface.is_null_session(QuietNullSession()) is True
    assert interface.is_null_session(NullSession()) is False
