"""Dracula's detector on an Azure Machine Learning managed online endpoint: the scoring script.

Azure's inference server (the ``azureml-inference-server-http`` package, which Azure's inference
images run and which ``azmlinfsrv`` runs on a laptop) imports this file, calls ``init()`` once
when the container starts, and calls ``run(raw_data)`` for every POST to ``/score`` with the
request body as text. The body has Vertex AI's shape, ``{"instances": [{"b64": "..."}]}``, so
that one client speaks to both halls (Chapter 14).

What ``run`` returns becomes a 200 with JSON; an exception it raises becomes a 500. So every
refusal is returned, not raised: an ``AMLResponse`` with the service's status and its one error
body. The model is the ONNX file registered with the deployment, found under
``AZUREML_MODEL_DIR``; the reading of each image is the course's service's own (``uploads``:
size, type, pixel bomb and scan limits), and nothing here needs FastAPI or PyTorch.

    azmlinfsrv --entry_script deploy/azureml/score.py --model_dir models --port 5001
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

# Azure's server maps this documented module onto its own ``api.aml_response``.
from azureml.contrib.services.aml_response import AMLResponse

from vampire_detector.ort_detector import OrtDetector
from vampire_detector.portraits import IMAGE_SIZE
from vampire_detector.service.refusal import ServiceError
from vampire_detector.service.uploads import (
    MAX_BYTES,
    MAX_PIXELS,
    UploadLimits,
    instances_of,
    read_portrait,
)

MODEL_FILE = "vampirenet.onnx"
MOST_INSTANCES = 16  # one model call's worth; more is a 413
UNTYPED = "application/octet-stream"  # an instance declares no type: its bytes say what it is
LIMITS = UploadLimits(MAX_BYTES, MAX_PIXELS, IMAGE_SIZE)  # the service's own defaults

detector: OrtDetector | None = None


def init() -> None:
    """Load the model once; a missing file stops the deployment here, not at the first call."""
    global detector
    threads = int(os.environ.get("VAMPIRE_THREADS", "1"))
    detector = OrtDetector(Path(os.environ["AZUREML_MODEL_DIR"]) / MODEL_FILE, threads=threads,
                           batch_size=MOST_INSTANCES)


def run(raw_data: str) -> dict | AMLResponse:
    """Judge every instance, or refuse the whole request with a 4xx that says why."""
    try:
        images = [read_portrait(data, UNTYPED, LIMITS)
                  for data in instances_of(raw_data.encode(), MOST_INSTANCES)]
    except ServiceError as refused:
        return AMLResponse(refused.body(), refused.status, json_str=True)
    predictions = detector.predict(np.stack(images))
    return {"predictions": [{"label": p.label, "probability": round(p.probability, 6)}
                            for p in predictions]}
