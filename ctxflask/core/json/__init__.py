"""JSON helpers that follow the current application.

Inside an application context (a request, a CLI command, ``with app.app_context()``),
:func:`dumps`, :func:`dump`, :func:`loads` and :func:`load` delegate to that app's
:attr:`~ctxflask.Flask.json` provider, so an app's JSON customizations apply everywhere.
Outside one they use the standard library's :mod:`json`, with only the provider's
``default`` hook added so that dates, decimals, UUIDs, dataclasses and ``Markup`` still
serialize.
"""

from __future__ import annotations

import json as _json
import typing as t

from ..globals import _cv_app
from ..globals import current_app
from .provider import _default
from .provider import DefaultJSONProvider
from .provider import JSONProvider

if t.TYPE_CHECKING:
    from ..wrappers import Response

__all__ = [
    "DefaultJSONProvider",
    "JSONProvider",
    "dump",
    "dumps",
    "jsonify",
    "load",
    "loads",
]


def _current_provider() -> JSONProvider | None:
    """The active application's JSON provider, or ``None`` outside an app context."""
    # Reading the context variable directly (instead of testing ``current_app``'s truth)
    # saves a proxy lookup and an exception on the no-app path.
    ctx = _cv_app.get(None)
    if ctx is None:
        return None
    provider: JSONProvider = ctx.app.json
    return provider


def dumps(obj: t.Any, **kwargs: t.Any) -> str:
    """Serialize ``obj`` to a JSON string.

    Uses ``current_app.json.dumps`` in an app context, otherwise :func:`json.dumps`.

    :param obj: The data to serialize.
    :param kwargs: Passed on to the implementation.
    """
    provider = _current_provider()
    if provider is not None:
        return provider.dumps(obj, **kwargs)
    kwargs.setdefault("default", _default)
    return _json.dumps(obj, **kwargs)


def dump(obj: t.Any, fp: t.IO[str], **kwargs: t.Any) -> None:
    """Serialize ``obj`` as JSON and write it to ``fp``.

    Uses ``current_app.json.dump`` in an app context, otherwise :func:`json.dump`.

    :param obj: The data to serialize.
    :param fp: A file opened for writing text (UTF-8, to be valid JSON).
    :param kwargs: Passed on to the implementation.
    """
    provider = _current_provider()
    if provider is not None:
        provider.dump(obj, fp, **kwargs)
        return
    kwargs.setdefault("default", _default)
    _json.dump(obj, fp, **kwargs)


def loads(s: str | bytes, **kwargs: t.Any) -> t.Any:
    """Deserialize a JSON document.

    Uses ``current_app.json.loads`` in an app context, otherwise :func:`json.loads`.

    :param s: Text, or UTF-8 encoded bytes.
    :param kwargs: Passed on to the implementation.
    """
    provider = _current_provider()
    if provider is not None:
        return provider.loads(s, **kwargs)
    return _json.loads(s, **kwargs)


def load(fp: t.IO[t.AnyStr], **kwargs: t.Any) -> t.Any:
    """Deserialize the JSON document read from ``fp``.

    Uses ``current_app.json.load`` in an app context, otherwise :func:`json.load`.

    :param fp: A file opened for reading text or UTF-8 bytes.
    :param kwargs: Passed on to the implementation.
    """
    provider = _current_provider()
    if provider is not None:
        return provider.load(fp, **kwargs)
    return _json.load(fp, **kwargs)


def jsonify(*args: t.Any, **kwargs: t.Any) -> Response:
    """Return a JSON response (``application/json``) for the arguments.

    Give either positional or keyword arguments, not both: a single positional value is
    serialized as is, several as a list, keywords as a dict, and nothing as ``null``. The
    output is indented in debug mode. A dict or list returned from a view becomes a JSON
    response without this.

    It needs an application context, and calls ``current_app.json.response``.

    :raise RuntimeError: outside an application context.
    :raise TypeError: if both positional and keyword arguments are given.
    """
    # Through the proxy, so that outside an app context its explanatory error is raised.
    return current_app.json.response(*args, **kwargs)
