"""DefaultJSONProvider and the module-level JSON helpers, without a running app."""

from __future__ import annotations

import dataclasses
import decimal
import io
import json
import typing as t
import uuid
from datetime import date
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from datetime import UTC
from types import SimpleNamespace

import pytest
from markupsafe import Markup
from werkzeug.wrappers import Response

import ctxflask.json as cjson
from ctxflask.globals import _cv_app
from ctxflask.json.provider import DefaultJSONProvider
from ctxflask.json.provider import JSONProvider


class FakeApp:
    """The app attributes a provider uses."""

    response_class = Response

    def __init__(self, debug: bool = False) -> None:
        self.debug = debug


@pytest.fixture
def app() -> FakeApp:
    return FakeApp()


@pytest.fixture
def provider(app: FakeApp) -> DefaultJSONProvider:
    return DefaultJSONProvider(app)  # type: ignore[arg-type]


@dataclasses.dataclass
class Point:
    x: int
    y: int


@dataclasses.dataclass
class Shape:
    name: str
    points: list[Point]


class Html:
    def __html__(self) -> str:
        return "<span>hi</span>"


UID = uuid.UUID("6f1f0c5e-1a7e-4c43-9b87-0d3f1c2b3a4d")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (date(2024, 3, 1), "Fri, 01 Mar 2024 00:00:00 GMT"),
        (datetime(2024, 3, 1, 12, 30, 15), "Fri, 01 Mar 2024 12:30:15 GMT"),
        (datetime(2024, 3, 1, 12, 30, 15, tzinfo=UTC), "Fri, 01 Mar 2024 12:30:15 GMT"),
        (
            datetime(2024, 3, 1, 14, 30, 15, tzinfo=timezone(timedelta(hours=2))),
            "Fri, 01 Mar 2024 12:30:15 GMT",
        ),
        (decimal.Decimal("10.10"), "10.10"),
        (decimal.Decimal("-1E+3"), "-1E+3"),
        (UID, "6f1f0c5e-1a7e-4c43-9b87-0d3f1c2b3a4d"),
        (Point(1, 2), {"x": 1, "y": 2}),
        (
            Shape("line", [Point(0, 0), Point(3, 4)]),
            {"name": "line", "points": [{"x": 0, "y": 0}, {"x": 3, "y": 4}]},
        ),
        (Markup("<b>x</b>"), "<b>x</b>"),
        (Html(), "<span>hi</span>"),
    ],
    ids=repr,
)
def test_default_types(
    provider: DefaultJSONProvider, value: t.Any, expected: t.Any
) -> None:
    assert provider.default(value) == expected
    assert provider.loads(provider.dumps(value)) == expected
    assert provider.loads(provider.dumps({"k": [value]})) == {"k": [expected]}


@pytest.mark.parametrize("value", [object(), {1, 2}, Point, b"bytes", 1j], ids=repr)
def test_unsupported_type(provider: DefaultJSONProvider, value: t.Any) -> None:
    name = type(value).__name__
    with pytest.raises(
        TypeError, match=f"Object of type {name} is not JSON serializable"
    ):
        provider.dumps({"v": value})
    with pytest.raises(TypeError):
        provider.default(value)


def test_defaults(provider: DefaultJSONProvider) -> None:
    assert DefaultJSONProvider.ensure_ascii is True
    assert DefaultJSONProvider.sort_keys is True
    assert DefaultJSONProvider.compact is None
    assert DefaultJSONProvider.mimetype == "application/json"
    assert provider.dumps({"b": 1, "a": "é☃"}) == '{"a": "\\u00e9\\u2603", "b": 1}'


def test_kwargs_override_defaults(provider: DefaultJSONProvider) -> None:
    out = provider.dumps({"b": 1, "a": "é"}, sort_keys=False, ensure_ascii=False)
    assert out == '{"b": 1, "a": "é"}'
    assert (
        provider.dumps({"x": object()}, default=lambda o: "custom") == '{"x": "custom"}'
    )
    assert provider.dumps([1, 2], separators=(",", ":")) == "[1,2]"


def test_instance_and_subclass_settings(app: FakeApp) -> None:
    class Provider(DefaultJSONProvider):
        sort_keys = False
        ensure_ascii = False

    p = Provider(app)  # type: ignore[arg-type]
    assert p.dumps({"b": "é", "a": 1}) == '{"b": "é", "a": 1}'

    p2 = DefaultJSONProvider(app)  # type: ignore[arg-type]
    p2.default = lambda o: sorted(o) if isinstance(o, set) else str(o)
    assert p2.dumps({"s": {3, 1, 2}, "o": 1.5}) == '{"o": 1.5, "s": [1, 2, 3]}'


def test_sort_keys_needs_string_keys(provider: DefaultJSONProvider) -> None:
    with pytest.raises(TypeError):
        provider.dumps({1: "a", "b": 2})
    assert provider.dumps({1: "a", "b": 2}, sort_keys=False) == '{"1": "a", "b": 2}'


def test_loads(provider: DefaultJSONProvider) -> None:
    doc = '{"a": [1, 2.5, null, true], "é": "☃"}'
    expected = {"a": [1, 2.5, None, True], "é": "☃"}
    assert provider.loads(doc) == expected
    assert provider.loads(doc.encode("utf-8")) == expected
    assert provider.loads(doc.encode("utf-16")) == expected
    with pytest.raises(json.JSONDecodeError):
        provider.loads("{nope")


def test_dump_and_load_files(provider: DefaultJSONProvider) -> None:
    out = io.StringIO()
    provider.dump({"b": UID, "a": date(2000, 1, 1)}, out)
    text = out.getvalue()
    assert text == (
        '{"a": "Sat, 01 Jan 2000 00:00:00 GMT", "b": "6f1f0c5e-1a7e-4c43-9b87-0d3f1c2b3a4d"}'
    )
    assert provider.load(io.StringIO(text)) == json.loads(text)
    assert provider.load(io.BytesIO(text.encode())) == json.loads(text)


def test_provider_keeps_weak_reference() -> None:
    app = FakeApp()
    p = DefaultJSONProvider(app)  # type: ignore[arg-type]
    assert p._app.debug is False
    del app
    with pytest.raises(ReferenceError):
        _ = p._app.debug


def test_base_provider_is_abstract(app: FakeApp) -> None:
    p = JSONProvider(app)  # type: ignore[arg-type]
    with pytest.raises(NotImplementedError):
        p.dumps(1)
    with pytest.raises(NotImplementedError):
        p.loads("1")


def test_base_provider_builds_on_dumps_and_loads(app: FakeApp) -> None:
    class Upper(JSONProvider):
        def dumps(self, obj: t.Any, **kwargs: t.Any) -> str:
            return json.dumps(obj, **kwargs).upper()

        def loads(self, s: str | bytes, **kwargs: t.Any) -> t.Any:
            return json.loads(s, **kwargs)

    p = Upper(app)  # type: ignore[arg-type]
    out = io.StringIO()
    p.dump(["a"], out)
    assert out.getvalue() == '["A"]'
    assert p.load(io.StringIO('{"k": 1}')) == {"k": 1}
    rv = p.response(a="b")
    assert rv.mimetype == "application/json"
    assert rv.get_data(as_text=True) == '{"A": "B"}'


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        ((), {}, None),
        ((1,), {}, 1),
        (([1, 2],), {}, [1, 2]),
        (({"a": 1},), {}, {"a": 1}),
        ((1, "two", None), {}, [1, "two", None]),
        ((), {"b": 2, "a": 1}, {"a": 1, "b": 2}),
    ],
)
def test_response_value(
    provider: DefaultJSONProvider,
    args: tuple[t.Any, ...],
    kwargs: dict[str, t.Any],
    expected: t.Any,
) -> None:
    rv = provider.response(*args, **kwargs)
    assert isinstance(rv, Response)
    assert rv.mimetype == "application/json"
    assert rv.status_code == 200
    assert json.loads(rv.get_data()) == expected


def test_response_rejects_args_and_kwargs(provider: DefaultJSONProvider) -> None:
    with pytest.raises(TypeError, match="either args or kwargs"):
        provider.response(1, a=2)


@pytest.mark.parametrize(
    ("compact", "debug", "body"),
    [
        (None, False, '{"a":[1,2],"b":"x"}\n'),
        (None, True, '{\n  "a": [\n    1,\n    2\n  ],\n  "b": "x"\n}\n'),
        (True, True, '{"a":[1,2],"b":"x"}\n'),
        (False, False, '{\n  "a": [\n    1,\n    2\n  ],\n  "b": "x"\n}\n'),
    ],
)
def test_response_compact(compact: bool | None, debug: bool, body: str) -> None:
    app = FakeApp(debug=debug)  # the provider only keeps a weak reference
    p = DefaultJSONProvider(app)  # type: ignore[arg-type]
    p.compact = compact
    rv = p.response(b="x", a=[1, 2])
    assert rv.get_data(as_text=True) == body


def test_response_follows_options_changed_between_responses(
    provider: DefaultJSONProvider,
) -> None:
    def body() -> str:
        return provider.response({"b": "é", "a": date(2024, 1, 2)}).get_data(True)

    assert body() == '{"a":"Tue, 02 Jan 2024 00:00:00 GMT","b":"\\u00e9"}\n'
    provider.sort_keys = False
    provider.ensure_ascii = False
    provider.default = lambda o: o.isoformat()  # type: ignore[method-assign]
    assert body() == '{"b":"é","a":"2024-01-02"}\n'
    del provider.sort_keys, provider.ensure_ascii, provider.default
    assert body() == '{"a":"Tue, 02 Jan 2024 00:00:00 GMT","b":"\\u00e9"}\n'


def test_response_goes_through_an_overridden_dumps(app: FakeApp) -> None:
    class Upper(DefaultJSONProvider):
        def dumps(self, obj: t.Any, **kwargs: t.Any) -> str:
            return super().dumps(obj, **kwargs).upper()

    p = Upper(app)  # type: ignore[arg-type]
    assert p.response({"a": "x"}).get_data(as_text=True) == '{"A":"X"}\n'


def test_response_mimetype(provider: DefaultJSONProvider) -> None:
    provider.mimetype = "application/vnd.api+json"
    rv = provider.response([1])
    assert rv.mimetype == "application/vnd.api+json"


def test_response_uses_app_response_class(app: FakeApp) -> None:
    class MyResponse(Response):
        pass

    app.response_class = MyResponse
    p = DefaultJSONProvider(app)  # type: ignore[arg-type]
    assert isinstance(p.response(1), MyResponse)


# -- module-level helpers -------------------------------------------------------------------


def test_module_helpers_outside_app_context() -> None:
    value = {
        "b": [UID, decimal.Decimal("1.5")],
        "a": date(2024, 1, 1),
        "m": Markup("<i>"),
    }
    out = cjson.dumps(value)
    # Like Flask: plain json.dumps plus the default hook, so keys keep their order.
    assert out == json.dumps(
        {
            "b": [str(UID), "1.5"],
            "a": "Mon, 01 Jan 2024 00:00:00 GMT",
            "m": "<i>",
        }
    )
    assert cjson.loads(out) == json.loads(out)
    assert cjson.loads(out.encode()) == json.loads(out)
    assert (
        cjson.dumps({"b": 1, "a": 2}, sort_keys=True, indent=None) == '{"a": 2, "b": 1}'
    )
    with pytest.raises(TypeError, match="not JSON serializable"):
        cjson.dumps(object())

    buf = io.StringIO()
    cjson.dump({"d": Point(1, 2)}, buf, separators=(",", ":"))
    assert buf.getvalue() == '{"d":{"x":1,"y":2}}'
    assert cjson.load(io.StringIO(buf.getvalue())) == {"d": {"x": 1, "y": 2}}
    assert cjson.load(io.BytesIO(b"[1]")) == [1]


def test_module_helpers_match_flask_outside_app_context() -> None:
    import flask.json

    value = {"z": UID, "a": [datetime(2020, 5, 17, 1, 2, 3), Point(5, 6)], "é": "☃"}
    assert cjson.dumps(value) == flask.json.dumps(value)


def test_jsonify_needs_app_context() -> None:
    with pytest.raises(RuntimeError, match="outside of application context"):
        cjson.jsonify(a=1)


def test_module_helpers_use_current_app_provider() -> None:
    class Recording(DefaultJSONProvider):
        calls: t.ClassVar[list[str]] = []

        def dumps(self, obj: t.Any, **kwargs: t.Any) -> str:
            self.calls.append("dumps")
            return super().dumps(obj, **kwargs)

        def loads(self, s: str | bytes, **kwargs: t.Any) -> t.Any:
            self.calls.append("loads")
            return super().loads(s, **kwargs)

    app = FakeApp()
    app.json = Recording(app)  # type: ignore[attr-defined, arg-type]
    # Stands in for an AppContext: the helpers only read its ``app``.
    token = _cv_app.set(SimpleNamespace(app=app))  # type: ignore[arg-type]
    try:
        assert cjson.dumps({"b": 1, "a": 2}) == '{"a": 2, "b": 1}'  # the provider sorts
        assert cjson.loads("[1]") == [1]
        buf = io.StringIO()
        cjson.dump([2], buf)
        assert cjson.load(io.StringIO(buf.getvalue())) == [2]
        rv = cjson.jsonify(3)
        assert rv.get_data(as_text=True) == "3\n"
    finally:
        _cv_app.reset(token)
    assert Recording.calls == ["dumps", "loads", "dumps", "loads", "dumps"]
