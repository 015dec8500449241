"""What pipeline steps await: the bridge's side of the contract with the pipeline.

A *step* is a coroutine that never touches an event loop. Whenever it needs a user callable
run it awaits :func:`call`, which hands the callable to whichever driver runs the steps
(:mod:`.drivers`); :func:`shield_rest` asks the driver to shield the rest from cancellation;
:class:`Ready` is a value already there, awaited without suspending.
"""

from __future__ import annotations

import threading
import types
import typing as t
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Coroutine
from collections.abc import Generator

from .callables import ON_LOOP
from .callables import placement

T = t.TypeVar("T")


class Invoke:
    """A request, from a step to its driver, to run ``fn(*args, **kwargs)``.

    Awaiting it suspends the steps up to the driver, which runs the callable in the request's
    context on the right side of the bridge and resumes the steps with its result or
    exception.
    """

    __slots__ = ("args", "fn", "kwargs")

    def __init__(
        self,
        fn: Callable[..., t.Any],
        args: tuple[t.Any, ...],
        kwargs: dict[str, t.Any],
    ) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs

    def __await__(self) -> Generator[Invoke, t.Any, t.Any]:
        return (yield self)


#: A coroutine of pipeline steps: it awaits only :class:`Invoke` and other steps, and is run
#: by a driver (:func:`~.drivers.run_steps`, :func:`~.drivers.run_steps_async`), never
#: awaited on an event loop directly.
Steps = Coroutine[Invoke, t.Any, T]


class Ready(t.Generic[T]):
    """A value already there: awaiting it returns ``value`` without suspending. A step
    that has nothing to wait for returns one instead of a coroutine (no frame to run);
    a driver reports the end of the steps with one."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def __await__(self) -> Generator[t.Any, t.Any, T]:
        return self.value
        yield  # a generator, never suspended


class _DriverState(threading.local):
    #: Whether the steps being resumed on this thread may await an async callable
    #: themselves, with no trip through the driver: each driver says so as it resumes
    #: its steps, and only the async driver (in "loop" mode, without ``before_step``)
    #: says yes.
    #: Steps only run inside a resume, and a sync driver's steps never run an event loop,
    #: so what the latest resume said holds for the code running now (a callable run
    #: inline may start other steps: :func:`call` restores what it found).
    inline = False
    #: The placements of the sync callables the steps being resumed may call themselves,
    #: being where the driver would call them: the sync driver's steps call every sync
    #: callable, a worker thread's those of worker threads. Empty: none.
    sync_inline: tuple[int, ...] = ()


driver_state = _DriverState()


def call(
    fn: Callable[..., t.Any], /, *args: t.Any, **kwargs: t.Any
) -> Awaitable[t.Any]:
    """From a step: run a sync or async callable through the driver; await the result.

    Where the steps already run where the driver would run ``fn`` (in the request's
    context, on the right thread), they call it themselves: the round trip through the
    driver is a good part of a small request's cost.
    """
    state = driver_state
    if state.inline:
        if placement(fn) == ON_LOOP:
            awaitable: Awaitable[t.Any] = fn(*args, **kwargs)
            return awaitable
    elif state.sync_inline and placement(fn) in state.sync_inline:
        places = state.sync_inline
        try:
            result = fn(*args, **kwargs)
        finally:  # fn may have run other steps, which set their own
            state.inline = False
            state.sync_inline = places
        if type(result) is types.CoroutineType:
            # A sync wrapper around an async function: the driver awaits what it gave.
            return Invoke(_given, (result,), {})
        return Ready(result)
    return Invoke(fn, args, kwargs)


def _given(value: T) -> T:
    return value


class ShieldRest:
    """What :func:`shield_rest` asks of the driver."""

    __slots__ = ()

    def __await__(self) -> Generator[ShieldRest, None, None]:
        yield self


_SHIELD = ShieldRest()


def shield_rest() -> Awaitable[None]:
    """From a step: run the steps from here to their end shielded from cancellation, so
    that what they do to wind down (pops, teardowns) is not cut short. Only the async
    driver has cancellation to shield from; the sync one just goes on."""
    return _SHIELD
