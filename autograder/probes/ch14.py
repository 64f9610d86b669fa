"""Chapter 14's probes: the submission's TorchServe handler driven with stand-in contexts, its
SageMaker functions run the way SageMaker's PyTorch toolkit chains them, and its Vertex AI
request parser; what they answered, set and raised goes back as plain data."""

from __future__ import annotations

import importlib
from typing import Any

import torch


def _ch14():
    return importlib.import_module("ch14_servers")


class Context:
    """What a handler reads from TorchServe's ``ts.context.Context``, and what it sets."""

    def __init__(self, model_dir: str, serialized: str) -> None:
        self.system_properties = {"model_dir": model_dir, "gpu_id": None, "batch_size": 8}
        self.manifest = {"model": {"modelName": "vampirenet", "serializedFile": serialized}}
        self.statuses: dict[int, list] = {}

    def set_response_status(self, code: int = 200, phrase: str = "", idx: int = 0) -> None:
        self.statuses[int(idx)] = [int(code), str(phrase)]


class ModelCalls:
    """Batch sizes of every VampireNet forward call while active, and whether autograd was on."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.grad: list[bool] = []

    def __enter__(self) -> ModelCalls:
        def hook(module, args, output):
            if type(module).__name__ == "VampireNet":
                self.sizes.append(int(args[0].shape[0]))
                self.grad.append(bool(torch.is_grad_enabled()))
        self.handle = torch.nn.modules.module.register_module_forward_hook(hook)
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.remove()


def _raised(error: Exception) -> dict[str, Any]:
    if isinstance(error, NotImplementedError):
        raise error
    return {"raised": f"{type(error).__name__}: {error}"}


def _as_sent(request: dict) -> dict:
    """TorchServe may hand a body over as a bytearray: ``as_bytearray`` asks for one."""
    if not request.pop("as_bytearray", False):
        return request
    return {key: bytearray(value) if isinstance(value, bytes) else value
            for key, value in request.items()}


def run_handler(model_dir: str, serialized: str, batches: list[list[dict]]) -> list[dict]:
    """Make the handler, initialize it once, hand it each batch; per batch: the answers, the
    statuses it set by index, and the model calls it made."""
    handler = _ch14().VampireHandler()
    handler.initialize(Context(model_dir, serialized))
    seen = []
    for batch in batches:
        batch = [_as_sent(request) for request in batch]
        context = Context(model_dir, serialized)
        with ModelCalls() as calls:
            try:
                answers = handler.handle(batch, context)
            except Exception as error:  # a crash is what the test reports
                seen.append({**_raised(error), "calls": calls.sizes})
                continue
        seen.append({"answers": answers if isinstance(answers, list) else repr(answers),
                     "statuses": {str(k): v for k, v in context.statuses.items()},
                     "calls": calls.sizes, "grad": calls.grad})
    return seen


def run_sagemaker(model_dir: str, requests: list[dict]) -> dict[str, Any]:
    """``model_fn`` once, then per request input_fn -> predict_fn -> output_fn; a ClientError
    is recorded with its status, anything else raised as a crash."""
    ch14 = _ch14()
    with ModelCalls() as loading:
        model = ch14.model_fn(model_dir)
    results = []
    for request in requests:
        with ModelCalls() as calls:
            try:
                batch = ch14.input_fn(request["body"], request["content_type"])
                prediction = ch14.predict_fn(batch, model)
                body, content_type = ch14.output_fn(prediction, request["accept"])
                results.append({"body": body if isinstance(body, str) else bytes(body).decode(),
                                "content_type": content_type, "calls": calls.sizes,
                                "grad": calls.grad})
            except ch14.ClientError as error:
                results.append({"client_error": int(error.status), "message": str(error)})
            except Exception as error:
                results.append(_raised(error))
    return {"results": results, "calls_while_loading": loading.sizes}


def parse_vertex(body: bytes, max_instances: int) -> dict[str, Any]:
    """``parse_vertex_request``'s images and threshold, or its ClientError, or its crash."""
    ch14 = _ch14()
    try:
        images, threshold = ch14.parse_vertex_request(body, max_instances)
    except ch14.ClientError as error:
        return {"client_error": int(error.status), "message": str(error)}
    except Exception as error:
        return _raised(error)
    return {"images": [bytes(image) for image in images], "threshold": threshold}
