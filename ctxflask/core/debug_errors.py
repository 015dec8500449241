"""The errors debug mode raises to explain a common mistake: a file read from a form that
was sent without ``enctype="multipart/form-data"``."""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:
    from .wrappers import Request


class DebugFilesKeyError(KeyError, AssertionError):
    """``request.files[key]`` is missing although the form has a field ``key``: the form was
    sent without ``enctype="multipart/form-data"``, so the browser sent file names only."""

    def __init__(self, request: Request, key: str) -> None:
        sent = request.form.getlist(key)
        self.msg = (
            f"request.files has no file {key!r}: the request's mimetype is"
            f" {request.mimetype!r}, not 'multipart/form-data', so no file contents were"
            ' transmitted. Fix: add enctype="multipart/form-data" to the form.'
        )
        if sent:
            names = ", ".join(map(repr, sent))
            self.msg += f"\n\nThe browser sent file names. This was submitted: {names}"
        super().__init__(self.msg)

    def __str__(self) -> str:
        # KeyError's own str() would show the message's repr.
        return self.msg


def attach_enctype_error_multidict(request: Request) -> None:
    """Make ``request.files[key]`` raise :class:`DebugFilesKeyError` instead of a bare
    ``KeyError`` when ``key`` was sent as a form field."""
    files = request.files
    base = type(files)

    def __getitem__(self: t.Any, key: str) -> t.Any:
        try:
            return base.__getitem__(self, key)
        except KeyError as e:
            if key not in request.form:
                raise
            error = DebugFilesKeyError(request, key)
            raise error.with_traceback(e.__traceback__) from None

    # A subclass of the same name, so reprs and isinstance checks are unchanged.
    explaining = type(
        base.__name__,
        (base,),
        {"__getitem__": __getitem__, "__module__": base.__module__},
    )
    files.__class__ = explaining
