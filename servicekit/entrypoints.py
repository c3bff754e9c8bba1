"""``@rpc`` for every service: the typed errors are expected outcomes.

nameko logs an unexpected exception with its traceback at ERROR; a NotFound
or a ValidationError is the service doing its job, logged as a warning.
"""

from nameko.rpc import rpc as nameko_rpc

from .errors import ServiceError


def rpc(fn=None, **kwargs):
    kwargs.setdefault("expected_exceptions", ServiceError)
    decorator = nameko_rpc(**kwargs)
    return decorator if fn is None else decorator(fn)
