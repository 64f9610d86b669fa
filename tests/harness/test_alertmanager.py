"""A real Alertmanager routes a canary alert to the rollback receiver, which acts once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from tests.programs import require
from vampire_detector import rollback
from vampire_detector.harness.alertmanager import (
    INSTALL_HINT,
    find_alertmanager,
    firing_alert,
    running_alertmanager,
    write_config,
)
from vampire_detector.harness.prometheus import eventually

pytestmark = pytest.mark.timeout(180)
CANARY = {"alertname": "VampireCanaryErrors", "severity": "ticket", "action": "rollback",
          "track": "canary"}


def test_the_written_config_keeps_the_tree_and_cuts_the_waits(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"rollback": "http://127.0.0.1:1/alerts"})
    settings = yaml.safe_load(path.read_text())
    assert settings["route"]["group_wait"] == "0s"
    assert [r["receiver"] for r in settings["route"]["routes"]] == ["rollback", "pager", "ticket"]
    assert all(r["group_interval"] == "1s" for r in settings["route"]["routes"])
    urls = {r["name"]: r["webhook_configs"][0]["url"] for r in settings["receivers"]}
    assert urls["rollback"] == "http://127.0.0.1:1/alerts"
    assert "example.invalid" not in urls["pager"]
    with pytest.raises(ValueError, match="no receiver named"):
        write_config(tmp_path, {"rollbak": "http://127.0.0.1:1/"})


def test_a_posted_canary_alert_rolls_back_once_and_a_drift_alert_does_not(tmp_path: Path):
    require(find_alertmanager(), INSTALL_HINT)
    calls = []
    receiver = rollback.RollbackReceiver([lambda alert: calls.append(alert) or "fake rollback"])
    with rollback.serving(receiver) as url, \
            running_alertmanager(tmp_path, {"rollback": f"{url}/alerts"}) as alertmanager:
        alertmanager.post([firing_alert({"alertname": "VampireDetectorDrift",
                                         "severity": "ticket", "signal": "input"})])
        started = time.monotonic()
        alertmanager.post([firing_alert(CANARY)])
        eventually(lambda: receiver.log, timeout_s=30, every_s=0.05)
        elapsed = time.monotonic() - started
        # Prometheus re-sends a firing alert at every evaluation: Alertmanager merges it into
        # the alert it holds, and the group it belongs to is not notified anew
        alertmanager.post([firing_alert(CANARY)])
        time.sleep(2.5)  # two group intervals
        held = {a["labels"]["alertname"]: [r["name"] for r in a["receivers"]]
                for a in alertmanager.alerts()}
    assert elapsed < 10, f"the rollback took {elapsed:.1f} s"
    assert [a.name for a in calls] == ["VampireCanaryErrors"]
    assert receiver.log[0]["labels"]["track"] == "canary"
    assert held == {"VampireCanaryErrors": ["rollback", "ticket"],
                    "VampireDetectorDrift": ["ticket"]}
