"""The performance ledger: naive endpoint to final service, one improvement at a time, one run.

    python benchmarks/bench_ledger.py           # about three to four minutes on two cores
    python benchmarks/bench_ledger.py --quick   # the chapter's shorter run

Builds the release models (``vampire_detector.release``), measures every step of
``vampire_detector.harness.ledger`` under the same load, then the arithmetic the model achieves
against the processor's estimated peak. Prints both tables and writes them to
``_build/bench/ledger.md`` and ``ledger.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path

from vampire_detector.bench import machine_summary, markdown_table
from vampire_detector.flops import count_flops, estimate_peak
from vampire_detector.harness.ledger import (
    arithmetic_rows,
    best_threads,
    ledger_rows,
    ledger_servers,
)
from vampire_detector.harness.loadtest import Contest, measure_servers, mixed_workload
from vampire_detector.model import PRODUCTION_ARCH
from vampire_detector.portraits import make_portraits
from vampire_detector.release import build_release
from vampire_detector.weights import load_model

OUT = Path("_build/bench")
FULL = Contest(requests=1_000_000, rounds=3, concurrency=32, time_limit_s=6.0)
QUICK = Contest(requests=1_000_000, rounds=1, concurrency=32, time_limit_s=2.5)


def run(contest: Contest, out: Path) -> dict:
    """Measure the ledger and the arithmetic; write and return everything."""
    start = time.perf_counter()
    release = build_release(out / "models")
    servers = ledger_servers(release)
    uploads = mixed_workload(make_portraits(64, seed=6)[0], bad_share=0)
    results = asyncio.run(measure_servers(servers, contest, uploads))
    final = best_threads(results)
    flops = count_flops(load_model(PRODUCTION_ARCH))
    peak = estimate_peak(cores=os.cpu_count())
    report = {"machine": machine_summary(), "concurrency": contest.concurrency,
              "rounds": contest.rounds, "seconds_per_round": contest.time_limit_s,
              "ledger": ledger_rows(servers, results), "final": final,
              "summaries": {name: samples.summary() for name, samples in results.items()},
              "flops_per_image": flops, "peak": {**vars(peak), "fp32_gflops": peak.fp32_gflops,
                                                  "int8_gops": peak.int8_gops},
              "arithmetic": arithmetic_rows(flops, peak, release, results[final].throughput)}
    report["seconds"] = round(time.perf_counter() - start, 1)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ledger.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "ledger.md").write_text(as_markdown(report) + "\n")
    return report


def as_markdown(report: dict) -> str:
    peak = report["peak"]
    return "\n\n".join([
        f"Measured on: {report['machine']}",
        f"{report['concurrency']} requests in flight, {report['rounds']} rounds of "
        f"{report['seconds_per_round']:.0f} s per server; final: {report['final']}",
        markdown_table(report["ledger"]),
        f"ResNet-18 at 64x64: {report['flops_per_image'] / 1e9:.3f} GFLOP per image. Estimated "
        f"peak: {peak['cores']} cores x {peak['ghz']:.2f} GHz x {peak['fp32_per_cycle']} FP32 "
        f"FLOP/cycle ({peak['vector_isa']}) = {peak['fp32_gflops']:.0f} GFLOP/s; x "
        f"{peak['int8_per_cycle']} INT8 op/cycle ({peak['int8_isa']}) = "
        f"{peak['int8_gops']:.0f} GOP/s (an upper-bound estimate)",
        markdown_table(report["arithmetic"]),
        f"The whole benchmark took {report['seconds']:.0f} s."])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one short round (the chapter's)")
    parser.add_argument("--out", type=Path, default=OUT, help="folder for ledger.md and .json")
    args = parser.parse_args(argv)
    report = run(QUICK if args.quick else FULL, args.out)
    print(as_markdown(report))
    print(f"written: {args.out / 'ledger.md'}, {args.out / 'ledger.json'}")


if __name__ == "__main__":
    main()
