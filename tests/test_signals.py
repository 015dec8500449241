"""Signals: every one of Flask's is sent, and receivers may be sync or async (awaited by
the driver: on the event loop under ASGI, on the thread's loop under WSGI)."""

from __future__ import annotations

import threading

import pytest

from ctxflask import appcontext_popped
from ctxflask import appcontext_pushed
from ctxflask import appcontext_tearing_down
from ctxflask import flash
from ctxflask import g
from ctxflask import got_request_exception
from ctxflask import message_flashed
from ctxflask import render_template_string
from ctxflask import request_finished
from ctxflask import request_started
from ctxflask import request_tearing_down
from ctxflask import template_rendered
from tests.support import variant

REQUEST_SIGNALS = {
    "request_started": request_started,
    "request_finished": request_finished,
    "request_tearing_down": request_tearing_down,
    "appcontext_pushed": appcontext_pushed,
    "appcontext_popped": appcontext_popped,
    "appcontext_tearing_down": appcontext_tearing_down,
    "message_flashed": message_flashed,
    "template_rendered": template_rendered,
}


@pytest.fixture
def received(app, kind):
    """Connect a receiver of ``kind`` to every signal of a request; it records the
    signal's name, the sender and the thread it ran on."""
    log: list[tuple[str, object, int]] = []
    receivers = []
    for name, signal in REQUEST_SIGNALS.items():

        def receiver(sender, name=name, **extra):
            log.append((name, sender, threading.get_ident()))

        receiver = variant(kind)(receiver)
        receivers.append(receiver)  # blinker holds receivers weakly
        signal.connect(receiver, app)
    yield log
    for signal, receiver in zip(REQUEST_SIGNALS.values(), receivers, strict=True):
        signal.disconnect(receiver, app)


def test_a_request_sends_every_signal_in_order(app, client, received, kind):
    @app.get("/")
    def index():
        flash("hello")
        return render_template_string("{{ 1 + 1 }}")

    assert client.get("/").text == "2"
    names = [name for name, _, _ in received]
    assert names == [
        "appcontext_pushed",
        "request_started",
        "message_flashed",
        "template_rendered",
        "request_finished",
        "request_tearing_down",
        "appcontext_tearing_down",
        "appcontext_popped",
    ]
    assert {sender for _, sender, _ in received} == {app}


@pytest.mark.parametrize("entry_point", ["asgi"])
def test_async_receivers_of_pipeline_signals_run_on_the_event_loop_under_asgi(
    app, client, received, kind
):
    """ASGI-specific: the driver awaits them on its loop; never in a worker thread."""

    @app.get("/")
    async def index():
        return str(threading.get_ident())

    loop_thread = int(client.get("/").text)
    if kind == "async":
        pipeline_signals = {
            "appcontext_pushed",
            "request_started",
            "request_finished",
            "request_tearing_down",
            "appcontext_tearing_down",
            "appcontext_popped",
        }
        threads = {ident for name, _, ident in received if name in pipeline_signals}
        assert threads == {loop_thread}


def test_got_request_exception_is_sent_with_the_exception(app, client, kind):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    seen = []

    @variant(kind)
    def receiver(sender, exception, **extra):
        seen.append((sender, type(exception).__name__))

    got_request_exception.connect(receiver, app)
    try:

        @app.get("/")
        def index():
            raise KeyError("x")

        assert client.get("/").status_code == 500
    finally:
        got_request_exception.disconnect(receiver, app)
    assert seen == [(app, "KeyError")]


def test_appcontext_signals_outside_a_request(app, kind):
    log = []

    @variant(kind)
    def pushed(sender, **extra):
        g.set_by_receiver = "yes"
        log.append("pushed")

    @variant(kind)
    def popped(sender, **extra):
        log.append("popped")

    appcontext_pushed.connect(pushed, app)
    appcontext_popped.connect(popped, app)
    try:
        with app.app_context():
            log.append(g.get("set_by_receiver"))
    finally:
        appcontext_pushed.disconnect(pushed, app)
        appcontext_popped.disconnect(popped, app)
    assert log == ["pushed", "yes", "popped"]
