"""``python -m tests.prerequisites``: what ``make test`` needs, set up or named.

The tests talk to the real RabbitMQ and PostgreSQL (config.yml's addresses).
nameko's test fixtures make a private vhost per test through RabbitMQ's
management API, which RabbitMQ as Debian installs it does not enable: this
enables it when it may (``rabbitmq-plugins``, as root or the rabbitmq user),
and otherwise says in one line what to run. A stock PostgreSQL has no role
for the project yet: made here when run as root on its machine, else named
(:mod:`tools.postgres_access`).
"""

import os
import shutil
import subprocess
import sys
import time

import requests

from servicekit.config import database_url, load_config
from tools.bootstrap import reach_broker, reach_postgres

RABBITMQ_API = os.environ.get("RABBITMQ_API", "http://guest:guest@localhost:15672/api")
WAIT_SECONDS = 60
SERVER_WAIT_SECONDS = 10


def management_api_answers():
    try:
        return requests.get(f"{RABBITMQ_API.rstrip('/')}/overview", timeout=3).ok
    except requests.RequestException:
        return False


def enable_management_api():
    """Enable the plugin; ``True`` once the API answers."""
    tool = shutil.which("rabbitmq-plugins")
    if tool is None:
        return False
    print("make test: enabling RabbitMQ's management plugin (rabbitmq-plugins)", flush=True)
    enabled = subprocess.run(
        [tool, "enable", "rabbitmq_management"], capture_output=True, text=True, check=False
    )
    if enabled.returncode != 0:
        return False
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if management_api_answers():
            return True
        time.sleep(1)
    return False


def main():
    config = load_config()
    reach_broker(config["AMQP_URI"], "make test", SERVER_WAIT_SECONDS)
    # Creates the development role where it may (a stock install has none),
    # else names the command that does.
    reach_postgres(database_url(config, "users"), config, "make test", SERVER_WAIT_SECONDS)
    if not (management_api_answers() or enable_management_api()):
        sys.exit(
            "make test: the tests need RabbitMQ's management API at "
            f"{RABBITMQ_API.split('@')[-1]}: run "
            "`sudo rabbitmq-plugins enable rabbitmq_management` (or set RABBITMQ_API)."
        )


if __name__ == "__main__":
    main()
