"""The Alertmanager routing, checked and routed by amtool itself."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.programs import require
from vampire_detector.harness.alertmanager import INSTALL_HINT, find_amtool, shipped_config
from vampire_detector.paths import deploy_dir

CONFIG = shipped_config()
RULES = deploy_dir() / "prometheus" / "alerts.yml"


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    program = require(find_amtool(), INSTALL_HINT)
    return subprocess.run([program, *args], capture_output=True, text=True, timeout=60,
                          check=False)


def shipped_alerts() -> dict[str, dict[str, str]]:
    """Every alert rule of the course, with its labels."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule["labels"] for group in groups for rule in group["rules"]}


def test_the_configuration_is_valid() -> None:
    result = amtool("check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_a_broken_configuration_is_caught(tmp_path: Path) -> None:
    settings = yaml.safe_load(CONFIG.read_text())
    settings["route"]["routes"][0]["receiver"] = "nobody"  # a receiver that does not exist
    broken = tmp_path / "alertmanager.yml"
    broken.write_text(yaml.safe_dump(settings))
    assert amtool("check-config", str(broken)).returncode != 0


EXPECTED = {  # where each alert of alerts.yml must go
    "VampireDetectorSlow": "pager",
    "VampireDetectorErrors": "pager",
    "VampireDetectorNoTraffic": "ticket",
    "VampireDetectorDrift": "ticket",
    "VampireCanaryErrors": "rollback,ticket",  # the machine acts, and Dracula is told
    "VampireShadowDisagreement": "rollback,ticket",
}


def test_every_alert_has_an_expected_receiver() -> None:
    assert set(shipped_alerts()) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_alert_reaches_its_receiver(name: str) -> None:
    labels = {"alertname": name, **shipped_alerts()[name]}
    if "action" in labels:
        labels["track"] = "canary"
    result = amtool("config", "routes", "test", f"--config.file={CONFIG}",
                    f"--verify.receivers={EXPECTED[name]}",
                    *(f"{key}={value}" for key, value in labels.items()))
    assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}"
    assert result.stdout.strip() == EXPECTED[name]


def test_an_unlabelled_alert_falls_to_the_ticket_queue_and_never_rolls_back() -> None:
    result = amtool("config", "routes", "test", f"--config.file={CONFIG}", "alertname=Unknown",
                    "action=rollbackish")
    assert result.stdout.strip() == "ticket", result.stdout + result.stderr


def test_the_errors_page_silences_the_slow_page() -> None:
    settings = yaml.safe_load(CONFIG.read_text())
    rule = settings["inhibit_rules"][0]
    assert rule["source_matchers"] == ['alertname="VampireDetectorErrors"']
    assert rule["target_matchers"] == ['alertname="VampireDetectorSlow"']


def test_the_rollback_receiver_gets_every_alert_and_the_resolved_ones() -> None:
    receivers = {r["name"]: r for r in yaml.safe_load(CONFIG.read_text())["receivers"]}
    webhook = receivers["rollback"]["webhook_configs"][0]
    assert webhook["url"].endswith("/alerts") and webhook["max_alerts"] == 0
