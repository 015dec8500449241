"""The application object for servers, which import a module and take a name from it.

WSGI: ``gunicorn wsgi:app``; ASGI: ``uvicorn wsgi:app.asgi`` (or ``hypercorn``).
"""

from notes import create_app

app = create_app()
