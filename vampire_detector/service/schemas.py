"""What the service answers, as pydantic models: the contract the border's clients code against.

Introduced in Chapter 6.

FastAPI turns these into the OpenAPI schema at ``/openapi.json`` and the pages at ``/docs``, with
the examples below, so the contract and its documentation cannot drift apart.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class PredictionOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "label": "vampire", "probability": 0.987, "model_version": "vampirenet-onnx-3f2a9c1b",
        "latency_ms": 4.2}]})

    label: Literal["human", "vampire"]
    probability: float = Field(ge=0.5, le=1.0, description="the model's probability of label")
    model_version: str = Field(description="which model file answered, and on which runtime")
    latency_ms: float = Field(description="time spent in the service, queueing included")


class LabelOut(BaseModel):
    label: Literal["human", "vampire"]
    probability: float = Field(ge=0.5, le=1.0)


class BatchOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "predictions": [{"label": "human", "probability": 0.91},
                        {"label": "vampire", "probability": 0.99}],
        "model_version": "vampirenet-onnx-3f2a9c1b", "latency_ms": 7.9}]})

    predictions: list[LabelOut] = Field(description="one per uploaded image, in upload order")
    model_version: str
    latency_ms: float


class HealthOut(BaseModel):
    status: Literal["alive"] = "alive"


class ReadyOut(BaseModel):
    ready: Literal[True] = True
    model_version: str
    runtime: str
    shadow_version: str | None = Field(None, description="the challenger that watches in the "
                                       "shadows, once loaded (Chapter 10)")


class ErrorDetail(BaseModel):
    code: str = Field(description="stable and machine-readable, e.g. too_large")
    message: str = Field(description="for the human reading the logs")


class ErrorBody(BaseModel):
    """The one shape of every error the service returns."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"error": {
        "code": "too_large", "message": "images may be at most 2,000,000 bytes"}}]})

    error: ErrorDetail
    request_id: str | None = Field(None, description="the request's id, as in its "
                                   "X-Request-ID header and its log line (Chapter 10)")
