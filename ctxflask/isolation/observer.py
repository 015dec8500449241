"""The isolation checker, whole; the package's documentation says what it checks."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
import inspect
import itertools
import re
import secrets
import time
import types
import typing as t
import weakref
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from urllib.parse import unquote
from urllib.parse import urlencode
from urllib.parse import urlsplit

import anyio
import anyio.lowlevel
import sniffio
import werkzeug.test
from werkzeug.wrappers import Response as _BaseResponse

from ..bridge import callables
from ..bridge.fanout import fan_out
from ..core.globals import _cv_app
from ..core.globals import _cv_request

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

    from ..app import Flask

#: The header that carries each request's token.
TOKEN_HEADER = "X-Isolation-Token"

_MISSING: t.Any = type("_Missing", (), {"__repr__": lambda self: "<unset>"})()
_NOTHING: t.Any = type("_Nothing", (), {"__repr__": lambda self: "<none>"})()

# Which request of the run the current thread or task is serving: set by the checker
# before it calls the entry point, so known independently of ctxflask's contexts.
_owner: contextvars.ContextVar[int] = contextvars.ContextVar("ctxflask.isolation.owner")


@dataclasses.dataclass(frozen=True)
class RequestSpec:
    """One request for the checker to send. ``{token}`` anywhere in ``path``,
    ``headers``, ``cookies``, ``data``, ``json``, ``session`` or ``websocket`` becomes
    the request's token.

    :param method: the HTTP method.
    :param path: the path, with a query string if any.
    :param json: a body to send as JSON.
    :param data: a form (a mapping, sent url-encoded) or a raw body (``str``, ``bytes``).
    :param headers: more request headers.
    :param cookies: cookies to send.
    :param session: values to put in the session: signed into the session cookie by the
        app's session interface before the run (a logged-in user, say).
    :param status: the status the response must have (``None``: any).
    :param scan_output: whether the request's output must hold no other request's
        token; turn it off for a request whose answer shows shared data.
    :param websocket: messages to send to a WebSocket handler at ``path`` (ASGI only;
        skipped, and counted as skipped, by the WSGI check).
    """

    method: str = "GET"
    path: str = "/"
    json: t.Any = _NOTHING
    data: Mapping[str, t.Any] | str | bytes | None = None
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    cookies: Mapping[str, str] = dataclasses.field(default_factory=dict)
    session: Mapping[str, t.Any] | None = None
    status: int | None = None
    scan_output: bool = True
    websocket: Sequence[str | bytes] | None = None

    def __str__(self) -> str:
        return f"{'WS' if self.websocket is not None else self.method} {self.path}"


@dataclasses.dataclass(frozen=True)
class Finding:
    """One problem the checker found.

    :param request: the index of the request whose step saw it (``None`` for the run as
        a whole).
    :param step: the step, such as ``"view 'index'"``, ``"before_request 'load'"``,
        ``"view 'feed': body chunk 2"``, ``"teardown"``, ``"end of run"``.
    :param kind: ``"request"``, ``"current_app"``, ``"g"``, ``"session"``,
        ``"context var"``, ``"output"``, ``"lost change"``, ``"teardown"``,
        ``"left active"``, ``"error"`` or ``"status"``.
    :param other: the index of the request whose value was seen, when it is known.
    :param detail: what was seen, and what was expected.
    """

    request: int | None
    step: str
    kind: str
    other: int | None
    detail: str


@dataclasses.dataclass
class SentRequest:
    """A request as sent: its spec with ``{token}`` filled in, and its outcome."""

    index: int
    token: str
    spec: RequestSpec
    status: int | None = None
    error: BaseException | None = None
    skipped: bool = False


@dataclasses.dataclass(repr=False)
class IsolationReport:
    """The outcome of a run: ``assert report.ok, report`` prints the findings (its
    ``repr`` is its text, which pytest shows for an assertion's message)."""

    entry: str
    requests: list[SentRequest]
    findings: list[Finding]
    steps: int
    duration: float
    observed: bool = True
    #: The teardown callbacks whose runs were counted for each request.
    teardowns: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether no request saw another's state, nothing was left active, every
        teardown ran once, and every request ended as expected."""
        return not self.findings

    def of(self, kind: str | None = None, step: str | None = None) -> list[Finding]:
        """The findings of a kind, and (a substring) of a step."""
        return [
            f
            for f in self.findings
            if (kind is None or f.kind == kind) and (step is None or step in f.step)
        ]

    def _name(self, index: int | None) -> str:
        if index is None:
            return "the run"
        return f"#{index} ({self.requests[index].spec})"

    def __str__(self) -> str:
        sent = sum(not r.skipped for r in self.requests)
        head = (
            f"Isolation check through {self.entry}: {sent} requests,"
            f" {self.steps} steps observed, {self.duration:.2f} s"
        )
        if not self.observed:
            head += " (not observed: timing only)"
        if self.ok and self.observed:
            teardown = (
                f"each of {len(self.teardowns)} teardown callback(s) ran once per"
                " request"
                if self.teardowns
                else "no teardown callback to count"
            )
            return (
                f"{head}: ok (no step saw another request's state, {teardown},"
                " no context left active)"
            )
        if self.ok:
            return f"{head}: ok"
        kinds = Counter(f.kind for f in self.findings)
        lines = [
            f"{head}: {len(self.findings)} problem(s) ("
            + ", ".join(f"{n} {kind}" for kind, n in kinds.most_common())
            + ")"
        ]
        by_request: dict[int | None, list[Finding]] = {}
        for finding in self.findings:
            by_request.setdefault(finding.request, []).append(finding)
        shown = 0
        for index in sorted(by_request, key=lambda i: -1 if i is None else i):
            findings = by_request[index]
            if shown >= 30:
                lines.append(f"... and {len(self.findings) - shown} more")
                break
            lines.append(f"{self._name(index)}:")
            for f in findings[:5]:
                seen = (
                    ""
                    if f.other is None
                    else f": {self._name(f.other)}'s, not #{index}'s"
                )
                lines.append(f"  {f.step}: {f.kind}: {f.detail}{seen}")
                shown += 1
            if len(findings) > 5:
                lines.append(f"  ... and {len(findings) - 5} more for this request")
                shown += len(findings) - 5
        return "\n".join(lines)

    __repr__ = __str__


# -- observing ---------------------------------------------------------------------------


class _RequestState:
    """What the steps of one request have seen so far."""

    __slots__ = (
        "app_ctx",
        "contexts",
        "current",
        "flagged",
        "g",
        "last_entry",
        "last_exit",
        "last_step",
        "req_ctx",
        "request",
        "session",
        "steps",
        "teardowns",
    )

    def __init__(self) -> None:
        self.request: t.Any = None  # weak references, once a step saw them
        self.g: t.Any = None
        self.session: t.Any = None
        self.req_ctx: t.Any = None
        self.app_ctx: t.Any = None
        self.last_entry: _Snapshot | None = None
        self.last_exit: _Snapshot | None = None
        self.last_step = ""
        self.current = ""  # the step running now, if any
        self.steps = 0
        self.teardowns: Counter[str] = Counter()
        self.contexts: list[Callable[[], t.Any]] = []
        self.flagged: set[tuple[str, int]] = set()


# A step's view of the stores: g's attributes and the session's items (None when there
# is no app context, or the session is not opened), the named variables' values.
_Snapshot = tuple[dict[str, t.Any] | None, dict[str, t.Any] | None, dict[str, t.Any]]


def _ref(obj: t.Any) -> Callable[[], t.Any]:
    try:
        return weakref.ref(obj)
    except TypeError:
        return lambda: obj


class _Observer:
    """Records what each step sees, and what is wrong with it."""

    def __init__(
        self,
        app: Flask,
        tokens: list[str],
        pattern: re.Pattern[str],
        context_vars: Sequence[contextvars.ContextVar[t.Any]],
        scan_output: list[bool],
    ) -> None:
        self.app = app
        self.tokens = tokens
        self.pattern = pattern
        self.context_vars = list(context_vars)
        self.scan_output = scan_output
        self.states = [_RequestState() for _ in tokens]
        self.findings: list[Finding] = []
        self.owner_of_request: weakref.WeakKeyDictionary[t.Any, int | None] = (
            weakref.WeakKeyDictionary()
        )
        self.tasks: list[tuple[int, weakref.ref[asyncio.Task[t.Any]]]] = []
        self.teardown_request_labels: dict[str, bool] = {}  # label: the app's own
        self.teardown_appcontext_labels: list[str] = []

    # -- what a value holds ---------------------------------------------------------

    def tokens_in(self, value: t.Any, depth: int = 0) -> set[int]:
        """The indexes of the requests whose tokens ``value`` holds."""
        try:
            return self._tokens_in(value, depth)
        except Exception:  # a proxy outside its context, a record that fails to read
            return set()

    def _tokens_in(self, value: t.Any, depth: int) -> set[int]:
        if isinstance(value, str):
            return {int(m) for m in self.pattern.findall(value)}
        if isinstance(value, (bytes, bytearray)):
            return self._tokens_in(bytes(value).decode("latin-1"), depth)
        if depth > 4 or value is None or isinstance(value, (int, float, bool)):
            return set()
        found: set[int] = set()
        if isinstance(value, _BaseResponse):
            if value.is_sequence and not value.direct_passthrough:
                found |= self._tokens_in(value.get_data(), depth + 1)
            return found
        items: Iterable[t.Any]
        if isinstance(value, Mapping):
            items = itertools.chain(value.keys(), value.values())
        elif isinstance(value, (list, tuple, set, frozenset)):
            items = value
        elif hasattr(type(value), "keys") and hasattr(type(value), "__getitem__"):
            items = [value[k] for k in value.keys()]  # noqa: SIM118 - a database row
        elif hasattr(value, "__dict__") and not isinstance(
            value, (type, types.ModuleType, types.FunctionType)
        ):
            items = list(vars(value).values())
        else:
            return found
        for n, item in enumerate(items):
            if n >= 200:
                break
            found |= self._tokens_in(item, depth + 1)
        return found

    def owner_of(self, request: t.Any) -> int | None:
        """Whose token the request object carries (read once per request object)."""
        try:
            return self.owner_of_request[request]
        except KeyError:
            pass
        except TypeError:
            return self._read_owner(request)
        owner = self.owner_of_request[request] = self._read_owner(request)
        return owner

    def _read_owner(self, request: t.Any) -> int | None:
        found = self.tokens_in(request.headers.get(TOKEN_HEADER, ""))
        return found.pop() if len(found) == 1 else None

    def add(
        self,
        owner: int | None,
        step: str,
        kind: str,
        detail: str,
        other: int | None = None,
    ) -> None:
        self.findings.append(Finding(owner, step, kind, other, detail))

    # -- one step ---------------------------------------------------------------------

    def enter(self, label: str, kind: str) -> int | None:
        """A step begins: check what it sees against its request's earlier steps."""
        owner = _owner.get(None)
        if owner is None:
            return None  # not a request of this run
        state = self.states[owner]
        if kind in ("teardown_request", "teardown_appcontext"):
            self._count_teardown(owner, state, label, kind)
        if state.current:
            # Called inside another step: the teardown of a context that the step
            # pushed and popped (``with app.app_context():``), not a step of its own.
            return None
        state.steps += 1
        snapshot = self.look(owner, state, label, kind, "began with")
        before = state.last_exit
        if before is not None:
            self._check_lost(owner, state, label, state.last_entry, before, snapshot)
        state.last_entry = snapshot
        state.current = label
        return owner

    def exit(self, owner: int | None, label: str, kind: str) -> None:
        """A step ends (returning or raising): keep what it leaves for the next one."""
        if owner is None:
            return
        state = self.states[owner]
        state.last_exit = self.look(owner, state, label, kind, "left")
        state.last_step = label
        state.current = ""

    def output(self, owner: int | None, label: str, value: t.Any) -> None:
        """A step's output (a return value, a chunk): it must hold no other token."""
        if owner is None or not self.scan_output[owner]:
            return
        for other in sorted(self.tokens_in(value) - {owner}):
            # Named once, at the first step whose output holds it: the steps after it
            # (an after_request hook returning the response) only pass it on.
            key = ("output", other)
            state = self.states[owner]
            if key in state.flagged:
                continue
            state.flagged.add(key)
            self.add(
                owner,
                label,
                "output",
                f"its output holds {self.tokens[other]!r}",
                other,
            )

    def message(self, owner: int, n: int, data: str | bytes) -> None:
        """A WebSocket message the app sent for request ``owner``: output of the step
        that sends it."""
        step = self.states[owner].current or "WebSocket"
        self.output(owner, f"{step}: message {n}", data)

    def look(
        self, owner: int, state: _RequestState, label: str, kind: str, verb: str
    ) -> _Snapshot:
        app_ctx = _cv_app.get(None)
        req_ctx = _cv_request.get(None)
        if app_ctx is None:
            self.add(owner, label, "current_app", "no app context is active")
        elif app_ctx.app is not self.app:
            self.add(owner, label, "current_app", f"current_app is {app_ctx.app!r}")
        g_items: dict[str, t.Any] | None = None
        if app_ctx is not None:
            self._remember(state, app_ctx, "app_ctx")
            g_obj = app_ctx.g
            self._same(owner, state, label, "g", g_obj)
            g_items = {f"g.{k}": v for k, v in vars(g_obj).items()}
        session_items: dict[str, t.Any] | None = None
        if req_ctx is None:
            if kind != "teardown_appcontext":
                self.add(owner, label, "request", "no request context is active")
        else:
            self._remember(state, req_ctx, "req_ctx")
            request = req_ctx.request
            seen = self.owner_of(request)
            if seen != owner:
                self.add(
                    owner,
                    label,
                    "request",
                    f"request carries {TOKEN_HEADER}"
                    f" {request.headers.get(TOKEN_HEADER)!r}",
                    seen,
                )
            self._same(owner, state, label, "request", request, seen)
            session = req_ctx._session
            if session is not None:
                self._same(owner, state, label, "session", session)
                session_items = {f"session[{k!r}]": v for k, v in session.items()}
        var_items = {
            f"ContextVar {var.name!r}": var.get(_MISSING) for var in self.context_vars
        }
        snapshot: _Snapshot = (g_items, session_items, var_items)
        self._scan(owner, state, label, verb, snapshot)
        return snapshot

    def _same(
        self,
        owner: int,
        state: _RequestState,
        label: str,
        kind: str,
        obj: t.Any,
        seen: int | None = None,
    ) -> None:
        # The request, g and session objects of a request's steps are one each.
        ref = getattr(state, kind)
        if ref is None:
            setattr(state, kind, _ref(obj))
        elif ref() is not obj:
            self.add(
                owner,
                label,
                kind,
                f"{kind} is not the object its earlier steps saw",
                seen if seen != owner else None,
            )

    def _remember(self, state: _RequestState, ctx: t.Any, attr: str) -> None:
        ref = getattr(state, attr)
        if ref is None or ref() is not ctx:
            if ref is None:
                setattr(state, attr, _ref(ctx))
            state.contexts.append(_ref(ctx))

    def _scan(
        self,
        owner: int,
        state: _RequestState,
        label: str,
        verb: str,
        snapshot: _Snapshot,
    ) -> None:
        previous = state.last_exit if verb == "began with" else state.last_entry
        for part, (kind, items) in enumerate(
            zip(("g", "session", "context var"), snapshot, strict=True)
        ):
            if not items:
                continue
            before = previous[part] if previous is not None else None
            for name, value in items.items():
                if before is not None and before.get(name, _MISSING) is value:
                    continue  # scanned already, in an earlier look
                for other in self.tokens_in(value) - {owner}:
                    key = (name, other)
                    if key in state.flagged:
                        continue
                    state.flagged.add(key)
                    self.add(
                        owner,
                        label,
                        kind,
                        f"{verb} {name} = {_short(value)}",
                        other,
                    )

    def _check_lost(
        self,
        owner: int,
        state: _RequestState,
        label: str,
        entry: _Snapshot | None,
        left: _Snapshot,
        now: _Snapshot,
    ) -> None:
        # A value the previous step replaced, back to what it was before that step.
        if entry is None:
            return
        for part in range(3):
            was, changed, seen = entry[part], left[part], now[part]
            if was is None or changed is None or seen is None:
                continue
            for name in changed.keys() | seen.keys() | was.keys():
                new = changed.get(name, _MISSING)
                old = was.get(name, _MISSING)
                if new is not old and seen.get(name, _MISSING) is old:
                    self.add(
                        owner,
                        label,
                        "lost change",
                        f"{state.last_step} set {name} = {_short(new)}, but this step"
                        f" began with {_short(old)}",
                    )

    def _count_teardown(
        self, owner: int, state: _RequestState, label: str, kind: str
    ) -> None:
        # Only the request's own contexts' teardown counts: an app context that a step
        # pushes inside the request has its own.
        own: t.Any
        if kind == "teardown_request":
            own, ref = _cv_request.get(None), state.req_ctx
        else:
            own, ref = _cv_app.get(None), state.app_ctx
        if ref is None or ref() is own:
            state.teardowns[label] += 1

    # -- the end of the run -----------------------------------------------------------

    def finish(self, sent: list[SentRequest]) -> None:
        for request, state in zip(sent, self.states, strict=True):
            if request.skipped:
                continue
            i = request.index
            for label, own in self.teardown_request_labels.items():
                self._check_teardown(i, label, state.teardowns[label], own)
            for label in self.teardown_appcontext_labels:
                self._check_teardown(i, label, state.teardowns[label], True)
            for ref in state.contexts:
                ctx = ref()
                if ctx is not None and ctx._tokens:
                    self.add(
                        i,
                        "end of run",
                        "left active",
                        f"{ctx!r} is still pushed ({len(ctx._tokens)} time(s))",
                    )
        for i, task_ref in self.tasks:
            task = task_ref()
            if task is not None and not task.done():
                self.add(
                    i,
                    "end of run",
                    "left active",
                    f"a task it started is still running: {task.get_coro()!r}"
                    " (work meant to outlive the response belongs in"
                    " app.add_background_task)",
                )

    def _check_teardown(self, i: int, label: str, count: int, required: bool) -> None:
        if count > 1 or (required and count != 1):
            self.add(
                i,
                label,
                "teardown",
                f"ran {count} times, expected once",
            )


def _short(value: t.Any) -> str:
    text = "<unset>" if value is _MISSING else repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


# -- wrapping the app's callables ---------------------------------------------------------


class _Slot:
    """What a wrapper reports to: emptied when the run ends, so that a wrapper that
    something keeps (a cache keyed by function) keeps no report alive."""

    __slots__ = ("observer",)

    def __init__(self, observer: _Observer) -> None:
        self.observer: _Observer | None = observer


def _wrap(fn: Callable[..., t.Any], slot: _Slot, label: str, kind: str) -> t.Any:
    """``fn`` observed: sync stays sync, async stays async, with its name, signature,
    attributes and placement marks (``nonblocking``, ``in_thread``)."""
    streams = kind in ("view", "error handler", "before_request", "after_request")

    def finish(observer: _Observer, owner: int | None, rv: t.Any) -> t.Any:
        if streams:
            rv = _watch_body(rv, slot, label)
        observer.output(owner, label, rv)
        return rv

    if callables.is_async_callable(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
            observer = slot.observer
            if observer is None:
                return await fn(*args, **kwargs)
            owner = observer.enter(label, kind)
            try:
                return finish(observer, owner, await fn(*args, **kwargs))
            finally:
                observer.exit(owner, label, kind)

        wrapper: Callable[..., t.Any] = async_wrapper
    else:

        @functools.wraps(fn)
        def sync_wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
            observer = slot.observer
            if observer is None:
                return fn(*args, **kwargs)
            owner = observer.enter(label, kind)
            rv = _NOTHING
            try:
                rv = fn(*args, **kwargs)
                if type(rv) is types.CoroutineType:
                    # A sync callable returning a coroutine for the bridge to await (a
                    # class-based view with async handlers): the step ends with it.
                    return _finish_awaited(rv, observer, owner, finish)
                return finish(observer, owner, rv)
            finally:
                if type(rv) is not types.CoroutineType:
                    observer.exit(owner, label, kind)

        async def _finish_awaited(
            coro: t.Awaitable[t.Any],
            observer: _Observer,
            owner: int | None,
            then: Callable[[_Observer, int | None, t.Any], t.Any],
        ) -> t.Any:
            try:
                return then(observer, owner, await coro)
            finally:
                observer.exit(owner, label, kind)

        wrapper = sync_wrapper
    where = callables.placement(fn)
    if where == callables.NONBLOCKING:
        callables.nonblocking(wrapper)
    elif where == callables.IN_WORKER_LOOP:
        callables.in_thread(wrapper)
    return wrapper


def _watch_body(rv: t.Any, slot: _Slot, label: str) -> t.Any:
    """A view's return value with a generator body replaced by one that observes each
    chunk (a generator of the same kind, closing the original when closed)."""
    if inspect.isgenerator(rv):
        if rv.gi_code is _watch_sync_chunks.__code__:
            return rv  # watched already: a hook returning the view's response
        return _watch_sync_chunks(rv, slot, label)
    if inspect.isasyncgen(rv):
        if rv.ag_code is _watch_async_chunks.__code__:
            return rv
        return _watch_async_chunks(rv, slot, label)
    if (
        isinstance(rv, tuple)
        and rv
        and (inspect.isgenerator(rv[0]) or inspect.isasyncgen(rv[0]))
    ):
        return (_watch_body(rv[0], slot, label), *rv[1:])
    if (
        isinstance(rv, _BaseResponse)
        and not rv.direct_passthrough
        and (inspect.isgenerator(rv.response) or inspect.isasyncgen(rv.response))
    ):
        rv.response = _watch_body(rv.response, slot, label)
    return rv


def _watch_sync_chunks(
    gen: t.Generator[t.Any, t.Any, t.Any], slot: _Slot, label: str
) -> t.Generator[t.Any, None, None]:
    try:
        for n in itertools.count(1):
            observer = slot.observer
            if observer is None:
                yield from gen
                return
            step = f"{label}: body chunk {n}"
            owner = observer.enter(step, "body")
            try:
                chunk = next(gen)
            except StopIteration:
                return
            else:
                observer.output(owner, step, chunk)
            finally:
                observer.exit(owner, step, "body")
            yield chunk
    finally:
        gen.close()


async def _watch_async_chunks(
    gen: t.AsyncGenerator[t.Any, t.Any], slot: _Slot, label: str
) -> t.AsyncGenerator[t.Any, None]:
    try:
        for n in itertools.count(1):
            observer = slot.observer
            step = f"{label}: body chunk {n}"
            owner = None if observer is None else observer.enter(step, "body")
            try:
                chunk = await gen.__anext__()
            except StopAsyncIteration:
                return
            else:
                if observer is not None:
                    observer.output(owner, step, chunk)
            finally:
                if observer is not None:
                    observer.exit(owner, step, "body")
            yield chunk
    finally:
        await gen.aclose()


def _name(fn: t.Any) -> str:
    return str(getattr(fn, "__name__", None) or fn)


class _Instrumented:
    """The app with its callables wrapped; :meth:`restore` puts the originals back."""

    def __init__(self, app: Flask, observer: _Observer) -> None:
        self.app = app
        self.slot = _Slot(observer)
        self._undo: list[Callable[[], None]] = []
        self._labels: dict[str, int] = {}
        self._got_first_request = app._got_first_request
        try:
            self._wrap_all(observer)
        except BaseException:
            self.restore()
            raise

    def _wrap_all(self, observer: _Observer) -> None:
        app, slot = self.app, self.slot
        for endpoint, view in list(app.view_functions.items()):
            self._set(
                app.view_functions,
                endpoint,
                _wrap(view, slot, f"view {endpoint!r}", "view"),
            )
        hooks: dict[str, dict[t.Any, list[t.Any]]] = {
            "url_value_preprocessor": app.url_value_preprocessors,
            "before_request": app.before_request_funcs,
            "after_request": app.after_request_funcs,
            "teardown_request": app.teardown_request_funcs,
            "before_websocket": app.before_websocket_funcs,
            "after_websocket": app.after_websocket_funcs,
        }
        for kind, by_key in hooks.items():
            for key, funcs in list(by_key.items()):
                where = "" if key is None else f" of {key!r}"
                for n, f in enumerate(list(funcs)):
                    label = self._label(f"{kind} {_name(f)!r}{where}")
                    if kind == "teardown_request":
                        observer.teardown_request_labels[label] = key is None
                    self._set(funcs, n, _wrap(f, slot, label, kind))
        funcs = app.teardown_appcontext_funcs
        for n, f in enumerate(list(funcs)):
            label = self._label(f"teardown_appcontext {_name(f)!r}")
            observer.teardown_appcontext_labels.append(label)
            self._set(funcs, n, _wrap(f, slot, label, "teardown_appcontext"))
        for by_code in list(app.error_handler_spec.values()):
            for code, handlers in list(by_code.items()):
                for exc_class, handler in list(handlers.items()):
                    where = f"{code}" if code else exc_class.__name__
                    label = f"error handler {_name(handler)!r} ({where})"
                    self._set(
                        handlers,
                        exc_class,
                        _wrap(handler, slot, label, "error handler"),
                    )
        original = app.add_background_task

        @functools.wraps(original)
        def add_background_task(
            fn: Callable[..., t.Any], /, *args: t.Any, **kwargs: t.Any
        ) -> None:
            label = f"background task {_name(fn)!r}"
            original(_wrap(fn, slot, label, "background task"), *args, **kwargs)

        had_own = "add_background_task" in vars(app)
        app.add_background_task = add_background_task  # type: ignore[method-assign]
        self._undo.append(
            (lambda: setattr(app, "add_background_task", original))
            if had_own
            else (lambda: delattr(app, "add_background_task"))
        )

    def _label(self, label: str) -> str:
        # Two callables of one name would share a teardown count: number the later.
        n = self._labels[label] = self._labels.get(label, 0) + 1
        return label if n == 1 else f"{label} #{n}"

    def _set(self, container: t.Any, key: t.Any, value: t.Any) -> None:
        original = container[key]
        container[key] = value

        def undo() -> None:
            container[key] = original

        self._undo.append(undo)

    def restore(self) -> None:
        """Give the app its own callables back, and forget that it served."""
        self.slot.observer = None
        while self._undo:
            self._undo.pop()()
        self.app._got_first_request = self._got_first_request


# -- sending requests ---------------------------------------------------------------------


def _fill(value: t.Any, token: str) -> t.Any:
    if isinstance(value, str):
        return value.replace("{token}", token)
    if isinstance(value, bytes):
        return value.replace(b"{token}", token.encode())
    if isinstance(value, Mapping):
        return {_fill(k, token): _fill(v, token) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_fill(v, token) for v in value)
    return value


class _Prepared(t.NamedTuple):
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes


def _session_cookie(app: Flask, values: Mapping[str, t.Any]) -> str:
    """``name=value`` of a session cookie holding ``values``, signed by the app's
    session interface (with no context pushed: no hook or teardown of the app runs)."""
    interface = app.session_interface
    builder = werkzeug.test.EnvironBuilder(path="/", base_url="http://localhost/")
    try:
        request = app.request_class(builder.get_environ())
    finally:
        builder.close()
    session = interface.open_session(app, request)
    if session is None:
        raise RuntimeError(
            "A request spec gives session values, but the app's session interface"
            " opened no session. Fix: set the app's SECRET_KEY."
        )
    session.update(values)
    response = app.response_class()
    interface.save_session(app, session, response)
    for header in response.headers.getlist("Set-Cookie"):
        return header.partition(";")[0]
    raise RuntimeError("The app's session interface set no cookie for the session.")


def _prepare(app: Flask, spec: RequestSpec, token: str) -> _Prepared:
    url = urlsplit(_fill(spec.path, token))
    headers = [(k, _fill(v, token)) for k, v in spec.headers.items()]
    headers.append((TOKEN_HEADER, token))
    body = b""
    if spec.json is not _NOTHING:
        body = app.json.dumps(_fill(spec.json, token)).encode()
        headers.append(("Content-Type", "application/json"))
    elif isinstance(spec.data, Mapping):
        body = urlencode(_fill(dict(spec.data), token), doseq=True).encode()
        headers.append(("Content-Type", "application/x-www-form-urlencoded"))
    elif spec.data is not None:
        data = _fill(spec.data, token)
        body = data.encode() if isinstance(data, str) else data
    if body:
        headers.append(("Content-Length", str(len(body))))
    cookies = [f"{k}={_fill(v, token)}" for k, v in spec.cookies.items()]
    if spec.session is not None:
        cookies.append(_session_cookie(app, _fill(dict(spec.session), token)))
    if cookies:
        headers.append(("Cookie", "; ".join(cookies)))
    return _Prepared(spec.method.upper(), url.path or "/", url.query, headers, body)


def _scope(prepared: _Prepared, kind: str) -> dict[str, t.Any]:
    headers = [(b"host", b"localhost")] + [
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in prepared.headers
    ]
    path = unquote(prepared.path)
    scope: dict[str, t.Any] = {
        "type": kind,
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": "http" if kind == "http" else "ws",
        "path": path,
        "raw_path": prepared.path.encode(),
        "root_path": "",
        "query_string": prepared.query.encode("latin-1"),
        "headers": headers,
        "server": ("localhost", 80),
        "client": ("127.0.0.1", 0),
        "extensions": {},
    }
    if kind == "http":
        scope["method"] = prepared.method
    else:
        scope["subprotocols"] = []
    return scope


async def _send_http(asgi: t.Any, prepared: _Prepared) -> int:
    """One request through the ASGI entry point; its status once the app returned."""
    received = False
    complete = anyio.Event()
    status = 0

    async def receive() -> dict[str, t.Any]:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": prepared.body, "more_body": False}
        await complete.wait()  # the client stays until the response is complete
        return {"type": "http.disconnect"}

    async def send(message: t.MutableMapping[str, t.Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body" and not message.get(
            "more_body", False
        ):
            complete.set()

    await asgi(_scope(prepared, "http"), receive, send)
    return status


async def _send_websocket(
    asgi: t.Any,
    prepared: _Prepared,
    messages: Sequence[str | bytes],
    on_message: Callable[[int, str | bytes], None] | None,
) -> int:
    """A WebSocket conversation: connect, send the messages, leave; 101 when the app
    accepted, else the status it answered the handshake with. ``on_message`` gets each
    message the app sends, numbered from 1."""
    sent = itertools.count(1)
    inbox: list[dict[str, t.Any]] = [{"type": "websocket.connect"}]
    inbox += [
        {"type": "websocket.receive", "text" if isinstance(m, str) else "bytes": m}
        for m in messages
    ]
    inbox.append({"type": "websocket.disconnect", "code": 1000})
    settled = anyio.Event()  # accepted, refused or closed by the app
    status = 0

    async def receive() -> dict[str, t.Any]:
        if len(inbox) == 1 or inbox[0]["type"] != "websocket.connect":
            await settled.wait()  # messages go to an accepted connection only
        return inbox.pop(0) if inbox else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: t.MutableMapping[str, t.Any]) -> None:
        nonlocal status
        kind = message["type"]
        if kind == "websocket.accept":
            status = 101
        elif kind == "websocket.http.response.start":
            status = message["status"]
        elif kind == "websocket.close":
            status = status or 403
        elif kind == "websocket.send" and on_message is not None:
            data = message.get("text")
            on_message(
                next(sent), message.get("bytes") or b"" if data is None else data
            )
        settled.set()

    await asgi(_scope(prepared, "websocket"), receive, send)
    return status


def _send_wsgi(app: Flask, prepared: _Prepared) -> int:
    """One request through the WSGI entry point, its body read and closed."""
    builder = werkzeug.test.EnvironBuilder(
        path=prepared.path,
        base_url="http://localhost/",
        query_string=prepared.query,
        method=prepared.method,
        headers=prepared.headers,
        data=prepared.body,
    )
    try:
        environ: WSGIEnvironment = builder.get_environ()
    finally:
        builder.close()
    status: list[str] = []

    def start_response(s: str, headers: t.Any, exc_info: t.Any = None) -> t.Any:
        status[:] = [s]
        return lambda data: None

    body = app(environ, start_response)
    try:
        for _ in body:
            pass
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    return int(status[0].split()[0]) if status else 0


# -- the checks ---------------------------------------------------------------------------


class _Run:
    """One run: tokens, prepared requests, and the observer."""

    def __init__(
        self,
        app: Flask,
        requests: Iterable[RequestSpec],
        context_vars: Sequence[contextvars.ContextVar[t.Any]],
        observe: bool,
    ) -> None:
        specs = list(requests)
        if not specs:
            raise ValueError("check_isolation needs at least one request to send.")
        run = secrets.token_hex(3)
        tokens = [f"tk{run}n{i:06d}z" for i in range(len(specs))]
        self.app = app
        self.sent = [
            SentRequest(i, token, spec)
            for i, (token, spec) in enumerate(zip(tokens, specs, strict=True))
        ]
        self.prepared = [_prepare(app, r.spec, r.token) for r in self.sent]
        self.observer = _Observer(
            app,
            tokens,
            re.compile(rf"tk{run}n(\d{{6}})z"),
            context_vars,
            [spec.scan_output for spec in specs],
        )
        self.observe = observe
        self.outer = (_cv_app.get(None), _cv_request.get(None))
        self.instrumented: _Instrumented | None = None
        self.started = self.duration = 0.0

    def __enter__(self) -> _Run:
        if self.observe:
            self.instrumented = _Instrumented(self.app, self.observer)
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.duration = time.perf_counter() - self.started
        if self.instrumented is not None:
            self.instrumented.restore()

    def outcome(self, index: int, result: int | BaseException) -> None:
        request = self.sent[index]
        if isinstance(result, BaseException):
            request.error = result
            self.observer.add(
                index, "entry point", "error", f"the request failed: {result!r}"
            )
            return
        request.status = result
        expected = request.spec.status
        if expected is not None and result != expected:
            self.observer.add(
                index, "response", "status", f"status {result}, expected {expected}"
            )

    def report(self, entry: str) -> IsolationReport:
        observer = self.observer
        if self.observe:
            observer.finish(self.sent)
        outer = (_cv_app.get(None), _cv_request.get(None))
        if outer != self.outer:
            observer.add(
                None,
                "end of run",
                "left active",
                f"the caller's contexts were {self.outer!r} and are {outer!r} after the run",
            )
        return IsolationReport(
            entry=entry,
            requests=self.sent,
            findings=observer.findings,
            steps=sum(state.steps for state in observer.states),
            duration=self.duration,
            observed=self.observe,
            teardowns=[
                *observer.teardown_request_labels,
                *observer.teardown_appcontext_labels,
            ],
        )


async def check_isolation(
    app: Flask,
    requests: Iterable[RequestSpec],
    *,
    concurrency: int = 100,
    context_vars: Sequence[contextvars.ContextVar[t.Any]] = (),
    observe: bool = True,
) -> IsolationReport:
    """Send ``requests`` through the ASGI entry point, ``concurrency`` at a time, as
    tasks of the running event loop (asyncio or trio), with every step of the app
    observed; return what each step saw (see the module's documentation for what counts
    as a violation)::

        report = await check_isolation(app, [RequestSpec("GET", "/")] * 500)
        assert report.ok, report

    The app's callables are its own again when this returns, or raises. The lifespan
    protocol is not run: when the app needs ``before_serving``, check inside a serving
    context.

    :param app: the application.
    :param requests: the requests to send (:class:`RequestSpec`): a list, or any
        iterable, such as ``(make_spec(i) for i in range(1000))``.
    :param concurrency: how many are in flight at once.
    :param context_vars: context variables whose values are checked like ``g``'s.
    :param observe: ``False`` sends the same requests without observing them (to time
        the app alone); only exceptions and statuses are then checked.
    """
    run = _Run(app, requests, context_vars, observe)
    backend = sniffio.current_async_library()
    restore_factory: Callable[[], None] | None = None
    if observe and backend == "asyncio":
        restore_factory = _watch_tasks(run.observer)
    asgi = app.asgi
    try:
        with run:
            taken = iter(range(len(run.sent)))

            async def worker() -> None:
                for i in taken:
                    # Each task has a context of its own; each request a copy of it.
                    _owner.set(i)
                    spec = run.sent[i].spec
                    result: int | BaseException
                    try:
                        if spec.websocket is not None:
                            result = await _send_websocket(
                                asgi,
                                run.prepared[i],
                                [_fill(m, run.sent[i].token) for m in spec.websocket],
                                functools.partial(run.observer.message, i)
                                if observe
                                else None,
                            )
                        else:
                            result = await _send_http(asgi, run.prepared[i])
                    except Exception as e:
                        result = e
                    run.outcome(i, result)

            async with anyio.create_task_group() as tg:
                for _ in range(max(1, min(concurrency, len(run.sent)))):
                    tg.start_soon(worker)
            await anyio.lowlevel.checkpoint()  # tasks cancelled at the end finish
    finally:
        if restore_factory is not None:
            restore_factory()
    return run.report(f"ASGI ({backend})")


def _watch_tasks(observer: _Observer) -> Callable[[], None]:
    """Note every task a request starts on the running asyncio loop, to find those
    still running at the end; returns what restores the loop's task factory."""
    loop = asyncio.get_running_loop()
    previous = loop.get_task_factory()

    def factory(
        loop: asyncio.AbstractEventLoop, coro: t.Any, **kwargs: t.Any
    ) -> asyncio.Future[t.Any]:
        if previous is not None:
            task = previous(loop, coro, **kwargs)
        else:
            task = asyncio.Task(coro, loop=loop, **kwargs)
        owner = _owner.get(None)
        if owner is not None and isinstance(task, asyncio.Task):
            observer.tasks.append((owner, weakref.ref(task)))
        return task

    loop.set_task_factory(factory)
    return lambda: loop.set_task_factory(previous)


def check_isolation_wsgi(
    app: Flask,
    requests: Iterable[RequestSpec],
    *,
    threads: int = 16,
    context_vars: Sequence[contextvars.ContextVar[t.Any]] = (),
    observe: bool = True,
    timeout: float | None = None,
) -> IsolationReport:
    """Send ``requests`` through the WSGI entry point from ``threads`` threads at once,
    as a threaded WSGI server would, with every step of the app observed; the
    counterpart of :func:`check_isolation` (same findings). WebSocket requests are
    skipped (WSGI has none).

    :param timeout: seconds after which it returns, the requests still running then
        reported as failed (their threads are left to finish). Under ASGI, wrap the
        call in ``anyio.fail_after`` instead: the requests are cancelled.
    """
    run = _Run(app, requests, context_vars, observe)
    todo = [r.index for r in run.sent if r.spec.websocket is None]
    for r in run.sent:
        r.skipped = r.spec.websocket is not None

    def one(i: int) -> int:
        token = _owner.set(i)
        try:
            return _send_wsgi(app, run.prepared[i])
        finally:
            _owner.reset(token)

    with run:
        results = fan_out(one, todo, threads, timeout)
    for i, result in zip(todo, results, strict=True):
        run.outcome(i, result)
    return run.report(f"WSGI ({threads} threads)")


__all__ = [
    "TOKEN_HEADER",
    "Finding",
    "IsolationReport",
    "RequestSpec",
    "SentRequest",
    "check_isolation",
    "check_isolation_wsgi",
]
