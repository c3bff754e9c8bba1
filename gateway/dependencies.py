"""What the gateway's routes depend on: RPC with deadlines, and callers."""

import contextlib
import logging
import time
from collections import namedtuple

import eventlet
from amqp.exceptions import NotFound
from kombu import Connection
from nameko.extensions import DependencyProvider
from nameko.rpc import RPC_QUEUE_TEMPLATE, MethodProxy, ReplyListener
from nameko.standalone.rpc import ClusterRpcProxy

from servicekit.config import SERVICE_NAMES
from servicekit.errors import Forbidden, Unauthorized
from servicekit.rpc import RequestPublisher
from servicekit.tokens import InvalidToken, verify_token

from .broadcast import BroadcastConsumer
from .errors import GatewayTimeout, ServiceUnavailable

log = logging.getLogger(__name__)

CONSUMER_POLL_SECONDS = 1.0
PRUNE_INTERVAL_SECONDS = 60.0


class ServiceRpc(DependencyProvider):
    """``self.rpc.call("users", "get", user_id)`` with the contract's deadlines.

    - A service with no consumer on its queue is 503 at once, instead of a
      request waiting in a queue nobody reads (a background poll of the
      queues' consumer counts tells).
    - A service that does not answer within ``RPC_TIMEOUT_SECONDS`` is 504;
      the request message expires at the same deadline, so a service that
      comes back later does not run requests whose callers gave up.
    """

    reply_listener = ReplyListener()

    def setup(self):
        self.timeout = float(self.container.config["RPC_TIMEOUT_SECONDS"])
        self.consumers = {}  # service name -> consumer count; unknown = try

    def start(self):
        self._poller = self.container.spawn_managed_thread(self._poll_consumers)

    def stop(self):
        self._poller.kill()

    kill = stop

    def get_dependency(self, worker_ctx):
        return _Rpc(self, worker_ctx)

    def is_running(self, service_name):
        if self.consumers.get(service_name, 1):
            return True
        # Polled as down: check again now, so a service that just came back
        # is used at once (this costs a connection only while it is down).
        try:
            with Connection(self.container.config["AMQP_URI"], connect_timeout=2) as conn:
                self.consumers[service_name] = _consumer_count(conn, service_name)
        except Exception:
            return True  # the call itself will say what is wrong
        return self.consumers[service_name] > 0

    def _poll_consumers(self):
        amqp_uri = self.container.config["AMQP_URI"]
        while True:
            try:
                with Connection(amqp_uri, connect_timeout=2) as conn:
                    while True:
                        for name in SERVICE_NAMES:
                            self.consumers[name] = _consumer_count(conn, name)
                        eventlet.sleep(CONSUMER_POLL_SECONDS)
            except Exception as exc:
                log.warning("cannot poll RPC consumers (%s); will retry", exc)
                self.consumers.clear()
                eventlet.sleep(CONSUMER_POLL_SECONDS)


def _consumer_count(conn, service_name):
    # A failed passive declare closes its channel, hence one channel a check.
    channel = conn.channel()
    try:
        return channel.queue_declare(RPC_QUEUE_TEMPLATE.format(service_name), passive=True)[2]
    except NotFound:  # no queue: the service never ran on this broker
        return 0
    finally:
        with contextlib.suppress(Exception):
            channel.close()


class _Rpc:
    def __init__(self, provider, worker_ctx):
        self._provider = provider
        self._worker_ctx = worker_ctx

    def call(self, service_name, method_name, *args, timeout=None, **kwargs):
        return self.call_async(service_name, method_name, *args, **kwargs).wait(timeout)

    def call_async(self, service_name, method_name, *args, **kwargs):
        provider = self._provider
        if not provider.is_running(service_name):
            raise ServiceUnavailable(f"The {service_name} service is not running.")
        proxy = _MethodProxy(
            self._worker_ctx,
            service_name,
            method_name,
            provider.reply_listener,
            expiration=provider.timeout,
        )
        return _PendingReply(proxy.call_async(*args, **kwargs), service_name, provider.timeout)


class _MethodProxy(MethodProxy):
    # Unconfirmed: whether the service runs is known from its queue's
    # consumers, and how long to wait from the deadline (servicekit.rpc).
    publisher_cls = RequestPublisher


class _PendingReply:
    def __init__(self, reply, service_name, timeout):
        self._reply = reply
        self._service_name = service_name
        self._deadline = time.monotonic() + timeout

    def wait(self, timeout=None):
        remaining = self._deadline - time.monotonic() if timeout is None else timeout
        try:
            with eventlet.Timeout(max(remaining, 0)):
                return self._reply.result()
        except eventlet.Timeout:
            raise GatewayTimeout(
                f"The {self._service_name} service did not answer in time."
            ) from None


Caller = namedtuple("Caller", "user_id role email")


class Authenticator(DependencyProvider):
    """Verifies bearer tokens locally (no RPC per request).

    Refused too: tokens of deleted users, and tokens whose role is no longer
    the user's role. The gateway learns both from the users events it hears
    (every gateway copy hears every event) and, when it starts or its event
    connection comes back, from auth. A revocation is kept for
    ``JWT_TTL_SECONDS`` after it is heard, by which time every token issued
    before it has expired: memory follows the last day's changes, not history.
    """

    broadcasts = BroadcastConsumer()

    def setup(self):
        self.secret = self.container.config["JWT_SECRET"]
        self.keep_seconds = float(self.container.config["JWT_TTL_SECONDS"])
        self.deleted = {}  # user id -> when to forget it (time.time())
        self.roles = {}  # user id -> (current role, when to forget it)
        self._next_prune = 0.0
        self._loader = None
        self.broadcasts.on_reconnect(self._start_loading)

    def start(self):
        self._start_loading()

    def stop(self):
        if self._loader is not None:
            self._loader.kill()

    kill = stop

    def get_dependency(self, worker_ctx):
        return _Auth(self)

    def user_deleted(self, user_id):
        self.deleted[user_id] = time.time() + self.keep_seconds
        self._prune()

    def user_updated(self, user_id, role):
        self.roles[user_id] = (role, time.time() + self.keep_seconds)
        self._prune()

    def _prune(self):
        now = time.time()
        if now < self._next_prune:
            return
        self._next_prune = now + PRUNE_INTERVAL_SECONDS
        self.deleted = {user: until for user, until in self.deleted.items() if until > now}
        self.roles = {user: known for user, known in self.roles.items() if known[1] > now}

    def _start_loading(self):
        if self._loader is None or self._loader.dead:
            self._loader = self.container.spawn_managed_thread(self._load_revocations)

    def _load_revocations(self):
        while True:
            try:
                with ClusterRpcProxy(self.container.config, timeout=5) as cluster:
                    known = cluster.auth.revocations()
                break
            except Exception as exc:
                log.warning(
                    "cannot load revoked tokens from auth yet (%s); retrying", type(exc).__name__
                )
                eventlet.sleep(2)
        forget_at = time.time() + self.keep_seconds
        for user_id in known["deleted"]:
            self.deleted[user_id] = forget_at
        for user_id, role in known["roles"].items():
            self.roles.setdefault(user_id, (role, forget_at))  # events heard meanwhile win

    def check(self, claims):
        user_id = claims["sub"]
        if user_id in self.deleted:
            raise Unauthorized("This user no longer exists.")
        role = self.roles.get(user_id)
        if role is not None and role[0] != claims["role"]:
            raise Unauthorized("The user's role has changed; log in again.")


class _Auth:
    def __init__(self, provider):
        self._provider = provider
        self.user_deleted = provider.user_deleted
        self.user_updated = provider.user_updated

    def caller(self, request, required=True):
        """The authenticated caller, or ``None`` on a public route without a token."""
        header = request.headers.get("Authorization")
        if header is None:
            if required:
                raise Unauthorized("This route needs 'Authorization: Bearer <token>'.")
            return None
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            if required:
                raise Unauthorized(
                    "Malformed Authorization header; expected 'Authorization: Bearer <token>'."
                )
            return None
        try:
            claims = verify_token(self._provider.secret, token.strip())
            self._provider.check(claims)
        except (InvalidToken, Unauthorized) as exc:
            if required:
                raise Unauthorized(str(exc)) from None
            return None
        return Caller(claims["sub"], claims["role"], claims.get("email"))

    def admin(self, request):
        caller = self.caller(request)
        if caller.role != "admin":
            raise Forbidden("Only an admin may do this.")
        return caller
