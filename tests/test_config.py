from __future__ import annotations

import json
import os
import sys
import textwrap
import tomllib
import types
import typing as t
from datetime import timedelta
from pathlib import Path

import pytest
from werkzeug.utils import ImportStringError

from ctxflask.config import Config
from ctxflask.config import ConfigAttribute


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Remove variables the tests use as prefixes, so the host environment cannot leak in."""
    for name in list(os.environ):
        if name.startswith(("FLASK_", "CTXTEST_")):
            monkeypatch.delenv(name)
    return monkeypatch


# -- construction and repr ------------------------------------------------------------


def test_init_defaults_and_root_path(tmp_path: Path) -> None:
    defaults = {"A": 1}
    config = Config(tmp_path, defaults)
    assert config == {"A": 1}
    assert config.root_path == tmp_path
    config["B"] = 2
    assert defaults == {"A": 1}, "defaults must be copied, not aliased"
    assert isinstance(config, dict)


def test_init_without_defaults(tmp_path: Path) -> None:
    assert Config(str(tmp_path)) == {}


def test_repr(tmp_path: Path) -> None:
    assert repr(Config(tmp_path, {"A": 1})) == "<Config {'A': 1}>"

    class MyConfig(Config):
        pass

    assert repr(MyConfig(tmp_path)) == "<MyConfig {}>"


# -- from_pyfile ----------------------------------------------------------------------


def test_from_pyfile_relative_to_root_path(tmp_path: Path) -> None:
    write(
        tmp_path / "settings.cfg",
        """
        TEST_KEY = "foo"
        SECRET_KEY = "config"
        lower_value = 1
        _PRIVATE = 2
        FILE = __file__
        """,
    )
    config = Config(tmp_path)
    assert config.from_pyfile("settings.cfg") is True
    assert config["TEST_KEY"] == "foo"
    assert config["SECRET_KEY"] == "config"
    assert "lower_value" not in config
    assert config["_PRIVATE"] == 2  # "_PRIVATE".isupper() is true
    assert config["FILE"] == str(tmp_path / "settings.cfg")


def test_from_pyfile_absolute_path_and_pathlike(tmp_path: Path) -> None:
    path = write(tmp_path / "abs.py", "X = 1\n")
    config = Config("/nonexistent-root")
    assert config.from_pyfile(path) is True
    assert config["X"] == 1


def test_from_pyfile_honours_coding_declaration(tmp_path: Path) -> None:
    (tmp_path / "latin.cfg").write_bytes(b"# -*- coding: latin-1 -*-\nNAME = '\xe9'\n")
    config = Config(tmp_path)
    config.from_pyfile("latin.cfg")
    assert config["NAME"] == "é"


def test_from_pyfile_missing_raises_with_clear_message(tmp_path: Path) -> None:
    config = Config(tmp_path)
    with pytest.raises(FileNotFoundError) as exc_info:
        config.from_pyfile("missing.cfg")
    error = exc_info.value
    assert str(error).startswith(
        "[Errno 2] Unable to load configuration file (No such file or directory):"
    )
    assert str(error).endswith("missing.cfg'")
    notes = "\n".join(getattr(error, "__notes__", []))
    assert str(tmp_path) in notes
    assert "silent=True" in notes
    assert config == {}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("missing.cfg", id="ENOENT"),
        pytest.param("a_directory", id="EISDIR"),
        pytest.param("a_file/inside.cfg", id="ENOTDIR"),
    ],
)
def test_from_pyfile_silent(tmp_path: Path, name: str) -> None:
    (tmp_path / "a_directory").mkdir()
    (tmp_path / "a_file").write_text("")
    config = Config(tmp_path)
    assert config.from_pyfile(name, silent=True) is False
    assert config == {}


def test_from_pyfile_directory_not_silent(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError, match="Unable to load configuration file"):
        Config(tmp_path).from_pyfile(tmp_path)


def test_from_pyfile_errors_in_the_file_propagate(tmp_path: Path) -> None:
    write(tmp_path / "bad.cfg", "X = 1 / 0\n")
    with pytest.raises(ZeroDivisionError):
        Config(tmp_path).from_pyfile("bad.cfg")

    write(tmp_path / "syntax.cfg", "X = (\n")
    with pytest.raises(SyntaxError):
        Config(tmp_path).from_pyfile("syntax.cfg")


def test_from_pyfile_oserror_inside_file_is_not_silenced(tmp_path: Path) -> None:
    write(tmp_path / "opens.cfg", "open('does-not-exist.txt')\n")
    with pytest.raises(FileNotFoundError) as exc_info:
        Config(tmp_path).from_pyfile("opens.cfg", silent=True)
    assert "Unable to load configuration file" not in str(exc_info.value)


# -- from_envvar ----------------------------------------------------------------------


def test_from_envvar_loads_file(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "env.cfg", "FROM_ENV = 'yes'\n")
    clean_env.setenv("CTXTEST_SETTINGS", str(path))
    config = Config(tmp_path)
    assert config.from_envvar("CTXTEST_SETTINGS") is True
    assert config["FROM_ENV"] == "yes"


def test_from_envvar_relative_to_root_path(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "env.cfg", "FROM_ENV = 'relative'\n")
    clean_env.setenv("CTXTEST_SETTINGS", "env.cfg")
    config = Config(tmp_path)
    config.from_envvar("CTXTEST_SETTINGS")
    assert config["FROM_ENV"] == "relative"


@pytest.mark.parametrize("value", [None, ""], ids=["unset", "empty"])
def test_from_envvar_unset_raises(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is not None:
        clean_env.setenv("CTXTEST_SETTINGS", value)
    with pytest.raises(RuntimeError) as exc_info:
        Config(tmp_path).from_envvar("CTXTEST_SETTINGS")
    message = str(exc_info.value)
    assert "'CTXTEST_SETTINGS' is not set" in message
    assert "silent=True" in message


def test_from_envvar_unset_silent(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    config = Config(tmp_path)
    assert config.from_envvar("CTXTEST_SETTINGS", silent=True) is False
    assert config == {}


def test_from_envvar_missing_file(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("CTXTEST_SETTINGS", "missing.cfg")
    config = Config(tmp_path)
    with pytest.raises(FileNotFoundError, match="Unable to load configuration file"):
        config.from_envvar("CTXTEST_SETTINGS")
    assert config.from_envvar("CTXTEST_SETTINGS", silent=True) is False


# -- from_prefixed_env ----------------------------------------------------------------


def test_from_prefixed_env_parses_json(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("FLASK_STRING", "value")
    clean_env.setenv("FLASK_BOOL", "true")
    clean_env.setenv("FLASK_INT", "1")
    clean_env.setenv("FLASK_FLOAT", "1.2")
    clean_env.setenv("FLASK_LIST", "[1, 2]")
    clean_env.setenv("FLASK_DICT", '{"k": "v"}')
    clean_env.setenv("FLASK_NULL", "null")
    clean_env.setenv("FLASK_lower", "kept")
    clean_env.setenv("NOT_FLASK_OTHER", "other")
    clean_env.setenv("FLASKNOUNDERSCORE", "x")

    config = Config(tmp_path)
    assert config.from_prefixed_env() is True
    assert config == {
        "STRING": "value",
        "BOOL": True,
        "INT": 1,
        "FLOAT": 1.2,
        "LIST": [1, 2],
        "DICT": {"k": "v"},
        "NULL": None,
        "lower": "kept",
    }


def test_from_prefixed_env_custom_prefix_and_loads(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("CTXTEST_A", "a value")
    clean_env.setenv("CTXTEST_B", "b value")
    clean_env.setenv("FLASK_A", "ignored")

    def loads(value: str) -> t.Any:
        if value.startswith("b"):
            raise ValueError("not loadable")
        return value.upper()

    config = Config(tmp_path)
    config.from_prefixed_env("CTXTEST", loads=loads)
    assert config == {"A": "A VALUE", "B": "b value"}


def test_from_prefixed_env_nested(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("FLASK_EXIST__ok", "other")
    clean_env.setenv("FLASK_EXIST__inner__ik", "2")
    clean_env.setenv("FLASK_EXIST__new__more", '{"k": false}')
    clean_env.setenv("FLASK_NEW__K", "v")

    config = Config(
        tmp_path, {"EXIST": {"ok": "value", "flag": True, "inner": {"ik": 1}}}
    )
    config.from_prefixed_env()
    assert config["EXIST"] == {
        "ok": "other",
        "flag": True,
        "inner": {"ik": 2},
        "new": {"more": {"k": False}},
    }
    assert config["NEW"] == {"K": "v"}


def test_from_prefixed_env_sorted_order(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    # "FLASK_DB" sorts before "FLASK_DB__PORT", so the nested key lands in the loaded dict.
    clean_env.setenv("FLASK_DB__PORT", "5432")
    clean_env.setenv("FLASK_DB", '{"HOST": "localhost"}')
    config = Config(tmp_path)
    config.from_prefixed_env()
    assert config["DB"] == {"HOST": "localhost", "PORT": 5432}


def test_from_prefixed_env_nested_through_non_dict(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("FLASK_DB__HOST", "x")
    config = Config(tmp_path, {"DB": "sqlite://"})
    with pytest.raises(TypeError) as exc_info:
        config.from_prefixed_env()
    message = str(exc_info.value)
    assert "'FLASK_DB__HOST'" in message
    assert "'DB' is of type str, not a dict" in message
    assert config["DB"] == "sqlite://"


def test_from_prefixed_env_nothing_matching(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    config = Config(tmp_path, {"A": 1})
    assert config.from_prefixed_env() is True
    assert config == {"A": 1}


# -- from_object ----------------------------------------------------------------------


class _Base:
    TEST_KEY = "foo"
    SECRET_KEY = "config"
    lowercase = "skipped"


class _Derived(_Base):
    SECRET_KEY = "derived"


class _WithProperty:
    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def DATABASE_URI(self) -> str:
        return f"sqlite:///{self.name}"


def test_from_object_class_includes_inherited(tmp_path: Path) -> None:
    config = Config(tmp_path)
    assert config.from_object(_Derived) is None  # type: ignore[func-returns-value]
    assert config == {"TEST_KEY": "foo", "SECRET_KEY": "derived"}


def test_from_object_instance(tmp_path: Path) -> None:
    config = Config(tmp_path)
    config.from_object(_WithProperty("app.db"))
    assert config == {"DATABASE_URI": "sqlite:///app.db"}


def test_from_object_module(tmp_path: Path) -> None:
    module = types.ModuleType("fake_settings")
    module.DEBUG = True  # type: ignore[attr-defined]
    module.helper = "skipped"  # type: ignore[attr-defined]
    config = Config(tmp_path)
    config.from_object(module)
    assert config == {"DEBUG": True}


@pytest.fixture
def importable_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    write(
        tmp_path / "ctxtest_settings_mod.py",
        """
        ANSWER = 42
        private = "skipped"

        class Production:
            ENV_NAME = "production"
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "ctxtest_settings_mod", raising=False)
    return "ctxtest_settings_mod"


def test_from_object_import_string(tmp_path: Path, importable_settings: str) -> None:
    config = Config(tmp_path)
    config.from_object(importable_settings)
    assert config == {"ANSWER": 42}


@pytest.mark.parametrize("sep", [".", ":"])
def test_from_object_import_string_attribute(
    tmp_path: Path, importable_settings: str, sep: str
) -> None:
    config = Config(tmp_path)
    config.from_object(f"{importable_settings}{sep}Production")
    assert config == {"ENV_NAME": "production"}


def test_from_object_bad_import_string(tmp_path: Path) -> None:
    with pytest.raises(ImportStringError):
        Config(tmp_path).from_object("ctxtest_no_such_module_anywhere")


def test_from_object_dict_adds_nothing(tmp_path: Path) -> None:
    config = Config(tmp_path)
    config.from_object({"A": 1})
    assert config == {}


# -- from_file ------------------------------------------------------------------------


def test_from_file_json(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(
        json.dumps({"TEST_KEY": "foo", "lower": 1}), encoding="utf-8"
    )
    config = Config(tmp_path)
    assert config.from_file("config.json", load=json.load) is True
    assert config == {"TEST_KEY": "foo"}


def test_from_file_toml_binary(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        'TEST_KEY = "foo"\nSECRET_KEY = "config"\n', encoding="utf-8"
    )
    config = Config(tmp_path)
    assert config.from_file(tmp_path / "config.toml", load=tomllib.load, text=False)
    assert config == {"TEST_KEY": "foo", "SECRET_KEY": "config"}


def test_from_file_text_mode_gives_str(tmp_path: Path) -> None:
    (tmp_path / "c.txt").write_text("X", encoding="utf-8")
    seen: list[object] = []

    def load(f: t.IO[t.Any]) -> dict[str, t.Any]:
        seen.append(f.read())
        return {}

    config = Config(tmp_path)
    config.from_file("c.txt", load)
    config.from_file("c.txt", load, text=False)
    assert seen == ["X", b"X"]


def test_from_file_missing(tmp_path: Path) -> None:
    config = Config(tmp_path)
    with pytest.raises(FileNotFoundError) as exc_info:
        config.from_file("missing.json", load=json.load)
    assert str(exc_info.value).startswith(
        "[Errno 2] Unable to load configuration file (No such file or directory):"
    )
    assert str(exc_info.value).endswith("missing.json'")


@pytest.mark.parametrize("name", ["missing.json", "a_directory", "a_file/inside.json"])
def test_from_file_silent(tmp_path: Path, name: str) -> None:
    (tmp_path / "a_directory").mkdir()
    (tmp_path / "a_file").write_text("")
    config = Config(tmp_path)
    assert config.from_file(name, load=json.load, silent=True) is False
    assert config == {}


def test_from_file_not_a_mapping(tmp_path: Path) -> None:
    (tmp_path / "list.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(TypeError, match="did not load as a mapping"):
        Config(tmp_path).from_file("list.json", load=json.load)


def test_from_file_load_errors_propagate(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(json.JSONDecodeError):
        Config(tmp_path).from_file("bad.json", load=json.load, silent=True)


# -- from_mapping ---------------------------------------------------------------------


def test_from_mapping(tmp_path: Path) -> None:
    config = Config(tmp_path)
    assert config.from_mapping({"A": 1, "b": 2}) is True
    assert config.from_mapping(C=3, d=4) is True
    assert config.from_mapping({"E": 5, "F": 6}, F=7) is True
    assert config.from_mapping() is True
    assert config == {"A": 1, "C": 3, "E": 5, "F": 7}


def test_from_mapping_skips_non_string_keys(tmp_path: Path) -> None:
    config = Config(tmp_path)
    config.from_mapping({1: "one", "OK": True})  # type: ignore[dict-item]
    assert config == {"OK": True}


# -- get_namespace --------------------------------------------------------------------


@pytest.fixture
def namespaced(tmp_path: Path) -> Config:
    return Config(
        tmp_path,
        {
            "FOO_OPTION_1": "foo option 1",
            "FOO_OPTION_2": "foo option 2",
            "BAR_STUFF_1": "bar stuff 1",
            "BAR_STUFF_2": "bar stuff 2",
        },
    )


def test_get_namespace_default(namespaced: Config) -> None:
    assert namespaced.get_namespace("FOO_") == {
        "option_1": "foo option 1",
        "option_2": "foo option 2",
    }


def test_get_namespace_keep_case(namespaced: Config) -> None:
    assert namespaced.get_namespace("BAR_", lowercase=False) == {
        "STUFF_1": "bar stuff 1",
        "STUFF_2": "bar stuff 2",
    }


def test_get_namespace_untrimmed(namespaced: Config) -> None:
    assert namespaced.get_namespace("FOO_", trim_namespace=False) == {
        "foo_option_1": "foo option 1",
        "foo_option_2": "foo option 2",
    }
    assert namespaced.get_namespace("BAR_", lowercase=False, trim_namespace=False) == {
        "BAR_STUFF_1": "bar stuff 1",
        "BAR_STUFF_2": "bar stuff 2",
    }


def test_get_namespace_no_match_and_copy(namespaced: Config) -> None:
    assert namespaced.get_namespace("BAZ_") == {}
    result = namespaced.get_namespace("FOO_")
    result["option_1"] = "changed"
    assert namespaced["FOO_OPTION_1"] == "foo option 1"


# -- ConfigAttribute ------------------------------------------------------------------


def _to_timedelta(value: timedelta | int) -> timedelta:
    return value if isinstance(value, timedelta) else timedelta(seconds=value)


class _App:
    testing = ConfigAttribute[bool]("TESTING")
    lifetime = ConfigAttribute[timedelta]("LIFETIME", get_converter=_to_timedelta)

    def __init__(self, config: Config) -> None:
        self.config = config


def test_config_attribute_without_converter(tmp_path: Path) -> None:
    app = _App(Config(tmp_path, {"TESTING": False}))
    assert app.testing is False
    app.testing = True
    assert app.config["TESTING"] is True
    assert app.testing is True
    app.config["TESTING"] = False
    assert app.testing is False


def test_config_attribute_with_converter(tmp_path: Path) -> None:
    app = _App(Config(tmp_path, {"LIFETIME": 60}))
    assert app.lifetime == timedelta(seconds=60)
    # The converter applies on read only; the stored value is what was assigned.
    app.lifetime = 30
    assert app.config["LIFETIME"] == 30
    assert app.lifetime == timedelta(seconds=30)
    app.lifetime = timedelta(days=1)
    assert app.lifetime == timedelta(days=1)


def test_config_attribute_missing_key(tmp_path: Path) -> None:
    app = _App(Config(tmp_path))
    with pytest.raises(KeyError, match="TESTING"):
        _ = app.testing


def test_config_attribute_on_class_returns_descriptor() -> None:
    descriptor = _App.testing
    assert isinstance(descriptor, ConfigAttribute)
    assert descriptor.__name__ == "TESTING"
    assert descriptor.get_converter is None
    assert _App.lifetime.get_converter is _to_timedelta
    assert repr(descriptor) == "<ConfigAttribute 'TESTING'>"


def test_config_attribute_per_instance(tmp_path: Path) -> None:
    first = _App(Config(tmp_path, {"TESTING": True}))
    second = _App(Config(tmp_path, {"TESTING": False}))
    assert first.testing is True
    assert second.testing is False
