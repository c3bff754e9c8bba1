"""The "new article" email: a plain-text part and an HTML part.

Built with the ``compat32`` MIME classes, not ``EmailMessage``: under
``email.policy.default`` every header is parsed as it is set and again as it
is written (``email.headerregistry``), seven times the CPU of the whole
message as built here, for headers that are plain ASCII from this module and
the config.
"""

import html
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import Compat32
from email.utils import formatdate
from string import Template
from urllib.parse import quote

SUBJECT = "LocalNewsApplication - New Article Added!"

TEXT = Template("""\
A new article was added to LocalNewsApplication.

Title: $title
Description: $description

Read it: $link
""")

HTML = Template("""\
<!DOCTYPE html>
<html>
  <body>
    <p>A new article was added to LocalNewsApplication.</p>
    <h1>$title</h1>
    <p>$description</p>
    <p><a href="$link">Read the article</a></p>
  </body>
</html>
""")


class ShortHeadersAsIs(Compat32):
    """``compat32``, but a header that fits on its line (ASCII, no line
    break, at most ``max_line_length``) is written as it was set:
    ``compat32`` runs every header through ``email.header.Header`` to fold
    it, a third of the cost of writing the message."""

    def fold(self, name, value):
        if self._fits(name, value):
            return f"{name}: {value}{self.linesep}"
        return super().fold(name, value)

    def fold_binary(self, name, value):
        if self._fits(name, value):
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)

    def _fits(self, name, value):
        return (
            isinstance(value, str)
            and value.isascii()
            and "\n" not in value
            and "\r" not in value
            and (self.max_line_length is None or len(name) + 2 + len(value) <= self.max_line_length)
        )


short_headers_as_is = ShortHeadersAsIs()


def article_link(base_url, article_id):
    """The article through the gateway: ``<base>/api/articles/<id>``."""
    return f"{base_url.rstrip('/')}/api/articles/{quote(str(article_id), safe='')}"


def new_article_email(article, *, event_id, sender, recipient, base_url):
    """The mail for ``article`` (``id``, ``title``, ``description``), an
    ``email.message.Message`` for ``smtplib``'s ``send_message``."""
    fields = {
        "title": article["title"],
        "description": article["description"],
        "link": article_link(base_url, article["id"]),
    }
    # A boundary of our own: the generator would draw one and compile a
    # pattern to check it against the parts (a quarter of the cost). No line
    # of a base64 part starts with "--", so no part can contain it.
    message = MIMEMultipart(
        "alternative", boundary=f"article-added.{event_id}", policy=short_headers_as_is
    )
    message["Subject"] = SUBJECT
    message["From"] = sender
    message["To"] = recipient
    message["Date"] = formatdate(usegmt=True)
    # One id per event: should a crash resend it, mail clients see one mail.
    domain = sender.rpartition("@")[2] or "localnews"
    message["Message-ID"] = f"<article-added.{event_id}@{domain}>"
    # utf-8 parts are base64: 7-bit clean and in short lines whatever the
    # article says, as an SMTP server without 8BITMIME requires.
    message.attach(MIMEText(TEXT.substitute(fields), "plain", "utf-8"))
    escaped = {name: html.escape(value) for name, value in fields.items()}
    message.attach(MIMEText(HTML.substitute(escaped), "html", "utf-8"))
    return message
