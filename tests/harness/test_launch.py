"""Starting and stopping servers: nothing they start outlives them."""

from __future__ import annotations

import subprocess

from vampire_detector.harness.launch import group_members, stop_group


def test_stop_group_ends_the_process_and_its_children():
    process = subprocess.Popen(["sh", "-c", "sleep 60 & sleep 60"], start_new_session=True)
    assert len(group_members(process.pid)) >= 1
    stop_group(process, grace_s=5.0)
    assert process.returncode is not None
    assert not group_members(process.pid), "a child outlived the stop"


def test_a_server_that_never_gets_ready_is_explained_by_its_own_output():
    import pytest

    from vampire_detector.harness.launch import running_server

    with (pytest.raises(RuntimeError, match="No module named 'no_such_castle'"),
          running_server("no_such_castle.app:app", timeout_s=60)):
        pass


def test_a_servers_access_log_goes_to_its_file_not_to_the_callers_terminal(capfd):
    import httpx2 as httpx

    from vampire_detector.harness.launch import running_server

    with running_server("vampire_detector.torch_serving:create_app", factory=True,
                        env={"VAMPIRE_RUNTIME": "eager", "VAMPIRE_WARMUP_BATCHES": "0"}) as url:
        assert httpx.get(f"{url}/ready", trust_env=False).status_code == 200
    assert '"event":"request"' not in capfd.readouterr().err
