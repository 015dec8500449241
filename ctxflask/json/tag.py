"""Flask's module path ``flask.json.tag``: the names of :mod:`ctxflask.core.json.tag`."""

from __future__ import annotations

from ..core.json.tag import JSONTag as JSONTag
from ..core.json.tag import PassDict as PassDict
from ..core.json.tag import PassList as PassList
from ..core.json.tag import TagBytes as TagBytes
from ..core.json.tag import TagDateTime as TagDateTime
from ..core.json.tag import TagDict as TagDict
from ..core.json.tag import TaggedJSONSerializer as TaggedJSONSerializer
from ..core.json.tag import TagMarkup as TagMarkup
from ..core.json.tag import TagTuple as TagTuple
from ..core.json.tag import TagUUID as TagUUID
