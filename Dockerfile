# One image for every service, the bootstrap step and `nameko shell`:
#   nameko run --config config.yml <service>.service   (default: the gateway)
#   python -m tools.bootstrap                      (once per deployment)
# docker-compose.yml and deploy/ (Kubernetes) choose the command per container.
#
# Only the runtime dependencies (requirements.txt) are installed; the test and
# development tools of requirements-dev.txt stay out of the image.
#
# The base image is pinned to Python 3.11 (the version the project is tested
# on) and to one Debian release, so a rebuild picks up security fixes but no
# new major of either.

# --- build: a virtualenv with the pinned requirements ----------------------
FROM python:3.11-slim-trixie AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

# Every requirement is pinned exactly in requirements.txt and ships a wheel
# (psycopg2-binary, argon2-cffi, greenlet...): no compiler needed. It also
# pins setuptools below 80, replacing the venv's own (nameko's CLI imports
# pkg_resources); the import below fails the build if that ever breaks.
COPY requirements.txt /tmp/requirements.txt
RUN python -m venv /opt/venv \
    && pip install --requirement /tmp/requirements.txt \
    && pip check \
    && python -c "import pkg_resources, nameko.cli.main"

# --- runtime -----------------------------------------------------------------
FROM python:3.11-slim-trixie

LABEL org.opencontainers.image.title="localnews-backend" \
      org.opencontainers.image.description="Local News backend: Nameko services, gateway and bootstrap step"

# OPS_PORT: every service process serves /metrics, /livez and /readyz there.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    OPS_PORT=9102

# A fixed numeric user and group (10001), so that Kubernetes' runAsNonRoot can
# verify it and volumes can be prepared for it.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin app

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
COPY . .
# Byte-compiled once here: containers may run with a read-only root
# filesystem, where Python could not write its caches. The code stays owned by
# root, read-only to the app user.
RUN python -m compileall -q .

USER 10001:10001

# SIGTERM (the default, stated for clarity): a service stops gracefully,
# letting running workers finish, and exits at the latest
# SHUTDOWN_GRACE_SECONDS (20 by default) later. Give containers a longer
# grace period than that (compose: 30 s; Kubernetes: 30 s).
STOPSIGNAL SIGTERM

# 8000: the gateway's HTTP API (GATEWAY_PORT). 9102: the operations port.
EXPOSE 8000 9102

CMD ["nameko", "run", "--config", "config.yml", "gateway.service"]
