"""An isolation checker for an application: concurrent requests, every step watched.

:func:`check_isolation` sends requests concurrently through the ASGI entry point (asyncio
or trio tasks), :func:`check_isolation_wsgi` through the WSGI one (threads). While they
run, every view (WebSocket handlers too), hook, error handler, teardown callback,
background task and chunk of a streamed body of the app is wrapped by an observer that
records what the step sees of
``request``, ``session``, ``g``, ``current_app`` and the context variables named; the app
is given back its own callables when the run ends, even when it fails.

What counts as a violation
--------------------------

Request ``#i`` of the run carries a unique *token* (``tk<run>n<i:06>z``): in the
``X-Isolation-Token`` header, and wherever its spec writes ``{token}`` (path, query,
headers, cookies, form data, JSON, session values, WebSocket messages). Whom a step runs *for* is known
without asking ctxflask's contexts: the checker sets a context variable of its own to
``i`` in the thread or task that calls the entry point, and every request runs in a copy
of that context. A step of request ``#i`` violates isolation when it:

- **request**: sees a ``request`` whose token header is not ``#i``'s, a request object
  other than the one ``#i``'s earlier steps saw, or no request context at all (only a
  ``teardown_appcontext`` callback runs without one);
- **current_app**: sees no app context, or another app;
- **g / session**: sees a ``g`` object or a session object other than the one ``#i``'s
  earlier steps saw, or a value in ``g``, the session or a named ``ContextVar`` that holds
  another request's token (strings, searched in containers and plain objects);
- **output**: returns (a view, hook or error handler), yields (a chunk of a streamed
  body) or sends (a WebSocket message) data holding another request's token; ``scan_output=False`` on a request whose
  answer may rightly show other requests' data;
- **lost change**: begins with the value of ``g``, the session or a named ``ContextVar``
  that the previous step of ``#i`` had replaced: a change that did not reach the next step.

Besides, each request's teardown callbacks must run exactly once (each ``teardown_request``
callback of the app, each ``teardown_appcontext`` callback; a blueprint's at most once),
no request or app context of the run may be left pushed when it ends, nor (asyncio) any
task started by a request still running, the caller's own contexts must be as they were,
and every request must end without an exception escaping the entry point, with the
status its spec expects.

Put ``{token}`` only in data that belongs to one request: a token in data that other
requests may rightly read (a note that every request lists) makes those reads report it.
"""

from .report import Finding as Finding
from .report import IsolationReport as IsolationReport
from .report import RequestSpec as RequestSpec
from .report import SentRequest as SentRequest
from .report import TOKEN_HEADER as TOKEN_HEADER
from .run import check_isolation as check_isolation
from .run import check_isolation_wsgi as check_isolation_wsgi

__all__ = [
    "TOKEN_HEADER",
    "Finding",
    "IsolationReport",
    "RequestSpec",
    "SentRequest",
    "check_isolation",
    "check_isolation_wsgi",
]
