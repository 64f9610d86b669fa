"""The Lambda deployment: the SAM template under cfn-lint, the handler under recorded events."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from vampire_detector.onnx_export import export_trained
from vampire_detector.ort_detector import OrtDetector
from vampire_detector.paths import course_root
from vampire_detector.predictor import Prediction
from vampire_detector.service import lambda_handler
from vampire_detector.service.app import create_app
from vampire_detector.service.settings import ServiceSettings
from vampire_detector.shipping.gateway import close_loop

ROOT = course_root()
TEMPLATE = ROOT / "deploy/lambda/template.yaml"
EVENTS = ROOT / "deploy/lambda/events"
CFN_LINT = Path(sys.executable).with_name("cfn-lint")
LAMBDA_PAYLOAD_LIMIT = 6 * 1024 * 1024  # synchronous invocations, request and response


def cfn_lint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(CFN_LINT), str(path)], capture_output=True, text=True,
                          timeout=120)


def test_template_passes_cfn_lint():
    """The SAM template is valid CloudFormation once the SAM transform is applied."""
    result = cfn_lint(TEMPLATE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_bites(tmp_path):
    """A function whose timeout is out of Lambda's range is rejected (E3034: out of range)."""
    broken = TEMPLATE.read_text().replace("Timeout: 15", "Timeout: 9000")
    (tmp_path / "template.yaml").write_text(broken)
    result = cfn_lint(tmp_path / "template.yaml")
    assert result.returncode != 0 and "E3034" in result.stdout, result.stdout


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory) -> Path:
    return export_trained("vampirenet", tmp_path_factory.mktemp("lambda") / "vampirenet.onnx")


@pytest.fixture(scope="module")
def handler(onnx_model):
    settings = ServiceSettings(runtime="onnx", model_path=onnx_model, max_wait_ms=0)
    made = lambda_handler.make_handler(create_app(settings, load_in_background=False))
    loop = asyncio.get_event_loop_policy().get_event_loop()
    yield made
    close_loop(loop)


def recorded(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def body_of(response: dict) -> dict:
    body = response["body"]
    return json.loads(base64.b64decode(body) if response.get("isBase64Encoded") else body)


@pytest.mark.parametrize("name", sorted(p.name for p in EVENTS.glob("*.json")))
def test_recorded_events_are_within_lambda_limits(name):
    """Every recorded event is API Gateway v1 or v2, with a base64 body under 6 MB."""
    event = recorded(name)
    assert event.get("version") == "2.0" or "httpMethod" in event
    assert len(json.dumps(event)) < LAMBDA_PAYLOAD_LIMIT
    if event["body"] is not None:
        assert event["isBase64Encoded"] and base64.b64decode(event["body"], validate=True)


@pytest.mark.parametrize("name", ["v1-health.json", "v2-health.json", "v2-ready.json"])
def test_probes_through_the_handler(handler, name):
    """The probes answer 200 through both API Gateway payload versions."""
    assert handler(recorded(name), None)["statusCode"] == 200


@pytest.mark.parametrize("name", ["v1-predict.json", "v2-predict.json"])
def test_predictions_through_the_handler(handler, onnx_model, name):
    """A recorded upload gets the verdict the detector gives the same bytes."""
    event = recorded(name)
    response = handler(event, None)
    assert response["statusCode"] == 200, response
    body = base64.b64decode(event["body"])
    png = body[body.index(b"\x89PNG"):body.rindex(b"\r\n--")]
    expected = OrtDetector(onnx_model, threads=1).predict_png(png)
    got = body_of(response)
    assert Prediction(got["label"], got["probability"]).label == expected.label
    assert abs(got["probability"] - expected.probability) < 1e-5


def test_a_letter_gets_a_4xx(handler):
    """An upload that is not an image is refused with a reason, not a 500."""
    response = handler(recorded("v2-predict-not-an-image.json"), None)
    assert response["statusCode"] == 422 and "error" in body_of(response)


def test_handler_attribute_is_built_lazily(monkeypatch, onnx_model):
    """``lambda_handler.handler`` is built on first access, once, from the environment."""
    monkeypatch.setenv("VAMPIRE_MODEL_PATH", str(onnx_model))
    monkeypatch.delitem(lambda_handler.__dict__, "handler", raising=False)
    previous = asyncio.get_event_loop_policy().get_event_loop()
    first = lambda_handler.handler
    loop = asyncio.get_event_loop_policy().get_event_loop()
    assert first is lambda_handler.handler
    assert first(recorded("v2-ready.json"), None)["statusCode"] == 200
    close_loop(loop)
    asyncio.set_event_loop(previous)  # the module's handler runs on its own loop again
    with pytest.raises(AttributeError):
        _ = lambda_handler.no_such_thing


def template() -> dict:
    import yaml

    class Loader(yaml.SafeLoader):
        """Reads CloudFormation's short tags (!Ref, !Sub, ...) as plain values."""

    Loader.add_multi_constructor("!", lambda loader, suffix, node: (
        loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode)
        else loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode)
        else loader.construct_mapping(node)))
    return yaml.load(TEMPLATE.read_text(), Loader=Loader)


def test_the_api_demands_a_key_but_the_probes_stay_open():
    resources = template()["Resources"]
    auth = resources["BorderApi"]["Properties"]["Auth"]
    authorizer = auth["Authorizers"][auth["DefaultAuthorizer"]]
    assert authorizer["Identity"]["Headers"] == ["X-API-Key"]
    assert authorizer["EnableSimpleResponses"] is True
    code = resources["KeyCheckFunction"]["Properties"]["InlineCode"]
    assert "hmac.compare_digest" in code and "sha256" in code
    events = resources["DetectorFunction"]["Properties"]["Events"]
    open_paths = {e["Properties"]["Path"] for e in events.values()
                  if e["Properties"].get("Auth", {}).get("Authorizer") == "NONE"}
    assert open_paths == {"/health", "/ready"}


def test_the_authorizers_code_admits_only_known_keys(monkeypatch):
    from vampire_detector.service.auth import digest

    code = template()["Resources"]["KeyCheckFunction"]["Properties"]["InlineCode"]
    monkeypatch.setenv("API_KEY_DIGESTS", f"{digest('renfield')}, {digest('mina')}")
    namespace: dict = {}
    exec(compile(code, "index.py", "exec"), namespace)  # the template's own code, as Lambda runs it
    for key, admitted in [("renfield", True), ("mina", True), ("dracula", False), ("", False)]:
        event = {"headers": {"x-api-key": key}}
        assert namespace["handler"](event, None) == {"isAuthorized": admitted}, key


def test_concurrency_is_reserved_so_a_flood_has_a_ceiling():
    properties = template()["Resources"]["DetectorFunction"]["Properties"]
    assert properties["ReservedConcurrentExecutions"] == "ReservedConcurrency"
    assert template()["Parameters"]["ReservedConcurrency"]["Default"] >= 1
