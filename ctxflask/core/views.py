"""Class-based views: :class:`View` and :class:`MethodView`, sync or async.

``SomeView.as_view(name)`` makes a view function for ``add_url_rule``. Whether that function
is ``def`` or ``async def`` follows the class, so the bridge runs it on the right side:

- a :class:`View` gets an ``async def`` view when its ``dispatch_request`` is ``async def``;
- a :class:`MethodView` that keeps the inherited ``dispatch_request`` calls its handler
  (``get``, ``post``, ...) directly: its view is ``async def`` when every handler is
  ``async def`` (awaited on the event loop under ASGI, on the thread's loop under WSGI),
  and ``def`` when every handler is sync (a worker thread under ASGI, the server's thread
  under WSGI). A class mixing both gets a ``def`` view that returns the async handler's
  coroutine, which the bridge then awaits on the event loop (under ASGI the call holds its
  worker thread until the coroutine ends: keep the handlers of one class of one kind to
  avoid that).
"""

from __future__ import annotations

import inspect
import typing as t
from collections.abc import Callable
from collections.abc import Collection

from ..bridge import is_async_callable
from . import typing as ft
from .globals import current_app
from .globals import request

#: The names of the methods of a :class:`MethodView` that handle HTTP methods.
http_method_funcs = frozenset(
    ["get", "post", "head", "options", "delete", "put", "trace", "patch"]
)


class View:
    """A view as a class: subclass it, implement :meth:`dispatch_request` (``def`` or
    ``async def``), and register ``YourView.as_view("name")``.

    Class attributes:

    - :attr:`methods`: the HTTP methods of the rule (default: those of ``add_url_rule``).
    - :attr:`provide_automatic_options`: answer OPTIONS automatically (default: yes).
    - :attr:`decorators`: decorators applied, first to last, to the view function.
    - :attr:`init_every_request`: make an instance per request (default) or one for all.
    """

    #: The HTTP methods the view is registered for; ``None``: ``GET`` (with ``HEAD`` and
    #: ``OPTIONS``), as ``add_url_rule`` does.
    methods: t.ClassVar[Collection[str] | None] = None

    #: Whether OPTIONS is answered automatically; ``None``: as ``add_url_rule`` decides.
    provide_automatic_options: t.ClassVar[bool | None] = None

    #: Decorators applied in order to the generated view function (the first one is the
    #: innermost, as the bottom one of stacked ``@`` lines). Decorating the class itself
    #: does not decorate the view function.
    decorators: t.ClassVar[list[Callable[..., t.Any]]] = []

    #: Make a new instance for every request (``True``), or one instance, at
    #: :meth:`as_view`, shared by every request (``False``: faster, but then attributes
    #: of ``self`` are shared by concurrent requests; use ``g`` for per-request data).
    init_every_request: t.ClassVar[bool] = True

    def dispatch_request(self) -> ft.ResponseReturnValue:
        """The view: return the response value. Receives the URL's variables as keyword
        arguments. Subclasses implement it, as ``def`` or ``async def``."""
        raise NotImplementedError(
            f"{type(self).__name__} does not implement dispatch_request(). Fix: define"
            " dispatch_request (def or async def) on the class, or subclass MethodView"
            " and define get(), post(), ..."
        )

    @classmethod
    def _dispatches_async(cls) -> bool:
        """Whether the view function of this class is ``async def``."""
        return is_async_callable(cls.dispatch_request)

    def _view_target(self) -> Callable[..., t.Any]:
        """What the view function calls with the URL's variables, for this request."""
        return self.dispatch_request

    @classmethod
    def as_view(
        cls, name: str, *class_args: t.Any, **class_kwargs: t.Any
    ) -> ft.RouteCallable:
        """Make the view function of this class, to register with ``add_url_rule``.

        The view creates the instance, ``cls(*class_args, **class_kwargs)``, per request
        (or once, now, when :attr:`init_every_request` is false) and calls its
        :meth:`dispatch_request` with the URL's variables. It is ``async def`` when the
        method it calls is (see the module's documentation), and carries ``view_class``
        (the class, used to make the instances: replaceable in tests), ``methods`` and
        ``provide_automatic_options``. An ``async def`` view makes its instances on the
        event loop: keep ``__init__`` free of blocking work, or set
        :attr:`init_every_request` to false.

        :param name: the view function's name, the default endpoint.
        :param class_args: positional arguments of the class.
        :param class_kwargs: keyword arguments of the class.
        :returns: the view function, decorated by :attr:`decorators`.
        """
        instance: Callable[[], View]
        if cls.init_every_request:

            def instance() -> View:
                # ``view`` as finally decorated: its ``view_class`` may be replaced.
                return t.cast(View, view.view_class(*class_args, **class_kwargs))

        else:
            shared = cls(*class_args, **class_kwargs)

            def instance() -> View:
                return shared

        if cls._dispatches_async():

            async def async_view(**kwargs: t.Any) -> ft.ResponseReturnValue:
                rv = instance()._view_target()(**kwargs)
                if inspect.isawaitable(rv):
                    rv = await rv
                return t.cast(ft.ResponseReturnValue, rv)

            view: t.Any = async_view
        else:

            def sync_view(**kwargs: t.Any) -> ft.ResponseReturnValue:
                # May return an async handler's coroutine: the bridge awaits it.
                return t.cast(
                    ft.ResponseReturnValue, instance()._view_target()(**kwargs)
                )

            view = sync_view

        if cls.decorators:
            view.__name__ = name
            view.__module__ = cls.__module__
            for decorator in cls.decorators:
                view = decorator(view)

        view.view_class = cls
        view.__name__ = name
        view.__doc__ = cls.__doc__
        view.__module__ = cls.__module__
        view.methods = cls.methods
        view.provide_automatic_options = cls.provide_automatic_options
        return t.cast(ft.RouteCallable, view)


class MethodView(View):
    """A view whose methods ``get``, ``post``, ``put``, ... (``def`` or ``async def``)
    handle the HTTP methods of the same names; ``HEAD`` falls back to ``get``.

    :attr:`methods` is set from the handlers the class defines or inherits (unless the
    class sets it), so a request with another method gets 405.
    """

    def __init_subclass__(cls, **kwargs: t.Any) -> None:
        super().__init_subclass__(**kwargs)
        if "methods" in cls.__dict__:
            return
        methods: set[str] = set()
        for base in cls.__bases__:
            base_methods = getattr(base, "methods", None)
            if base_methods:
                methods.update(base_methods)
        for name in http_method_funcs:
            if hasattr(cls, name):
                methods.add(name.upper())
        if methods:
            cls.methods = methods

    def _handler(self) -> Callable[..., t.Any]:
        method = request.method
        handler = getattr(self, method.lower(), None)
        if handler is None and method == "HEAD":
            handler = getattr(self, "get", None)
        if handler is None:
            raise AssertionError(
                f"Unimplemented method {method!r}: {type(self).__name__} lists it in"
                f" 'methods' but defines no {method.lower()}(). Fix: define it, or remove"
                " it from 'methods'."
            )
        return t.cast(Callable[..., t.Any], handler)

    @classmethod
    def _keeps_dispatch(cls) -> bool:
        return cls.dispatch_request is MethodView.dispatch_request

    @classmethod
    def _dispatches_async(cls) -> bool:
        if not cls._keeps_dispatch():
            return super()._dispatches_async()
        handlers = [
            getattr(cls, name)
            for name in http_method_funcs
            if getattr(cls, name, None) is not None
        ]
        return bool(handlers) and all(is_async_callable(h) for h in handlers)

    def _view_target(self) -> Callable[..., t.Any]:
        if type(self)._keeps_dispatch():
            return self._handler()
        return self.dispatch_request

    def dispatch_request(self, **kwargs: t.Any) -> ft.ResponseReturnValue:
        """Call the handler of the request's method with the URL's variables and return
        its result (an ``async def`` handler is run to completion, as Flask's
        ``ensure_sync`` does, for subclasses that call ``super().dispatch_request()``).

        The view function of a class that does not override this calls the handler
        itself, so that an async handler is awaited on the event loop.
        """
        return t.cast(
            ft.ResponseReturnValue, current_app.ensure_sync(self._handler())(**kwargs)
        )
