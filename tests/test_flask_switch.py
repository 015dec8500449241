"""``ctxflask.install_as_flask()``: ``flask`` and its module paths are ctxflask's, and the
metadata of ``flask`` is ctxflask's, even with the real Flask installed.

The switch changes the process for good (``sys.meta_path``, ``sys.modules``), and other
tests import the real ``flask``: every test that installs it runs in a subprocess.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from jinja2 import DictLoader
from werkzeug.routing import RequestRedirect

import ctxflask
from ctxflask.debughelpers import attach_enctype_error_multidict
from ctxflask.debughelpers import DebugFilesKeyError
from ctxflask.debughelpers import explain_template_loading_attempts
from ctxflask.debughelpers import FormDataRoutingRedirect
from ctxflask.debughelpers import UnexpectedUnicodeError

ROOT = Path(__file__).resolve().parent.parent

# Flask 3.1's module paths and the ctxflask modules that must answer for them.
PATHS = {
    "flask.app": "ctxflask.app",
    "flask.blueprints": "ctxflask.blueprints",
    "flask.cli": "ctxflask.cli",
    "flask.config": "ctxflask.config",
    "flask.ctx": "ctxflask.ctx",
    "flask.debughelpers": "ctxflask.debughelpers",
    "flask.globals": "ctxflask.globals",
    "flask.helpers": "ctxflask.helpers",
    "flask.json": "ctxflask.json",
    "flask.json.provider": "ctxflask.json.provider",
    "flask.json.tag": "ctxflask.json.tag",
    "flask.logging": "ctxflask.logging",
    "flask.sansio": "ctxflask.core",
    "flask.sansio.app": "ctxflask.core.app",
    "flask.sansio.blueprints": "ctxflask.core.blueprints",
    "flask.sansio.scaffold": "ctxflask.core.scaffold",
    "flask.sessions": "ctxflask.sessions",
    "flask.signals": "ctxflask.signals",
    "flask.templating": "ctxflask.templating",
    "flask.testing": "ctxflask.testing",
    "flask.typing": "ctxflask.typing",
    "flask.views": "ctxflask.views",
    "flask.wrappers": "ctxflask.wrappers",
    "flask.__main__": "ctxflask.__main__",
}

# The first lines of every subprocess: the switch, before anything imports flask.
SWITCH = """\
import sys
import ctxflask
ctxflask.install_as_flask()
"""


def run(code: str, *, switch: bool = True) -> str:
    """Run ``code`` in a fresh interpreter (warnings are errors, as in this suite) and
    return its output; fail with its stderr when it fails."""
    source = (SWITCH if switch else "") + textwrap.dedent(code)
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", source],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_every_flask_module_path_is_the_ctxflask_module():
    run(
        f"""
        import importlib
        import importlib.util
        import flask
        import flask.json.provider
        from flask.sansio.app import App

        for name, target in {PATHS!r}.items():
            module = importlib.import_module(name)
            assert module is importlib.import_module(target), name
            assert sys.modules[name] is module, name
            # The module keeps its own spec, whatever name it was imported under.
            assert module.__spec__.name == target, (name, module.__spec__)
            assert importlib.util.find_spec(target) is module.__spec__, name

        assert flask.Flask is ctxflask.Flask
        assert flask.Blueprint is ctxflask.Blueprint
        assert flask.ctx.AppContext is ctxflask.ctx.AppContext
        assert flask.globals.request is ctxflask.request
        assert flask.json.provider.DefaultJSONProvider.__module__.startswith("ctxflask.")
        assert App is ctxflask.core.app.App and issubclass(flask.Flask, App)
        assert issubclass(flask.Blueprint, flask.sansio.blueprints.Blueprint)

        # Not a byte of the installed Flask was loaded.
        files = [getattr(m, "__file__", None) or "" for m in list(sys.modules.values())]
        assert not [f for f in files if "site-packages/flask/" in f]

        # Paths Flask does not have are missing, not loaded twice from ctxflask's folders.
        for missing in ("flask.nothing", "flask.sansio.routing", "flask.cli.commands"):
            try:
                importlib.import_module(missing)
            except ModuleNotFoundError as e:
                assert e.name == missing and "ctxflask" in str(e), e
            else:
                raise AssertionError(missing)
        """
    )


def test_the_flask_module_forwards_to_ctxflask():
    out = run(
        """
        import flask

        assert sys.modules["flask"] is flask and flask is not ctxflask
        assert flask.__all__ == ctxflask.__all__
        names = {}
        exec("from flask import *", names)
        assert {n for n in names if n != "__builtins__"} == set(ctxflask.__all__)
        assert all(names[n] is getattr(ctxflask, n) for n in ctxflask.__all__)
        assert {"Flask", "request", "json", "__all__"} <= set(dir(flask))
        assert flask.websocket is ctxflask.websocket
        for absent in ("nothing", "__file__", "__wrapped__"):
            assert not hasattr(flask, absent), absent
        try:
            from flask import nothing
        except ImportError as e:
            assert "nothing" in str(e)
        else:
            raise AssertionError
        print(repr(flask))
        """
    )
    assert "ctxflask" in out


def test_flask_version_is_deprecated_as_in_flask_and_ctxflasks_own_is_untouched():
    run(
        """
        import importlib.metadata
        import warnings

        before = getattr(ctxflask, "__version__", None)
        import flask

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            version = flask.__version__
        assert version == "3.1.3", version
        [warning] = caught
        assert warning.category is DeprecationWarning
        assert "importlib.metadata.version" in str(warning.message)
        assert warning.filename == "<string>"  # blamed on the caller

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert getattr(ctxflask, "__version__", None) == before
        assert before in (None, "0.1.0"), before
        assert importlib.metadata.version("ctxflask") == "0.1.0"
        """
    )


def test_the_metadata_of_flask_is_ctxflasks_although_flask_is_installed():
    run(
        """
        import importlib.metadata as md
        import importlib.util
        from importlib.machinery import PathFinder

        # The real Flask is installed...
        assert PathFinder.find_spec("flask") is not None
        real = md.MetadataPathFinder.find_distributions(md.DistributionFinder.Context(name="flask"))
        assert [d.version for d in real] == ["3.1.3"]

        # ...and loses: the switch is first on sys.meta_path.
        assert type(sys.meta_path[0]).__module__ == "ctxflask.flask_switch"
        assert importlib.util.find_spec("flask").loader is sys.meta_path[0]
        for name in ("flask", "Flask", "FLASK"):
            assert md.version(name) == "3.1.3", name
        dist = md.distribution("flask")
        assert dist.metadata["Name"] == "Flask"
        assert dist.metadata["Version"] == "3.1.3"
        assert "ctxflask" in dist.metadata["Summary"]
        assert dist.requires == ["ctxflask"]
        assert dist.files == []
        assert list(dist.entry_points) == []
        assert "Flask" in md.packages_distributions()["flask"]
        # Other distributions are untouched.
        assert md.version("werkzeug") == md.distribution("Werkzeug").version
        """
    )


def test_installing_twice_installs_nothing_twice():
    run(
        """
        import flask

        finders = list(sys.meta_path)
        ctxflask.install_as_flask()
        assert sys.meta_path == finders
        assert sum(type(f).__module__ == "ctxflask.flask_switch" for f in finders) == 1
        import flask as again

        assert again is flask
        """
    )


def test_the_real_flask_imported_first_is_an_error_with_the_fix():
    out = run(
        """
        import sys
        import flask
        import ctxflask

        finders = list(sys.meta_path)
        try:
            ctxflask.install_as_flask()
        except RuntimeError as e:
            print(e)
        else:
            raise AssertionError("installed over the real Flask")
        assert sys.meta_path == finders
        assert flask.Flask is not ctxflask.Flask
        """,
        switch=False,
    )
    assert "flask is already imported" in out
    assert "before anything imports flask" in out
    assert "conftest.py" in out


def test_python_m_flask_runs_the_ctxflask_command():
    out = run(
        """
        import runpy

        sys.argv = ["flask", "--version"]
        try:
            runpy.run_module("flask", run_name="__main__", alter_sys=True)
        except SystemExit as e:
            assert e.code in (None, 0), e.code
        """
    )
    assert "ctxflask 0.1.0" in out


def test_an_app_written_against_flask_runs_through_both_clients():
    out = run(
        """
        import flask
        from flask import Blueprint, Flask, g, jsonify, request, session
        from flask.testing import FlaskClient

        class Client(FlaskClient):
            def get_json(self, url):
                response = self.get(url)
                assert response.status_code == 200, response.data
                return response.get_json()

        app = Flask(__name__)
        app.secret_key = "secret"
        app.test_client_class = Client
        bp = Blueprint("bp", __name__, url_prefix="/bp")

        @bp.get("/where")
        async def where():
            return {"blueprint": request.blueprint, "user": g.user}

        app.register_blueprint(bp)

        @app.before_request
        def load_user():
            g.user = request.args.get("user", "anonymous")

        @app.get("/count")
        def count():
            session["n"] = session.get("n", 0) + 1
            return jsonify(n=session["n"], user=g.user)

        for asgi in (False, True):
            client = app.test_client(asgi=asgi)
            assert isinstance(client, Client)
            assert client.get_json("/count?user=ann") == {"n": 1, "user": "ann"}
            assert client.get_json("/count") == {"n": 2, "user": "anonymous"}
            assert client.get_json("/bp/where") == {"blueprint": "bp", "user": "anonymous"}
            print("ok", asgi)
        """
    )
    assert out.split("\n") == ["ok False", "ok True", ""]


def test_flask_login_and_flask_sqlalchemy_run_on_ctxflask():
    out = run(
        """
        from flask import Flask
        from flask_login import LoginManager, UserMixin, current_user, login_required
        from flask_login import login_user
        from flask_sqlalchemy import SQLAlchemy
        from sqlalchemy.orm import Mapped, mapped_column

        db = SQLAlchemy()

        class User(UserMixin, db.Model):
            id: Mapped[int] = mapped_column(primary_key=True)
            name: Mapped[str]

        app = Flask(__name__)
        app.config.update(SECRET_KEY="secret", SQLALCHEMY_DATABASE_URI="sqlite://")
        db.init_app(app)
        login_manager = LoginManager(app)

        @login_manager.user_loader
        def load_user(user_id):
            return db.session.get(User, int(user_id))

        @app.post("/login/<name>")
        def login(name):
            user = db.session.execute(db.select(User).filter_by(name=name)).scalar_one()
            login_user(user)
            return {"id": user.id}

        @app.get("/me")
        @login_required
        def me():
            count = db.session.scalar(db.select(db.func.count(User.id)))
            return {"name": current_user.name, "users": count}

        with app.app_context():
            db.create_all()
            db.session.add_all([User(name="ann"), User(name="bob")])
            db.session.commit()

        for asgi, name in ((False, "ann"), (True, "bob")):
            client = app.test_client(asgi=asgi)
            assert client.get("/me").status_code == 401
            assert client.post(f"/login/{name}").status_code == 200
            response = client.get("/me")
            assert response.get_json() == {"name": name, "users": 2}, response.data
            print("ok", asgi)
        """
    )
    assert out.split("\n") == ["ok False", "ok True", ""]


# -- ctxflask.debughelpers, Flask's module path flask.debughelpers ---------------------------


def test_form_data_routing_redirect_is_the_one_the_app_raises(app, monkeypatch):
    app.debug = True

    @app.post("/user/")
    def user():
        return "never"

    # A 301 would make the browser drop the form: explained in debug mode.
    monkeypatch.setattr(RequestRedirect, "code", 301)
    client = app.test_client()
    with pytest.raises(FormDataRoutingRedirect, match="canonical URL"):
        client.post("/user", data={"status": "sent"})


def test_a_missing_file_sent_as_a_form_field_is_explained(app):
    with app.test_request_context(
        "/", method="POST", data={"upload": "photo.png", "other": "x"}
    ):
        request = ctxflask.request._get_current_object()
        attach_enctype_error_multidict(request)
        files_class = type(request.files)
        with pytest.raises(DebugFilesKeyError) as caught:
            request.files["upload"]
        with pytest.raises(KeyError) as plain:
            request.files["absent"]
    message = str(caught.value)
    assert "no file contents were transmitted" in message
    assert 'enctype="multipart/form-data"' in message
    assert "This was submitted: 'photo.png'" in message
    assert not isinstance(plain.value, DebugFilesKeyError)
    assert files_class.__name__ == "ImmutableMultiDict"
    assert issubclass(DebugFilesKeyError, KeyError)
    assert issubclass(UnexpectedUnicodeError, UnicodeError)


def test_template_loading_attempts_are_logged(app, caplog):
    bp = ctxflask.Blueprint("admin", "admin_pkg")
    app.register_blueprint(bp)
    loader = DictLoader({"index.html": "hi"})
    attempts = [
        (loader, app, ("hi", "/templates/index.html", None)),
        (loader, bp, None),
    ]
    with caplog.at_level(logging.INFO, logger=app.logger.name):
        explain_template_loading_attempts(app, "index.html", attempts)
        explain_template_loading_attempts(app, "gone.html", [(loader, bp, None)])
    found, missing = (r.getMessage() for r in caplog.records)
    assert "Locating template 'index.html'" in found
    assert "1: trying loader of application 'flask_test'" in found
    assert "-> found ('/templates/index.html')" in found
    assert "2: trying loader of blueprint 'admin' (admin_pkg)" in found
    assert "-> no match" in found
    assert "class: jinja2.loaders.DictLoader" in found
    assert "Error: the template could not be found." in missing
