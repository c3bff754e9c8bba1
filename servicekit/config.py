"""Configuration: one ``config.yml`` with ``${VAR:default}`` substitution.

Services get it from ``nameko run --config``; scripts and tests load the same
file through :func:`load_config`, so there is exactly one source of defaults.
"""

import logging
import os
from pathlib import Path

import yaml
from nameko.cli.main import setup_yaml_parser
from nameko.extensions import DependencyProvider

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
CONFIG_PATH = ROOT / "config.yml"

# Values shipped in config.yml for development. Production refuses them.
DEV_JWT_SECRET = "dev-only-jwt-secret-change-me-0123456789"
DEV_ADMIN_PASSWORD = "Testing0*"


class ConfigError(Exception):
    """The configuration is unusable; the message says what to set."""


def load_config(path=None):
    setup_yaml_parser()
    with open(path or os.environ.get("LOCALNEWS_CONFIG", CONFIG_PATH)) as fh:
        return yaml.safe_load(fh)


def database_key(service_name):
    """Where ``DB_URIS`` (nameko-sqlalchemy's setting) holds a service's
    database: every service's models have one declarative base, ``Base``."""
    return f"{service_name}:Base"


def database_url(config, service_name):
    return config["DB_URIS"][database_key(service_name)]


def public_base_url(config):
    """Where clients reach the API: ``PUBLIC_BASE_URL``, else this host on
    the gateway's port (``GATEWAY_PORT``)."""
    port = str(config.get("WEB_SERVER_ADDRESS", "8000")).rsplit(":", 1)[-1]
    return (config.get("PUBLIC_BASE_URL") or f"http://localhost:{port}").rstrip("/")


def check_config(config):
    """Refuse development or empty secrets when ``APP_ENV=production``."""
    production = config.get("APP_ENV") == "production"
    if production and config.get("JWT_SECRET") in (None, "", DEV_JWT_SECRET):
        raise ConfigError("APP_ENV=production: set JWT_SECRET to a secret of your own.")
    if production and config.get("ADMIN_PASSWORD") in (None, "", DEV_ADMIN_PASSWORD):
        raise ConfigError("APP_ENV=production: set ADMIN_PASSWORD to a password of your own.")
    if config.get("JWT_SECRET") == DEV_JWT_SECRET and not os.environ.get("DEV_SETTINGS_WARNED"):
        # Said once under `make run`: its children are told it was.
        log.warning("JWT_SECRET is the development default; never use it in production.")


class CheckedConfig(DependencyProvider):
    """``self.config``: nameko's ``Config``, checked once when the service starts.

    A refused configuration stops ``nameko run`` with the reason instead of
    serving requests with a known secret.
    """

    def setup(self):
        try:
            check_config(self.container.config)
        except ConfigError as exc:
            log.critical("%s", exc)
            raise SystemExit(f"refusing to start: {exc}") from None

    def get_dependency(self, worker_ctx):
        return self.container.config
