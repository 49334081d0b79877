# syntax=docker/dockerfile:1.7
# Triton Inference Server with the project's model repository baked in. Build from the repository root after
# `make models` (weights are build outputs) and, for GPU nodes, after building model.plan with the TensorRT
# version of this image (24.10 = TensorRT 10.5) on the target GPU type: plans are not portable across either.
#   docker build -f deploy/docker/triton.Dockerfile -t shop-triton:dev .
# Default command serves the GPU configs (config.pbtxt: tensorrt_plan, KIND_GPU). The k8s cpu overlay adds
# --model-config-name=onnx (configs/onnx.pbtxt, training/export/triton_configs.py: the image's own ONNX Runtime
# backend on CPU).
# 24.10 = Triton 2.51, the same server version the local pytriton build runs, so configs behave the same.
FROM nvcr.io/nvidia/tritonserver:24.10-py3
# Copied to /opt/shop/models, not /models: Kubernetes mounts the model-repository volume at /models and an
# init container seeds it from here, so a cluster can swap the seed for a PVC or object storage path.
COPY --chown=1000:1000 triton_models/ /opt/shop/models/
# The official image ships the unprivileged user triton-server (uid 1000); numeric for runAsNonRoot.
USER 1000:1000
EXPOSE 8000 8001 8002
# python3 is in the -py3 image (Python backend); curl is not guaranteed, so probe HTTP readiness with urllib.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
  CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/v2/health/ready', timeout=3)"]
CMD ["tritonserver", "--model-repository=/opt/shop/models", "--strict-readiness=true", "--exit-timeout-secs=20"]
