# shelfwise: the API and the trainer, one small image run as a non-root user.
#   docker build -t shelfwise .
#   docker compose up          (docker-compose.yml: PostgreSQL, Redis, the API, the trainer)
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/shelfwise
COPY pyproject.toml README.md /src/
COPY src /src/src
RUN /opt/shelfwise/bin/pip install /src

FROM python:3.11-slim
# LightGBM needs the OpenMP runtime; nothing else is installed.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data shelfwise \
    && mkdir -p /data/models \
    && chown -R shelfwise /data
COPY --from=build /opt/shelfwise /opt/shelfwise
ENV PATH=/opt/shelfwise/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SHELFWISE_HOST=0.0.0.0 \
    SHELFWISE_MODEL_DIR=/data/models
USER shelfwise
WORKDIR /data
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/ready', timeout=3)"]
CMD ["shelfwise", "serve", "--workers", "2"]
