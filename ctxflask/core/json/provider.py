"""JSON providers: the object behind ``app.json`` that every JSON operation of an app goes
through (:func:`ctxflask.json.dumps`, :func:`~ctxflask.json.jsonify`, ``request.get_json()``,
the session serializer, and dicts or lists returned from views).

:class:`JSONProvider` is the interface; :class:`DefaultJSONProvider` implements it with the
standard library's :mod:`json` and Flask 3.1's defaults. Swap it by setting
``Flask.json_provider_class`` on a subclass, or by assigning an instance to ``app.json``.
"""

from __future__ import annotations

import dataclasses
import decimal
import json
import typing as t
import uuid
import weakref
from datetime import date

from werkzeug.http import http_date

if t.TYPE_CHECKING:
    from ..app import App
    from ..wrappers import Response

__all__ = ["DefaultJSONProvider", "JSONProvider"]


class JSONProvider:
    """The JSON operations of one application.

    A subclass for another JSON library needs only :meth:`dumps` and :meth:`loads`; the file
    variants and :meth:`response` are built on them.

    :param app: The application. Only a :func:`weakref.proxy` to it is kept (as ``_app``),
        so the provider, which the app holds, does not keep the app alive.
    """

    #: The mimetype of the responses built by :meth:`response`.
    mimetype: str = "application/json"

    def __init__(self, app: App) -> None:
        # A proxy of a callable app is typed as a proxy type; it behaves as the app.
        self._app: App = t.cast("App", weakref.proxy(app))

    def dumps(self, obj: t.Any, **kwargs: t.Any) -> str:
        """Serialize ``obj`` to a JSON string.

        :param obj: The data to serialize.
        :param kwargs: Options for the underlying JSON library.
        """
        raise NotImplementedError

    def dump(self, obj: t.Any, fp: t.IO[str], **kwargs: t.Any) -> None:
        """Serialize ``obj`` as JSON and write it to ``fp``.

        :param obj: The data to serialize.
        :param fp: A file opened for writing text (UTF-8, to be valid JSON).
        :param kwargs: Options for the underlying JSON library.
        """
        fp.write(self.dumps(obj, **kwargs))

    def loads(self, s: str | bytes, **kwargs: t.Any) -> t.Any:
        """Deserialize a JSON document.

        :param s: Text, or UTF-8 encoded bytes.
        :param kwargs: Options for the underlying JSON library.
        """
        raise NotImplementedError

    def load(self, fp: t.IO[t.AnyStr], **kwargs: t.Any) -> t.Any:
        """Deserialize the JSON document read from ``fp``.

        :param fp: A file opened for reading text or UTF-8 bytes.
        :param kwargs: Options for the underlying JSON library.
        """
        return self.loads(fp.read(), **kwargs)

    def _prepare_response_obj(
        self, args: tuple[t.Any, ...], kwargs: dict[str, t.Any]
    ) -> t.Any:
        """Turn :meth:`response`'s arguments into the one value to serialize."""
        if args:
            if kwargs:
                raise TypeError(
                    "app.json.response() takes either args or kwargs, not both"
                )
            # One value is sent as itself; several become a JSON array.
            return args[0] if len(args) == 1 else list(args)
        # Keyword arguments become a JSON object; no arguments at all serialize ``None``.
        return kwargs or None

    def response(self, *args: t.Any, **kwargs: t.Any) -> Response:
        """Serialize the arguments as JSON into a new ``app.response_class`` instance with
        this provider's :attr:`mimetype`. :func:`ctxflask.json.jsonify` calls this.

        Give either positional or keyword arguments, not both: a single positional value is
        serialized as is, several as a list, keywords as a dict, and nothing as ``null``.

        :raise TypeError: if both positional and keyword arguments are given.
        """
        obj = self._prepare_response_obj(args, kwargs)
        return self._app.response_class(self.dumps(obj), mimetype=self.mimetype)


def _default(o: t.Any) -> t.Any:
    """Convert an object the :mod:`json` module cannot encode into one it can."""
    # ``datetime`` is a ``date`` subclass: both become an RFC 822 (HTTP) date in UTC.
    if isinstance(o, date):
        return http_date(o)
    if isinstance(o, decimal.Decimal | uuid.UUID):
        return str(o)
    # ``is_dataclass`` is also true for dataclass *types*, which ``asdict`` rejects; treating
    # them like any other unsupported object gives the usual TypeError instead.
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return dataclasses.asdict(o)
    if hasattr(o, "__html__"):
        return str(o.__html__())
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


class DefaultJSONProvider(JSONProvider):
    """JSON operations through the standard library's :mod:`json`.

    On top of the JSON types it serializes:

    - :class:`datetime.datetime` and :class:`datetime.date`, as :rfc:`822` (HTTP date)
      strings;
    - :class:`decimal.Decimal` and :class:`uuid.UUID`, as strings;
    - dataclass instances, through :func:`dataclasses.asdict`;
    - :class:`~markupsafe.Markup` and anything else with an ``__html__`` method, as the
      string that method returns.

    The class attributes below set the defaults; change them on a subclass or on the
    ``app.json`` instance.
    """

    default: t.Callable[[t.Any], t.Any] = staticmethod(_default)
    """Called by :func:`json.dumps` for an object it cannot serialize; returns a JSON
    serializable value or raises :exc:`TypeError`."""

    ensure_ascii: bool = True
    """Escape non-ASCII characters. Turning it off gives smaller output."""

    sort_keys: bool = True
    """Sort the keys of every object. This makes the output stable (useful for caching),
    but requires all keys of a dict to be strings, as they are sorted before conversion."""

    compact: bool | None = None
    """Whether :meth:`response` leaves out indentation and spaces. ``None`` means compact
    except in debug mode."""

    mimetype: str = "application/json"
    """The mimetype of the responses built by :meth:`response`."""

    def dumps(self, obj: t.Any, **kwargs: t.Any) -> str:
        """Serialize ``obj`` with :func:`json.dumps`.

        :attr:`default`, :attr:`ensure_ascii` and :attr:`sort_keys` supply the options of
        the same names unless ``kwargs`` gives them.
        """
        kwargs.setdefault("default", self.default)
        kwargs.setdefault("ensure_ascii", self.ensure_ascii)
        kwargs.setdefault("sort_keys", self.sort_keys)
        return json.dumps(obj, **kwargs)

    def _dumps_compact(self, obj: t.Any) -> str:
        """``self.dumps(obj, separators=(",", ":"))``, every JSON response's call."""
        if type(self).dumps is not DefaultJSONProvider.dumps:
            return self.dumps(obj, separators=(",", ":"))
        # json.dumps builds an encoder for each call given options, a third of the cost
        # of a small document; an encoder keeps no state between calls, so it is reused
        # while the options stay the same.
        options = (self.default, self.ensure_ascii, self.sort_keys)
        kept = self._compact
        if kept is None or kept[0] != options:
            encoder = json.JSONEncoder(
                default=options[0],
                ensure_ascii=options[1],
                sort_keys=options[2],
                separators=(",", ":"),
            )
            self._compact = kept = (options, encoder)
        return kept[1].encode(obj)

    _compact: tuple[tuple[t.Any, ...], json.JSONEncoder] | None = None

    def loads(self, s: str | bytes, **kwargs: t.Any) -> t.Any:
        """Deserialize with :func:`json.loads`, which accepts text or UTF-8/16/32 bytes."""
        return json.loads(s, **kwargs)

    def response(self, *args: t.Any, **kwargs: t.Any) -> Response:
        """Build a JSON response like :meth:`JSONProvider.response`.

        The body is indented (two spaces) when :attr:`compact` is ``False``, or ``None`` in
        debug mode; otherwise it has no optional whitespace. It always ends with a newline,
        so it displays cleanly in terminals.
        """
        obj = self._prepare_response_obj(args, kwargs)
        app = self._app
        compact = self.compact
        # Only an explicit ``False`` (or ``None`` in debug mode) asks for readable output.
        if compact is False or (compact is None and app.debug):
            body = self.dumps(obj, indent=2)
        else:
            body = self._dumps_compact(obj)
        response_class = app.response_class
        # A werkzeug response class (no _fast_init) takes the general constructor.
        if getattr(response_class, "_fast_init", False):
            return response_class._from_bytes(f"{body}\n".encode(), self.mimetype)
        return response_class(f"{body}\n", mimetype=self.mimetype)
