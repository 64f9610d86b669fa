"""The whole night watch, for real: a service whose shadow challenger disagrees, Prometheus
scraping it and evaluating the shipped rules, Alertmanager routing the alert, and the rollback
receiver acting on it. Nothing is posted by hand: the alert comes from the service's counters.
"""

from __future__ import annotations

import httpx2 as httpx
import pytest
import torch

from tests.programs import require
from vampire_detector import rollback
from vampire_detector.harness.alertmanager import INSTALL_HINT as ALERTMANAGER_HINT
from vampire_detector.harness.alertmanager import find_alertmanager, running_alertmanager
from vampire_detector.harness.launch import running_server
from vampire_detector.harness.prometheus import INSTALL_HINT as PROMETHEUS_HINT
from vampire_detector.harness.prometheus import eventually, find_prometheus, running_prometheus
from vampire_detector.images import to_png
from vampire_detector.model import build_model
from vampire_detector.onnx_export import export_onnx, export_trained
from vampire_detector.portraits import make_portraits

pytestmark = pytest.mark.timeout(240)


def test_a_disagreeing_shadow_fires_its_alert_and_the_receiver_rolls_back(tmp_path):
    require(find_prometheus(), PROMETHEUS_HINT)
    require(find_alertmanager(), ALERTMANAGER_HINT)
    champion = export_trained("vampirenet", tmp_path / "champion.onnx")
    torch.manual_seed(0)  # an untrained challenger: a coin toss, so about half its answers differ
    challenger = export_onnx(build_model("vampirenet").eval(), tmp_path / "challenger.onnx")
    env = {"VAMPIRE_MODEL_PATH": str(champion), "VAMPIRE_SHADOW_MODEL_PATH": str(challenger),
           "VAMPIRE_WARMUP_BATCHES": "1"}
    portraits = [to_png(image) for image in make_portraits(40, seed=11)[0]]
    calls = []
    receiver = rollback.RollbackReceiver([lambda alert: calls.append(alert) or "rolled back"])

    def send_traffic_until_rolled_back() -> bool:
        for data in portraits:  # one at a time: the shadow's bounded queue skips none
            answer = client.post("/predict", files={"image": ("p.png", data, "image/png")})
            assert answer.status_code == 200, answer.text
        return bool(receiver.log)

    with (rollback.serving(receiver) as hook,
          running_alertmanager(tmp_path / "am", {"rollback": f"{hook}/alerts"}) as alertmanager,
          running_server("vampire_detector.service.app:create_app", factory=True,
                         env=env) as url,
          running_prometheus(tmp_path, url, alertmanager=alertmanager.url) as prom,
          httpx.Client(base_url=url, timeout=30, trust_env=False) as client):
        eventually(send_traffic_until_rolled_back, timeout_s=150, every_s=0.5)
        agreement = prom.value('sum(rate(vampire_shadow_comparisons_total{outcome="agree"}'
                               '[10m])) / sum(rate(vampire_shadow_comparisons_total[10m]))')
    assert [alert.name for alert in calls] == ["VampireShadowDisagreement"]
    assert receiver.log[0]["labels"]["action"] == "rollback"
    assert agreement is not None and agreement < 0.8
