"""Type aliases for what views, hooks and handlers may be and return (Flask's names)."""

from __future__ import annotations

import collections.abc as cabc
import typing as t

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication
    from werkzeug.datastructures import Headers
    from werkzeug.sansio.response import Response

ResponseValue = t.Union[
    "Response",
    str,
    bytes,
    list[t.Any],
    t.Mapping[str, t.Any],
    t.Iterator[str],
    t.Iterator[bytes],
    cabc.AsyncIterable[str],
    cabc.AsyncIterable[bytes],
]

HeaderValue = t.Union[str, list[str], tuple[str, ...]]
HeadersValue = t.Union[
    "Headers",
    t.Mapping[str, HeaderValue],
    t.Sequence[tuple[str, HeaderValue]],
]

ResponseReturnValue = t.Union[
    ResponseValue,
    tuple[ResponseValue, HeadersValue],
    tuple[ResponseValue, int],
    tuple[ResponseValue, int, HeadersValue],
    "WSGIApplication",
]

ResponseClass = t.TypeVar("ResponseClass", bound="Response")

# Flask 2.3 removed ``before_first_request``; the alias stays for type annotations.
BeforeFirstRequestCallable = t.Union[
    t.Callable[[], None], t.Callable[[], t.Awaitable[None]]
]

AppOrBlueprintKey = t.Optional[str]  # None: the application itself

# Every callable below may be ``def`` or ``async def``.
AfterRequestCallable = t.Union[
    t.Callable[[ResponseClass], ResponseClass],
    t.Callable[[ResponseClass], t.Awaitable[ResponseClass]],
]
AfterWebsocketCallable = t.Union[
    t.Callable[[t.Optional["Response"]], t.Optional["Response"]],
    t.Callable[[t.Optional["Response"]], t.Awaitable[t.Optional["Response"]]],
]
BeforeRequestCallable = t.Union[
    t.Callable[[], ResponseReturnValue | None],
    t.Callable[[], t.Awaitable[ResponseReturnValue | None]],
]
TeardownCallable = t.Union[
    t.Callable[[BaseException | None], None],
    t.Callable[[BaseException | None], t.Awaitable[None]],
]
URLDefaultCallable = t.Callable[[str, dict[str, t.Any]], None]
URLValuePreprocessorCallable = t.Callable[[str | None, dict[str, t.Any] | None], None]
ServingCallable = t.Union[t.Callable[[], None], t.Callable[[], t.Awaitable[None]]]
TemplateContextProcessorCallable = t.Union[
    t.Callable[[], dict[str, t.Any]],
    t.Callable[[], t.Awaitable[dict[str, t.Any]]],
]
TemplateFilterCallable = t.Callable[..., t.Any]
TemplateGlobalCallable = t.Callable[..., t.Any]
TemplateTestCallable = t.Callable[..., bool]
ShellContextProcessorCallable = t.Callable[[], dict[str, t.Any]]

# The exception parameter is typed Any: a handler for a specific class takes that class.
ErrorHandlerCallable = t.Union[
    t.Callable[[t.Any], ResponseReturnValue],
    t.Callable[[t.Any], t.Awaitable[ResponseReturnValue]],
]
RouteCallable = t.Union[
    t.Callable[..., ResponseReturnValue],
    t.Callable[..., t.Awaitable[ResponseReturnValue]],
]
