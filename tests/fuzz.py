"""Schemathesis against the API's own OpenAPI document (``GET /api/openapi.json``).

``make fuzz`` (``python -m tests.fuzz``) runs it deeply against an API that
is already running (``make run`` in another terminal, or ``docker compose
up``)::

    make fuzz                                   # http://localhost:8000, 100 cases an operation
    API_URL=http://localhost:8400 make fuzz     # another address
    FUZZ_SEED=1234 make fuzz                    # replay the run that printed this seed
    .venv/bin/python -m tests.fuzz --help

``tests/test_fuzz.py`` runs the same command, with fewer cases and a fixed
seed, against a stack that it starts itself. Either way: every check of
schemathesis and every phase (examples, coverage, fuzzing, stateful), as the
seeded admin (``ADMIN_EMAIL``/``ADMIN_PASSWORD``, config.yml's defaults),
with the hooks of ``tests/fuzz_hooks.py`` (which leave that admin as it is),
and exit status 0 only when schemathesis found nothing.

Run it against a development stack, never a production one: what it creates
and changes stays in the databases, and its failed logins block logins from
this address for up to 15 minutes (the next run waits that out).
"""

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import jwt
import requests

from servicekit.config import load_config

DEFAULT_API_URL = "http://localhost:8000"
DEFAULT_MAX_EXAMPLES = 100
PHASES = ("examples", "coverage", "fuzzing", "stateful")
# schemathesis of this virtualenv, next to its python.
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
REQUEST_TIMEOUT_SECONDS = 10
LOGIN_MAX_WAIT_SECONDS = 16 * 60
# Loaded by schemathesis itself, by path (importing it here would register its
# hooks in this process too); it reads the protected user from the environment.
HOOKS = Path(__file__).with_name("fuzz_hooks.py")
PROTECTED_USER_ENV = "FUZZ_PROTECTED_USER_ID"
# What has no command-line option.
CONFIG_FILE = Path(__file__).with_name("schemathesis.toml")


class CannotFuzz(Exception):
    """The API is not there, or the admin cannot log in: one line says why."""


def admin_credentials():
    """``ADMIN_EMAIL``/``ADMIN_PASSWORD`` as config.yml reads them (with its defaults)."""
    config = load_config()
    return config["ADMIN_EMAIL"], config["ADMIN_PASSWORD"]


def admin_token(api_url, email, password, max_wait=LOGIN_MAX_WAIT_SECONDS):
    """A bearer token of the admin, from ``POST /api/auth``.

    A run's failed logins block this address for a while (429 with
    ``Retry-After``, up to 15 minutes): the next run waits that out, saying so.
    """
    deadline = time.monotonic() + max_wait
    while True:
        try:
            response = requests.post(
                f"{api_url}/api/auth",
                json={"emailAddress": email, "password": password},
                timeout=REQUEST_TIMEOUT_SECONDS,
            )
        except requests.RequestException:
            raise CannotFuzz(
                f"fuzz: nothing answers at {api_url}: start the API first with `make run` "
                "(in another terminal) or `docker compose up`, or set API_URL"
            ) from None
        if response.status_code == 200:
            return response.json()["token"]
        wait = max(1, int(response.headers.get("Retry-After") or 0))
        if response.status_code != 429 or time.monotonic() + wait > deadline:
            raise CannotFuzz(
                f"fuzz: the admin {email} cannot log in at {api_url}: "
                f"{response.status_code} {response.text[:200]} (ADMIN_EMAIL/ADMIN_PASSWORD?)"
            )
        print(
            f"fuzz: logins from here are blocked for {wait} s more (failed logins of an "
            "earlier run); waiting",
            flush=True,
        )
        time.sleep(wait)


def command(api_url, token, *, max_examples, seed):
    """The schemathesis command line: every check and phase, as the admin."""
    return [
        str(SCHEMATHESIS),
        "--config-file",
        str(CONFIG_FILE),
        "--no-color",
        "run",
        f"{api_url}/api/openapi.json",
        # The document's `servers` entry is PUBLIC_BASE_URL, not necessarily here.
        "--url",
        api_url,
        "--checks",
        "all",
        "--phases",
        ",".join(PHASES),
        "--max-examples",
        str(max_examples),
        "--seed",
        str(seed),
        "--header",
        f"Authorization: Bearer {token}",
        "--request-timeout",
        str(REQUEST_TIMEOUT_SECONDS),
        # Every failure of an operation, not only its first.
        "--continue-on-failure",
        # The contract refuses NUL in every text (a 400, see tests/fuzz_hooks.py):
        # schema-valid cases with one would only be refused before any service.
        "--generation-allow-x00",
        "false",
        # Runs are replayed by their seed; no .hypothesis/ left in the work tree.
        "--generation-database",
        "none",
    ]


def environment(token):
    """schemathesis's environment: our hooks, and the user they keep unchanged."""
    return {
        **os.environ,
        "SCHEMATHESIS_HOOKS": str(HOOKS),
        PROTECTED_USER_ENV: jwt.decode(token, options={"verify_signature": False})["sub"],
    }


def printable(cmd):
    """``cmd`` for people: the token left out."""
    return " ".join(
        "'Authorization: Bearer <token>'" if part.startswith("Authorization:") else part
        for part in cmd
    )


def run(cmd, env, timeout=None):
    """Run schemathesis; its exit status and what it printed (both streams)."""
    done = subprocess.run(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout
    )
    return done.returncode, done.stdout


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="make fuzz", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--api-url",
        default=os.environ.get("API_URL") or DEFAULT_API_URL,
        help="the running API (env API_URL; default %(default)s)",
    )
    parser.add_argument(
        "--max-examples",
        type=int,
        default=int(os.environ.get("FUZZ_MAX_EXAMPLES") or DEFAULT_MAX_EXAMPLES),
        help="cases per operation and phase (env FUZZ_MAX_EXAMPLES; default %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=int(os.environ["FUZZ_SEED"]) if os.environ.get("FUZZ_SEED") else None,
        help="replay a run (env FUZZ_SEED; default: a new one, printed)",
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    api_url = args.api_url.rstrip("/")
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    try:
        token = admin_token(api_url, *admin_credentials())
    except CannotFuzz as exc:
        raise SystemExit(str(exc)) from None
    cmd = command(api_url, token, max_examples=args.max_examples, seed=seed)
    print(f"fuzz: seed {seed} (FUZZ_SEED={seed} make fuzz replays this run)", flush=True)
    print(f"fuzz: {printable(cmd)}", flush=True)
    started = time.monotonic()
    # In the foreground: its progress is worth watching.
    status = subprocess.call(cmd, env=environment(token))
    print(
        f"fuzz: schemathesis exited with {status} after {time.monotonic() - started:.0f} s "
        f"(seed {seed}: FUZZ_SEED={seed} make fuzz replays it)",
        flush=True,
    )
    return status


if __name__ == "__main__":
    sys.exit(main())
