"""The TorchServe handler, driven without TorchServe: stand-in contexts, real weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vampire_detector import torchserve_handler
from vampire_detector.detector import Detector
from vampire_detector.images import encode, to_png
from vampire_detector.portraits import make_portraits
from vampire_detector.weights import load_model, weights_path


class Context:
    """What the handler reads from TorchServe's ``ts.context.Context``, and what it sets."""

    def __init__(self) -> None:
        path = weights_path("vampirenet")
        self.system_properties = {"model_dir": str(path.parent), "gpu_id": None}
        self.manifest = {"model": {"serializedFile": path.name}}
        self.statuses: dict[int, tuple[int, str]] = {}

    def set_response_status(self, code: int = 200, phrase: str = "", idx: int = 0) -> None:
        self.statuses[idx] = (code, phrase)


@pytest.fixture(scope="module")
def handler() -> torchserve_handler.VampireHandler:
    handler = torchserve_handler.VampireHandler()
    handler.initialize(Context())
    return handler


def test_a_batch_gets_the_eager_models_answers_in_order(handler):
    images = make_portraits(6, seed=14)[0]
    keys = ("data", "body", "image", "data", "body", "image")
    answers = handler.handle([{key: bytearray(to_png(image))} for key, image in
                              zip(keys, images, strict=True)], Context())
    expected = Detector(load_model("vampirenet", device=torch.device("cpu")),
                        torch.device("cpu")).predict(images)
    assert [a["label"] for a in answers] == [p.label for p in expected]
    np.testing.assert_allclose([a["probability"] for a in answers],
                               [p.probability for p in expected], atol=1e-5)


def test_bad_requests_get_their_own_status_and_the_rest_are_answered(handler):
    image = make_portraits(1, seed=3)[0][0]
    context = Context()
    batch = [{"data": to_png(image)}, {"data": b"not an image"}, {"body": {"instances": []}},
             {"other": b"x"}, {"data": b""}, {"data": encode(image, "GIF")},
             {"data": to_png(image)}]
    answers = handler.handle(batch, context)
    assert len(answers) == len(batch)
    assert set(context.statuses) == {1, 2, 3, 4, 5}
    assert [context.statuses[i][0] for i in (1, 2, 3, 4, 5)] == [422, 415, 400, 400, 415]
    assert answers[0] == answers[6] and answers[0]["label"] in {"human", "vampire"}
    assert all("error" in answers[i] for i in (1, 2, 3, 4, 5))


def test_a_large_portrait_is_cropped_and_resized_like_the_service(handler):
    big = np.kron(make_portraits(1, seed=5)[0][0], np.ones((3, 3, 1), dtype=np.uint8))
    image = torchserve_handler.decode(to_png(big))
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8


def test_the_entry_point_loads_once_then_handles(monkeypatch):
    fresh = torchserve_handler.VampireHandler()
    monkeypatch.setattr(torchserve_handler, "_service", fresh)
    assert torchserve_handler.handle(None, Context()) is None and fresh.initialized
    (answer,) = torchserve_handler.handle(
        [{"data": to_png(make_portraits(1, seed=2)[0][0])}], Context())
    assert answer["label"] in {"human", "vampire"}


def test_an_archived_onnx_file_runs_in_onnx_runtime_with_the_same_answers(tmp_path):
    from vampire_detector.onnx_export import export_trained

    onnx_file = export_trained("vampirenet", tmp_path / "vampirenet.onnx")
    context = Context()
    context.system_properties["model_dir"] = str(tmp_path)
    context.manifest = {"model": {"serializedFile": onnx_file.name}}
    onnx_handler = torchserve_handler.VampireHandler()
    onnx_handler.initialize(context)
    images = make_portraits(4, seed=21)[0]
    batch = [{"data": to_png(image)} for image in images]
    eager = torchserve_handler.VampireHandler()
    eager.initialize(Context())
    from_onnx, from_eager = onnx_handler.handle(batch, context), eager.handle(batch, Context())
    assert [a["label"] for a in from_onnx] == [a["label"] for a in from_eager]
    np.testing.assert_allclose([a["probability"] for a in from_onnx],
                               [a["probability"] for a in from_eager], atol=1e-4)
