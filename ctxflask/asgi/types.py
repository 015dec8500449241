"""The ASGI types ctxflask's entry point speaks (ASGI 3): a scope, its messages, and the
``receive`` and ``send`` callables. Messages are plain mappings, as servers send them;
asgiref's ``asgiref.typing`` spells out each message's keys."""

from __future__ import annotations

import typing as t
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import MutableMapping

Scope = MutableMapping[str, t.Any]
Message = MutableMapping[str, t.Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
