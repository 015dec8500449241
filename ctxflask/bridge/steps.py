"""What pipeline steps await: the bridge's side of the contract with the pipeline.

A *step* is a coroutine that never touches an event loop. Whenever it needs a user callable
run it awaits :func:`call`, which hands the callable to whichever driver runs the steps
(:mod:`.drivers`); :func:`shield_rest` asks the driver to shield the rest from cancellation;
:class:`Ready` is a value already there, awaited without suspending.
"""

from __future__ import annotations

import threading
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
    #: so what the latest resume said holds for the code running now.
    inline = False


driver_state = _DriverState()


def call(
    fn: Callable[..., t.Any], /, *args: t.Any, **kwargs: t.Any
) -> Awaitable[t.Any]:
    """From a step: run a sync or async callable through the driver; await the result."""
    if driver_state.inline and placement(fn) == ON_LOOP:
        awaitable: Awaitable[t.Any] = fn(*args, **kwargs)
        return awaitable
    return Invoke(fn, args, kwargs)


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
