"""Operator tools: what runs around the services, never inside them.

``make run``'s supervisor (``tools.runner``), the bootstrap step
(``tools.bootstrap``: broker, databases, migrations, queues), the migrations
runner (``tools.migrations``), the event queues declared up front
(``tools.topology``), ``make shell`` (``tools.shell``), the development mail
catcher (``tools.mailcatcher``) and PostgreSQL as distributions install it
(``tools.postgres_access``). They know the services by name
(:data:`SERVICE_NAMES`); the services and the kit (``servicekit``) never
import them.
"""

# The domain services, in the order they are started. The gateway is not one:
# it owns no data and no RPC queue, and runs in as many copies as wanted.
SERVICE_NAMES = ("users", "auth", "articles", "events", "notification")

# Host names of this machine, as settings spell them.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
