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
    (servers, ["--workers", "0"], "workers must be at least 1"),
    (servers, ["--quick", "--search"], "choose one"),
    (servers, ["--search", "--p95-budget-ms", "0"], "p95-budget-ms must be a positive"),
    (servers, ["--model", "gpt"], "invalid choice"),
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


def test_the_servers_benchmark_keeps_quick_fixed_and_search_separate():
    from vampire_detector.harness.servers import QUICK

    quick, args = servers.parse(["--quick", "--model", "int8"])
    assert quick == QUICK and args.model == "int8" and not args.search
    found, args = servers.parse(["--search", "--p95-budget-ms", "120"])
    assert found == servers.SEARCH and args.search and args.p95_budget_ms == 120
    chosen, _ = servers.parse(["--levels", "2", "8", "--workers", "2", "--max-batch", "16"])
    assert chosen.levels == (2, 8) and chosen.setting.workers == 2
    assert chosen.setting.max_batch == 16


def test_the_search_writes_every_setting_tried_and_the_best_per_server(monkeypatch, tmp_path,
                                                                       capsys):
    from vampire_detector.harness.servers import Setting, Tried

    tried = [Tried("A", Setting(1, 8, 2, 1), 100.0, 50.0, 0),
             Tried("A", Setting(1, 16, 5, 1), 300.0, 400.0, 0),  # fastest, over the budget
             Tried("A", Setting(2, 8, 2, 1), 200.0, 90.0, 0),
             Tried("B", Setting(1, 8, 2, 1), 150.0, 500.0, 0)]  # nothing within the budget
    monkeypatch.setattr(servers, "search", lambda comparison, **_: tried)
    monkeypatch.setattr(servers, "machine_summary", lambda: "a test box")
    out = tmp_path / "search.json"
    servers.main(["--search", "--p95-budget-ms", "100", "--json", str(out)])
    printed = capsys.readouterr().out
    assert "Measured on: a test box" in printed and "p95 budget 100 ms" in printed
    assert "| A | 2 worker(s) x 1 thread(s), batch 8, 2 ms | 200.0 | 90.0 | 0 |" in printed
    assert "| B | none within p95 100 ms |" in printed
    import json

    numbers = json.loads(out.read_text())
    assert len(numbers["tried"]) == 4 and numbers["best"]["B"] is None
    assert numbers["best"]["A"]["setting"] == {"workers": 2, "max_batch": 8,
                                               "max_wait_ms": 2, "threads": 1}
