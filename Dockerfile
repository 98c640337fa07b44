# One image for the bot and the workers (the example target runs inside the workers' image too).
FROM python:3.11-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY migrabot ./migrabot
COPY migrabot_probe ./migrabot_probe
COPY bot ./bot
COPY workers ./workers
COPY controlplane ./controlplane
COPY slackui ./slackui
COPY slacklocal ./slacklocal
COPY audit ./audit
RUN pip install --no-cache-dir .
COPY migrabot.toml ./
COPY example ./example
ENV MIGRABOT_CONFIG=/app/migrabot.toml MIGRABOT_HOME=/var/lib/migrabot
ENTRYPOINT ["migrabot"]
