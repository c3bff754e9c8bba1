"""A RabbitMQ cluster of its own on this machine, for fault tests.

Three nodes of the installed RabbitMQ (the Debian package's
``/usr/lib/rabbitmq/bin``), next to whatever node the machine already runs
and without touching it: their own node names (``lnc<n>_<pid>@localhost``),
AMQP and distribution ports on 127.0.0.1, data and log directories under a
directory of the test's, their own Erlang cookie (``HOME`` is that
directory), no plugins, and none of ``/etc/rabbitmq``'s settings. They share
the machine's ``epmd``, the Erlang name server (one a machine).

:meth:`RabbitCluster.start` starts every node at once and joins the others
to the first (``stop_app``, ``join_cluster``, ``start_app``);
:meth:`~RabbitCluster.stop_node` and :meth:`~RabbitCluster.start_node` take
one node away and bring it back; :meth:`~RabbitCluster.close` stops every
node and kills whatever is left of them, whatever happened before.
"""

import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import eventlet

from tests.support import free_port

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
HOST = "localhost"  # what the machine's epmd and short node names agree on
START_TIMEOUT = 90  # seconds, for a node to boot (generous: only against a hang)
STOP_SECONDS = 30
PR_SET_PDEATHSIG = 1


def die_with_parent():
    """For ``preexec_fn``: SIGTERM to the child once the test's process is
    gone, however it went (Linux; elsewhere nothing)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def installed():
    """Why a cluster cannot be started here, or ``None`` if it can."""
    for tool in ("rabbitmq-server", "rabbitmqctl"):
        if not os.access(RABBITMQ_BIN / tool, os.X_OK):
            return f"no {RABBITMQ_BIN / tool} (RabbitMQ's Debian package)"
    if shutil.which("epmd") is None and not list(Path("/usr/lib/erlang").glob("erts-*/bin/epmd")):
        return "no epmd (Erlang)"
    return None


class RabbitError(Exception):
    """A node did not do what it was told; the message has its output."""


class Node:
    """One node: its name, ports and directories, and its process."""

    def __init__(self, cluster, number):
        self.cluster = cluster
        self.number = number
        self.name = f"lnc{number}_{os.getpid()}@{HOST}"
        self.amqp_port = free_port()
        self.dist_port = free_port()
        self.dir = cluster.base_dir / f"node{number}"
        self.log_dir = self.dir / "log"
        self.process = None
        self.console = self.dir / "console.log"

    @property
    def url(self):
        return f"amqp://guest:guest@{HOST}:{self.amqp_port}//"

    def env(self):
        """The variables of ``rabbitmq-env``: everything of this node's own."""
        cluster = self.cluster
        return {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            # The Erlang cookie is $HOME/.erlang.cookie, for the nodes and the CLI.
            "HOME": str(cluster.home),
            "RABBITMQ_CONF_ENV_FILE": str(cluster.env_file),  # not /etc/rabbitmq's
            "RABBITMQ_CONFIG_FILE": str(cluster.config_file),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(cluster.base_dir / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(cluster.plugins_file),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.log_dir),
            "RABBITMQ_PID_FILE": str(self.dir / "rabbit.pid"),
            # Distribution on loopback only, as this machine's own node has it.
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def start(self):
        """Start the node's process (in a process group of its own); see :meth:`await_startup`."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        with open(self.console, "ab") as console:
            self.process = subprocess.Popen(
                [str(RABBITMQ_BIN / "rabbitmq-server")],
                cwd=self.dir,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                process_group=0,
                # rabbitmq-server stops the node on SIGTERM.
                preexec_fn=die_with_parent,
            )

    def running(self):
        return self.process is not None and self.process.poll() is None

    def ctl(self, *args, timeout=60, check=True):
        """``rabbitmqctl -n <node> <args>``; its output."""
        done = subprocess.run(
            [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.name, *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise RabbitError(
                f"rabbitmqctl -n {self.name} {' '.join(args)}: exit {done.returncode}\n"
                f"{done.stdout}{done.stderr}\n{self.log_tail()}"
            )
        return done.stdout

    def await_startup(self, timeout=START_TIMEOUT):
        """Return once the node runs RabbitMQ (its AMQP port open)."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running():
                raise RabbitError(f"{self.name} exited while starting\n{self.log_tail()}")
            done = subprocess.run(
                [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.name, "await_startup"],
                env=self.env(),
                capture_output=True,
                text=True,
                timeout=timeout,
            )
            if done.returncode == 0:
                return
            # Not yet reachable by the CLI (the VM is still booting): again.
            if time.monotonic() > deadline:
                raise RabbitError(f"{self.name} not started after {timeout} s\n{self.log_tail()}")
            time.sleep(0.5)

    def stop(self, kill=False):
        """Stop the node's Erlang VM: ``rabbitmqctl stop``, or SIGKILL (a crash)."""
        if not self.running():
            return
        if not kill:
            with contextlib.suppress(Exception):
                self.ctl("stop", timeout=STOP_SECONDS)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(STOP_SECONDS)
        if self.process.poll() is None or kill:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        # What the VM started in its group (erl_child_setup, inet_gethost) too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def log_tail(self, lines=30):
        """The last lines of the node's log and console, for error messages."""
        text = []
        for path in [self.console, *sorted(self.log_dir.glob("*.log"))]:
            with contextlib.suppress(OSError):
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                text.append(f"--- {path}:\n" + "\n".join(tail))
        return "\n".join(text)


class RabbitCluster:
    """``size`` nodes joined into one cluster; see the module doc."""

    def __init__(self, base_dir, size=3):
        self.base_dir = Path(base_dir)
        self.home = self.base_dir / "home"
        self.env_file = self.base_dir / "rabbitmq-env.conf"
        self.config_file = self.base_dir / "rabbitmq.conf"
        self.plugins_file = self.base_dir / "enabled_plugins"
        self.nodes = [Node(self, number) for number in range(1, size + 1)]
        self.start_seconds = None
        self.boot_seconds = None  # of start_seconds: the nodes booting, before they join
        self._started_epmd = False

    def amqp_uri(self):
        """Every node, in kombu's failover form: the first first."""
        return ";".join(node.url for node in self.nodes)

    def _write_files(self):
        self.home.mkdir(parents=True, exist_ok=True)
        cookie = self.home / ".erlang.cookie"
        cookie.write_text(os.urandom(20).hex().upper())
        cookie.chmod(0o400)
        self.env_file.write_text("")
        self.plugins_file.write_text("[].\n")
        self.config_file.write_text(
            "# A test cluster's nodes: loopback only, logs to files.\n"
            "loopback_users.guest = true\n"
            "log.console = false\n"
            "log.file.level = info\n"
            # A node stopped by the test must not make the others pause.
            "cluster_partition_handling = ignore\n"
        )

    def start(self):
        """Start every node, join them into one cluster; return ``self``.

        ``start_seconds``: how long that took.
        """
        started = time.monotonic()
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        self.start_seconds = time.monotonic() - started
        return self

    def _start(self):
        started = time.monotonic()
        self._write_files()
        self._started_epmd = not epmd_running()
        for node in self.nodes:
            node.start()
        pool = eventlet.GreenPool()
        for node in self.nodes:
            pool.spawn(node.await_startup)
        pool.waitall()
        for node in self.nodes:  # re-raises what a green thread raised
            node.await_startup()
        self.boot_seconds = time.monotonic() - started
        first, others = self.nodes[0], self.nodes[1:]

        def join(node):
            node.ctl("stop_app")
            node.ctl("join_cluster", first.name)
            node.ctl("start_app")
            node.await_startup()

        joins = [eventlet.spawn(join, node) for node in others]
        for each in joins:
            each.wait()
        running = self.running_nodes(first)
        if sorted(running) != sorted(node.name for node in self.nodes):
            raise RabbitError(f"cluster has {running}, not {[n.name for n in self.nodes]}")

    def running_nodes(self, via):
        """Names of the cluster's running nodes, as ``via`` sees them."""
        status = json.loads(via.ctl("cluster_status", "--formatter", "json"))
        return status["running_nodes"]

    def stop_node(self, index, kill=False):
        """Take node ``index`` (0: the first) away: its VM stopped, or killed."""
        self.nodes[index].stop(kill=kill)

    def start_node(self, index):
        """Start node ``index`` again (it rejoins the cluster); return when it runs."""
        node = self.nodes[index]
        node.start()
        node.await_startup()

    def stop_app(self, index):
        """RabbitMQ stopped on node ``index``, its VM left running."""
        self.nodes[index].ctl("stop_app")

    def start_app(self, index):
        self.nodes[index].ctl("start_app")
        self.nodes[index].await_startup()

    def close(self):
        """Stop every node; kill what is left. Safe to call at any point."""
        for node in self.nodes:
            if node.running():
                # Quick: the data is the test's, thrown away next.
                node.stop(kill=True)
        if self._started_epmd:
            # Ours alone: epmd refuses to die while any node is registered.
            subprocess.run(["epmd", "-kill"], capture_output=True, check=False)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()


def epmd_running():
    try:
        done = subprocess.run(["epmd", "-names"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0
