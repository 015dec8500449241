"""The application that tests/test_servers.py serves with real servers."""
