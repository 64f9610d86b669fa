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
