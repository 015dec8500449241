"""Turning what a view returns into a response object (``app.make_response``)."""

from __future__ import annotations

import collections.abc as cabc
import sys
import typing as t

from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from .globals import _cv_request

if t.TYPE_CHECKING:
    from . import typing as ft
    from .app import App
    from .wrappers import Response


def to_response(app: App, rv: ft.ResponseReturnValue | BaseException) -> Response:
    """``app.make_response(rv)``: see there."""
    response_class = app.response_class
    status: t.Any = None
    headers: t.Any = None
    if isinstance(rv, tuple):
        if len(rv) == 3:
            rv, status, headers = rv
        elif len(rv) == 2:
            if isinstance(rv[1], (Headers, dict, tuple, list)):
                rv, headers = rv
            else:
                rv, status = rv
        else:
            raise TypeError(
                f"The view function returned a tuple of {len(rv)} items, which is not"
                " a valid response. Fix: return (body, status, headers), (body, status)"
                " or (body, headers)."
            )
    if rv is None:
        req_ctx = _cv_request.get(None)
        endpoint = req_ctx.request.endpoint if req_ctx is not None else None
        raise TypeError(
            f"The view function for {endpoint!r} did not return a valid response: it"
            " returned None or ended without a return statement. Fix: return a"
            " string, dict, list, tuple or response object."
        )
    if type(rv) is dict or type(rv) is list:
        # The usual JSON return, told before the abstract base classes' checks below.
        rv = app.json.response(rv)
    elif type(rv) is not response_class and not isinstance(rv, response_class):
        if isinstance(rv, (str, bytes, bytearray, cabc.Iterator, cabc.AsyncIterator)):
            rv = response_class(rv, status=status, headers=headers)  # type: ignore[arg-type]
            status = headers = None
        elif isinstance(rv, (dict, list)):
            rv = app.json.response(rv)
        elif isinstance(rv, cabc.AsyncIterable):
            rv = response_class(rv, status=status, headers=headers)  # type: ignore[arg-type]
            status = headers = None
        elif isinstance(rv, HTTPException):
            # Its response, not a run of it as a WSGI app: a body to send, not a stream.
            rv = response_class.force_type(
                rv.get_response(_cv_request.get().request.environ)
            )
        elif isinstance(rv, BaseResponse) or callable(rv):
            try:
                rv = response_class.force_type(
                    rv,  # type: ignore[arg-type]
                    _cv_request.get().request.environ,
                )
            except TypeError as e:
                raise TypeError(
                    f"{e}\nThe view function did not return a valid response. The"
                    " return type must be a string, dict, list, tuple with headers or"
                    " status, response object, iterator or WSGI callable, but it was a"
                    f" {type(rv).__name__}."
                ).with_traceback(sys.exc_info()[2]) from None
        else:
            raise TypeError(
                "The view function did not return a valid response. The return type"
                " must be a string, dict, list, tuple with headers or status, response"
                " object, iterator or WSGI callable, but it was a"
                f" {type(rv).__name__}."
            )
    response = t.cast("Response", rv)
    if status is not None:
        if isinstance(status, (str, bytes, bytearray)):
            response.status = status  # type: ignore[assignment]
        else:
            response.status_code = status
    if headers:
        response.headers.update(headers)
    return response
