"""The bench's own SMTP server: notification mails it, we note when each
mail arrived and which article it announces."""

import re
import time
from email import policy
from email.parser import BytesParser

from aiosmtpd.controller import Controller
from nameko.testing.utils import find_free_port

# The mail links to the article through the gateway: <base>/api/articles/<id>.
ARTICLE_LINK = re.compile(r"/api/articles/([0-9a-fA-F-]{36})")


class MailSink:
    """``arrivals``: article id -> wall-clock time (``time.time()``) its mail arrived."""

    host = "127.0.0.1"

    def __init__(self):
        self.port = find_free_port()
        self.arrivals = {}
        self.unrecognised = 0
        self._controller = Controller(self, hostname=self.host, port=self.port)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        arrived = time.time()
        message = BytesParser(policy=policy.default).parsebytes(envelope.content)
        match = ARTICLE_LINK.search(message.get_body(preferencelist=("plain",)).get_content())
        if match:
            # A redelivered mail keeps its first arrival.
            self.arrivals.setdefault(match.group(1).lower(), arrived)
        else:
            self.unrecognised += 1
        return "250 Message accepted for delivery"

    def wait_for(self, article_ids, timeout):
        """Wait until every one of ``article_ids`` has its mail; return those still missing."""
        deadline = time.monotonic() + timeout
        while True:
            missing = [i for i in article_ids if i not in self.arrivals]
            if not missing or time.monotonic() > deadline:
                return missing
            time.sleep(0.1)

    def __enter__(self):
        self._controller.start()
        return self

    def __exit__(self, *exc_info):
        self._controller.stop()
