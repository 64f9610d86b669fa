"""Azure Machine Learning's scoring script, run by Azure's own inference server (azmlinfsrv).

Requests of the shape a managed online endpoint forwards to ``/score``, good and bad: every bad
one must get a 4xx with a reason, never the 500 that an exception in ``run()`` would become.
The server comes from ``make azureml-env``; without it these tests skip (and fail in CI).
"""

from __future__ import annotations

import base64
import shutil

import httpx2 as httpx
import pytest
import yaml

from tests.programs import require
from vampire_detector.harness.azureml import (
    INSTALL_HINT,
    running_scoring_server,
    scoring_script,
    server_program,
)
from vampire_detector.images import encode, to_png
from vampire_detector.paths import course_root
from vampire_detector.portraits import make_portraits

ROOT = course_root()
AZURE = ROOT / "deploy" / "azureml"
_IMAGES, _LABELS = make_portraits(12, seed=41)
# vampire, human, vampire: an answer in the wrong order cannot pass
PORTRAITS = [_IMAGES[_LABELS == 1][0], _IMAGES[_LABELS == 0][0], _IMAGES[_LABELS == 1][1]]


def instance(data: bytes) -> dict[str, str]:
    return {"b64": base64.b64encode(data).decode()}


@pytest.fixture(scope="module")
def score(tmp_path_factory):
    require(server_program(), INSTALL_HINT)
    model_dir = tmp_path_factory.mktemp("azureml-model")  # as Azure mounts a registered file
    shutil.copy(ROOT / "models" / "vampirenet.onnx", model_dir / "vampirenet.onnx")
    with running_scoring_server(model_dir) as url, httpx.Client(
            base_url=url, timeout=30, trust_env=False) as client:
        yield client


def test_the_liveness_route_and_a_judged_batch_in_order(score):
    assert score.get("/").status_code == 200
    answer = score.post("/score", json={"instances": [instance(to_png(p)) for p in PORTRAITS]})
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    assert [p["label"] for p in predictions] == ["vampire", "human", "vampire"]
    assert all(0.5 <= p["probability"] <= 1 for p in predictions)
    jpeg = score.post("/score", json={"instances": [instance(encode(PORTRAITS[1], "JPEG"))]})
    assert jpeg.json()["predictions"][0]["label"] == "human", jpeg.text


@pytest.mark.parametrize(("body", "status", "code"), [
    (b"garlic", 400, "not_json"),
    (b'{"instances": []}', 400, "no_instances"),
    (b'["not", "an", "object"]', 400, "no_instances"),
    (b'{"instances": [{"b64": "!!not base64!!"}]}', 400, "bad_base64"),
    (b'{"instances": ["a bare string"]}', 400, "bad_instance"),
    (b'{"instances": [{"b64": "Z2FybGlj"}]}', 415, "unsupported_media_type"),  # "garlic"
    (b'{"instances": [%s]}' % b", ".join([b'{"b64": "Z2FybGlj"}'] * 17), 413,
     "too_many_instances"),
])
def test_bad_requests_get_a_4xx_with_a_reason(score, body, status, code):
    answer = score.post("/score", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code


def test_a_body_that_is_not_text_is_refused_by_azures_server(score):
    answer = score.post("/score", content=b"\xff\xfe\x00", headers={
        "Content-Type": "application/json"})
    assert answer.status_code == 400 and "UTF-8" in answer.json()["message"]


def test_a_missing_model_stops_the_server_at_start(tmp_path):
    require(server_program(), INSTALL_HINT)
    with pytest.raises((RuntimeError, TimeoutError), match=r"vampirenet\.onnx"), \
            running_scoring_server(tmp_path, timeout_s=60):
        pass


def test_the_deployment_files_agree_with_the_script_and_the_environment():
    deployment = yaml.safe_load((AZURE / "deployment.yml").read_text())
    endpoint = yaml.safe_load((AZURE / "endpoint.yml").read_text())
    assert deployment["endpoint_name"] == endpoint["name"]
    code = (AZURE / deployment["code_configuration"]["code"]).resolve()
    assert code / deployment["code_configuration"]["scoring_script"] == scoring_script()
    assert (AZURE / deployment["model"]["path"]).resolve() == ROOT / "models" / "vampirenet.onnx"
    conda = yaml.safe_load((AZURE / deployment["environment"]["conda_file"]).read_text())
    pip = next(item["pip"] for item in conda["dependencies"] if isinstance(item, dict))
    pinned = {line.split("#")[0].strip() for line in
              (AZURE / "requirements.txt").read_text().splitlines()} - {""}
    assert set(pip) == pinned, f"conda.yml and requirements.txt differ: {set(pip) ^ pinned}"
