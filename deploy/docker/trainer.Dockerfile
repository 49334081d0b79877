# syntax=docker/dockerfile:1.7
# trainer image: the retrain CronJob (deploy/k8s/base/retrain.yaml) runs `training.retrain` then `tools.rollout`.
# Build from the repository root after `make models` (the image carries artifacts/ and the Triton configs):
#   docker build -f deploy/docker/trainer.Dockerfile -t shop-trainer:dev .
# Context filter: deploy/docker/trainer.Dockerfile.dockerignore.

# ---- build: a venv with every pinned dependency (torch 2.13.0 CPU), and the gRPC stubs generated from protos/
FROM python:3.11.13-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY requirements.txt /tmp/requirements.txt
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install -r /tmp/requirements.txt
RUN pip install grpcio-tools==1.81.1
COPY protos/ protos/
COPY tools/gen_protos.py tools/gen_protos.py
RUN python tools/gen_protos.py

# ---- runtime: same base, non-root
FROM python:3.11.13-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app:/app/libs/gen \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    OMP_WAIT_POLICY=PASSIVE \
    SHOP_ARTIFACTS_DIR=/app/artifacts
RUN groupadd --system --gid 10001 shop \
 && useradd --system --uid 10001 --gid shop --no-create-home --shell /usr/sbin/nologin shop
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY libs/ libs/
COPY --from=build /src/libs/gen/ libs/gen/
COPY training/ training/
COPY tools/ tools/
COPY triton_models/ triton_models/
COPY artifacts/ artifacts/
RUN python -m compileall -q /app/libs /app/training /app/tools
USER 10001:10001
# A batch job: "healthy" = the code imports and the bundles on the shared volume are readable.
HEALTHCHECK --interval=60s --timeout=20s --start-period=30s --retries=1 \
  CMD ["python", "-m", "training.bundles", "list"]
CMD ["python", "-m", "training.retrain", "--no-progress"]
