"""Tagged JSON: lossless JSON for a few Python types JSON lacks.

A value JSON cannot represent is written as a one-key object whose key is a *tag*, a short
string starting with a space (which ordinary keys rarely do), and whose value is a JSON form
of the data: ``(1, 2)`` becomes ``{" t": [1, 2]}``. Loading turns such objects back into the
original type. :class:`~ctxflask.sessions.SecureCookieSessionInterface` serializes sessions
with it. The format is the one Flask uses, so session cookies are interchangeable between
Flask and ctxflask apps that share a secret key.

The tags built in are listed on :class:`TaggedJSONSerializer`. To support another type,
subclass :class:`JSONTag` and register it. For example, to keep :class:`decimal.Decimal`
values exact::

    from decimal import Decimal
    from ctxflask.json.tag import JSONTag

    class TagDecimal(JSONTag):
        __slots__ = ()
        key = " dec"

        def check(self, value):
            return isinstance(value, Decimal)

        def to_json(self, value):
            return str(value)

        def to_python(self, value):
            return Decimal(value)

    app.session_interface.serializer.register(TagDecimal)

Tags are tried in order and the first whose :meth:`~JSONTag.check` matches is used, so a
tag for a subclass of a type that already has one (an ``OrderedDict`` tag, say, given the
dict tags) must be registered with an ``index`` that puts it first.
"""

from __future__ import annotations

import typing as t
from base64 import b64decode
from base64 import b64encode
from datetime import datetime
from uuid import UUID

from markupsafe import Markup
from werkzeug.http import http_date
from werkzeug.http import parse_date

from . import dumps as _json_dumps
from . import loads as _json_loads

__all__ = [
    "JSONTag",
    "PassDict",
    "PassList",
    "TagBytes",
    "TagDateTime",
    "TagDict",
    "TagMarkup",
    "TagTuple",
    "TagUUID",
    "TaggedJSONSerializer",
]


class JSONTag:
    """Base class for the tags of a :class:`TaggedJSONSerializer`.

    A subclass sets :attr:`key` and implements :meth:`check`, :meth:`to_json` and
    :meth:`to_python`. Tags with an empty key only pre-process values on the way out (to
    tag what they contain) and are never looked for on the way in.
    """

    __slots__ = ("serializer",)

    #: The marker key of the tagged form. Empty for tags that add no marker.
    key: str = ""

    def __init__(self, serializer: TaggedJSONSerializer) -> None:
        """Bind the tag to the serializer it is registered with, for tagging nested
        values through it."""
        self.serializer = serializer

    def check(self, value: t.Any) -> bool:
        """Whether this tag handles ``value``."""
        raise NotImplementedError

    def to_json(self, value: t.Any) -> t.Any:
        """Convert ``value`` to JSON-compatible data (without the marker)."""
        raise NotImplementedError

    def to_python(self, value: t.Any) -> t.Any:
        """Rebuild the Python value from the data :meth:`to_json` produced."""
        raise NotImplementedError

    def tag(self, value: t.Any) -> t.Any:
        """The tagged form of ``value``: ``{key: to_json(value)}``."""
        return {self.key: self.to_json(value)}


class TagDict(JSONTag):
    """A one-key dict whose key is itself a registered tag.

    Left alone it would load as the tagged type. The key is written with ``"__"`` appended
    instead, and the suffix is dropped when loading.
    """

    __slots__ = ()
    key = " di"

    def check(self, value: t.Any) -> bool:
        if not isinstance(value, dict) or len(value) != 1:
            return False
        (only_key,) = value
        return only_key in self.serializer.tags

    def to_json(self, value: t.Any) -> t.Any:
        ((k, v),) = value.items()
        return {f"{k}__": self.serializer.tag(v)}

    def to_python(self, value: t.Any) -> t.Any:
        ((k, v),) = value.items()
        return {k[:-2]: v}


class PassDict(JSONTag):
    """Any other dict: stays an object, with its values tagged. Keys are left as they are,
    since JSON object keys can only be strings anyway."""

    __slots__ = ()

    def check(self, value: t.Any) -> bool:
        return isinstance(value, dict)

    def to_json(self, value: t.Any) -> t.Any:
        tag = self.serializer.tag
        return {k: tag(v) for k, v in value.items()}

    def tag(self, value: t.Any) -> t.Any:
        # No marker: a plain object loads back as a dict.
        return self.to_json(value)


class TagTuple(JSONTag):
    """A tuple, as an array of its tagged items under ``" t"``."""

    __slots__ = ()
    key = " t"

    def check(self, value: t.Any) -> bool:
        return isinstance(value, tuple)

    def to_json(self, value: t.Any) -> t.Any:
        tag = self.serializer.tag
        return [tag(item) for item in value]

    def to_python(self, value: t.Any) -> t.Any:
        return tuple(value)


class PassList(JSONTag):
    """A list: stays an array, with its items tagged."""

    __slots__ = ()

    def check(self, value: t.Any) -> bool:
        return isinstance(value, list)

    def to_json(self, value: t.Any) -> t.Any:
        tag = self.serializer.tag
        return [tag(item) for item in value]

    def tag(self, value: t.Any) -> t.Any:
        # No marker: a plain array loads back as a list.
        return self.to_json(value)


class TagBytes(JSONTag):
    """Bytes, as standard base64 text under ``" b"``."""

    __slots__ = ()
    key = " b"

    def check(self, value: t.Any) -> bool:
        return isinstance(value, bytes)

    def to_json(self, value: t.Any) -> t.Any:
        return b64encode(value).decode("ascii")

    def to_python(self, value: t.Any) -> t.Any:
        return b64decode(value)


class TagMarkup(JSONTag):
    """Anything with an ``__html__`` method (such as :class:`~markupsafe.Markup`), as the
    HTML string it returns, under ``" m"``. Always loads as :class:`~markupsafe.Markup`."""

    __slots__ = ()
    key = " m"

    def check(self, value: t.Any) -> bool:
        return callable(getattr(value, "__html__", None))

    def to_json(self, value: t.Any) -> t.Any:
        return str(value.__html__())

    def to_python(self, value: t.Any) -> t.Any:
        return Markup(value)


class TagUUID(JSONTag):
    """A :class:`~uuid.UUID`, as its 32 hex digits under ``" u"``."""

    __slots__ = ()
    key = " u"

    def check(self, value: t.Any) -> bool:
        return isinstance(value, UUID)

    def to_json(self, value: t.Any) -> t.Any:
        return value.hex

    def to_python(self, value: t.Any) -> t.Any:
        return UUID(value)


class TagDateTime(JSONTag):
    """A :class:`~datetime.datetime`, as an HTTP date under ``" d"``.

    The format has whole seconds and no zone: a naive datetime is taken as UTC, an aware
    one is converted to UTC, microseconds are dropped, and it loads as an aware UTC
    datetime.
    """

    __slots__ = ()
    key = " d"

    def check(self, value: t.Any) -> bool:
        return isinstance(value, datetime)

    def to_json(self, value: t.Any) -> t.Any:
        return http_date(value)

    def to_python(self, value: t.Any) -> t.Any:
        return parse_date(value)


class TaggedJSONSerializer:
    """Compact JSON with tags for values JSON cannot represent. It is the payload
    serializer given to :mod:`itsdangerous` for session cookies.

    Beyond the JSON types, it round-trips :class:`tuple`, :class:`bytes`,
    :class:`~markupsafe.Markup`, :class:`~uuid.UUID`, :class:`~datetime.datetime` (to the
    second, in UTC), and dicts whose single key looks like a tag.
    """

    __slots__ = ("order", "tags")

    #: The tag classes each new serializer registers, in this order. More can be added per
    #: instance with :meth:`register`.
    default_tags: t.ClassVar[list[type[JSONTag]]] = [
        TagDict,
        PassDict,
        TagTuple,
        PassList,
        TagBytes,
        TagMarkup,
        TagUUID,
        TagDateTime,
    ]

    def __init__(self) -> None:
        #: Registered tags by key, used when loading.
        self.tags: dict[str, JSONTag] = {}
        #: All registered tags in the order they are tried when dumping.
        self.order: list[JSONTag] = []
        for tag_class in self.default_tags:
            self.register(tag_class)

    def register(
        self,
        tag_class: type[JSONTag],
        force: bool = False,
        index: int | None = None,
    ) -> None:
        """Instantiate ``tag_class`` for this serializer and add it.

        :param tag_class: The :class:`JSONTag` subclass to add.
        :param force: Replace a registered tag that has the same key, instead of failing.
            The replaced tag is no longer used to load, but keeps its place in the dumping
            order.
        :param index: Where to insert the tag in the order tags are tried when dumping
            (:meth:`list.insert` semantics). ``None`` appends it, so it is tried last.
        :raise KeyError: if the key is taken and ``force`` is false.
        """
        new_tag = tag_class(self)
        key = new_tag.key
        if key:
            if key in self.tags and not force:
                raise KeyError(f"Tag '{key}' is already registered.")
            self.tags[key] = new_tag
        if index is None:
            self.order.append(new_tag)
        else:
            self.order.insert(index, new_tag)

    def tag(self, value: t.Any) -> t.Any:
        """Return the tagged form of ``value``, or ``value`` itself if no tag handles it."""
        for candidate in self.order:
            if candidate.check(value):
                return candidate.tag(value)
        return value

    def untag(self, value: dict[str, t.Any]) -> t.Any:
        """Rebuild the value a loaded JSON object stands for: if it has a single key that
        is a registered tag, that tag's Python value, otherwise the object itself."""
        if len(value) != 1:
            return value
        ((key, data),) = value.items()
        found = self.tags.get(key)
        if found is None:
            return value
        return found.to_python(data)

    def _untag_scan(self, value: t.Any) -> t.Any:
        """Untag a loaded JSON tree, innermost values first, so every tag's
        :meth:`~JSONTag.to_python` receives data that is already untagged."""
        if isinstance(value, dict):
            return self.untag({k: self._untag_scan(v) for k, v in value.items()})
        if isinstance(value, list):
            return [self._untag_scan(item) for item in value]
        return value

    def dumps(self, value: t.Any) -> str:
        """Tag ``value`` and serialize it as JSON without optional whitespace.

        It goes through :func:`ctxflask.json.dumps`, so the current app's JSON provider is
        used in an app context.
        """
        return _json_dumps(self.tag(value), separators=(",", ":"))

    def loads(self, value: str | bytes) -> t.Any:
        """Parse JSON and turn every tagged object in it back into its Python value."""
        return self._untag_scan(_json_loads(value))
