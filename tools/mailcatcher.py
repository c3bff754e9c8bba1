"""A mail catcher for development: the notification mail, where you can see it.

With development settings, ``make run`` starts it when mail would go to this
machine (``SMTP_HOST`` is ``localhost``) and nothing listens on
``SMTP_PORT``: on a fresh machine the admin's "new article" mail would
otherwise be retried and parked, unseen. Production settings
(``APP_ENV=production``) never start it.

- ``python -m tools.mailcatcher serve HOST PORT``: accepts every
  message (aiosmtpd, a kept SMTP server), keeps each as an ``.eml`` file in
  ``MAIL_DIR`` (default ``var/mail/`` in the repository) and says so in one
  line: ``mail: to admin@example.com: LocalNewsApplication - New Article
  Added! (var/mail/20261206-101501-0001.eml)``.
- ``python -m tools.mailcatcher list`` (``make mail``): every kept
  message, one line each, oldest first, then the text of the newest.
"""

import asyncio
import os
import signal
import sys
from datetime import datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path

from servicekit.config import ROOT

DEFAULT_FOLDER = ROOT / "var" / "mail"


def mail_folder():
    return Path(os.environ.get("MAIL_DIR") or DEFAULT_FOLDER)


def shown(path):
    """``path`` relative to the repository where it is inside it."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def parsed(raw):
    return BytesParser(policy=policy.default).parsebytes(raw)


class Catcher:
    """aiosmtpd's handler: every message is accepted and kept."""

    def __init__(self, folder):
        self.folder = folder
        self.count = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        path = self.keep(envelope.content)
        message = parsed(envelope.content)
        recipients = ", ".join(envelope.rcpt_tos)
        print(f"mail: to {recipients}: {message['Subject']} ({shown(path)})", flush=True)
        return "250 Message accepted for delivery"

    def keep(self, raw):
        self.folder.mkdir(parents=True, exist_ok=True)
        self.count += 1
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        path = self.folder / f"{stamp}-{os.getpid()}-{self.count:04d}.eml"
        partial = path.with_suffix(".part")
        partial.write_bytes(raw)
        partial.rename(path)  # `make mail` never reads half a message
        return path


async def serve(host, port, folder):
    from aiosmtpd.smtp import SMTP  # a development tool: requirements-dev.txt

    loop = asyncio.get_running_loop()
    catcher = Catcher(folder)
    server = await loop.create_server(lambda: SMTP(catcher, hostname=host), host, port)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(f"mail: catching mail for {host}:{port} in {shown(folder)}/", flush=True)
    async with server:
        await stop.wait()


def summary(path):
    message = parsed(path.read_bytes())
    return f"{path.name[:15]}  to {message['To']}  {message['Subject']}"


def text_of(path):
    message = parsed(path.read_bytes())
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else "(no text part)"


def list_mail(folder):
    messages = sorted(folder.glob("*.eml"))
    if not messages:
        print(f"No mail in {shown(folder)}/ yet (make run keeps it there in development).")
        return
    for path in messages:
        print(summary(path))
    newest = messages[-1]
    print(f"\nThe newest, {shown(newest)}:\n")
    print(text_of(newest))


def main(argv):
    if argv[:1] == ["serve"] and len(argv) == 3:
        asyncio.run(serve(argv[1], int(argv[2]), mail_folder()))
    elif argv in ([], ["list"]):
        list_mail(mail_folder())
    else:
        sys.exit("usage: python -m tools.mailcatcher [list | serve HOST PORT]")


if __name__ == "__main__":
    main(sys.argv[1:])
