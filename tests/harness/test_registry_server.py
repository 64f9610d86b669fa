"""A real ``mlflow server`` starts on loopback with a SQLite store, answers, and is stopped."""

from __future__ import annotations

import os
from pathlib import Path

import httpx2 as httpx
import pytest

from vampire_detector.harness.registry_server import (
    QUIET,
    URI_VARIABLE,
    quiet_environment,
    running_registry,
    server_command,
)

pytestmark = pytest.mark.timeout(300)


def test_an_existing_registry_is_used_as_it_is(tmp_path: Path) -> None:
    with running_registry(tmp_path, environ={URI_VARIABLE: "http://registry.example:5000"}) as uri:
        assert uri == "http://registry.example:5000"
    assert not any(tmp_path.iterdir()), "nothing is started or written for an existing registry"


def test_the_server_runs_quietly_on_loopback_with_a_sqlite_store(tmp_path: Path) -> None:
    command = server_command(tmp_path, 5001)
    assert "127.0.0.1" in command and f"sqlite:///{tmp_path / 'registry.db'}" in command
    assert command[command.index("--workers") + 1] == "1"
    assert quiet_environment({"A": "1"}) == {"A": "1", **QUIET}


def test_a_real_server_answers_and_every_process_is_stopped(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if k != URI_VARIABLE}
    with running_registry(tmp_path, environ=environ) as uri:
        assert uri.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=uri, timeout=10, trust_env=False) as client:
            assert client.get("/health").status_code == 200
            found = client.get("/api/2.0/mlflow/registered-models/search")
            assert found.status_code == 200, found.text
        servers = [pid for pid in _pids() if str(tmp_path) in _cmdline(pid)]
        groups = {os.getpgid(pid) for pid in servers}
        assert servers and groups == {servers[0]} | groups and os.getpgid(0) not in groups, \
            "the server runs in a process group of its own"
    assert (tmp_path / "registry.db").is_file()
    for group in groups:
        with pytest.raises(ProcessLookupError):
            os.killpg(group, 0)  # no process of the server's group is left


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
