"""The observer of a run: checks what each step of each request sees of ``request``,
``session``, ``g``, ``current_app`` and the named context variables against that
request's earlier steps; when the run ends, counts each request's teardown callbacks and
finds the contexts and tasks it left active."""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import re
import types
import typing as t
import weakref
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence

from werkzeug.wrappers import Response as _BaseResponse

from ..core.globals import _cv_app
from ..core.globals import _cv_request
from .report import Finding
from .report import SentRequest
from .report import TOKEN_HEADER

if t.TYPE_CHECKING:
    from ..app import Flask

_MISSING: t.Any = type("_Missing", (), {"__repr__": lambda self: "<unset>"})()

# Which request of the run the current thread or task is serving: set by the checker
# before it calls the entry point, so known independently of ctxflask's contexts.
serving: contextvars.ContextVar[int] = contextvars.ContextVar(
    "ctxflask.isolation.owner"
)


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


class Observer:
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

    def add_once(
        self,
        owner: int,
        key: tuple[str, int],
        step: str,
        kind: str,
        detail: str,
        other: int,
    ) -> None:
        """:meth:`add`, unless ``owner``'s request has been told of ``key`` already: a
        value seen again by the steps after it is named once."""
        flagged = self.states[owner].flagged
        if key not in flagged:
            flagged.add(key)
            self.add(owner, step, kind, detail, other)

    # -- one step ---------------------------------------------------------------------

    def enter(self, label: str, kind: str) -> int | None:
        """A step begins: check what it sees against its request's earlier steps."""
        owner = serving.get(None)
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
            self.add_once(
                owner,
                ("output", other),
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
                    self.add_once(
                        owner,
                        (name, other),
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
