# Must run before anything imports socket, threading or time: nameko's pytest
# plugin no longer patches, and plain `pytest` hangs without it.
import eventlet

eventlet.monkey_patch()

pytest_plugins = ["tests.support"]
