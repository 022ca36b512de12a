"""Settings: one object from VIVA_* variables and .env, with clear errors for bad values and unknown names."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from server.errors import SettingsError
from server.logs import JsonFormatter
from server.settings import Settings, load_settings, variable_names


def test_defaults_without_environment() -> None:
    settings = load_settings({})
    assert settings == Settings()
    assert settings.fetch.max_files == 20_000 and settings.fetch.allowed_hosts is None


def test_values_are_converted_per_field() -> None:
    settings = load_settings(
        {
            "VIVA_FETCH_MAX_FILES": "500",
            "VIVA_FETCH_TIMEOUT_SECONDS": "2.5",
            "VIVA_FETCH_ALLOWED_HOSTS": "github.com, gitlab.com",
            "VIVA_GRADING_DISABLED_CHECKS": "latency_p95",
            "VIVA_LOG_LEVEL": "debug",
            "UNRELATED": "ignored",
        }
    )
    assert settings.fetch.max_files == 500 and settings.fetch.timeout_seconds == 2.5
    assert settings.fetch.allowed_hosts == ["github.com", "gitlab.com"]
    assert settings.grading.disabled_checks == ["latency_p95"]
    assert settings.general.log_level == "debug"


def test_bad_value_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="VIVA_FETCH_MAX_FILES='many'"):
        load_settings({"VIVA_FETCH_MAX_FILES": "many"})
    with pytest.raises(SettingsError, match="VIVA_LOG_LEVEL"):
        load_settings({"VIVA_LOG_LEVEL": "loud"})


def test_unknown_variable_suggests_the_closest() -> None:
    with pytest.raises(SettingsError, match=r"VIVA_FETCH_MAX_FILE \(did you mean VIVA_FETCH_MAX_FILES\?\)"):
        load_settings({"VIVA_FETCH_MAX_FILE": "1"})


def test_env_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("# comment\nVIVA_FETCH_MAX_FILES=42\nexport VIVA_DATA_DIR='/srv/viva'\n")
    settings = load_settings({"VIVA_FETCH_MAX_FILES": "7"}, env_file=env_file)
    assert settings.fetch.max_files == 7 and settings.general.data_dir == "/srv/viva"


def test_every_variable_is_documented() -> None:
    documented = (Path(__file__).parents[2] / "docs" / "SETTINGS.md").read_text()
    missing = [name for name in variable_names() if name not in documented]
    assert not missing, f"docs/SETTINGS.md does not mention {missing}"


def test_logs_never_carry_secrets() -> None:
    record = logging.LogRecord(
        "viva",
        logging.INFO,
        __file__,
        1,
        "GET /api/invitations/abcdefghijklmnop123/accept Authorization: Bearer viva_secretsecretsecret cookie "
        'viva_session=topsecretvalue {"password": "hunter2hunter2"} key sk-ant-abcdefghijkl token=abcdefghijkl',
        None,
        None,
    )
    line = JsonFormatter().format(record)
    for secret in (
        "abcdefghijklmnop123",
        "viva_secretsecretsecret",
        "topsecretvalue",
        "hunter2hunter2",
        "sk-ant-abcdefghijkl",
    ):
        assert secret not in line, secret
    assert '"level": "info"' in line and "[redacted]" in line
