"""The performance ledger's steps."""

from __future__ import annotations

from pathlib import Path

from vampire_detector.harness.ledger import (
    BATCHED,
    ONE_PROCESS,
    WORKERS,
    best_threads,
    ledger_rows,
    ledger_servers,
    previous_step,
)
from vampire_detector.harness.loadtest import Samples
from vampire_detector.release import Release


def test_the_ledger_compares_each_step_with_the_one_it_improves(tmp_path: Path):
    servers = ledger_servers(Release(tmp_path / "a.onnx", tmp_path / "a-int8.onnx"), cores=2)
    names = [s.name for s in servers]
    assert previous_step(names[0], names) is None
    assert previous_step(names[2], names) == names[1]
    assert previous_step(ONE_PROCESS, names) == previous_step(WORKERS, names) == BATCHED
    assert servers[-1].workers == 2 and servers[-2].env["VAMPIRE_THREADS"] == "2"
    results = {name: Samples(latencies_ms=[10.0] * (i + 1), seconds=1.0)
               for i, name in enumerate(names)}
    assert best_threads(results) == WORKERS
    rows = ledger_rows(servers, results)
    assert rows[0]["vs naive"] == "1.00x" and rows[0]["vs previous"] == ""
    assert rows[3]["vs previous"] == "1.33x"  # 4 against 3 requests per second
    assert rows[5]["vs previous"] == "1.50x" and rows[5]["step"].endswith("(chosen)")
