"""Configuration: one ``config.yml`` with ``${VAR:default}`` substitution.

Services get it from ``nameko run --config``; scripts and tests load the same
file through :func:`load_config`, so there is exactly one source of defaults.
"""

import logging
import os
import re
from pathlib import Path
from urllib.parse import SplitResult, parse_qsl, quote, unquote, urlencode, urlunsplit

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
    """The service's database URL, in a form SQLAlchemy hands to libpq whole
    (:func:`libpq_url`)."""
    return libpq_url(config["DB_URIS"][database_key(service_name)])


# PostgreSQL's port when a URL names none.
DEFAULT_POSTGRES_PORT = 5432


def database_servers(url):
    """The servers a PostgreSQL URL names, in the order libpq tries them:
    ``[(host, port)]``; a host of ``None`` is the local socket, a port of
    ``None`` the default.

    Each way of naming several (a promoted standby then takes over, see
    ``target_session_attrs``): libpq's ``postgresql://u:p@a:5432,b:5433/db``,
    ``postgresql://u:p@/db?host=a:5432,b:5433``, ``?host=a,b&port=5432,5433``
    (one port: the same for every host) and ``?host=a:5432&host=b:5433``. A
    ``host`` in the query wins over the one before the path, as in
    SQLAlchemy.
    """
    parts = _split(_text(url))
    query = parse_qsl(parts.query, keep_blank_values=True)
    hosts = [host for key, value in query if key == "host" for host in value.split(",")]
    if not hosts:
        listed = parts.netloc.rpartition("@")[2]
        hosts = [unquote(host) for host in listed.split(",")] if listed else []
    servers = [_host_and_port(host) for host in hosts] or [(None, None)]
    ports = [port for key, value in query if key == "port" for port in value.split(",")]
    if len(ports) == 1:
        ports *= len(servers)
    if ports:
        servers = [
            (host, int(port) if port.strip().isdigit() else own)
            for (host, own), port in zip(servers, ports, strict=False)
        ]
    return servers


def server_names(url):
    """The servers of ``url`` for a message: ``"a:5432, b:5433"``."""
    return ", ".join(
        f"{_bracketed(host) if host else 'the local socket'}:{port or DEFAULT_POSTGRES_PORT}"
        for host, port in database_servers(url)
    )


def libpq_url(url):
    """``url`` in a form SQLAlchemy passes on to libpq whole.

    A URL that names several servers (or a host with its port in the query)
    becomes ``postgresql://u:p@/db?host=a,b&port=5432,5433&...``, the other
    parameters (``target_session_attrs``...) kept: SQLAlchemy takes
    ``host=a:5432,b:5433`` for host names with a colon, and cannot read
    libpq's ``@a:5432,b:5433``. Any other URL is returned as it is.
    """
    url = _text(url)
    parts = _split(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    hosts_in_query = [value for key, value in query if key == "host"]
    servers = database_servers(url)
    port_in_host = any(port for host, port in map(_host_and_port, hosts_in_query))
    if len(servers) == 1 and not port_in_host:
        return url
    hosts = ",".join(host or "" for host, _ in servers)
    params = [("host", hosts)]
    if any(port for _, port in servers):
        params.append(("port", ",".join(str(port or "") for _, port in servers)))
    params += [(key, value) for key, value in query if key not in ("host", "port")]
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@" if userinfo else ""
    encoded = urlencode(params, quote_via=quote, safe=",/")
    return urlunsplit((parts.scheme, netloc, parts.path, encoded, parts.fragment))


# RFC 3986's own regular expression (appendix B): the five parts, unchecked.
# urlsplit refuses libpq's "u:p@[::1],b:5433" (Python 3.13: "Invalid IPv6 URL").
_URL_PARTS = re.compile(r"(?:([^:/?#]+):)?(?://([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?")


def _split(url):
    scheme, netloc, path, query, fragment = _URL_PARTS.fullmatch(url).groups()
    return SplitResult(scheme or "", netloc or "", path, query or "", fragment or "")


def _text(url):
    """A URL as text (a SQLAlchemy ``URL`` too, its password kept)."""
    return url if isinstance(url, str) else url.render_as_string(hide_password=False)


def _bracketed(host):
    return f"[{host}]" if ":" in host else host


def _host_and_port(text):
    """``"a:5432"`` as ``("a", 5432)``; ``"[::1]:5432"``, ``"a"`` and a
    socket directory as libpq reads them."""
    if text.startswith("["):  # an IPv6 address, maybe with a port
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
        return host, int(port) if port.isdigit() else None
    host, colon, port = text.rpartition(":")
    if colon and port.isdigit() and ":" not in host and not text.startswith("/"):
        return host or None, int(port)
    return text or None, None


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
