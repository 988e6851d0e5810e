# rqdag: the coordinator, workers and the CLI in one image (no test or dev dependencies).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app

RUN groupadd --system rqdag \
    && useradd --system --gid rqdag --home-dir /app --no-create-home --shell /usr/sbin/nologin rqdag

WORKDIR /src
COPY pyproject.toml README.md ./
COPY rqdag ./rqdag
# prometheus_client: the metrics extra (compose.yaml serves metrics on --metrics-port)
RUN pip install . "prometheus_client>=0.20" && rm -rf /src

# Task modules: the workers import them by module name (--tasks examples.hello), from /app.
WORKDIR /app
COPY examples ./examples

USER rqdag
CMD ["rqdag", "--help"]
