"""Schemathesis against the project's own OpenAPI document, bounded.

The whole backend as real ``nameko run`` processes (on the test's vhost and
databases, mailing to a local SMTP server), then ``tests/fuzz.py``'s
schemathesis command as the seeded admin: every check, every phase
(examples, coverage, fuzzing, stateful), a few cases per operation and a
fixed seed. Any failure it reports fails the test, with its output and the
last lines of each service's log. ``make fuzz`` is the deeper run.
"""

import time

import pytest
import requests

from notification.tests.conftest import smtp_server  # noqa: F401 - fixture
from tests import fuzz
from tests.conftest import ALL_SERVICES
from tests.faults.conftest import nameko_run  # noqa: F401 - fixture
from tools import SERVICE_NAMES
from tools.topology import declare_event_queues

SEED = 20261129
MAX_EXAMPLES = 5
STARTUP_SECONDS = 60
FUZZ_TIMEOUT_SECONDS = 300
LOG_LINES = 30


def logs_tail(processes, lines=LOG_LINES):
    """The last ``lines`` of each process's log, headed by its module."""
    parts = []
    for module, process in processes.items():
        tail = process.log().splitlines()[-lines:]
        status = process.popen.poll()
        state = "running" if status is None else f"exited with {status}"
        parts.append(f"--- {module} ({state}), last {len(tail)} log lines:\n" + "\n".join(tail))
    return "\n".join(parts)


def wait_healthy(url, processes):
    """``GET /health`` is 200: every service answers and the admin can log in."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        exited = [module for module, p in processes.items() if p.popen.poll() is not None]
        if exited:
            pytest.fail(f"{', '.join(exited)} exited while starting\n{logs_tail(processes)}")
        try:
            if requests.get(f"{url}/health", timeout=10).status_code == 200:
                return
        except requests.RequestException:
            pass  # not listening yet, or a service not answering yet
        if time.monotonic() > deadline:
            pytest.fail(f"/health not 200 after {STARTUP_SECONDS} s\n{logs_tail(processes)}")
        time.sleep(0.5)


@pytest.fixture
def backend(config, nameko_run, smtp_server, monkeypatch):  # noqa: F811 - the imported fixtures
    """Every service as ``nameko run --config config.yml <service>.service``;
    yields the API's URL and the processes (stopped by ``nameko_run``)."""
    port = config["WEB_SERVER_ADDRESS"].rsplit(":", 1)[1]
    url = f"http://127.0.0.1:{port}"
    # Read by nameko_run's environment (on top of the vhost and databases).
    for name, value in {
        "GATEWAY_PORT": port,
        "PUBLIC_BASE_URL": url,
        "SMTP_HOST": smtp_server.host,
        "SMTP_PORT": str(smtp_server.port),
        "LOG_LEVEL": "WARNING",
        "SHUTDOWN_GRACE_SECONDS": "5",
    }.items():
        monkeypatch.setenv(name, value)
    declare_event_queues(config, ALL_SERVICES)  # as the bootstrap step does
    processes = {
        module: nameko_run(module)
        for module in (*(f"{name}.service" for name in SERVICE_NAMES), "gateway.service")
    }
    wait_healthy(url, processes)
    return url, processes


def test_the_api_keeps_its_openapi_document(backend, config):
    url, processes = backend
    token = fuzz.admin_token(url, config["ADMIN_EMAIL"], config["ADMIN_PASSWORD"])
    cmd = fuzz.command(url, token, max_examples=MAX_EXAMPLES, seed=SEED)
    status, output = fuzz.run(cmd, fuzz.environment(token), timeout=FUZZ_TIMEOUT_SECONDS)
    assert status == 0, (
        f"schemathesis exited with {status}: `{fuzz.printable(cmd)}`\n"
        f"(on a running stack: FUZZ_SEED={SEED} FUZZ_MAX_EXAMPLES={MAX_EXAMPLES} make fuzz)"
        f"\n\n{output}\n{logs_tail(processes)}"
    )
