"""The service container every process runs (config.yml's
``SERVICE_CONTAINER_CLS``): nameko's, its worker lifecycle made cheaper.

A nameko worker, as nameko runs it, pays for things that buy nothing unless
nameko's own DEBUG log is on: the call id made and joined for a debug line
on every worker (a ``uuid4``), five timing context managers, and a call to
every dependency's four hooks, most of which do nothing. :class:`LeanContainer`
runs the same lifecycle, in the same order, with the same logging of
failures: dependencies injected, ``worker_setup``, the method,
``handle_result``, ``worker_result``, ``worker_teardown``; the hooks of
the dependencies that have them, in nameko's order. With nameko's DEBUG
log on, nameko's own code runs.
"""

import logging
import sys

from nameko.containers import ServiceContainer
from nameko.containers import _log as nameko_log
from nameko.extensions import DependencyProvider

HOOKS = ("worker_setup", "worker_result", "worker_teardown")


class LeanContainer(ServiceContainer):
    def start(self):
        # The dependencies are known once the container is set up; so is
        # which of them have each hook (the base class's does nothing).
        self._with_hook = {
            hook: [
                provider
                for provider in self.dependencies
                if getattr(type(provider), hook) is not getattr(DependencyProvider, hook)
            ]
            for hook in HOOKS
        }
        super().start()

    def _run_worker(self, worker_ctx, handle_result):
        if nameko_log.isEnabledFor(logging.DEBUG):
            return super()._run_worker(worker_ctx, handle_result)
        self._inject_dependencies(worker_ctx)
        self._worker_setup(worker_ctx)
        result = exc_info = None
        entrypoint = worker_ctx.entrypoint
        method = getattr(worker_ctx.service, entrypoint.method_name)
        try:
            result = method(*worker_ctx.args, **worker_ctx.kwargs)
        except Exception as exc:
            if isinstance(exc, entrypoint.expected_exceptions):
                nameko_log.warning(
                    "(expected) error handling worker %s: %s", worker_ctx, exc, exc_info=True
                )
            else:
                nameko_log.exception("error handling worker %s: %s", worker_ctx, exc)
            exc_info = sys.exc_info()
        if handle_result is not None:
            result, exc_info = handle_result(worker_ctx, result, exc_info)
        self._worker_result(worker_ctx, result, exc_info)
        del exc_info  # the traceback's cycle, freed now rather than by a gc sweep
        self._worker_teardown(worker_ctx)

    def _worker_setup(self, worker_ctx):
        for provider in self._with_hook["worker_setup"]:
            provider.worker_setup(worker_ctx)

    def _worker_result(self, worker_ctx, result, exc_info):
        for provider in self._with_hook["worker_result"]:
            provider.worker_result(worker_ctx, result, exc_info)

    def _worker_teardown(self, worker_ctx):
        for provider in self._with_hook["worker_teardown"]:
            provider.worker_teardown(worker_ctx)
