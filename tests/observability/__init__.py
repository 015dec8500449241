"""Checks of OpenTelemetry's and Sentry's integrations, each run in a process of its own
by ``tests/test_observability.py`` (``python -m tests.observability.checks NAME``)."""
