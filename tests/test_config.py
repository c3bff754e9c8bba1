import os
import subprocess
import sys

import pytest

from servicekit.config import ROOT, ConfigError, check_config, load_config


def test_config_yml_has_the_contract_defaults(monkeypatch):
    for name in ("AMQP_URI", "GATEWAY_PORT", "USERS_DB_URL", "RPC_TIMEOUT_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    config = load_config()
    assert config["AMQP_URI"] == "amqp://guest:guest@localhost:5672/"
    assert config["WEB_SERVER_ADDRESS"].endswith(":8000")
    assert (
        config["DB_URIS"]["users:Base"] == "postgresql://localnews:localnews@localhost:5432/users"
    )
    assert config["RPC_TIMEOUT_SECONDS"] == 5
    assert config["JWT_TTL_SECONDS"] == 86400


def test_environment_overrides_and_secrets_stay_text(monkeypatch):
    monkeypatch.setenv("JWT_SECRET", "12345")
    monkeypatch.setenv("ADMIN_PASSWORD", "true")
    config = load_config()
    assert config["JWT_SECRET"] == "12345"
    assert config["ADMIN_PASSWORD"] == "true"


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"JWT_SECRET": "a real secret"},
        {"ADMIN_PASSWORD": "a real password"},
        {"JWT_SECRET": "", "ADMIN_PASSWORD": "a real password"},
    ],
)
def test_production_refuses_development_secrets(overrides):
    config = {**load_config(), "APP_ENV": "production", **overrides}
    with pytest.raises(ConfigError):
        check_config(config)


def test_production_with_real_secrets_is_accepted():
    config = {
        **load_config(),
        "APP_ENV": "production",
        "JWT_SECRET": "a real secret",
        "ADMIN_PASSWORD": "a real password",
    }
    check_config(config)


def test_nameko_run_refuses_to_start_in_production_with_dev_secrets():
    env = {**os.environ, "APP_ENV": "production", "JWT_SECRET": "a real secret"}
    env["CURSOR_SECRET"] = "another real secret"  # refused too without it (CursorKey)
    env.pop("ADMIN_PASSWORD", None)
    result = subprocess.run(
        [sys.executable, "-m", "nameko", "run", "--config", "config.yml", "users.service"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "ADMIN_PASSWORD" in result.stderr + result.stdout
