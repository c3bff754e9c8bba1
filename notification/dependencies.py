"""SMTP as a nameko dependency: ``self.smtp.send(message)``."""

import smtplib
import ssl

from nameko.extensions import DependencyProvider

TIMEOUT_SECONDS = 10


def as_bool(value):
    """``SMTP_STARTTLS`` from YAML (a bool) or from a string such as "yes"."""
    return str(value).strip().lower() in ("1", "true", "yes", "on")


class MailNotSent(Exception):
    """The SMTP server could not be reached or refused the message; the
    text says where and why, in one line (it is retried, an expected
    outcome, never a traceback)."""


class Smtp(DependencyProvider):
    """Sends an ``EmailMessage`` through ``SMTP_HOST:SMTP_PORT``.

    One connection per message (a new article is rare), upgraded with
    STARTTLS when ``SMTP_STARTTLS`` is set, logged in when ``SMTP_USER`` is.
    Any failure raises :class:`MailNotSent`: the caller decides whether the
    mail counts as sent.
    """

    def setup(self):
        config = self.container.config
        self.host = config["SMTP_HOST"]
        self.port = int(config["SMTP_PORT"])
        self.user = config.get("SMTP_USER") or None
        self.password = config.get("SMTP_PASSWORD") or ""
        self.starttls = as_bool(config.get("SMTP_STARTTLS", False))

    def get_dependency(self, worker_ctx):
        return self

    def send(self, message):
        # The timeout bounds every socket operation: a hung server fails the
        # worker (and the event is retried) instead of holding it forever.
        try:
            with smtplib.SMTP(self.host, self.port, timeout=TIMEOUT_SECONDS) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self.password)
                smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise MailNotSent(
                f"mail to {message['To']} not sent through SMTP {self.host}:{self.port}: {reason}"
            ) from None
