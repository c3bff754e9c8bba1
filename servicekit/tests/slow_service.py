"""A service whose work takes as long as the caller says: for the shutdown tests.

Run as a real process (``nameko run servicekit.tests.slow_service``). Each call
prints a line when it starts and when it ends, so a test can tell which
process ran it, and how many times.
"""

import os

import eventlet

from servicekit.config import CheckedConfig
from servicekit.rpc import rpc
from servicekit.shutdown import GracefulShutdown


class SlowService:
    name = "slow"

    config = CheckedConfig()
    shutdown = GracefulShutdown()

    @rpc
    def work(self, token, seconds):
        print(f"started {token} in {os.getpid()}", flush=True)
        eventlet.sleep(seconds)
        print(f"finished {token} in {os.getpid()}", flush=True)
        return os.getpid()
