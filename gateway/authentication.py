"""Who is calling: bearer tokens verified in the gateway (no RPC per request).

``self.auth.caller(request)`` is the authenticated :class:`Caller` (401
otherwise); ``self.auth.admin(request)`` also demands the admin role (403).
"""

import logging
import time
from collections import namedtuple

import eventlet
from nameko.extensions import DependencyProvider
from nameko.standalone.rpc import ClusterRpcProxy

from servicekit.errors import Forbidden, Unauthorized
from servicekit.logs import Trouble
from servicekit.tokens import InvalidToken, verify_token

from .broadcast import BroadcastConsumer

log = logging.getLogger(__name__)

PRUNE_INTERVAL_SECONDS = 60.0

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
        trouble = Trouble(log)
        while True:
            try:
                with ClusterRpcProxy(self.container.config, timeout=5) as cluster:
                    known = cluster.auth.revocations()
                break
            except Exception as exc:
                trouble.occurred(
                    "cannot load revoked tokens from auth yet (%s); retrying", type(exc).__name__
                )
                eventlet.sleep(2)
        trouble.over("revoked tokens loaded from auth")
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
