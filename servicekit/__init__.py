"""Cross-cutting pieces shared by every Local News service.

Nothing here knows about articles, users or mail: only configuration, errors,
the database base, the outbox, idempotent handlers, tokens and pagination.
"""
