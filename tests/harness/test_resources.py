"""Memory and CPU of a process tree, read from /proc."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from vampire_detector.harness.resources import (
    ResourceTrace,
    cpu_seconds,
    process_tree,
    rss_bytes,
)


def test_proc_reports_a_process_tree_its_memory_and_cpu():
    child = subprocess.Popen([sys.executable, "-c", "import time; print(1, flush=True); "
                              "time.sleep(30)"], stdout=subprocess.PIPE)
    try:
        child.stdout.readline()  # the interpreter is up
        assert child.pid in process_tree(os.getpid())
        alone = rss_bytes(child.pid)
        assert 1_000_000 < alone < rss_bytes(os.getpid())  # the tree includes the child
        assert cpu_seconds(os.getpid()) > 0
    finally:
        child.kill()
        child.wait()
        child.stdout.close()


def test_memory_growth_is_measured_over_the_second_half():
    warming = ResourceTrace(rss=[100, 150, 200, 200, 201, 200])
    assert warming.second_half_growth() == (1, pytest.approx(0.005))
    leaking = ResourceTrace(rss=[100, 110, 120, 130, 140, 150])
    assert leaking.second_half_growth() == (20, pytest.approx(20 / 130))
    busy = ResourceTrace(times_s=[0.0, 2.0], cpu_s=[1.0, 4.0])
    assert busy.cpu_cores() == pytest.approx(1.5)
