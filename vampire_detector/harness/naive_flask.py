"""Renfield's endpoint again, written for Flask and served by gunicorn (WSGI), to compare.

Introduced in Chapter 6.

    gunicorn --workers 1 --threads 4 "vampire_detector.harness.naive_flask:create_app()"

The same model, the same preprocessing and the same answer as ``naive.py``, line for line, but
in a plain ``def`` view: under WSGI each request holds one of gunicorn's threads from the first
byte to the last, and the model runs on that thread. So requests overlap as far as the threads
allow (PyTorch releases the GIL while it computes), where the FastAPI version's ``async`` view
stopped its whole event loop instead. Nothing here batches, and nothing could: the requests share
no loop on which to wait for each other. Do not deploy this either.
"""

from __future__ import annotations

import io
import os

import numpy as np
import torch
from flask import Flask, request
from PIL import Image

from vampire_detector.portraits import LABELS
from vampire_detector.tensors import to_tensor
from vampire_detector.weights import load_model


def create_app() -> Flask:
    # Which trained model to serve: VAMPIRE_ARCH (weights from vampire_detector.weights).
    model = load_model(os.environ.get("VAMPIRE_ARCH", "vampirenet"), device=torch.device("cpu"))
    app = Flask("renfield")

    @app.post("/predict")
    def predict() -> dict[str, object]:
        pixels = Image.open(io.BytesIO(request.files["image"].read())).convert("RGB")
        batch = to_tensor(np.asarray(pixels)).unsqueeze(0)
        with torch.no_grad():
            probabilities = torch.softmax(model(batch), dim=1)[0]
        best = int(probabilities.argmax())
        return {"label": LABELS[best], "probability": float(probabilities[best])}

    @app.get("/health")  # Flask has no /docs page to wait for: the launcher asks here
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
