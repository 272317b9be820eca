"""Settings come from ESCOTAG_* variables, read once per process; bad values are named in a clear error."""

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import base_env
from escotag import ConfigError
from escotag.settings import Settings, get_settings, use_settings


def test_environment_is_read_once_and_parsed(monkeypatch, tmp_path):
    monkeypatch.setenv("ESCOTAG_HOME", "~/somewhere")
    monkeypatch.setenv("ESCOTAG_CORS_ORIGINS", "http://a.example, http://b.example,")
    monkeypatch.setenv("ESCOTAG_API_KEY", "")  # empty: not set
    monkeypatch.setenv("ESCOTAG_MAX_ITEMS", "8")
    use_settings(None)
    settings = get_settings()
    assert settings.home == Path("~/somewhere").expanduser() and settings.models_dir == settings.home / "models"
    assert settings.cors_origins == ["http://a.example", "http://b.example"]
    assert settings.api_key is None and settings.max_items == 8
    monkeypatch.setenv("ESCOTAG_MAX_ITEMS", "9")
    assert get_settings() is settings  # read once: a later change needs use_settings
    use_settings(Settings(home=tmp_path))
    assert get_settings().home == tmp_path and get_settings().rules_file is None
    (tmp_path / "rules.csv").write_text("kind,pattern,language,occupation_uri\n")
    assert get_settings().rules_file == tmp_path / "rules.csv"


def test_a_bad_value_is_a_config_error(monkeypatch):
    monkeypatch.setenv("ESCOTAG_MAX_ITEMS", "many")
    use_settings(None)
    with pytest.raises(ConfigError, match="ESCOTAG_MAX_ITEMS"):
        get_settings()
    done = subprocess.run([sys.executable, "-m", "escotag", "models"], capture_output=True, text=True,
                          env={**base_env(), "ESCOTAG_MAX_ITEMS": "many"})
    assert done.returncode == 2 and "ESCOTAG_MAX_ITEMS" in done.stderr and "Traceback" not in done.stderr
