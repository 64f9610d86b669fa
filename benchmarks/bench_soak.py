"""The carnival-night soak: 10,000 mixed requests at concurrency 32 against the final service.

    python benchmarks/bench_soak.py                 # about a minute on two cores
    python benchmarks/bench_soak.py --requests 2000 # shorter

One request in ten is a bad upload (a text file, a truncated PNG, an oversized body, a
decompression bomb). Passes when every request was sent within the time limit, none got a 5xx
or a transport error, every bad upload got its 4xx, and the server's RSS grew less than 5% over
the second half of the run; exits with status 1 otherwise. Writes ``_build/bench/soak.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vampire_detector.bench import machine_summary
from vampire_detector.harness.ledger import final_server
from vampire_detector.harness.loadtest import check_load, mixed_workload
from vampire_detector.harness.soak import SoakResult, run_soak
from vampire_detector.portraits import make_portraits
from vampire_detector.release import build_release

OUT = Path("_build/bench")


def report(result: SoakResult) -> dict:
    trace = result.trace
    grown, fraction = trace.second_half_growth()
    return {**result.samples.summary(), "seconds": round(result.seconds, 1),
            "rss_start_mib": round(trace.rss[0] / 2**20, 1),
            "rss_end_mib": round(trace.rss[-1] / 2**20, 1),
            "rss_peak_mib": round(max(trace.rss) / 2**20, 1),
            "rss_second_half_growth_mib": round(grown / 2**20, 2),
            "rss_second_half_growth": round(fraction, 4),
            "server_cpu_cores": round(trace.cpu_cores(), 2),
            "service_metrics": result.service, "problems": result.problems()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000, help="requests in all")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--bad-share", type=float, default=0.1,
                        help="the share of bad uploads, from 0 up to (not including) 1")
    parser.add_argument("--time-limit-s", type=float, default=600.0,
                        help="stop sending after this many seconds (the run then fails)")
    parser.add_argument("--out", type=Path, default=OUT, help="folder for soak.json")
    args = parser.parse_args(argv)
    try:  # before the release is built: a mistyped number should not cost a model export
        check_load(args.requests, args.concurrency, args.time_limit_s)
        uploads = mixed_workload(make_portraits(64, seed=6)[0], args.bad_share)
    except ValueError as error:
        parser.error(str(error))
    server = final_server(build_release(args.out / "models"))
    result = run_soak(server, uploads, requests=args.requests, concurrency=args.concurrency,
                      time_limit_s=args.time_limit_s)
    numbers = {"machine": machine_summary(), "server": server.name, **report(result)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak.json").write_text(json.dumps(numbers, indent=2) + "\n")
    print(json.dumps(numbers, indent=2))
    print("PASS" if not numbers["problems"] else "FAIL: " + "; ".join(numbers["problems"]))
    return 1 if numbers["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
