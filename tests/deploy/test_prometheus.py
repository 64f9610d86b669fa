"""The Prometheus configuration and the night watch's alert rules, checked by promtool itself."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.programs import require
from vampire_detector.harness.prometheus import INSTALL_HINT
from vampire_detector.paths import course_root

ROOT = course_root()
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboard.json"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    program = require(shutil.which("promtool"), INSTALL_HINT)
    return subprocess.run([program, *args], capture_output=True, text=True, timeout=60,
                          check=False)


def test_the_configuration_is_valid() -> None:
    result = promtool("check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alert_rules_pass_their_unit_tests() -> None:
    result = promtool("test", "rules", str(PROMETHEUS / "alerts_test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_broken_rule_is_caught(tmp_path: Path) -> None:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    rules["groups"][0]["rules"][0]["expr"] = "rate(vampire_http_requests_total[5m]"  # no ")"
    broken = tmp_path / "alerts.yml"
    broken.write_text(yaml.safe_dump(rules))
    assert promtool("check", "rules", str(broken)).returncode != 0


def test_every_alert_has_a_severity_and_a_summary() -> None:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    names = {rule["alert"] for rule in rules}
    assert names == {"VampireDetectorSlow", "VampireDetectorErrors", "VampireDetectorNoTraffic",
                     "VampireDetectorDrift", "VampireCanaryErrors", "VampireShadowDisagreement"}
    for rule in rules:
        assert rule["labels"]["severity"] in {"page", "ticket"}
        assert rule["annotations"]["summary"]


def test_the_canary_alerts_ask_for_a_rollback_and_compare_tracks() -> None:
    groups = {g["name"]: g["rules"] for g in
              yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]}
    canary = {rule["alert"]: rule for rule in groups["vampire-canary"]}
    assert all(rule["labels"]["action"] == "rollback" for rule in canary.values())
    assert 'track="canary"' in canary["VampireCanaryErrors"]["expr"]
    assert 'track="stable"' in canary["VampireCanaryErrors"]["expr"]
    assert "vampire_shadow_comparisons_total" in canary["VampireShadowDisagreement"]["expr"]


def test_the_dashboard_is_templated_on_its_datasource() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert "[5m]" not in target["expr"], f"{panel['title']}: use $__rate_interval"
