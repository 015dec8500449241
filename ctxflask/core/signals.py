"""Blinker signals sent during a request and around contexts (Flask's names).

Receivers may be ``def`` or ``async def``: ctxflask sends through its bridge, so async
receivers are awaited on the event loop under ASGI and run on the thread's loop under WSGI.
"""

from __future__ import annotations

import typing as t

from blinker import Namespace as Namespace
from blinker import Signal

from ..bridge import call

_signals = Namespace()

template_rendered = _signals.signal("template-rendered")
before_render_template = _signals.signal("before-render-template")
request_started = _signals.signal("request-started")
request_finished = _signals.signal("request-finished")
request_tearing_down = _signals.signal("request-tearing-down")
got_request_exception = _signals.signal("got-request-exception")
appcontext_tearing_down = _signals.signal("appcontext-tearing-down")
appcontext_pushed = _signals.signal("appcontext-pushed")
appcontext_popped = _signals.signal("appcontext-popped")
message_flashed = _signals.signal("message-flashed")


async def send_steps(signal: Signal, sender: t.Any, /, **kwargs: t.Any) -> None:
    """From pipeline steps: send ``signal``; sync and async receivers run in order."""
    for receiver in signal.receivers_for(sender):
        await call(receiver, sender, **kwargs)
