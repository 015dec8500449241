"""Helpers shared by the tests."""

from __future__ import annotations

import functools
import typing as t

import anyio
import anyio.lowlevel

F = t.TypeVar("F", bound=t.Callable[..., t.Any])


def variant(kind: str) -> t.Callable[[F], F]:
    """Decorate a sync function to register it as itself (``kind="sync"``) or as an
    ``async def`` doing the same after a yield to the event loop (``kind="async"``).

    The body is written once, so each sync/async pair of tests checks the same behaviour.
    """

    def decorate(f: F) -> F:
        if kind == "sync":
            return f
        if kind != "async":
            raise ValueError(f"unknown kind {kind!r}")

        @functools.wraps(f)
        async def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
            await anyio.lowlevel.checkpoint()
            return f(*args, **kwargs)

        return t.cast(F, wrapper)

    return decorate
