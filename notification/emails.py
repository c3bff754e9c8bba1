"""The "new article" email: a plain-text part and an HTML part."""

import html
from email.message import EmailMessage
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


def article_link(base_url, article_id):
    """The article through the gateway: ``<base>/api/articles/<id>``."""
    return f"{base_url.rstrip('/')}/api/articles/{quote(str(article_id), safe='')}"


def new_article_email(article, *, event_id, sender, recipient, base_url):
    fields = {
        "title": article["title"],
        "description": article["description"],
        "link": article_link(base_url, article["id"]),
    }
    message = EmailMessage()
    message["Subject"] = SUBJECT
    message["From"] = sender
    message["To"] = recipient
    message["Date"] = formatdate(usegmt=True)
    # One id per event: should a crash resend it, mail clients see one mail.
    domain = sender.rpartition("@")[2] or "localnews"
    message["Message-ID"] = f"<article-added.{event_id}@{domain}>"
    message.set_content(TEXT.substitute(fields))
    escaped = {name: html.escape(value) for name, value in fields.items()}
    message.add_alternative(HTML.substitute(escaped), subtype="html")
    return message
