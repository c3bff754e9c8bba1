# One image for every service, the migrations and `nameko shell`.
# docker-compose.yml picks the command per container, e.g.
#   nameko run --config config.yml articles.service
#   python -m servicekit.bootstrap
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, so a code change does not reinstall them. psycopg2-binary
# and argon2-cffi ship wheels: no compiler needed. requirements.txt pins
# setuptools below 80 (nameko's CLI imports pkg_resources), replacing the
# image's own.
COPY requirements.txt .
RUN pip install -r requirements.txt \
    && python -c "import pkg_resources, nameko.cli.main"

COPY . .

# Run as an unprivileged user; the code stays owned by root (read-only to it).
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin app
USER app

# An idle `nameko run` was seen ignoring SIGTERM for 30+ s; SIGINT stops it
# at once (graceful: running workers finish).
STOPSIGNAL SIGINT

EXPOSE 8000
