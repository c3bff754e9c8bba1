"""The services as ``nameko run`` processes, their memory, and which process
holds a given TCP connection (gateway copies share one port)."""

import os
import signal
import subprocess
import sys
import time

from servicekit.config import ROOT

from .infra import CannotRun

STOP_GRACE_SECONDS = 10


class ServiceProcess:
    def __init__(self, name, target, env, log_path):
        self.name = name
        self.log_path = log_path
        command = [sys.executable, "-m", "nameko", "run", "--config", "config.yml", target]
        with open(log_path, "wb") as log:
            # Own process group: a terminal's Ctrl-C reaches the bench only,
            # which then stops each service exactly once.
            self.popen = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                process_group=0,
            )

    @property
    def pid(self):
        return self.popen.pid

    def check_running(self):
        if self.popen.poll() is not None:
            raise CannotRun(
                f"{self.name} exited with code {self.popen.returncode} (its log: {self.log_path})"
            )

    def rss_mb(self):
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        raise CannotRun(f"no VmRSS for {self.name} (pid {self.pid})")


class ServiceGroup:
    """The running services by name; ``stop()`` ends them all."""

    def __init__(self, env, log_dir):
        self.env = env
        self.log_dir = log_dir
        self.processes = {}

    def start(self, name, target, **env_overrides):
        env = {**self.env, **env_overrides}
        process = ServiceProcess(name, target, env, self.log_dir / f"{name}.log")
        self.processes[name] = process
        return process

    def __getitem__(self, name):
        return self.processes[name]

    def check_running(self):
        for process in self.processes.values():
            process.check_running()

    def rss_mb(self):
        return {name: process.rss_mb() for name, process in self.processes.items()}

    def stop_one(self, name):
        """Stop the process ``name`` as ``stop()`` does, and forget it."""
        _stop([self.processes.pop(name).popen])

    def stop(self):
        """SIGINT (nameko's graceful stop), then SIGKILL after a grace period."""
        _stop(p.popen for p in self.processes.values())


def _stop(popens):
    running = [popen for popen in popens if popen.poll() is None]
    for popen in running:
        popen.send_signal(signal.SIGINT)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for popen in running:
        try:
            popen.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()


def connection_owners(port, pids):
    """Client port -> pid, for each connection to local ``port`` that one of
    ``pids`` has accepted: which gateway copy serves which connection."""
    pid_by_inode = {inode: pid for pid in pids for inode in _socket_inodes(pid)}
    return {
        client_port: pid_by_inode[inode]
        for inode, client_port in _accepted_connections(port)
        if inode in pid_by_inode
    }


def socket_count(pid):
    """How many sockets the process ``pid`` has open (its listening ones too)."""
    return len(_socket_inodes(pid))


def _accepted_connections(port):
    """(socket inode, client port) of the established connections whose local port is ``port``."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            next(rows)  # the header
            for row in rows:
                fields = row.split()
                local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
                if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                    yield inode, int(remote.rsplit(":", 1)[1], 16)


def _socket_inodes(pid):
    inodes = set()
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(f"{fd_dir}/{fd}")
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes
