"""The rollback receiver, fed notifications recorded from a real Alertmanager 0.25."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path

import httpx2 as httpx
import pytest
import yaml

from tests.programs import require
from vampire_detector import rollback
from vampire_detector.paths import deploy_dir

RECORDED = Path(__file__).parent / "data" / "alertmanager"


def recorded(name: str) -> dict:
    return json.loads((RECORDED / f"canary_{name}.json").read_text())


def body(payload: object) -> bytes:
    return json.dumps(payload).encode()


class Recorder:
    """A fake rollback action: counts its calls."""

    def __init__(self) -> None:
        self.calls: list[rollback.Alert] = []

    def __call__(self, alert: rollback.Alert) -> str:
        self.calls.append(alert)
        return f"rolled back for {alert.name}"


def test_a_firing_rollback_alert_runs_every_action_once() -> None:
    first, second = Recorder(), Recorder()
    receiver = rollback.RollbackReceiver([first, second])
    status, answer = receiver.handle(body(recorded("firing")))
    assert status == 200
    for action in (first, second):
        assert [a.name for a in action.calls] == ["VampireCanaryErrors"]
    assert answer["acted"][0]["actions"] == ["rolled back for VampireCanaryErrors"] * 2
    assert receiver.log[0]["labels"]["track"] == "canary"


def test_a_repeated_notification_does_nothing_twice() -> None:
    action = Recorder()
    receiver = rollback.RollbackReceiver([action])
    for _ in range(3):  # Alertmanager repeats while the alert fires
        status, answer = receiver.handle(body(recorded("firing")))
        assert status == 200
    assert len(action.calls) == 1 and len(receiver.log) == 1
    assert answer["ignored"] == [{"alert": "VampireCanaryErrors",
                                  "why": "already rolled back for this alert"}]


def test_a_new_episode_of_the_same_alert_acts_again() -> None:
    action = Recorder()
    receiver = rollback.RollbackReceiver([action])
    receiver.handle(body(recorded("firing")))
    later = recorded("firing")
    later["alerts"][0]["startsAt"] = "2026-12-04T01:00:00Z"  # it resolved, then fired anew
    receiver.handle(body(later))
    assert len(action.calls) == 2


def test_resolved_alerts_and_alerts_without_the_label_are_ignored() -> None:
    action = Recorder()
    receiver = rollback.RollbackReceiver([action])
    status, answer = receiver.handle(body(recorded("resolved")))
    assert status == 200 and answer["ignored"][0]["why"] == "resolved"
    drift = recorded("firing")
    drift["alerts"][0]["labels"] = {"alertname": "VampireDetectorDrift", "severity": "ticket"}
    status, answer = receiver.handle(body(drift))
    assert status == 200 and "no action=rollback label" in answer["ignored"][0]["why"]
    assert action.calls == []


def malformed() -> list[tuple[bytes, str]]:
    good = recorded("firing")
    cases = [(b"{not json", "not JSON"), (b"\xff\xfe", "not JSON"), (b"[]", "JSON object"),
             (body({**good, "version": "3"}), "version")]
    for field, value, says in [("alerts", "x", "list"), ("alerts", [1], "object")]:
        cases.append((body({**good, field: value}), says))
    for field, value, says in [("labels", {"alertname": 1}, "strings"),
                               ("labels", {"severity": "page"}, "alertname"),
                               ("status", "burning", "firing"), ("startsAt", None, "startsAt")]:
        bad = copy.deepcopy(good)
        bad["alerts"][0][field] = value
        cases.append((body(bad), says))
    return cases


@pytest.mark.parametrize(("payload", "says"), malformed())
def test_malformed_notifications_are_refused_with_a_reason(payload: bytes, says: str) -> None:
    action = Recorder()
    status, answer = rollback.RollbackReceiver([action]).handle(payload)
    assert status == 400 and says in answer["error"]
    assert action.calls == []


def test_a_failing_action_answers_503_and_is_retried() -> None:
    attempts = []

    def flaky(alert: rollback.Alert) -> str:
        attempts.append(alert)
        if len(attempts) == 1:
            raise ConnectionError("registry unreachable")
        return "retired"

    receiver = rollback.RollbackReceiver([flaky])
    status, answer = receiver.handle(body(recorded("firing")))
    assert status == 503 and "registry unreachable" in answer["error"]
    status, _ = receiver.handle(body(recorded("firing")))  # Alertmanager retries a 5xx
    assert status == 200 and len(attempts) == 2 and len(receiver.log) == 1


def test_over_http_bad_requests_get_4xx_never_500() -> None:
    action = Recorder()
    with rollback.serving(rollback.RollbackReceiver([action])) as url, \
            httpx.Client(base_url=url, trust_env=False) as client:
        assert client.get("/-/ready").status_code == 200
        assert client.post("/alerts", content=b"nonsense").status_code == 400
        assert client.post("/elsewhere", content=b"{}").status_code == 404
        answer = client.post("/alerts", content=body(recorded("firing")))
        assert answer.status_code == 200 and answer.json()["acted"]
        assert client.get("/log").json()[0]["alerts"] == ["VampireCanaryErrors"]
    assert len(action.calls) == 1


@pytest.fixture
def overlay(tmp_path: Path) -> Path:
    """A copy of the Kubernetes manifests: the canary overlay and the bases it builds on."""
    shutil.copytree(deploy_dir() / "k8s", tmp_path / "k8s")
    return tmp_path / "k8s" / "overlays" / "canary"


def weights(rendered: str) -> dict[str, int]:
    for document in yaml.safe_load_all(rendered):
        if document and document["kind"] == "HTTPRoute":
            refs = document["spec"]["rules"][0]["backendRefs"]
            return {ref["name"]: ref["weight"] for ref in refs}
    raise AssertionError("no HTTPRoute rendered")


def test_the_route_action_sets_the_canary_to_zero_and_kustomize_renders_it(overlay) -> None:
    kubectl = require(shutil.which("kubectl"), "install kubectl (it renders kustomizations)")

    def render() -> dict[str, int]:
        result = subprocess.run([kubectl, "kustomize", str(overlay)], capture_output=True,
                                text=True, timeout=120, check=True)
        return weights(result.stdout)

    assert render() == {"vampire-detector": 90, "vampire-detector-challenger": 10}
    act = rollback.route_to_stable(overlay / "httproute-weights.yaml")
    alert = rollback.parse_notification(body(recorded("firing")))[0]
    said = act(alert)
    assert "90/10 -> 100/0" in said
    assert "kubectl -n border-checkpoint patch httproute vampire-detector --type=json" in said
    patch = json.loads(said.split("-p '", 1)[1].rstrip("'"))
    assert patch == [{"op": "replace", "value": 100, "path": "/spec/rules/0/backendRefs/0/weight"},
                     {"op": "replace", "value": 0, "path": "/spec/rules/0/backendRefs/1/weight"}]
    assert render() == {"vampire-detector": 100, "vampire-detector-challenger": 0}
    assert act(alert) == "route already sends every traveller to vampire-detector"


def test_the_command_line_refuses_to_start_with_nothing_to_roll_back(capsys) -> None:
    with pytest.raises(SystemExit) as stopped:
        rollback.main(["--port", "0"])
    assert stopped.value.code == 2
    assert "nothing to roll back" in capsys.readouterr().err
