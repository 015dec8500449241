"""What the isolation checker is given and what it gives back: the requests to send
(:class:`RequestSpec`), the problems found (:class:`Finding`), the requests as sent
(:class:`SentRequest`) and the outcome of a run (:class:`IsolationReport`)."""

from __future__ import annotations

import dataclasses
import typing as t
from collections import Counter
from collections.abc import Mapping
from collections.abc import Sequence

#: The header that carries each request's token.
TOKEN_HEADER = "X-Isolation-Token"

#: The default of a spec's ``json``: no JSON body.
NOTHING: t.Any = type("_Nothing", (), {"__repr__": lambda self: "<none>"})()


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
    json: t.Any = NOTHING
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
