"""The benchmark scripts' reports, on made-up numbers (the real runs are ``make bench``)."""

from __future__ import annotations

import pytest

from benchmarks import bench_access_log as access_log
from benchmarks import bench_serve as serve
from benchmarks import bench_servers as servers
from benchmarks import bench_soak as soak
from benchmarks.bench_ledger import as_markdown
from benchmarks.bench_soak import report
from vampire_detector.harness.loadtest import Samples
from vampire_detector.harness.resources import ResourceTrace
from vampire_detector.harness.soak import SoakResult


def test_the_ledger_report_states_the_machine_the_table_and_the_peak():
    row = {"step": "naive", "req/s": "10"}
    text = as_markdown({"machine": "a test box", "concurrency": 32, "rounds": 1,
                        "seconds_per_round": 2.0, "ledger": [row], "final": "naive",
                        "flops_per_image": 296_000_000,
                        "peak": {"cores": 2, "ghz": 2.5, "fp32_per_cycle": 64,
                                 "vector_isa": "AVX-512", "fp32_gflops": 320.0,
                                 "int8_per_cycle": 256, "int8_isa": "VNNI", "int8_gops": 1280.0},
                        "arithmetic": [{"": "model", "share of peak": "10%"}], "seconds": 12.0})
    assert "Measured on: a test box" in text and "| naive | 10 |" in text
    assert "0.296 GFLOP per image" in text and "= 320 GFLOP/s" in text and "1280 GOP/s" in text


def test_the_soak_report_gives_memory_in_mebibytes_and_the_verdict():
    trace = ResourceTrace(times_s=[0.0, 1.0, 2.0], rss=[100 * 2**20, 120 * 2**20, 121 * 2**20],
                          cpu_s=[0.0, 1.0, 2.0])
    numbers = report(SoakResult(Samples(latencies_ms=[1.0], seconds=1.0), trace, 2.0, {}))
    assert (numbers["rss_start_mib"], numbers["rss_end_mib"]) == (100.0, 121.0)
    assert numbers["rss_second_half_growth_mib"] == 1.0 and numbers["server_cpu_cores"] == 1.0
    assert numbers["problems"] == []


@pytest.mark.parametrize(("script", "args", "complaint"), [
    (soak, ["--requests", "0"], "requests must be at least 1"),
    (soak, ["--concurrency", "-3"], "concurrency must be at least 1"),
    (soak, ["--bad-share", "1.5"], "bad_share must be in [0, 1)"),
    (soak, ["--time-limit-s", "0"], "time limit must be a positive number"),
    (serve, ["--rounds", "0"], "rounds must be at least 1"),
    (serve, ["--max-wait-ms", "-1"], "max_wait_ms must not be negative"),
    (servers, ["--levels", "0"], "concurrency must be at least 1"),
    (servers, ["--rounds", "0"], "must be at least 1"),
    (access_log, ["--rounds", "0"], "must be at least 1"),
])
def test_the_scripts_refuse_numbers_that_would_measure_nothing(script, args, complaint, capsys):
    with pytest.raises(SystemExit) as exit_:
        script.main(args)
    assert exit_.value.code == 2 and complaint in capsys.readouterr().err


def test_the_naive_image_pins_what_the_course_pins(repo_root):
    """The one-stage image installs the versions constraints.txt pins: a fair comparison."""
    import re

    pins = dict(re.findall(r"^([a-z0-9-]+)==(\S+)", (repo_root / "constraints.txt").read_text(),
                           re.MULTILINE))
    named = re.findall(r"\b(torch|torchvision|onnx|onnxscript)==(\S+)",
                       (repo_root / "benchmarks" / "naive.Dockerfile").read_text())
    assert {name for name, _ in named} == {"torch", "torchvision", "onnx", "onnxscript"}
    assert all(pins[name] == version for name, version in named), named


def test_the_kept_naive_image_result_has_what_chapter_7_reads(repo_root):
    import json

    kept = json.loads((repo_root / "benchmarks/results/naive_image.json").read_text())
    assert {"measured", "machine", "builder", "images", "size_ratio"} <= kept.keys()
    shipped, naive = kept["images"].values()
    for image in (shipped, naive):
        assert {"bytes", "build_s", "start_to_ready_s", "label"} <= image.keys()
    assert kept["size_ratio"] == round(naive["bytes"] / shipped["bytes"], 1)
