"""Notes: a small note-taking application, written as a Flask application is written
(an application factory, blueprints, templates, a SQLite database, a CLI command), on
ctxflask, so that it serves WSGI and ASGI from the same object."""

from __future__ import annotations

import os
from datetime import date

from ctxflask import Flask
from ctxflask import render_template


def create_app(test_config=None):
    """Create and configure the application.

    :param test_config: a mapping that replaces the instance folder's ``config.py``
        (used by the tests).
    """
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(
        # Replace it in production: put SECRET_KEY = "..." in instance/config.py.
        SECRET_KEY="dev",
        DATABASE=os.path.join(app.instance_path, "notes.sqlite"),
        SITE_NAME="Notes",
    )
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
    else:
        app.config.from_mapping(test_config)

    from . import api
    from . import auth
    from . import db
    from . import notes

    db.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(notes.bp)
    app.register_blueprint(api.bp)

    @app.context_processor
    def inject_site():
        return {"site_name": app.config["SITE_NAME"], "year": date.today().year}

    @app.template_filter("excerpt")
    def excerpt(text, words=8):
        """The first ``words`` words of ``text``, with an ellipsis when cut."""
        parts = text.split()
        if len(parts) <= words:
            return " ".join(parts)
        return " ".join(parts[:words]) + " …"

    @app.errorhandler(404)
    def page_not_found(error):
        return render_template("404.html"), 404

    return app
