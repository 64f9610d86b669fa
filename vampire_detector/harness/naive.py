"""Renfield's endpoint: the detection service as most tutorials write it, kept as a baseline.

Introduced in Chapter 6.

    uvicorn --factory vampire_detector.harness.naive:create_app

It works, and every line looks reasonable. It is also slow under load, for reasons that the
chapter measures: the model runs eagerly, one image per call, *inside* an ``async`` endpoint, so
the event loop stops while the model thinks and no other request is even read; and PyTorch uses
its default thread pool, sized for a machine with nothing else to do. It validates nothing, so a
text file gets a 500. Do not deploy this; ``vampire_detector.service.app`` is the real service.
"""

from __future__ import annotations

import io
import os

import numpy as np
import torch
from fastapi import FastAPI, UploadFile
from PIL import Image

from vampire_detector.portraits import LABELS
from vampire_detector.tensors import to_tensor
from vampire_detector.weights import load_model


def create_app() -> FastAPI:
    # Which trained model to serve: VAMPIRE_ARCH (weights from vampire_detector.weights).
    model = load_model(os.environ.get("VAMPIRE_ARCH", "vampirenet"), device=torch.device("cpu"))
    app = FastAPI(title="Renfield's vampire detector")

    @app.post("/predict")
    async def predict(image: UploadFile) -> dict[str, object]:
        pixels = Image.open(io.BytesIO(await image.read())).convert("RGB")
        batch = to_tensor(np.asarray(pixels)).unsqueeze(0)
        with torch.no_grad():
            probabilities = torch.softmax(model(batch), dim=1)[0]
        best = int(probabilities.argmax())
        return {"label": LABELS[best], "probability": float(probabilities[best])}

    return app
