"""Flask extensions' own test suites, run against Flask and against ctxflask:
``python -m ecosystem.run_suites --help``."""
