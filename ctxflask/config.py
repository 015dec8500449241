"""Flask's module path ``flask.config``: the names of :mod:`ctxflask.core.config`."""

from __future__ import annotations

from .core.config import Config as Config
from .core.config import ConfigAttribute as ConfigAttribute
from .core.config import T as T
