"""The protocol-free core of ctxflask: the application (:class:`~.app.App`), its
configuration, routing and registration, contexts and their globals, request and response
wrappers, sessions, signals, templates and JSON. See README.md beside this file for its
rule."""
