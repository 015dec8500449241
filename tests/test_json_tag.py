"""Tagged JSON (the session payload format): round trips, the wire format, compatibility
with Flask's serializer, and tag registration."""

from __future__ import annotations

import typing as t
from collections import OrderedDict
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from datetime import UTC
from uuid import UUID

import pytest
from flask.json.tag import TaggedJSONSerializer as FlaskTaggedJSONSerializer
from markupsafe import Markup

from ctxflask.json.tag import JSONTag
from ctxflask.json.tag import PassDict
from ctxflask.json.tag import TagDict
from ctxflask.json.tag import TaggedJSONSerializer
from ctxflask.json.tag import TagTuple

UID = UUID("12345678-1234-5678-1234-567812345678")
WHEN = datetime(2024, 2, 29, 13, 45, 7, tzinfo=UTC)


@pytest.fixture
def s() -> TaggedJSONSerializer:
    return TaggedJSONSerializer()


def roundtrip(s: TaggedJSONSerializer, value: t.Any) -> t.Any:
    dumped = s.dumps(value)
    assert isinstance(dumped, str)
    return s.loads(dumped)


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -3,
        1.5,
        "",
        "plain text ünïcödé",
        [],
        {},
        [1, "two", None],
        {"a": 1, "b": [2, 3]},
        (),
        (1, "a", None),
        b"",
        b"\x00\xffbinary",
        UID,
        WHEN,
        # A dict whose only key looks like a tag must stay a dict.
        {" t": [1, 2]},
        {" di": "x"},
        {" b": "not base64 at all"},
        {" u": UID},
        # Several keys, one tag-like: no escaping needed, the object is not a tag.
        {" t": 1, "other": 2},
        {"not a tag": "x"},
    ],
    ids=repr,
)
def test_roundtrip(s: TaggedJSONSerializer, value: t.Any) -> None:
    result = roundtrip(s, value)
    assert result == value
    assert type(result) is type(value)


def test_roundtrip_markup(s: TaggedJSONSerializer) -> None:
    result = roundtrip(s, Markup("<b>bold</b> &amp;"))
    assert result == Markup("<b>bold</b> &amp;")
    assert isinstance(result, Markup)


def test_anything_with_html_loads_as_markup(s: TaggedJSONSerializer) -> None:
    class Widget:
        def __html__(self) -> str:
            return "<i>widget</i>"

    result = roundtrip(s, {"w": Widget()})
    assert result == {"w": Markup("<i>widget</i>")}
    assert isinstance(result["w"], Markup)


def test_datetime_is_utc_to_the_second(s: TaggedJSONSerializer) -> None:
    # Naive datetimes are taken as UTC; the result is always aware.
    naive = datetime(2020, 1, 2, 3, 4, 5, 678901)
    assert roundtrip(s, naive) == datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    # Aware datetimes keep their instant, in UTC.
    plus_two = datetime(2020, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    result = roundtrip(s, plus_two)
    assert result == plus_two
    assert result.utcoffset() == timedelta(0)


def test_nested_structures(s: TaggedJSONSerializer) -> None:
    value = {
        "user": {"id": UID, "roles": ("admin", "dev"), "avatar": b"\x89PNG"},
        "history": [
            (WHEN, Markup("<em>login</em>")),
            {" t": (1, (2, (3, b"deep")))},
            [[{" di": {" u": "nested"}}]],
        ],
        "empty": {"list": [], "tuple": (), "dict": {}},
    }
    assert roundtrip(s, value) == value
    result = roundtrip(s, value)
    assert isinstance(result["user"]["roles"], tuple)
    assert isinstance(result["history"][0][1], Markup)
    assert result["history"][1] == {" t": (1, (2, (3, b"deep")))}


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        ((1, 2), '{" t":[1,2]}'),
        (b"hi", '{" b":"aGk="}'),
        (Markup("<p>"), '{" m":"<p>"}'),
        (UID, '{" u":"12345678123456781234567812345678"}'),
        (WHEN, '{" d":"Thu, 29 Feb 2024 13:45:07 GMT"}'),
        ({" t": (1,)}, '{" di":{" t__":{" t":[1]}}}'),
        ({"a": [(b"x",)]}, '{"a":[{" t":[{" b":"eA=="}]}]}'),
    ],
    ids=repr,
)
def test_wire_format(s: TaggedJSONSerializer, value: t.Any, wire: str) -> None:
    assert s.dumps(value) == wire
    assert s.loads(wire) == value


COMPAT_VALUES: list[t.Any] = [
    {"user_id": 42, "_permanent": True, "_fresh": False},
    {"cart": [(1, 2), (3, 4)], "token": b"\x00\x01\x02", "id": UID},
    {"when": WHEN, "msg": Markup("<b>hi</b>"), " t": "tag-like key"},
    {" t": (1, 2)},
    {"_flashes": [("message", "Saved."), ("error", "Oops <b>!</b>")]},
    [{" di": {" m": "x"}}, ("deep", [b"bytes", {"u": UID}])],
]


@pytest.mark.parametrize("value", COMPAT_VALUES, ids=repr)
def test_flask_wire_compat(s: TaggedJSONSerializer, value: t.Any) -> None:
    flask_s = FlaskTaggedJSONSerializer()
    from_flask = flask_s.dumps(value)
    assert s.loads(from_flask) == value
    ours = s.dumps(value)
    assert flask_s.loads(ours) == value
    # Outside an app context both use plain json.dumps: the text is identical.
    assert ours == from_flask


@pytest.mark.parametrize(
    "value", [v for v in COMPAT_VALUES if isinstance(v, dict)], ids=repr
)
def test_flask_signed_cookie_compat(value: dict[str, t.Any]) -> None:
    """A session cookie signed by Flask's interface opens with ours, and the reverse."""
    import flask
    from flask.sessions import SecureCookieSessionInterface as FlaskInterface

    from ctxflask.sessions import SecureCookieSessionInterface

    flask_app = flask.Flask(__name__)
    flask_app.secret_key = "shared secret"

    class App:
        secret_key = "shared secret"
        config: t.ClassVar[dict[str, t.Any]] = {"SECRET_KEY_FALLBACKS": []}
        permanent_session_lifetime = timedelta(days=31)

    flask_signer = FlaskInterface().get_signing_serializer(flask_app)
    our_signer = SecureCookieSessionInterface().get_signing_serializer(App())  # type: ignore[arg-type]
    assert flask_signer is not None
    assert our_signer is not None

    assert our_signer.loads(flask_signer.dumps(value)) == value
    assert flask_signer.loads(our_signer.dumps(value)) == value


def test_untag_leaves_ordinary_objects(s: TaggedJSONSerializer) -> None:
    assert s.untag({}) == {}
    assert s.untag({"a": 1}) == {"a": 1}
    assert s.untag({" t": [1], "b": 2}) == {" t": [1], "b": 2}
    assert s.untag({" unknown": 1}) == {" unknown": 1}
    assert s.untag({" t": [1, 2]}) == (1, 2)


def test_tag_leaves_plain_values(s: TaggedJSONSerializer) -> None:
    assert s.tag("x") == "x"
    assert s.tag(3) == 3
    assert s.tag({"a": [1, (2,)]}) == {"a": [1, {" t": [2]}]}


def test_default_order(s: TaggedJSONSerializer) -> None:
    # The dict escape must be tried before the plain dict pass-through.
    kinds = [type(tag) for tag in s.order]
    assert kinds.index(TagDict) < kinds.index(PassDict)
    # Tags without a key are only used when dumping.
    assert set(s.tags) == {" di", " t", " b", " m", " u", " d"}
    assert len(s.order) == 8


class TagOrderedDict(JSONTag):
    """Keeps OrderedDict's type: a list of pairs under ``" od"``."""

    __slots__ = ()
    key = " od"

    def check(self, value: t.Any) -> bool:
        return isinstance(value, OrderedDict)

    def to_json(self, value: t.Any) -> t.Any:
        return [[k, self.serializer.tag(v)] for k, v in value.items()]

    def to_python(self, value: t.Any) -> t.Any:
        return OrderedDict((k, v) for k, v in value)


def test_register_appends_by_default(s: TaggedJSONSerializer) -> None:
    s.register(TagOrderedDict)
    assert isinstance(s.order[-1], TagOrderedDict)
    assert isinstance(s.tags[" od"], TagOrderedDict)
    # Appended, it comes after the dict tags, which catch OrderedDict first.
    result = roundtrip(s, OrderedDict(b=1, a=2))
    assert type(result) is dict


def test_register_with_index(s: TaggedJSONSerializer) -> None:
    s.register(TagOrderedDict, index=0)
    assert isinstance(s.order[0], TagOrderedDict)
    value = OrderedDict([("b", (1,)), ("a", b"x")])
    assert s.dumps(value) == '{" od":[["b",{" t":[1]}],["a",{" b":"eA=="}]]}'
    result = roundtrip(s, value)
    assert type(result) is OrderedDict
    assert list(result.items()) == [("b", (1,)), ("a", b"x")]
    # A dict keyed by the new tag is escaped too.
    assert roundtrip(s, {" od": 1}) == {" od": 1}


def test_register_is_per_instance() -> None:
    one, other = TaggedJSONSerializer(), TaggedJSONSerializer()
    one.register(TagOrderedDict)
    assert " od" in one.tags
    assert " od" not in other.tags


def test_register_clash_raises(s: TaggedJSONSerializer) -> None:
    class OtherTuple(JSONTag):
        __slots__ = ()
        key = " t"

    with pytest.raises(KeyError, match="' t' is already registered"):
        s.register(OtherTuple)
    # Nothing changed.
    assert type(s.tags[" t"]) is TagTuple
    assert len(s.order) == 8


def test_register_force_replaces(s: TaggedJSONSerializer) -> None:
    class ListTuple(JSONTag):
        """Loads ``" t"`` as a list instead."""

        __slots__ = ()
        key = " t"

        def check(self, value: t.Any) -> bool:
            return isinstance(value, tuple)

        def to_json(self, value: t.Any) -> t.Any:
            return list(value)

        def to_python(self, value: t.Any) -> t.Any:
            return ["replaced", *value]

    s.register(ListTuple, force=True)
    assert type(s.tags[" t"]) is ListTuple
    assert s.loads('{" t":[1,2]}') == ["replaced", 1, 2]


def test_register_keyless_tag(s: TaggedJSONSerializer) -> None:
    class SetAsList(JSONTag):
        """Sets dump as plain lists (lossy, no marker)."""

        __slots__ = ()

        def check(self, value: t.Any) -> bool:
            return isinstance(value, set)

        def to_json(self, value: t.Any) -> t.Any:
            return sorted(value)

        def tag(self, value: t.Any) -> t.Any:
            return self.to_json(value)

    s.register(SetAsList)
    assert "" not in s.tags
    assert s.dumps({"s": {3, 1, 2}}) == '{"s":[1,2,3]}'


def test_unhandled_type_fails_to_dump(s: TaggedJSONSerializer) -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        s.dumps({"x": object()})
