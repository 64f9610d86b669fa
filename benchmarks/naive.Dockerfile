# syntax=docker/dockerfile:1
# The image a first attempt writes: one stage, PyTorch installed so that the build can export the
# model itself, and everything the export needed left in the image. Never shipped: it is built
# only by `python benchmarks/bench_naive_image.py`, to measure what the two-stage image
# (deploy/docker/Dockerfile, built from a model file exported beforehand) saves.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
FROM ${PYTHON_IMAGE}
WORKDIR /app
COPY deploy/requirements-serve.txt /app/requirements-serve.txt
# PyPI's torch for Linux is the CUDA build: it brings the nvidia-* libraries and Triton along.
RUN pip install --no-cache-dir -r requirements-serve.txt \
        torch==2.14.1 torchvision==0.29.1 onnx==1.23.2 onnxscript==0.7.2
COPY vampire_detector/ /app/vampire_detector/
ENV PYTHONPATH=/app VAMPIRE_RUNTIME=onnx VAMPIRE_MODEL_PATH=/app/models/vampirenet.onnx
RUN mkdir -p /app/models && python -c "from vampire_detector.onnx_export import export_trained; \
    export_trained('vampirenet', '/app/models/vampirenet.onnx')"
CMD ["uvicorn", "--factory", "vampire_detector.service.app:create_app", \
     "--host", "0.0.0.0", "--port", "8000"]
