"""Flask's module path ``flask.json``: the names of :mod:`ctxflask.core.json`."""

from __future__ import annotations

from ..core.json import dump as dump
from ..core.json import dumps as dumps
from ..core.json import jsonify as jsonify
from ..core.json import load as load
from ..core.json import loads as loads
