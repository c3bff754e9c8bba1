"""Who is calling: bearer tokens verified in the gateway (no RPC per request).

``self.auth.caller(request)`` is the authenticated :class:`Caller` (401
otherwise); ``self.auth.admin(request)`` also demands the admin role (403).
Until the gateway knows which tokens are revoked, a route that needs a token
answers 503, and a public route treats a token as absent.
"""

import logging
import time
from collections import namedtuple

import eventlet
from marshmallow import EXCLUDE, Schema, fields, validate
from nameko.extensions import DependencyProvider

from servicekit.errors import Forbidden, ServiceUnavailable, Unauthorized
from servicekit.logs import Trouble
from servicekit.rpc import DirectReplyCalls
from servicekit.tokens import InvalidToken, TokenVerifier

from .broadcast import BroadcastConsumer
from .rpc import ConsumerPoll

log = logging.getLogger(__name__)

PRUNE_INTERVAL_SECONDS = 60.0
# Asking auth again: soon at first (it may be starting with this gateway),
# then every RELOAD_DELAY_SECONDS.
FIRST_RELOAD_DELAY_SECONDS = 0.1
RELOAD_DELAY_SECONDS = 2.0
REVOCATIONS_TIMEOUT_SECONDS = 5.0

NOT_YET_KNOWN = "This gateway has not yet learnt which tokens are revoked; try again in a moment."
STALE_GENERATION = (
    "The token was issued before the user's latest password or role change; log in again."
)

Caller = namedtuple("Caller", "user_id role email")


class _Revocations(Schema):
    """``auth.revocations()``'s answer, as the gateway reads it."""

    class Meta:
        unknown = EXCLUDE

    deleted = fields.List(fields.String(), required=True)
    generations = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(strict=True, validate=validate.Range(min=0)),
        load_default=dict,
    )


_revocations = _Revocations()


class Authenticator(DependencyProvider):
    """Verifies bearer tokens locally (no RPC per request).

    Refused too: tokens of deleted users, and tokens issued before the user's
    latest password or role change. Each user has a token generation (users
    moves it on with each such change; auth puts it in every token as
    ``gen``): a token whose ``gen`` is below the user's latest is refused.
    The gateway learns deletions and generations from the users events it
    hears (every gateway copy hears every event) and, when it starts or its
    event connection comes back, from auth. Until that answer has come, it
    cannot tell a revoked token from a valid one, so it accepts none (see
    :attr:`revocations_known`). A revocation is kept for ``JWT_TTL_SECONDS``
    after it is heard, by which time every token issued before it has
    expired: memory follows the last day's changes, not history.
    """

    broadcasts = BroadcastConsumer()
    # The routes' own (shared extensions: one of each a process).
    calls = DirectReplyCalls()
    consumer_poll = ConsumerPoll()

    def setup(self):
        self.tokens = TokenVerifier(self.container.config["JWT_SECRET"])
        self.keep_seconds = float(self.container.config["JWT_TTL_SECONDS"])
        self.deleted = {}  # user id -> when to forget it (time.time())
        self.generations = {}  # user id -> (latest token generation, when to forget it)
        self._next_prune = 0.0
        # Each start and each reconnect wants a load of its own; tokens are
        # trusted only once every load wanted is done.
        self._loads_wanted = 1
        self._loads_done = 0
        self._loader = None
        self._first_attempt = eventlet.Event()
        self.broadcasts.on_reconnect(self.reload_revocations)
        self.consumer_poll.watch("auth")

    def start(self):
        self._start_loading()
        # The container has started once auth answered (or failed to, quickly
        # when it is not running): a gateway started with auth already up
        # trusts tokens from its first request.
        with eventlet.Timeout(REVOCATIONS_TIMEOUT_SECONDS + 1, False):
            self._first_attempt.wait()

    def stop(self):
        if self._loader is not None:
            self._loader.kill()

    kill = stop

    def get_dependency(self, worker_ctx):
        return _Auth(self)

    def waits_for(self):
        """For /readyz: no traffic while this copy refuses every token."""
        return "" if self.revocations_known else "the revoked tokens are not loaded from auth yet"

    @property
    def revocations_known(self):
        """Whether every revocation up to the last (re)connection is known."""
        return self._loads_done == self._loads_wanted

    def reload_revocations(self):
        """The event connection came back: what was published meanwhile is
        lost to this copy, so tokens wait for a fresh answer from auth."""
        self._loads_wanted += 1
        self._start_loading()

    def user_deleted(self, user_id):
        self._forget_at(self.deleted, user_id, time.time() + self.keep_seconds)
        self._prune()

    def user_updated(self, user_id, generation):
        if type(generation) is not int:  # bool is an int too
            raise ValueError(f"a user_updated event with tokenGeneration {generation!r}")
        self._raise_generation(user_id, generation, time.time() + self.keep_seconds)
        self._prune()

    def _forget_at(self, table, user_id, forget_at):
        table[user_id] = max(table.get(user_id, 0.0), forget_at)

    def _raise_generation(self, user_id, generation, forget_at):
        # Only upwards: a late or repeated event cannot revive older tokens.
        # Generation 0 refuses nothing (no token has less), so it is not kept.
        known = self.generations.get(user_id)
        if generation > (known[0] if known else 0):
            self.generations[user_id] = (generation, forget_at)

    def _prune(self):
        now = time.time()
        if now < self._next_prune:
            return
        self._next_prune = now + PRUNE_INTERVAL_SECONDS
        self.deleted = {user: until for user, until in self.deleted.items() if until > now}
        self.generations = {
            user: known for user, known in self.generations.items() if known[1] > now
        }

    def _start_loading(self):
        if self._loader is None or self._loader.dead:
            self._loader = self.container.spawn_managed_thread(self._load_revocations)

    def _load_revocations(self):
        # Events published before the broadcast queues exist would be lost:
        # ask auth only once they are consumed (nameko's QueueConsumer.start
        # starts the consumer once and returns when its queues are consumed).
        self.broadcasts.start()
        trouble = Trouble(log)
        delay = FIRST_RELOAD_DELAY_SECONDS
        while self._loads_done < self._loads_wanted:
            wanted = self._loads_wanted
            try:
                known = _revocations.load(self._fetch_revocations())
            except Exception as exc:  # auth away, slow, or answering nonsense
                trouble.occurred(
                    "cannot load revoked tokens from auth yet (%s); refusing tokens until then",
                    type(exc).__name__,
                )
                self._attempted()
                eventlet.sleep(min(delay, RELOAD_DELAY_SECONDS))
                delay *= 2
                continue
            self._apply(known)
            self._loads_done = wanted  # a reconnect meanwhile wants one more round
            self._attempted()
        # No yield since the loop's test: a reconnect from here on starts a new loader.
        self._loader = None
        trouble.over("revoked tokens loaded from auth; accepting tokens again")

    def _attempted(self):
        if not self._first_attempt.ready():
            self._first_attempt.send()

    def _fetch_revocations(self):
        if not self.consumer_poll.is_running("auth"):
            raise ServiceUnavailable("The auth service is not running.")
        call = {"args": (), "kwargs": {}}
        reply = self.calls.call("auth.revocations", call, {}, REVOCATIONS_TIMEOUT_SECONDS)
        return reply.result(timeout=REVOCATIONS_TIMEOUT_SECONDS)

    def _apply(self, known):
        forget_at = time.time() + self.keep_seconds
        for user_id in known["deleted"]:
            self._forget_at(self.deleted, user_id, forget_at)
        for user_id, generation in known["generations"].items():
            self._raise_generation(user_id, generation, forget_at)
        self._prune()

    def check(self, claims):
        user_id = claims["sub"]
        if user_id in self.deleted:
            raise Unauthorized("This user no longer exists.")
        known = self.generations.get(user_id)
        if known is not None and claims["gen"] < known[0]:
            raise Unauthorized(STALE_GENERATION)


class _Auth:
    def __init__(self, provider):
        self._provider = provider
        self.user_deleted = provider.user_deleted
        self.user_updated = provider.user_updated

    def caller(self, request, required=True):
        """The authenticated caller, or ``None`` on a public route without a
        token (or with one the gateway cannot trust yet)."""
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
        provider = self._provider
        try:
            claims = provider.tokens.verify(token.strip())
            # A forged or expired token is a 401 whatever the gateway knows;
            # a valid one may still be revoked, which it cannot tell yet.
            if not provider.revocations_known:
                if required:
                    raise ServiceUnavailable(NOT_YET_KNOWN)
                return None
            provider.check(claims)
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
