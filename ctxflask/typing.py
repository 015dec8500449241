"""Flask's module path ``flask.typing``: the names of :mod:`ctxflask.core.typing`."""

from __future__ import annotations

from .core.typing import AfterRequestCallable as AfterRequestCallable
from .core.typing import AfterWebsocketCallable as AfterWebsocketCallable
from .core.typing import AppOrBlueprintKey as AppOrBlueprintKey
from .core.typing import BeforeFirstRequestCallable as BeforeFirstRequestCallable
from .core.typing import BeforeRequestCallable as BeforeRequestCallable
from .core.typing import ErrorHandlerCallable as ErrorHandlerCallable
from .core.typing import HeadersValue as HeadersValue
from .core.typing import HeaderValue as HeaderValue
from .core.typing import ResponseClass as ResponseClass
from .core.typing import ResponseReturnValue as ResponseReturnValue
from .core.typing import ResponseValue as ResponseValue
from .core.typing import RouteCallable as RouteCallable
from .core.typing import ServingCallable as ServingCallable
from .core.typing import ShellContextProcessorCallable as ShellContextProcessorCallable
from .core.typing import TeardownCallable as TeardownCallable
from .core.typing import (
    TemplateContextProcessorCallable as TemplateContextProcessorCallable,
)
from .core.typing import TemplateFilterCallable as TemplateFilterCallable
from .core.typing import TemplateGlobalCallable as TemplateGlobalCallable
from .core.typing import TemplateTestCallable as TemplateTestCallable
from .core.typing import URLDefaultCallable as URLDefaultCallable
from .core.typing import URLValuePreprocessorCallable as URLValuePreprocessorCallable
