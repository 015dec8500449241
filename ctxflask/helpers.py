"""Flask's module path ``flask.helpers``: the names of :mod:`ctxflask.core.helpers`."""

from __future__ import annotations

from .core.helpers import abort as abort
from .core.helpers import cancel_on_disconnect as cancel_on_disconnect
from .core.helpers import flash as flash
from .core.helpers import get_debug_flag as get_debug_flag
from .core.helpers import get_flashed_messages as get_flashed_messages
from .core.helpers import get_load_dotenv as get_load_dotenv
from .core.helpers import get_root_path as get_root_path
from .core.helpers import get_template_attribute as get_template_attribute
from .core.helpers import make_response as make_response
from .core.helpers import redirect as redirect
from .core.helpers import send_file as send_file
from .core.helpers import send_from_directory as send_from_directory
from .core.helpers import stream_request_body as stream_request_body
from .core.helpers import stream_with_context as stream_with_context
from .core.helpers import url_for as url_for
