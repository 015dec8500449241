"""How servers and tools find the app: ASGI 3 detection of the app object and of
``app.asgi``, and the instance folder."""

from __future__ import annotations

import sys

import pytest
import uvicorn.config

from ctxflask import Flask


@pytest.mark.parametrize("target", ["app", "app.asgi"])
def test_uvicorn_auto_detects_asgi3(target):
    app = Flask("detected")
    loaded = app if target == "app" else app.asgi
    config = uvicorn.config.Config(loaded)
    config.load()
    assert config.interface == "asgi3"


def test_uvicorn_factory_of_the_app_object_is_asgi3():
    config = uvicorn.config.Config(lambda: Flask("factory"), factory=True)
    config.load()
    assert config.interface == "asgi3"


def test_the_app_object_still_answers_wsgi_calls(app):
    @app.get("/")
    def index():
        return "wsgi"

    assert app.test_client().get("/").text == "wsgi"


def _make_package(root, name):
    package = root / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    return package


def test_instance_folder_is_beside_the_package(tmp_path, monkeypatch):
    _make_package(tmp_path / "project", "myapp")
    monkeypatch.syspath_prepend(str(tmp_path / "project"))
    app = Flask("myapp")
    assert app.instance_path == str(tmp_path / "project" / "instance")


def test_instance_folder_of_a_module_is_beside_it(tmp_path, monkeypatch):
    (tmp_path / "single.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert Flask("single").instance_path == str(tmp_path / "instance")


def test_instance_folder_of_an_installed_package_is_under_the_prefix(
    tmp_path, monkeypatch
):
    site = tmp_path / "prefix" / "lib" / "python3.11" / "site-packages"
    _make_package(site, "installedapp")
    monkeypatch.syspath_prepend(str(site))
    app = Flask("installedapp")
    assert app.instance_path == str(
        tmp_path / "prefix" / "var" / "installedapp-instance"
    )


def test_an_explicit_instance_path_must_be_absolute():
    with pytest.raises(ValueError, match="must be absolute"):
        Flask("x", instance_path="relative/path")
    assert Flask("x", instance_path=sys.prefix).instance_path == sys.prefix


def test_instance_folder_of_a_package_in_a_namespace_is_beside_its_part(
    tmp_path, monkeypatch
):
    # One namespace package spread over two folders: the app's instance folder sits
    # beside the part that holds the app's package, not beside the other part.
    other, own = tmp_path / "other", tmp_path / "own"
    _make_package(other / "spread", "elsewhere")
    _make_package(own / "spread", "myapp")
    (own / "spread" / "single.py").write_text("")
    monkeypatch.syspath_prepend(str(own))
    monkeypatch.syspath_prepend(str(other))
    for name in ("spread.myapp", "spread.single"):
        assert Flask(name).instance_path == str(own / "instance")
    # The namespace itself: its first part, as Flask.
    assert Flask("spread").instance_path == str(other / "instance")


def test_a_script_app_keeps_its_name_at_exit(tmp_path):
    # after_serving runs at exit under WSGI, when __main__ may have lost its __file__.
    import subprocess

    script = tmp_path / "myscript.py"
    script.write_text(
        "from ctxflask import Flask\n"
        "app = Flask(__name__)\n"
        "app.after_serving(lambda: print('name at exit:', app.name))\n"
        "app.get('/')(lambda: 'x')\n"
        "assert app.name == 'myscript'\n"
        "app.test_client().get('/')\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["name at exit: myscript"]
