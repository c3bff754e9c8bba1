"""SMTP as a nameko dependency: ``self.smtp.send(message)``."""

import contextlib
import smtplib
import ssl
import time
from collections import deque

from nameko.extensions import DependencyProvider

TIMEOUT_SECONDS = 10
# Servers drop a client that stays idle (Postfix after 300 s, many relays
# sooner): a connection idle for longer than this is closed, not tried.
IDLE_SECONDS = 30


def as_bool(value):
    """``SMTP_STARTTLS`` from YAML (a bool) or from a string such as "yes"."""
    return str(value).strip().lower() in ("1", "true", "yes", "on")


class MailNotSent(Exception):
    """The SMTP server could not be reached or refused the message; the
    text says where and why, in one line (it is retried, an expected
    outcome, never a traceback)."""


class SmtpConnection(smtplib.SMTP):
    """``smtplib.SMTP`` that tells whether the message's data has started to
    go out (``data_started``): until then, the server has nothing of it."""

    data_started = False

    def data(self, msg):
        self.data_started = True
        return super().data(msg)

    def quit_and_close(self):
        """QUIT without waiting for the answer (a server that hangs must not
        hold up a send or a stop), then close."""
        with contextlib.suppress(smtplib.SMTPException, OSError):
            self.putcmd("quit")
        self.close()


class Smtp(DependencyProvider):
    """Sends an ``email.message.Message`` through ``SMTP_HOST:SMTP_PORT``.

    Connections stay open between mails: a send takes the most recently
    used idle one, or opens one (upgraded with STARTTLS when
    ``SMTP_STARTTLS`` is set, logged in when ``SMTP_USER`` is). A send has
    its connection to itself (workers run at once, so there are as many as
    sends at a time); it goes back to the idle ones once the server accepted
    the mail and is closed after any failure. One idle for more than
    ``IDLE_SECONDS`` is closed at the next send; all are at ``stop()`` and
    ``kill()``.

    An idle connection the server dropped, or that refuses the envelope,
    fails before any of the message went out: that send is made once more
    on a new connection. Any other failure raises :class:`MailNotSent`, with
    no second try (once the data went out, the server may have the mail):
    the caller decides whether the mail counts as sent.
    """

    def setup(self):
        config = self.container.config
        self.host = config["SMTP_HOST"]
        self.port = int(config["SMTP_PORT"])
        self.user = config.get("SMTP_USER") or None
        self.password = config.get("SMTP_PASSWORD") or ""
        self.starttls = as_bool(config.get("SMTP_STARTTLS", False))
        # Made once: loading the CA certificates costs more than a handshake.
        self.tls_context = ssl.create_default_context() if self.starttls else None
        # (connection, idle since): the oldest first, the last used last.
        self.idle = deque()

    def stop(self):
        self._close_idle()

    def kill(self):
        self._close_idle()

    def get_dependency(self, worker_ctx):
        return self

    def send(self, message):
        # The timeout bounds every socket operation: a hung server fails the
        # worker (and the event is retried) instead of holding it forever.
        try:
            connection = self._take_idle()
            if connection is not None:
                try:
                    self._send_on(connection, message)
                    return
                except (smtplib.SMTPException, OSError):
                    if connection.data_started:
                        raise
                    # Dropped while idle (or the envelope refused) before the
                    # server had any of the message: a new connection may take it.
            self._send_on(self._connect(), message)
        except (smtplib.SMTPException, OSError) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise MailNotSent(
                f"mail to {message['To']} not sent through SMTP {self.host}:{self.port}: {reason}"
            ) from None

    def _connect(self):
        connection = SmtpConnection(self.host, self.port, timeout=TIMEOUT_SECONDS)
        try:
            if self.starttls:
                connection.starttls(context=self.tls_context)
            if self.user:
                connection.login(self.user, self.password)
        except BaseException:
            connection.close()
            raise
        return connection

    def _send_on(self, connection, message):
        connection.data_started = False
        try:
            connection.send_message(message)
        except BaseException:
            # Its state is unknown (a reply may still be on its way).
            connection.close()
            raise
        self.idle.append((connection, time.monotonic()))

    def _take_idle(self):
        """The last used idle connection, or None; those idle too long are
        closed on the way."""
        expired = time.monotonic() - IDLE_SECONDS
        while self.idle and self.idle[0][1] < expired:
            self.idle.popleft()[0].quit_and_close()
        return self.idle.pop()[0] if self.idle else None

    def _close_idle(self):
        while self.idle:
            self.idle.pop()[0].quit_and_close()
