"""A real SMTP server on loopback (aiosmtpd), and a config that points at it."""

import asyncio
import shutil
import ssl
import subprocess
from email import policy
from email.parser import BytesParser

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from nameko.testing.utils import find_free_port


class SmtpServer:
    """aiosmtpd on 127.0.0.1; ``stop()`` and ``start()`` keep the same port.

    ``messages``: every mail accepted, parsed (``email.message.EmailMessage``);
    ``delivered_on``: the connection (client address) each came on;
    ``connections``: every connection that said EHLO; ``quits``: how many
    said QUIT; ``logins``: how many logged in. ``answer_delay``: seconds it
    takes to answer a message's data once it kept it (a real server takes a
    moment); ``receiving``: messages it kept and has not answered yet.

    Faults: ``idle_timeout``, seconds after which it drops a silent client
    (from the next ``start()``); ``mail_refusals``, replies it gives the next
    MAIL FROMs instead of accepting them; ``hang_up_after_data``, it keeps
    the next message and closes that connection instead of answering.

    ``tls_context`` and ``credentials`` (user, password), from the next
    ``start()``: STARTTLS is required, and so is a login (over TLS).
    """

    def __init__(self):
        self.host = "127.0.0.1"
        self.port = find_free_port()
        self.messages = []
        self.envelopes = []
        self.delivered_on = []
        self.connections = []
        self.quits = 0
        self.answer_delay = 0.0
        self.receiving = 0
        self.idle_timeout = 300  # aiosmtpd's default
        self.mail_refusals = []
        self.hang_up_after_data = False
        self.tls_context = None
        self.credentials = None
        self.logins = 0
        self._controller = None

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802 - aiosmtpd's hook names
        session.host_name = hostname  # what aiosmtpd does without the hook
        if session.ssl is None:  # not the EHLO again after STARTTLS
            self.connections.append(session.peer)
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: N802
        if self.mail_refusals:
            return self.mail_refusals.pop(0)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        # Kept first, then answered, as a server queues a mail before its
        # answer: a client that gives up waiting cannot tell it was kept.
        self.envelopes.append(envelope)
        self.delivered_on.append(session.peer)
        self.messages.append(BytesParser(policy=policy.default).parsebytes(envelope.content))
        self.receiving += 1
        try:
            if self.answer_delay:
                await asyncio.sleep(self.answer_delay)
        finally:
            self.receiving -= 1
        if self.hang_up_after_data:
            self.hang_up_after_data = False
            # The mail is kept, but the client never hears it was.
            server.transport.close()
        return "250 Message accepted for delivery"

    async def handle_QUIT(self, server, session, envelope):  # noqa: N802
        self.quits += 1
        return "221 Bye"

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        accepted = (
            isinstance(auth_data, LoginPassword)
            and (auth_data.login.decode(), auth_data.password.decode()) == self.credentials
        )
        self.logins += accepted
        return AuthResult(success=accepted)

    def start(self):
        # A stopped controller cannot start again: a new one on the same port.
        self._controller = Controller(
            self,
            hostname=self.host,
            port=self.port,
            timeout=self.idle_timeout,
            tls_context=self.tls_context,
            require_starttls=self.tls_context is not None,
            authenticator=self._authenticate if self.credentials else None,
            auth_required=bool(self.credentials),
        )
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


@pytest.fixture(scope="session")
def loopback_certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1: (certificate file, key file)."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl to make a certificate")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_smtp_server(smtp_server, loopback_certificate):
    """``smtp_server`` requiring STARTTLS and a login as user "mailer",
    password "secret"."""
    cert, key = loopback_certificate
    smtp_server.stop()
    smtp_server.tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    smtp_server.tls_context.load_cert_chain(cert, key)
    smtp_server.credentials = ("mailer", "secret")
    smtp_server.start()
    return smtp_server


@pytest.fixture
def notification_config(config, smtp_server):
    """The test config, mailing to ``smtp_server``, with quick retries."""
    return {
        **config,
        "SMTP_HOST": smtp_server.host,
        "SMTP_PORT": smtp_server.port,
        "RETRY_DELAYS_SECONDS": "0.2,0.4,0.8,1.6",
    }
