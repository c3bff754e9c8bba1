"""``python -m tools.runner`` (``make run``): the whole backend, supervised.

1. Refuses a gateway port that something already answers on (with
   ``SO_REUSEPORT`` a gateway left running would silently take a share of
   the traffic), then bootstraps: broker, databases, migrations, queues.
2. Starts each service as its own ``nameko run`` process, and
   ``GATEWAY_PROCESSES`` copies of the gateway (one per core by default)
   sharing its port; each in a process group of its own, so that a terminal's
   Ctrl-C reaches the runner alone, which then stops each child once.
   With development settings and mail going to this machine where nothing
   listens, it also runs the mail catcher (:mod:`tools.mailcatcher`).
3. Prints "ready" once ``/health`` answers 200, not before.
4. Restarts a service that exits on its own, after 1 s, then 2, 4 ... up to
   30 s while it keeps failing; the others keep serving meanwhile.
5. On SIGINT or SIGTERM (however the runner was started: a background job
   ignores SIGINT, and so would its children, so they are stopped with
   SIGTERM, their graceful stop) it stops every child, waits up to
   ``SHUTDOWN_GRACE_SECONDS`` (they exit on their own by then), kills what is
   left, and says so in a last line.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from servicekit.config import ROOT, load_config

from . import LOCAL_HOSTS, SERVICE_NAMES
from .bootstrap import main as bootstrap

FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
# A child that ran this long before it died starts again from the first delay.
STABLE_SECONDS = 60.0
# Above the children's own bound: they exit by then, the rest is margin.
STOP_MARGIN_SECONDS = 5.0
POLL_SECONDS = 0.2


def say(message):
    print(f"runner: {message}", flush=True)


class Child:
    """One supervised process: ``nameko run`` of a service module, or ``command``."""

    def __init__(self, name, module, env, command=None):
        self.name = name
        self.command = command or [
            sys.executable, "-m", "nameko", "run", "--config", "config.yml", module,
        ]  # fmt: skip
        self.env = env
        self.process = None
        self.started_at = 0.0
        self.backoff = FIRST_BACKOFF_SECONDS
        self.restart_at = None

    def start(self):
        self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.env, process_group=0)
        self.started_at = time.monotonic()
        self.restart_at = None
        say(f"started {self.name} (pid {self.process.pid})")

    def exited(self):
        return self.process is not None and self.process.poll() is not None

    def schedule_restart(self):
        """After it exited on its own: when to start it again."""
        if time.monotonic() - self.started_at >= STABLE_SECONDS:
            self.backoff = FIRST_BACKOFF_SECONDS
        say(
            f"{self.name} exited with {self.process.returncode}; "
            f"restarting it in {self.backoff:g} s"
        )
        self.restart_at = time.monotonic() + self.backoff
        self.backoff = min(self.backoff * 2, MAX_BACKOFF_SECONDS)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)


def gateway_copies():
    value = os.environ.get("GATEWAY_PROCESSES") or str(os.cpu_count() or 1)
    try:
        copies = int(value)
    except ValueError:
        copies = 0
    if copies < 1:
        raise SystemExit(f"runner: GATEWAY_PROCESSES must be a whole number >= 1, not {value!r}")
    return copies


def port_in_use(port, host="127.0.0.1"):
    """Something answers on ``port``. With ``SO_REUSEPORT`` a new gateway
    would share the port with it silently, and it would take traffic."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def mail_catcher(config):
    """The development mail catcher's child, if mail would be lost without
    it: development settings, mail to this machine, nothing listening there
    (:mod:`tools.mailcatcher`). ``None`` otherwise, said in a line."""
    host, port = str(config.get("SMTP_HOST") or ""), int(config.get("SMTP_PORT") or 25)
    if config.get("APP_ENV") == "production" or host not in LOCAL_HOSTS:
        return None
    if port_in_use(port, host):
        say(f"mail goes to the SMTP server at {host}:{port}")
        return None
    command = [sys.executable, "-m", "tools.mailcatcher", "serve", host, str(port)]
    say(f"no SMTP server at {host}:{port}: catching mail ourselves; `make mail` shows it")
    return Child("mail", None, dict(os.environ), command)


def healthy(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def children_of(copies):
    """The children to run; with ``OPS_PORT`` set, each gets a port of its own
    for its metrics and probes (``OPS_PORT``, ``OPS_PORT`` + 1, ...)."""
    names = [(name, f"{name}.service") for name in SERVICE_NAMES]
    names += [(f"gateway-{n}", "gateway.service") for n in range(1, copies + 1)]
    ops_port = int(os.environ.get("OPS_PORT") or 0)
    children = []
    for index, (name, module) in enumerate(names):
        # The bootstrap has warned about development settings; once is enough.
        env = {**os.environ, "DEV_SETTINGS_WARNED": "1"}
        if ops_port:
            env["OPS_PORT"] = str(ops_port + index)
            say(f"{name}: metrics and probes on port {ops_port + index}")
        children.append(Child(name, module, env))
    return children


def stop_all(children, grace):
    for child in children:
        child.stop()
    deadline = time.monotonic() + grace + STOP_MARGIN_SECONDS
    for child in children:
        if child.process is None:
            continue
        try:
            child.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{child.name} did not stop in {grace + STOP_MARGIN_SECONDS:g} s; killing it")
            child.process.kill()
            child.process.wait()


def main():
    config = load_config()
    port = int(config["WEB_SERVER_ADDRESS"].rsplit(":", 1)[-1])
    grace = float(config.get("SHUTDOWN_GRACE_SECONDS", 20))
    if port_in_use(port):
        raise SystemExit(
            f"runner: port {port} is in use (a gateway still running?); stop it or set GATEWAY_PORT"
        )
    copies = gateway_copies()

    bootstrap(who="make run")

    stopping = []

    def on_signal(signum, frame):
        stopping.append(signum)

    # Before any child starts; also when started in the background, where
    # SIGINT comes in ignored.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    children = children_of(copies)
    catcher = mail_catcher(config)
    if catcher is not None:
        children.insert(0, catcher)  # listening before the first mail
    for child in children:
        child.start()
    ready = False
    while not stopping:
        for child in children:
            if child.restart_at is not None:
                if time.monotonic() >= child.restart_at:
                    child.start()
            elif child.exited():
                child.schedule_restart()
        if not ready and healthy(port):
            ready = True
            say(f"ready: API on http://localhost:{port} ({copies} gateway processes; Ctrl-C stops)")
        time.sleep(POLL_SECONDS)

    say(f"stopping every service (signal {signal.Signals(stopping[0]).name})")
    stop_all(children, grace)
    say("all services stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
