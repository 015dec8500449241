"""Sessions: the session object API, the interface an app uses to load and store sessions,
and the default implementation, which keeps the session in a signed cookie.

The cookie format (itsdangerous ``URLSafeTimedSerializer``, salt ``"cookie-session"``,
HMAC-SHA1, tagged JSON payload) is Flask's, so apps sharing a secret key can read each
other's session cookies.
"""

from __future__ import annotations

import collections.abc as cabc
import hashlib
import typing as t
from datetime import datetime
from datetime import UTC

from itsdangerous import BadData
from itsdangerous import URLSafeTimedSerializer
from werkzeug.datastructures import CallbackDict

from ..bridge import is_nonblocking
from ..bridge import nonblocking
from .json.tag import TaggedJSONSerializer

if t.TYPE_CHECKING:
    from _collections_abc import dict_items
    from _collections_abc import dict_keys
    from _collections_abc import dict_values

    from .app import App
    from .wrappers import Request
    from .wrappers import Response

__all__ = [
    "NullSession",
    "SecureCookieSession",
    "SecureCookieSessionInterface",
    "SessionInterface",
    "SessionMixin",
    "session_json_serializer",
]


class SessionMixin(cabc.MutableMapping[str, t.Any]):
    """The attributes a session has on top of the mapping interface.

    The class-level values are the safe assumptions for an implementation that tracks
    nothing: the session may have changed (so it is saved) and may have been read (so
    responses vary on the cookie).
    """

    @property
    def permanent(self) -> bool:
        """Whether the session outlives the browser session, stored as the
        ``"_permanent"`` key. A permanent session cookie expires after
        ``app.permanent_session_lifetime``."""
        return bool(self.get("_permanent", False))

    @permanent.setter
    def permanent(self, value: bool) -> None:
        self["_permanent"] = bool(value)

    #: Whether the session was just created. Implementations may not be able to tell; this
    #: default is always ``False``.
    new: bool = False

    #: Whether the session data changed during the request, which makes it be saved.
    modified: bool = True

    #: Whether the session was read or written during the request. A response gets
    #: ``Vary: Cookie`` when it is true, so caches do not share per-user pages. The request
    #: context sets it when it hands the session out (``session`` proxy).
    accessed: bool = False


def _on_session_update(session: SecureCookieSession) -> None:
    # A module-level function rather than a closure per session: it is stored on every
    # instance as ``on_update`` and called by CallbackDict after each change.
    session.modified = True
    session.accessed = True


class SecureCookieSession(CallbackDict[str, t.Any], SessionMixin):
    """A session stored in a signed cookie. It tracks its own use:

    - :attr:`modified` becomes true when the dict is changed. Changes *inside* mutable
      values (appending to a list in the session, say) cannot be seen: set
      ``session.modified = True`` after them, or the cookie is not updated.
    - :attr:`accessed` becomes true when the session is read or changed.

    Whether a session is new cannot be told apart from being empty, so :attr:`new` stays
    ``False``.
    """

    modified = False
    accessed = False

    def __init__(self, initial: cabc.Mapping[str, t.Any] | None = None) -> None:
        """Create a session holding a copy of ``initial``."""
        super().__init__(initial, _on_session_update)

    # Reads mark the session accessed. Flask 3.1.0-3.1.2 tracked ``[]``, ``get`` and
    # ``setdefault`` only; membership tests, iteration and ``len`` (truth tests) count too,
    # since a page that depends on them (``if "user" in session``) differs per user just the
    # same. (Flask 3.1.3 instead marks every use of the ``session`` proxy, which the request
    # context does here as well; this covers sessions used without the proxy.)

    def __getitem__(self, key: str) -> t.Any:
        self.accessed = True
        return super().__getitem__(key)

    def get(self, key: str, default: t.Any = None) -> t.Any:
        """Return the value for ``key``, or ``default``; marks the session accessed."""
        self.accessed = True
        return super().get(key, default)

    def setdefault(self, key: str, default: t.Any = None) -> t.Any:
        """Return the value for ``key``, storing ``default`` first if it is missing; marks
        the session accessed (and modified if it stored the value)."""
        self.accessed = True
        return super().setdefault(key, default)

    def __contains__(self, key: object) -> bool:
        self.accessed = True
        return super().__contains__(key)

    def __iter__(self) -> cabc.Iterator[str]:
        self.accessed = True
        return super().__iter__()

    def __len__(self) -> int:
        self.accessed = True
        return super().__len__()

    def keys(self) -> dict_keys[str, t.Any]:
        """The session's keys; marks the session accessed."""
        self.accessed = True
        return super().keys()

    def values(self) -> dict_values[str, t.Any]:
        """The session's values; marks the session accessed."""
        self.accessed = True
        return super().values()

    def items(self) -> dict_items[str, t.Any]:
        """The session's items; marks the session accessed."""
        self.accessed = True
        return super().items()


_no_secret_key_msg = """\
The session is unavailable because no secret key was set.

Sessions are stored in a cookie signed with the application's secret key, so they cannot be
written without one. Fix: set `app.secret_key` (or the `SECRET_KEY` config value) to a long,
random, secret value, such as the output of:

    python -c 'import secrets; print(secrets.token_hex())'\
"""


class NullSession(SecureCookieSession):
    """The session of a request when sessions are unavailable (by default: no secret key).

    It reads as an empty session, so code that only looks works; any change raises a
    :exc:`RuntimeError` that explains the cause and the fix.
    """

    def _fail(self) -> t.NoReturn:
        raise RuntimeError(_no_secret_key_msg)

    def __setitem__(self, key: str, value: t.Any) -> t.NoReturn:
        self._fail()

    def __delitem__(self, key: str) -> t.NoReturn:
        self._fail()

    def __ior__(self, other: t.Any) -> t.NoReturn:  # type: ignore[misc]
        self._fail()

    def clear(self) -> t.NoReturn:
        """Raise :exc:`RuntimeError`: a null session cannot be changed."""
        self._fail()

    def pop(self, *args: t.Any, **kwargs: t.Any) -> t.NoReturn:
        """Raise :exc:`RuntimeError`: a null session cannot be changed."""
        self._fail()

    def popitem(self) -> t.NoReturn:
        """Raise :exc:`RuntimeError`: a null session cannot be changed."""
        self._fail()

    def update(self, *args: t.Any, **kwargs: t.Any) -> t.NoReturn:
        """Raise :exc:`RuntimeError`: a null session cannot be changed."""
        self._fail()

    def setdefault(self, key: str, default: t.Any = None) -> t.NoReturn:
        """Raise :exc:`RuntimeError`: a null session cannot be changed."""
        self._fail()


class SessionInterface:
    """How an application loads and stores sessions. Replace the default by assigning an
    instance of a subclass to ``app.session_interface``.

    A subclass must implement :meth:`open_session` and :meth:`save_session`; the other
    methods have defaults that read the app's configuration. The session object must be a
    mutable mapping with the :class:`SessionMixin` attributes; subclassing :class:`dict`
    and :class:`SessionMixin` is the simplest way.

    Sessions of concurrent requests from one client are opened and saved in whatever order
    the requests start and finish, possibly at the same time: a server-side store must
    synchronize what needs it.

    ``open_session`` and ``save_session`` run like sync views: on a worker thread under
    ASGI, unless marked with :func:`ctxflask.bridge.nonblocking` (only for code that does no
    blocking I/O).
    """

    #: The class :meth:`make_null_session` instantiates and :meth:`is_null_session` checks.
    null_session_class: type[NullSession] = NullSession

    #: Whether the stored session data is pickled, for extensions to check.
    pickle_based: bool = False

    def make_null_session(self, app: App) -> NullSession:
        """Create the session used when :meth:`open_session` returns ``None``: a read-only
        empty session whose write attempts raise an explanatory error. Returns an instance
        of :attr:`null_session_class`."""
        return self.null_session_class()

    def is_null_session(self, obj: object) -> bool:
        """Whether ``obj`` is a null session (an instance of :attr:`null_session_class`).
        Null sessions are not saved."""
        return isinstance(obj, self.null_session_class)

    def get_cookie_name(self, app: App) -> str:
        """The session cookie's name: ``SESSION_COOKIE_NAME``."""
        return t.cast(str, app.config["SESSION_COOKIE_NAME"])

    def get_cookie_domain(self, app: App) -> str | None:
        """The cookie's ``Domain`` attribute: ``SESSION_COOKIE_DOMAIN``. ``None`` (the
        default) sends the cookie back to the exact host that set it only; a domain sends
        it to that domain's subdomains too."""
        return t.cast("str | None", app.config["SESSION_COOKIE_DOMAIN"])

    def get_cookie_path(self, app: App) -> str:
        """The cookie's ``Path`` attribute: ``SESSION_COOKIE_PATH``, or else
        ``APPLICATION_ROOT``, or else ``"/"``."""
        return t.cast(
            str,
            app.config["SESSION_COOKIE_PATH"] or app.config["APPLICATION_ROOT"] or "/",
        )

    def get_cookie_httponly(self, app: App) -> bool:
        """Whether the cookie is hidden from scripts: ``SESSION_COOKIE_HTTPONLY``."""
        return t.cast(bool, app.config["SESSION_COOKIE_HTTPONLY"])

    def get_cookie_secure(self, app: App) -> bool:
        """Whether the cookie is sent over HTTPS only: ``SESSION_COOKIE_SECURE``."""
        return t.cast(bool, app.config["SESSION_COOKIE_SECURE"])

    def get_cookie_samesite(self, app: App) -> str | None:
        """The cookie's ``SameSite`` attribute (``"Strict"``, ``"Lax"``, ``"None"``) or
        ``None`` for none: ``SESSION_COOKIE_SAMESITE``."""
        return t.cast("str | None", app.config["SESSION_COOKIE_SAMESITE"])

    def get_cookie_partitioned(self, app: App) -> bool:
        """Whether the cookie is partitioned (CHIPS): ``SESSION_COOKIE_PARTITIONED``."""
        return t.cast(bool, app.config["SESSION_COOKIE_PARTITIONED"])

    def get_expiration_time(self, app: App, session: SessionMixin) -> datetime | None:
        """When the session cookie expires: ``app.permanent_session_lifetime`` from now for
        a permanent session, ``None`` (when the browser closes) otherwise."""
        if session.permanent:
            return datetime.now(UTC) + app.permanent_session_lifetime
        return None

    def should_set_cookie(self, app: App, session: SessionMixin) -> bool:
        """Whether to send the session cookie with the response: when the session was
        modified, or, to push its expiry forward, when it is permanent and
        ``SESSION_REFRESH_EACH_REQUEST`` is true. Not consulted for an emptied session,
        whose cookie is deleted."""
        if session.modified:
            return True
        return bool(session.permanent and app.config["SESSION_REFRESH_EACH_REQUEST"])

    def open_session(self, app: App, request: Request) -> SessionMixin | None:
        """Load the session of ``request``. Called when the request context is pushed,
        before URL matching.

        Return a session object, or ``None`` when sessions are unavailable (not an error
        in itself): the app then uses :meth:`make_null_session`.
        """
        raise NotImplementedError

    def save_session(self, app: App, session: SessionMixin, response: Response) -> None:
        """Store ``session`` and update ``response`` accordingly (cookies, headers).
        Called after the response is made, before the request context is popped; skipped
        for null sessions."""
        raise NotImplementedError


#: The serializer of session data: tagged JSON, shared by all default interfaces. Register
#: extra tags on it to store other types in sessions.
session_json_serializer = TaggedJSONSerializer()


def _sha1(data: bytes = b"") -> t.Any:
    # Looked up on each call, not bound at import: FIPS-restricted builds may lack SHA-1,
    # and that must only fail for apps that actually sign with it.
    return hashlib.sha1(data)


class SecureCookieSessionInterface(SessionInterface):
    """Keep the whole session in a cookie, signed (not encrypted) with :mod:`itsdangerous`.

    Clients can read the data but cannot change it without the secret key. The signature
    carries a timestamp, so a cookie older than ``app.permanent_session_lifetime`` is
    rejected even if the client kept it. Without a secret key, sessions are unavailable
    (:class:`NullSession`).
    """

    #: Salt mixed into the secret key, separating session signatures from other uses of
    #: the key.
    salt: str = "cookie-session"
    #: The hash function of the signature.
    digest_method: t.Callable[..., t.Any] = staticmethod(_sha1)
    #: How itsdangerous derives the signing key from the secret key and salt.
    key_derivation: str = "hmac"
    #: Turns the session dict into the string that is signed, and back.
    serializer: TaggedJSONSerializer = session_json_serializer
    #: The class of the sessions opened.
    session_class: type[SecureCookieSession] = SecureCookieSession

    def get_signing_serializer(self, app: App) -> URLSafeTimedSerializer | None:
        """The itsdangerous serializer for the app's session cookies, or ``None`` if the
        app has no secret key.

        It signs with ``app.secret_key`` and also accepts signatures made with any key in
        ``SECRET_KEY_FALLBACKS``, so keys can be rotated without logging everyone out.
        """
        secret_key = app.secret_key
        if not secret_key:
            return None
        # itsdangerous verifies with every key of the list and signs with the last one.
        keys: list[str | bytes] = [
            *(app.config["SECRET_KEY_FALLBACKS"] or ()),
            secret_key,
        ]
        return URLSafeTimedSerializer(
            keys,  # type: ignore[arg-type]
            salt=self.salt,
            serializer=self.serializer,
            signer_kwargs={
                "key_derivation": self.key_derivation,
                "digest_method": self.digest_method,
            },
        )

    @nonblocking
    def open_session(self, app: App, request: Request) -> SecureCookieSession | None:
        """Load the session from the request's cookie.

        A missing, invalid, tampered with or expired cookie gives a new empty session
        (never an error: the client just starts over). ``None`` without a secret key.
        """
        signer = self.get_signing_serializer(app)
        if signer is None:
            return None
        cookie = request.cookies.get(self.get_cookie_name(app))
        if not cookie:
            return self.session_class()
        max_age = int(app.permanent_session_lifetime.total_seconds())
        try:
            data = signer.loads(cookie, max_age=max_age)
        except BadData:
            # Flask catches only BadSignature (bad, tampered with or expired signatures).
            # BadData adds BadPayload: a signed payload that fails to decompress or to load
            # as tagged JSON is just as unusable, and must not turn into a server error.
            return self.session_class()
        if not isinstance(data, dict):
            # Signed with this key and salt, but not by a session interface.
            return self.session_class()
        return self.session_class(data)

    @nonblocking
    def save_session(self, app: App, session: SessionMixin, response: Response) -> None:
        """Write the session to the response's cookie, delete the cookie, or leave it.

        - ``Vary: Cookie`` is added when the session was accessed, so caches keep
          responses per user.
        - An emptied session (changed to have no keys) has its cookie deleted; an empty
          untouched one sets nothing.
        - Otherwise the cookie is set when :meth:`should_set_cookie` says so, with the
          expiry from :meth:`get_expiration_time`.
        """
        # Read before anything below touches the session (which would mark it accessed).
        accessed = session.accessed
        modified = session.modified
        if accessed:
            response.vary.add("Cookie")

        name = self.get_cookie_name(app)
        domain = self.get_cookie_domain(app)
        path = self.get_cookie_path(app)
        secure = self.get_cookie_secure(app)
        partitioned = self.get_cookie_partitioned(app)
        samesite = self.get_cookie_samesite(app)
        httponly = self.get_cookie_httponly(app)

        if not session:
            if modified:
                # The deletion must match the cookie it replaces: browsers pick the cookie
                # by name, domain and path (and keep partitioned cookies in a separate
                # jar), and refuse SameSite=None or Partitioned cookies that lack Secure.
                response.delete_cookie(
                    name,
                    domain=domain,
                    path=path,
                    secure=secure,
                    partitioned=partitioned,
                    samesite=samesite,
                    httponly=httponly,
                )
                response.vary.add("Cookie")
            return

        if not self.should_set_cookie(app, session):
            return

        signer = self.get_signing_serializer(app)
        if signer is None:
            # Only reachable if the secret key was removed after the session was opened.
            raise RuntimeError(_no_secret_key_msg)
        value = signer.dumps(dict(session))
        response.set_cookie(
            name,
            value,
            expires=self.get_expiration_time(app, session),
            httponly=httponly,
            domain=domain,
            path=path,
            secure=secure,
            partitioned=partitioned,
            samesite=samesite,
        )
        response.vary.add("Cookie")


# -- how the pipeline opens sessions ---------------------------------------------------------


def open_session(app: App, request: Request) -> SessionMixin:
    """The session of ``request``: the app's interface opens it, or makes a null session
    when it cannot."""
    interface = app.session_interface
    session = interface.open_session(app, request)
    if session is None:
        session = interface.make_null_session(app)
    return session


# Whether a session interface opens at the start of each request (may do I/O), by
# interface (hashed by identity), for the few an app uses.
_eager: dict[SessionInterface, bool] = {}


def opens_eagerly(interface: SessionInterface) -> bool:
    """Whether ``interface`` opens the session through the bridge at the start of every
    request, and saves it at its end, as in Flask: an interface that may do I/O. The
    stock cookie interface (both methods marked nonblocking) opens on first use instead,
    so a request that never touches the session skips both."""
    eager = _eager.get(interface)
    if eager is None:
        eager = not (
            is_nonblocking(interface.open_session)
            and is_nonblocking(interface.save_session)
        )
        if len(_eager) < 64:
            _eager[interface] = eager
    return eager


def needs_refresh(app: App, request: Request) -> bool:
    """Whether the session cookie is to be sent again though the session was not read:
    Flask refreshes a permanent session's cookie on every request."""
    return (
        request._has_cookies
        and bool(app.config["SESSION_REFRESH_EACH_REQUEST"])
        and app.session_interface.get_cookie_name(app) in request.cookies
    )
