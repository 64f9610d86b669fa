"""The registry logic against a real MLflow server: versions, aliases, promotion, resolution."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vampire_detector import registry
from vampire_detector.harness.registry_server import QUIET, running_registry

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def uri(tmp_path_factory: pytest.TempPathFactory):
    with running_registry(tmp_path_factory.mktemp("registry")) as uri:
        yield uri


@pytest.mark.parametrize("alias", ["", "champion!", "my alias", "latest", "v3", "../x"])
def test_malformed_or_reserved_aliases_are_refused_with_a_reason(alias: str) -> None:
    with pytest.raises(registry.RegistryError, match=r"alias|reserved"):
        registry.check_alias(alias)


def test_register_promote_resolve_and_roll_back(uri: str, tmp_path: Path) -> None:
    client = registry.connect(uri)
    files = []
    for n in (1, 2):
        files.append(tmp_path / f"m{n}.onnx")
        files[-1].write_bytes(bytes([n]) * 10)
    first = registry.register(client, files[0], metrics={"clean_accuracy": 0.97},
                              tags={"parity": 2e-7, "size_mb": 0.1})
    second = registry.register(client, files[1], metrics={"clean_accuracy": 0.98})
    assert (first, second) == ("1", "2")
    assert client.get_model_version(registry.MODEL_NAME, first).tags["parity"] == "2e-07"
    run = client.get_run(client.get_model_version(registry.MODEL_NAME, first).run_id)
    assert run.data.metrics["clean_accuracy"] == pytest.approx(0.97)

    registry.set_alias(client, registry.CHAMPION, first)
    registry.set_alias(client, registry.CHALLENGER, second)
    assert registry.promote(client) == (first, second)
    resolved = registry.resolve(client, registry.CHAMPION, tmp_path / "serve")
    assert resolved.version == second and resolved.path.read_bytes() == files[1].read_bytes()

    registry.rollback(client, first)
    assert registry.version_of(client, registry.CHAMPION) == first
    assert registry.resolve(client, "champion", tmp_path / "back").path.read_bytes() == \
        files[0].read_bytes()
    assert registry.version_of(client, "nobody") is None


def test_the_resolver_writes_the_service_environment_or_fails_at_start(uri: str,
                                                                       tmp_path: Path) -> None:
    client = registry.connect(uri)
    model = tmp_path / "m.onnx"
    model.write_bytes(b"onnx")
    registry.set_alias(client, "resolver-test", registry.register(client, model, metrics={}))
    env = {**os.environ, **QUIET, "PYTHONPATH": os.getcwd(), "MLFLOW_TRACKING_URI": uri}
    command = [sys.executable, "-m", "vampire_detector.registry", "resolve", "--out"]
    done = subprocess.run([*command, str(tmp_path / "ok"), "--alias", "resolver-test"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = (tmp_path / "ok" / "service.env").read_text().splitlines()
    assert f"VAMPIRE_MODEL_PATH={tmp_path / 'ok' / 'model.onnx'}" in lines
    assert any(line.startswith("VAMPIRE_MODEL_VERSION=vampire-detector-v") for line in lines)
    for alias, says in (("no-such-alias", "has no version"), ("champ ion", "malformed")):
        failed = subprocess.run([*command, str(tmp_path / alias), "--alias", alias],
                                env=env, capture_output=True, text=True, timeout=120)
        assert failed.returncode == 2 and says in failed.stderr, failed.stderr
        assert not (tmp_path / alias / "service.env").exists()


def test_the_command_line_promotes_and_rolls_back_or_says_why_not(uri: str,
                                                                  tmp_path: Path) -> None:
    """What the release workflow's promote job and an operator at 3 a.m. type."""
    name = "cli-test"  # a model of its own: the other tests' aliases stay where they are
    client = registry.connect(uri)
    model = tmp_path / "m.onnx"
    model.write_bytes(b"onnx")
    first = registry.register(client, model, metrics={}, name=name)
    registry.set_alias(client, registry.CHAMPION, first, name)
    second = registry.register(client, model, metrics={}, name=name)
    registry.set_alias(client, registry.CHALLENGER, second, name)
    env = {**os.environ, **QUIET, "PYTHONPATH": os.getcwd(), "MLFLOW_TRACKING_URI": uri}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "vampire_detector.registry", *args,
                               "--name", name], env=env, capture_output=True, text=True,
                              timeout=120)

    promoted = cli("promote")
    assert promoted.returncode == 0, promoted.stderr
    assert registry.version_of(client, registry.CHAMPION, name) == second
    refused = cli("rollback", "--version", "99")
    assert refused.returncode == 2 and "no version '99'" in refused.stderr, refused.stderr
    assert registry.version_of(client, registry.CHAMPION, name) == second
    back = cli("rollback", "--version", first)
    assert back.returncode == 0, back.stderr
    assert registry.version_of(client, registry.CHAMPION, name) == first
    assert cli("rollback").returncode == 2  # which version? the parser asks
def test_retire_removes_the_challenger_and_undoes_a_promotion(uri: str, tmp_path: Path) -> None:
    client = registry.connect(uri)
    name = "retire-test"
    versions = []
    for n in (1, 2, 3):
        model = tmp_path / f"r{n}.onnx"
        model.write_bytes(bytes([n]) * 10)
        versions.append(registry.register(client, model, metrics={}, name=name))
    first, second, third = versions
    registry.set_alias(client, registry.CHAMPION, first, name)
    registry.set_alias(client, registry.CHALLENGER, second, name)
    # a challenger still on the canary: the alias goes, the champion stays
    assert registry.retire(client, "VampireCanaryErrors", name) == {"retired": second,
                                                                     "champion": first}
    assert registry.version_of(client, registry.CHALLENGER, name) is None
    assert client.get_model_version(name, second).tags[registry.RETIRED] == "VampireCanaryErrors"
    assert registry.retire(client, "again", name) == {"retired": None, "champion": first}
    # a challenger promoted too soon: the champion goes back to the version it replaced
    registry.set_alias(client, registry.CHALLENGER, third, name)
    assert registry.promote(client, name) == (first, third)
    assert registry.retire(client, "VampireShadowDisagreement", name) == {"retired": third,
                                                                          "champion": first}
