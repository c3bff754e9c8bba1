"""A real SMTP server on loopback (aiosmtpd), and a config that points at it."""

import asyncio
from email import policy
from email.parser import BytesParser

import pytest
from aiosmtpd.controller import Controller
from nameko.testing.utils import find_free_port


class SmtpServer:
    """aiosmtpd on 127.0.0.1; ``stop()`` and ``start()`` keep the same port.

    ``messages``: every mail accepted, parsed (``email.message.EmailMessage``).
    ``answer_delay``: seconds it takes to answer a message's data (a real
    server takes a moment); ``receiving``: messages whose data it has and has
    not answered yet.
    """

    def __init__(self):
        self.host = "127.0.0.1"
        self.port = find_free_port()
        self.messages = []
        self.envelopes = []
        self.answer_delay = 0.0
        self.receiving = 0
        self._controller = None

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.receiving += 1
        try:
            if self.answer_delay:
                await asyncio.sleep(self.answer_delay)
            self.envelopes.append(envelope)
            self.messages.append(BytesParser(policy=policy.default).parsebytes(envelope.content))
        finally:
            self.receiving -= 1
        return "250 Message accepted for delivery"

    def start(self):
        # A stopped controller cannot start again: a new one on the same port.
        self._controller = Controller(self, hostname=self.host, port=self.port)
        self._controller.start()

    def stop(self):
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture
def smtp_server():
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def notification_config(config, smtp_server):
    """The test config, mailing to ``smtp_server``, with quick retries."""
    return {
        **config,
        "SMTP_HOST": smtp_server.host,
        "SMTP_PORT": smtp_server.port,
        "RETRY_DELAYS_SECONDS": "0.2,0.4,0.8,1.6",
    }
