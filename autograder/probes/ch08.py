"""Chapter 8's probe: the submission's Lambda handler around the course's app, made once here
and invoked with the events the grader builds; the responses go back as they are."""

from __future__ import annotations

import asyncio
import gc
import importlib
from pathlib import Path

from vampire_detector.service.app import create_app
from vampire_detector.service.runtimes import LoadedModel, load_predictor
from vampire_detector.service.settings import ServiceSettings
from vampire_detector.shipping.gateway import close_loop

_MADE: dict[str, object] = {"loads": 0}


def make(model_path: str) -> int:
    """Make the handler once, around the app serving the ONNX file ``model_path`` with a loader
    that counts its calls; return how many times the model has been loaded."""
    def counting_loader(settings: ServiceSettings) -> LoadedModel:
        _MADE["loads"] += 1
        return load_predictor(settings)

    settings = ServiceSettings(runtime="onnx", model_path=Path(model_path), warmup_batches=1,
                               max_wait_ms=0)
    ch08 = importlib.import_module("ch08_lambda")
    _MADE["handler"] = ch08.make_handler(create_app(settings, loader=counting_loader,
                                                    load_in_background=False))
    return loads()


def invoke(event: dict, collect: bool = False) -> object:
    """The handler's response to ``event`` (after a garbage collection when ``collect``: Lambda
    freezes an instance between events, and nothing may depend on luck)."""
    if collect:
        gc.collect()
    return _MADE["handler"](event, None)


def loads() -> int:
    return int(_MADE["loads"])


def close() -> None:
    loop = asyncio.get_event_loop_policy().get_event_loop()
    if not loop.is_closed():
        close_loop(loop)
