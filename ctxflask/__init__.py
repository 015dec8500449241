"""ctxflask: Flask's request model on ``contextvars``.

One application object serves WSGI (``gunicorn module:app``) and ASGI
(``uvicorn module:app.asgi``), with ``def`` and ``async def`` views, hooks, error handlers
and teardowns freely mixed, and the same isolation semantics everywhere.
"""

from __future__ import annotations

import importlib
import sys
import typing as t

from . import json as json
from .app import Flask as Flask
from .blueprints import Blueprint as Blueprint
from .bridge import in_thread as in_thread
from .bridge import nonblocking as nonblocking
from .core.config import Config as Config
from .core.ctx import after_this_request as after_this_request
from .core.ctx import copy_current_app_context as copy_current_app_context
from .core.ctx import copy_current_request_context as copy_current_request_context
from .core.ctx import has_app_context as has_app_context
from .core.ctx import has_request_context as has_request_context
from .core.errors import HTTPDisconnect as HTTPDisconnect
from .core.errors import WebSocketDisconnect as WebSocketDisconnect
from .core.globals import current_app as current_app
from .core.globals import g as g
from .core.globals import request as request
from .core.globals import session as session
from .core.globals import websocket as websocket
from .core.helpers import abort as abort
from .core.helpers import cancel_on_disconnect as cancel_on_disconnect
from .core.helpers import flash as flash
from .core.helpers import get_flashed_messages as get_flashed_messages
from .core.helpers import get_template_attribute as get_template_attribute
from .core.helpers import make_response as make_response
from .core.helpers import redirect as redirect
from .core.helpers import send_file as send_file
from .core.helpers import send_from_directory as send_from_directory
from .core.helpers import stream_request_body as stream_request_body
from .core.helpers import stream_with_context as stream_with_context
from .core.helpers import url_for as url_for
from .core.json import jsonify as jsonify
from .core.rendering import render_template as render_template
from .core.rendering import render_template_async as render_template_async
from .core.rendering import render_template_string as render_template_string
from .core.rendering import render_template_string_async as render_template_string_async
from .core.rendering import stream_template as stream_template
from .core.rendering import stream_template_async as stream_template_async
from .core.rendering import stream_template_string as stream_template_string
from .core.rendering import stream_template_string_async as stream_template_string_async
from .core.signals import appcontext_popped as appcontext_popped
from .core.signals import appcontext_pushed as appcontext_pushed
from .core.signals import appcontext_tearing_down as appcontext_tearing_down
from .core.signals import before_render_template as before_render_template
from .core.signals import got_request_exception as got_request_exception
from .core.signals import message_flashed as message_flashed
from .core.signals import request_finished as request_finished
from .core.signals import request_started as request_started
from .core.signals import request_tearing_down as request_tearing_down
from .core.signals import template_rendered as template_rendered
from .core.wrappers import Request as Request
from .core.wrappers import Response as Response

if t.TYPE_CHECKING:
    from .asgi import Websocket as Websocket
    from .flask_switch import install_as_flask as install_as_flask

# Loaded when first asked for (PEP 562): the ASGI side, with anyio, and the Flask switch,
# with importlib.metadata, are not needed to serve WSGI.
_LAZY = {
    "Websocket": ".asgi",
    "install_as_flask": ".flask_switch",
}
# Modules that importing ctxflask used to load, still attributes of the package.
_SUBMODULES = ("asgi", "cli", "flask_switch")


def __getattr__(name: str) -> t.Any:
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)


def __dir__() -> list[str]:
    # What it listed when everything was imported eagerly: not this module's helpers.
    helpers = {
        "importlib",
        "sys",
        "t",
        "_LAZY",
        "_SUBMODULES",
        "__getattr__",
        "__dir__",
    }
    return sorted({*vars(sys.modules[__name__]), *_LAZY, *_SUBMODULES} - helpers)


__all__ = [
    "Blueprint",
    "Config",
    "Flask",
    "HTTPDisconnect",
    "Request",
    "Response",
    "WebSocketDisconnect",
    "Websocket",
    "abort",
    "after_this_request",
    "appcontext_popped",
    "appcontext_pushed",
    "appcontext_tearing_down",
    "before_render_template",
    "cancel_on_disconnect",
    "copy_current_app_context",
    "copy_current_request_context",
    "current_app",
    "flash",
    "g",
    "get_flashed_messages",
    "get_template_attribute",
    "got_request_exception",
    "has_app_context",
    "has_request_context",
    "in_thread",
    "install_as_flask",
    "json",
    "jsonify",
    "make_response",
    "message_flashed",
    "nonblocking",
    "redirect",
    "render_template",
    "render_template_async",
    "render_template_string",
    "render_template_string_async",
    "request",
    "request_finished",
    "request_started",
    "request_tearing_down",
    "send_file",
    "send_from_directory",
    "session",
    "stream_request_body",
    "stream_template",
    "stream_template_async",
    "stream_template_string",
    "stream_template_string_async",
    "stream_with_context",
    "template_rendered",
    "url_for",
    "websocket",
]
