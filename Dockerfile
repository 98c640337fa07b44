# One image for the bot, the workers and the audit server (the example target runs inside the
# workers' image too). docker-compose.yml builds and runs it; by hand:
#   docker build --build-arg PG_CLIENT_VERSION=17 -t migrabot .
#
# The base is pinned by exact tag and by digest (the multi-platform index of that tag), so a
# rebuild gets the same Python and the same Debian packages. The digest was taken from public
# Dockerfiles pinning this tag; check it, or move to a newer patch release (then replace the tag
# and the digest together), with:
#   docker buildx imagetools inspect python:3.11.13-slim-bookworm --format '{{json .Manifest.Digest}}'
FROM python:3.11.13-slim-bookworm@sha256:86adf8dbadc3d6e82ee5dd2c74bec2e1c2467cdad47886280501df722372d2e1

# pg_dump, pg_restore and psql (a worker's backups and restores) must be at least as new as the
# newest PostgreSQL server the workers back up: pg_dump refuses a newer server. Choose the major
# version with --build-arg PG_CLIENT_VERSION=… (compose passes PG_CLIENT_VERSION). 15 is Debian
# bookworm's own package; any other version comes from the PostgreSQL project's apt repository
# (apt.postgresql.org, "PGDG"), which the build must then reach. The build fails, rather than
# install another version, if the one asked for cannot be installed.
ARG PG_CLIENT_VERSION=17
RUN set -eux; \
    apt-get update; \
    if [ "$PG_CLIENT_VERSION" != "15" ]; then \
        apt-get install -y --no-install-recommends ca-certificates curl; \
        install -d /usr/share/postgresql-common/pgdg; \
        curl -fsSL --retry 3 -o /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc \
            https://www.postgresql.org/media/keys/ACCC4CF8.asc; \
        echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] https://apt.postgresql.org/pub/repos/apt bookworm-pgdg main" \
            > /etc/apt/sources.list.d/pgdg.list; \
        apt-get purge -y --auto-remove curl; \
        apt-get update; \
    fi; \
    apt-get install -y --no-install-recommends "postgresql-client-${PG_CLIENT_VERSION}"; \
    pg_dump --version | grep -q " ${PG_CLIENT_VERSION}\."; \
    rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
# The runtime dependencies exactly as locked, every file checked against its hash (./scripts/lock
# regenerates requirements.lock); then migrabot itself, adding nothing the lock does not pin.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY migrabot ./migrabot
COPY migrabot_probe ./migrabot_probe
COPY bot ./bot
COPY workers ./workers
COPY controlplane ./controlplane
COPY slackui ./slackui
COPY slacklocal ./slacklocal
COPY audit ./audit
RUN pip install --no-deps . && rm -rf build *.egg-info
COPY migrabot.toml ./
COPY example ./example
COPY docker/healthcheck /usr/local/bin/migrabot-healthcheck

# Not root: the processes run as migrabot (uid 10001). What they write lives in two folders it
# owns, each a named volume in docker-compose.yml (a fresh volume takes the folder's owner):
# MIGRABOT_HOME (local state, the dev environment's SQLite) and the backups (migrabot.toml's
# backup_dir, relative to /app: var/backups/<environment>).
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/migrabot --no-create-home \
        --shell /usr/sbin/nologin migrabot \
 && install -d -o migrabot -g migrabot /var/lib/migrabot /app/var /app/var/backups
ENV MIGRABOT_CONFIG=/app/migrabot.toml MIGRABOT_HOME=/var/lib/migrabot HOME=/var/lib/migrabot
USER 10001:10001

# Per command (see docker/healthcheck): the bot's and the audit server's GET /healthz, a
# worker's Celery ping by its own name. docker-compose.yml states the same checks per service.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 CMD ["migrabot-healthcheck"]
ENTRYPOINT ["migrabot"]
