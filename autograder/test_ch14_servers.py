"""Chapter 14 — Roads not taken: TorchServe's handler, SageMaker's functions, Vertex AI's contract.

Sealed: your code runs in a sandboxed process. The probe ``autograder/probes/ch14.py`` drives
your handler with stand-in TorchServe contexts and chains your SageMaker functions as
SageMaker's PyTorch toolkit does; the answers come back here and are checked against the
grader's own model. The weights you are given are not the committed ones (their classes are
swapped), so code that loads the course's weights instead of the model directory is caught.

Wrong answers these tests catch:

- 14.1 ``one-model-call-per-image``: the batch is run one portrait at a time.
- 14.1 ``raises-on-a-bad-request``: one bad request fails its whole batch.
- 14.1 ``no-status-for-a-bad-request``: a refused request is answered 200 with an error body.
- 14.1 ``drops-refused-answers``: the answers of refused requests are left out, so the rest shift.
- 14.1 ``pixels-not-normalised``: the portraits reach the model as raw 0-255 values.
- 14.1 ``copies-the-library``: the course's own TorchServe handler, which refuses JSON bodies.
- 14.2 ``loads-the-committed-weights``: model_fn ignores model_dir.
- 14.2 ``crashes-on-unknown-content-type``: an unsupported type raises instead of a 415.
- 14.2 ``json-body-not-checked``: malformed JSON or instances crash instead of a 400.
- 14.2 ``accept-ignored``: any Accept header gets JSON instead of a 406.
- 14.2 ``autograd-on``: predict_fn runs the model with autograd on.
- 14.3 ``threshold-ignored``: parameters.threshold is never read.
- 14.3 ``strict-threshold``: a probability exactly at the threshold is called human.
- 14.3 ``lenient-base64``: invalid base64 is decoded anyway.
- 14.3 ``no-instance-limit``: any number of instances is accepted.
- 14.3 ``threshold-not-validated``: thresholds outside (0, 1), strings or booleans are accepted.
- 14.3 ``copies-the-library``: the course's Vertex parser, which has no threshold.
"""

from __future__ import annotations

import base64
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from vampire_detector.detector import Detector
from vampire_detector.images import encode, from_png, to_png
from vampire_detector.portraits import make_portraits
from vampire_detector.weights import load_model

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def probe(probes):
    return probes("ch14", "ch14_servers")


@pytest.fixture(scope="module")
def ch14(submission):
    return submission("ch14_servers")


@pytest.fixture(scope="module")
def swapped(sandbox) -> tuple[Path, Detector]:
    """A model folder holding VampireNet with its two classes swapped, and its detector."""
    model = load_model("vampirenet", device=CPU)
    with torch.no_grad():
        last = model.classifier[-1]
        last.weight.copy_(last.weight.flip(0))
        last.bias.copy_(last.bias.flip(0))
    folder = Path(tempfile.mkdtemp(prefix="model-", dir=sandbox.exchange))
    torch.save(model.state_dict(), folder / "vampirenet.pt")
    torch.save(model.state_dict(), folder / "weights-v2.pt")
    return folder, Detector(model, CPU)


@pytest.fixture(scope="module")
def portraits() -> np.ndarray:
    images, labels = make_portraits(16, seed=1414)
    return np.concatenate([images[labels == 1][:3], images[labels == 0][:3]])


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def check_answers(answers, images, detector, what):
    expected = detector.predict(np.stack(images))
    assert isinstance(answers, list) and len(answers) == len(expected), \
        f"{what}: give one answer per request, in order"
    for answer, want in zip(answers, expected, strict=True):
        assert isinstance(answer, dict) and answer.get("label") == want.label, \
            f"{what}: a label differs from the model's, or the answers are out of order"
        assert abs(answer.get("probability", -1) - want.probability) < 1e-4, \
            f"{what}: a probability differs from the model's softmax on normalised pixels"


# 14.1 TorchServe's handler -------------------------------------------------------------------


@pytest.mark.exercise("14.1")
@pytest.mark.points(3)
def test_the_handler_answers_a_batch_in_one_model_call(probe, swapped, portraits):
    """14.1 handle answers a batch of portraits in order, with one model call for the batch."""
    folder, detector = swapped
    batch = [{"data": to_png(portraits[0])}, {"body": to_png(portraits[1]), "as_bytearray": True},
             {"body": {"b64": b64(to_png(portraits[2]))}}, {"data": to_png(portraits[3])},
             {"data": to_png(portraits[4])},
             {"body": to_png(portraits[5])}]
    (seen,) = probe.run_handler(str(folder), "weights-v2.pt", [batch])
    assert "raised" not in seen, f"handle raised {seen.get('raised')}"
    check_answers(seen["answers"], list(portraits), detector, "a batch of six portraits")
    assert seen["calls"] == [6], (f"the model was called with batches of {seen['calls']}: run "
                                  "all the batch's portraits in one call")
    assert not any(seen["grad"]), "run the model without autograd (torch.inference_mode)"


BAD = [({"data": b"not a portrait"}, 422), ({"data": b""}, 400), ({"other": b"x"}, 400),
       ({"body": {"b64": "not base64!"}}, 400), ({"body": {"image": "AA=="}}, 400)]


@pytest.mark.exercise("14.1")
@pytest.mark.points(3)
def test_bad_requests_get_their_own_4xx_and_the_rest_are_answered(probe, swapped, portraits):
    """14.1 bad requests get their own 4xx status; the good ones of the batch are answered."""
    folder, detector = swapped
    batch, good, bad_at = [], [], {}
    for index, (request, status) in enumerate(BAD):
        batch.append({"data": to_png(portraits[index])})
        good.append(portraits[index])
        batch.append(request)
        bad_at[len(batch) - 1] = status
    (seen,) = probe.run_handler(str(folder), "weights-v2.pt", [batch])
    assert "raised" not in seen, ("handle raised for a bad request "
                                  f"({seen.get('raised')}): refuse that request, answer the rest")
    assert isinstance(seen["answers"], list) and len(seen["answers"]) == len(batch), \
        "give one answer per request, refused ones included, in request order"
    statuses = {int(k): v[0] for k, v in seen["statuses"].items()}
    assert set(statuses) == set(bad_at), ("set a status (context.set_response_status) for each "
                                          "refused request, at its own index, and only there")
    for index, status in bad_at.items():
        assert 400 <= statuses[index] < 500, "a refused request's status is a 4xx"
        assert statuses[index] == status, \
            f"request {index}: {statuses[index]} is not the status this kind of bad request gets"
    check_answers([seen["answers"][i] for i in range(len(batch)) if i not in bad_at], good,
                  detector, "the good requests among bad ones")
    assert seen["calls"] == [len(good)], "run the batch's good portraits in one model call"


@pytest.mark.exercise("14.1")
@pytest.mark.points(2)
def test_a_batch_of_only_bad_requests_never_calls_the_model(probe, swapped):
    """14.1 a batch with no portrait at all is refused without calling the model."""
    folder, _ = swapped
    (seen,) = probe.run_handler(str(folder), "weights-v2.pt", [[r for r, _ in BAD[:3]]])
    assert "raised" not in seen, f"handle raised {seen.get('raised')} for a batch of bad requests"
    assert seen["calls"] == [], "there is nothing to run the model on"
    assert len(seen["statuses"]) == 3, "each refused request gets its status"


# 14.2 SageMaker's inference functions -------------------------------------------------------


def sagemaker(probe, folder, requests):
    return probe.run_sagemaker(str(folder), requests)["results"]


@pytest.mark.exercise("14.2")
@pytest.mark.points(3)
def test_sagemaker_functions_answer_images_and_json(probe, swapped, portraits):
    """14.2 model_fn, input_fn, predict_fn and output_fn answer images and JSON instances."""
    folder, detector = swapped
    requests = [{"body": to_png(portraits[0]), "content_type": "image/png",
                 "accept": "application/json"},
                {"body": encode(portraits[1], "JPEG"), "content_type": "image/jpeg",
                 "accept": "*/*"},
                {"body": json.dumps({"instances": [{"b64": b64(to_png(p))}
                                                   for p in portraits[2:]]}).encode(),
                 "content_type": "application/json; charset=utf-8", "accept": ""}]
    results = sagemaker(probe, folder, requests)
    jpeg = from_png(encode(portraits[1], "JPEG"))  # PIL reads any format it knows
    for result, images, what in ((results[0], [portraits[0]], "a PNG"),
                                 (results[1], [jpeg], "a JPEG"),
                                 (results[2], list(portraits[2:]), "JSON instances")):
        assert "body" in result, f"{what} was not answered: {result}"
        assert result["content_type"] == "application/json", "answer application/json"
        check_answers(json.loads(result["body"]).get("predictions"), images, detector, what)
        assert not any(result["grad"]), "predict_fn: run the model without autograd"
    assert results[2]["calls"] == [4], "JSON instances are one batch, one model call"


SAGEMAKER_BAD = [
    ({"body": b"a,b,c", "content_type": "text/csv", "accept": "application/json"}, 415),
    ({"body": b"not an image", "content_type": "image/png", "accept": "application/json"}, 422),
    ({"body": b"", "content_type": "image/png", "accept": "application/json"}, 400),
    ({"body": b"{not json", "content_type": "application/json", "accept": ""}, 400),
    ({"body": b'{"instances": []}', "content_type": "application/json", "accept": ""}, 400),
    ({"body": b'["x"]', "content_type": "application/json", "accept": ""}, 400),
    ({"body": b'{"instances": [{"b64": 7}]}', "content_type": "application/json",
      "accept": ""}, 400),
]


@pytest.mark.exercise("14.2")
@pytest.mark.points(3)
def test_sagemaker_functions_refuse_bad_requests_with_client_errors(probe, swapped, portraits):
    """14.2 bad requests raise ClientError with their 4xx, never another exception."""
    folder, _ = swapped
    accept = {"body": to_png(portraits[0]), "content_type": "image/png", "accept": "text/csv"}
    results = sagemaker(probe, folder, [r for r, _ in SAGEMAKER_BAD] + [accept])
    for (request, status), result in zip([*SAGEMAKER_BAD, (accept, 406)], results, strict=True):
        what = f"{request['content_type']} {request['body'][:16]!r} (Accept {request['accept']!r})"
        assert "raised" not in result, f"{what}: raised {result['raised']}, not a ClientError"
        assert "client_error" in result, f"{what} was answered; it must be refused"
        assert result["client_error"] == status, \
            f"{what}: {result['client_error']} is not the 4xx this request gets"
        assert result["message"], f"{what}: say why in the ClientError's message"


@pytest.mark.exercise("14.2")
@pytest.mark.points(2)
def test_model_fn_loads_from_the_model_directory(probe, swapped, portraits):
    """14.2 model_fn loads the weights SageMaker unpacked into model_dir."""
    folder, detector = swapped
    (result,) = sagemaker(probe, folder, [{"body": to_png(portraits[0]),
                                            "content_type": "image/png", "accept": ""}])
    assert "body" in result, f"a PNG was not answered: {result}"
    (answer,) = json.loads(result["body"])["predictions"]
    assert answer["label"] == detector.predict(portraits[:1])[0].label, \
        "the answer is not that of the weights in model_dir: load model_dir/vampirenet.pt"


# 14.3 Vertex AI's request and response ------------------------------------------------------


def vertex(probe, payload, most=4) -> dict:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return probe.parse_vertex(body, most)


@pytest.mark.exercise("14.3")
@pytest.mark.points(2)
def test_vertex_requests_give_images_and_threshold(probe, portraits):
    """14.3 parse_vertex_request returns the instances' bytes and the threshold."""
    pngs = [to_png(p) for p in portraits[:3]]
    seen = vertex(probe, {"instances": [{"b64": b64(p)} for p in pngs],
                          "parameters": {"threshold": 0.3}})
    assert "images" in seen, f"a good request was not parsed: {seen}"
    assert seen["images"] == pngs, "return each instance's decoded bytes, in order"
    assert seen["threshold"] == pytest.approx(0.3), "read parameters.threshold"
    default = vertex(probe, {"instances": [{"b64": b64(pngs[0])}]})
    assert default.get("threshold") == pytest.approx(0.5), \
        "without parameters, the threshold is 0.5"


VERTEX_BAD = [
    (b"not json", 400), ({"inputs": []}, 400), ({"instances": []}, 400),
    ({"instances": ["AA=="]}, 400), ({"instances": [{"b64": "QUFB!QUFB"}]}, 400),
    ({"instances": [{"b64": "AA=="}] * 5}, 413),
    ({"instances": [{"b64": "AA=="}], "parameters": {"threshold": 1.5}}, 400),
    ({"instances": [{"b64": "AA=="}], "parameters": {"threshold": 0}}, 400),
    ({"instances": [{"b64": "AA=="}], "parameters": {"threshold": "0.4"}}, 400),
    ({"instances": [{"b64": "AA=="}], "parameters": {"threshold": True}}, 400),
]


@pytest.mark.exercise("14.3")
@pytest.mark.points(3)
def test_vertex_bad_requests_get_client_errors(probe):
    """14.3 malformed requests raise ClientError with 400 (413 for too many instances)."""
    for payload, status in VERTEX_BAD:
        seen = vertex(probe, payload)
        what = repr(payload)[:70]
        assert "raised" not in seen, f"{what}: raised {seen['raised']}, not a ClientError"
        assert "client_error" in seen, f"{what} was accepted; it must be refused"
        assert seen["client_error"] == status, \
            f"{what}: {seen['client_error']} is not the 4xx this request gets"


@pytest.mark.exercise("14.3")
@pytest.mark.points(2)
def test_vertex_responses_apply_the_threshold(ch14):
    """14.3 vertex_response labels each instance by its threshold, in order."""
    answer = ch14.vertex_response([0.9, 0.3, 0.25, 0.1], 0.3)
    assert isinstance(answer, dict) and list(answer) == ["predictions"], \
        'answer a JSON object with one key, "predictions"'
    predictions = answer["predictions"]
    assert [p.get("label") for p in predictions] == ["vampire", "vampire", "human", "human"], \
        "a vampire probability at or above the threshold is a vampire; below it, a human"
    assert [p.get("vampire_probability") for p in predictions] == [0.9, 0.3, 0.25, 0.1], \
        "give each instance's vampire_probability, in order"
