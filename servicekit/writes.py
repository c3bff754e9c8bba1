"""A write RPC's transaction: the change, its events and its request's key,
committed together.

A service that changes data declares ``change = Changes(OutboxMessage,
RequestKey)`` (its outbox and request-key models) and marks each write RPC
``@writes``; the method's body is the change alone::

    @rpc
    @writes
    def update(self, article_id, payload, expected_author=None):
        item = ...  # self.change.session: the transaction
        return self.change.announce("article_updated", item.id, data)

``@writes`` gives the RPC a ``request_key=`` argument
(:mod:`servicekit.request_keys`) and does the rest:

1. claims the key first, in the transaction: a request done before gets its
   first answer back, and the body does not run; one still running is a 409;
2. runs the body, which changes rows through ``self.change.session`` and
   adds its events with ``self.change.announce(...)`` (outbox rows in the
   same transaction);
3. keeps the body's return value as the key's answer and commits it all:
   data, events and answer, or nothing;
4. after the worker returns, the outbox publishes the events it added
   (:mod:`servicekit.outbox`).
"""

import functools
import inspect

from nameko.exceptions import IncorrectSignature
from nameko.extensions import DependencyProvider
from sqlalchemy.orm import sessionmaker

from .db import DatabaseEngine
from .outbox import Outbox
from .request_keys import RequestKeys


class Changes(DependencyProvider):
    """``self.change`` in a worker (see the module doc): its ``session`` and
    ``announce``. Owns the service's outbox relay and request keys."""

    database = DatabaseEngine()

    def __init__(self, outbox_model, request_key_model):
        self.outbox = Outbox(outbox_model)
        self.request_keys = RequestKeys(request_key_model)
        self._changes = {}

    def setup(self):
        self.database.setup()
        self.Session = sessionmaker(bind=self.database.engine)

    def get_dependency(self, worker_ctx):
        change = self._changes[worker_ctx] = Change(self, worker_ctx)
        return change

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        self.outbox.relay_added(worker_ctx)

    def worker_teardown(self, worker_ctx):
        change = self._changes.pop(worker_ctx, None)
        if change is not None:
            change.close()


class Change:
    """One worker's change: ``session`` (its transaction, opened on first
    use) and ``announce`` (an event in it)."""

    def __init__(self, provider, worker_ctx):
        self._provider = provider
        self._worker_ctx = worker_ctx
        self._session = None

    @property
    def session(self):
        if self._session is None:
            self._session = self._provider.Session()
        return self._session

    def announce(self, event_type, aggregate_id, data):
        """Add the event ``{"eventId", "occurredAt", "data"}`` to the
        transaction; returns ``data`` (the answer of most writes)."""
        self._provider.outbox.add(self.session, self._worker_ctx, event_type, aggregate_id, data)
        return data

    def claim(self, request_key):
        """The request's key claimed in the transaction (a ``Claim``)."""
        return self._provider.request_keys.claim(self.session, request_key)

    def commit(self):
        self.session.commit()

    def close(self):
        if self._session is not None:
            self._session.close()


def writes(method):
    """A write RPC of a service that declares ``change = Changes(...)``: see
    the module doc. Put it under ``@rpc``."""
    signature = inspect.signature(method)

    @functools.wraps(method)
    def write(self, *args, request_key=None, **kwargs):
        try:
            signature.bind(self, *args, **kwargs)
        except TypeError as exc:  # as nameko says of a call that does not fit
            raise IncorrectSignature(str(exc)) from None
        change = self.change
        claim = change.claim(request_key)
        if claim.answer is not None:
            return claim.answer  # done before: its answer, nothing done again
        answer = method(self, *args, **kwargs)
        claim.keep(answer)
        change.commit()
        return answer

    parameters = [*signature.parameters.values()]
    keyword = inspect.Parameter("request_key", inspect.Parameter.KEYWORD_ONLY, default=None)
    write.__signature__ = signature.replace(parameters=[*parameters, keyword])
    return write
