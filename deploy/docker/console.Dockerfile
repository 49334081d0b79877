# syntax=docker/dockerfile:1.7
# console image (services/console: the explanations web page). Build from the repository root after `make data`
# (the image carries the prepared dataset for its customer picker):
#   docker build -f deploy/docker/console.Dockerfile -t shop-console:dev .
# Context filter: deploy/docker/console.Dockerfile.dockerignore (BuildKit reads <Dockerfile>.dockerignore).

# ---- build: a venv with the pinned runtime dependencies, and the gRPC stubs generated from protos/
FROM python:3.11.13-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY deploy/docker/requirements-services.txt /tmp/requirements.txt
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install -r /tmp/requirements.txt
# Stubs are build outputs (libs/gen is not in git); grpcio-tools stays in this stage only.
RUN pip install grpcio-tools==1.81.1
COPY protos/ protos/
COPY tools/gen_protos.py tools/gen_protos.py
RUN python tools/gen_protos.py

# ---- runtime: same base (the venv's interpreter symlinks point at it), no compilers, non-root
FROM python:3.11.13-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app:/app/libs/gen \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    SHOP_ARTIFACTS_DIR=/app/artifacts \
    SHOP_CONSOLE_ADDR=0.0.0.0:8080
RUN groupadd --system --gid 10001 shop \
 && useradd --system --uid 10001 --gid shop --no-create-home --shell /usr/sbin/nologin shop
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY libs/ libs/
COPY --from=build /src/libs/gen/ libs/gen/
COPY services/__init__.py services/__init__.py
COPY services/console/ services/console/
COPY artifacts/data/ artifacts/data/
# Bytecode at build time: the root filesystem is read-only at run time, so nothing could cache it later.
RUN python -m compileall -q /app/libs /app/services
# Numeric uid so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=3)"]
CMD ["python", "-m", "services.console"]
