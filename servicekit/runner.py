"""``python -m servicekit.runner``: the whole backend in the foreground.

Bootstraps (broker, databases, migrations), then runs each service as its own
``nameko run`` process, and ``GATEWAY_PROCESSES`` copies of the gateway (one
per core by default) sharing its port: the kernel spreads connections over
them (eventlet's listener sets ``SO_REUSEPORT``). SIGINT or SIGTERM stops them
all: each child gets SIGINT (nameko's prompt, graceful stop), and is killed if
it has not exited within the grace period.
"""

import os
import signal
import socket
import subprocess
import sys
import time

from .bootstrap import main as bootstrap
from .config import ROOT, SERVICE_NAMES, load_config

STOP_GRACE_SECONDS = 15


def start(service):
    cmd = [sys.executable, "-m", "nameko", "run", "--config", "config.yml", f"{service}.service"]
    # Own process group: a terminal's Ctrl-C reaches the runner only, which
    # then stops each child exactly once.
    return subprocess.Popen(cmd, cwd=ROOT, process_group=0)


def stop_all(children):
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGINT)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for name, child in children.items():
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"runner: {name} did not stop in {STOP_GRACE_SECONDS} s; killing it", flush=True)
            child.kill()


def gateway_copies():
    value = os.environ.get("GATEWAY_PROCESSES") or str(os.cpu_count() or 1)
    try:
        copies = int(value)
    except ValueError:
        copies = 0
    if copies < 1:
        raise SystemExit(f"runner: GATEWAY_PROCESSES must be a whole number >= 1, not {value!r}")
    return copies


def port_in_use(port):
    """Something answers on ``port``. With ``SO_REUSEPORT`` a new gateway
    would share the port with it silently, and it would take traffic."""
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def main():
    port = int(load_config()["WEB_SERVER_ADDRESS"].rsplit(":", 1)[-1])
    if port_in_use(port):
        raise SystemExit(
            f"runner: port {port} is in use (a gateway still running?); stop it or set GATEWAY_PORT"
        )
    copies = gateway_copies()
    bootstrap()
    children = {service: start(service) for service in SERVICE_NAMES}
    children.update({f"gateway-{n}": start("gateway") for n in range(1, copies + 1)})
    stopping = False

    def on_signal(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print(
        f"runner: API on http://localhost:{port} ({copies} gateway processes; "
        f"pid {os.getpid()}; Ctrl-C stops)",
        flush=True,
    )
    exit_code = 0
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                print(f"runner: {name} exited with {child.returncode}; stopping", flush=True)
                stopping, exit_code = True, 1
                break
        time.sleep(0.2)
    stop_all(children)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
