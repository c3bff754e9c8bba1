"""Database failures answered by what they mean (servicekit.database_errors),
on a service of the tests' own whose RPCs meet real PostgreSQL errors: a
database out of reach or a query over its time limit is SERVICE_UNAVAILABLE,
a database limit PAYLOAD_TOO_LARGE, anything else stays a bug."""

import logging

import pytest
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from servicekit import database_errors
from servicekit.base import ServiceBase
from servicekit.config import database_key
from servicekit.db import Database, make_engine
from servicekit.errors import PayloadTooLarge, ServiceUnavailable
from servicekit.logs import CorrelationIdFilter
from servicekit.rpc import rpc
from tests.support import free_port

from .conftest import PROBE, Base

# A text whose search vector is over PostgreSQL's 1 MB: 40,000 distinct words
# of 32 characters.
TOO_MANY_WORDS = (
    "SELECT to_tsvector('simple', string_agg(md5(i::text), ' ')) "
    "FROM generate_series(1, 40000) AS i"
)


class Probe(ServiceBase):
    name = PROBE

    db = Database(Base)

    @rpc
    def read(self, sql):
        return str(self.db.reads.execute(text(sql)).scalar())

    @rpc
    def read_in_a_transaction(self, sql):
        value = str(self.db.session.execute(text(sql)).scalar())
        self.db.session.commit()
        return value


@pytest.fixture
def start_probe(container_factory, caplog):
    def start(config):
        container_factory(Probe, config).start()
        caplog.clear()  # what starting says is not the tests' concern
        return ServiceRpcProxy(PROBE, config)

    return start


@pytest.fixture
def probe(kit_config, start_probe):
    with start_probe(kit_config) as proxy:
        yield proxy


@pytest.fixture
def warnings(caplog):
    """The records at WARNING and above, as the configured logs show them
    (nameko's report of an expected error is one INFO line there)."""
    caplog.handler.addFilter(CorrelationIdFilter())
    caplog.set_level(logging.INFO)

    def taken():
        return [record for record in caplog.records if record.levelno >= logging.WARNING]

    return taken


def test_a_database_that_cannot_be_reached_is_service_unavailable_in_one_warning_line(
    kit_config, start_probe, warnings
):
    closed = make_url(kit_config["DB_URIS"][database_key(PROBE)]).set(
        host="127.0.0.1", port=free_port()
    )
    url = closed.render_as_string(hide_password=False)
    config = {**kit_config, "DB_URIS": {**kit_config["DB_URIS"], database_key(PROBE): url}}
    with start_probe(config) as probe, pytest.raises(ServiceUnavailable) as err:
        probe.read("SELECT 1")
    assert err.value.code == "SERVICE_UNAVAILABLE"
    assert str(err.value) == f"The {PROBE} service cannot reach its database; try again later."
    [line] = warnings()
    assert line.name == "servicekit.database_errors" and not line.exc_info
    assert "cannot reach its database" in line.getMessage()
    assert "refused" in line.getMessage()  # libpq's words, on the same line


def test_a_connection_lost_in_the_middle_of_a_request_is_service_unavailable(probe):
    with pytest.raises(ServiceUnavailable, match="cannot reach its database"):
        probe.read("SELECT pg_terminate_backend(pg_backend_pid())")
    assert probe.read("SELECT 1") == "1"  # a new connection next time


def test_a_read_over_READ_TIMEOUT_MS_is_service_unavailable_saying_it_took_too_long(  # noqa: N802
    kit_config, start_probe, warnings
):
    with start_probe({**kit_config, "READ_TIMEOUT_MS": 100}) as probe:
        with pytest.raises(ServiceUnavailable) as err:
            probe.read("SELECT pg_sleep(5)")
        assert str(err.value) == f"The {PROBE} service took too long to answer; try again later."
        [line] = warnings()
        assert "took too long" in line.getMessage() and not line.exc_info
        # Transactions have no such bound: a change is not cut short.
        assert probe.read_in_a_transaction("SELECT pg_sleep(0.3)") == ""


def test_read_connections_have_the_statement_timeout_of_READ_TIMEOUT_MS(  # noqa: N802
    kit_config, start_probe
):
    with start_probe({**kit_config, "READ_TIMEOUT_MS": 1234}) as probe:
        assert probe.read("SHOW statement_timeout") == "1234ms"
        assert probe.read_in_a_transaction("SHOW statement_timeout") == "0"


def test_a_value_over_a_database_limit_is_payload_too_large_saying_what(probe):
    with pytest.raises(PayloadTooLarge) as err:
        probe.read(TOO_MANY_WORDS)
    assert err.value.code == "PAYLOAD_TOO_LARGE"
    assert "string is too long for tsvector" in str(err.value)


def test_any_other_database_error_stays_unexpected(probe, caplog):
    with pytest.raises(RemoteError) as err:
        probe.read("SELECT 1 / 0")
    assert err.value.exc_type == "DataError"
    assert any(record.exc_info for record in caplog.records if record.levelno >= logging.ERROR)


def test_what_each_sqlstate_class_means(kit_database_url):
    """The translation itself, on real driver errors."""
    engine = make_engine(kit_database_url, poolclass=NullPool)
    with engine.connect() as conn:
        with pytest.raises(OperationalError) as too_large:
            conn.execute(text(TOO_MANY_WORDS))
        assert database_errors.sqlstate(too_large.value) == "54000"
        assert database_errors.meaning(too_large.value) == database_errors.TOO_LARGE
    with engine.connect() as conn:
        conn.execute(text("SET statement_timeout = 10"))
        with pytest.raises(OperationalError) as too_slow:
            conn.execute(text("SELECT pg_sleep(1)"))
        assert database_errors.sqlstate(too_slow.value) == "57014"
        assert database_errors.meaning(too_slow.value) == database_errors.TOO_SLOW
    engine.dispose()
    away = make_url(kit_database_url).set(host="127.0.0.1", port=free_port())
    engine = make_engine(away, poolclass=NullPool)
    with pytest.raises(OperationalError) as unreachable:
        engine.connect()
    assert database_errors.sqlstate(unreachable.value) is None
    assert database_errors.meaning(unreachable.value) == database_errors.UNREACHABLE
    assert database_errors.meaning(ValueError("not a database error")) is None
