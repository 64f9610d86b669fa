"""The course's service against TorchServe: same weights, preprocessing, batching and load.

    python benchmarks/bench_servers.py            # four concurrency levels, a few minutes
    python benchmarks/bench_servers.py --quick    # the chapter's shorter run

Both servers run eager PyTorch on the committed VampireNet weights with one model thread and
batch dynamically with the same limits (``vampire_detector.harness.servers``). Prints Markdown
tables: throughput, p50/p95/p99 and CPU seconds per 1,000 requests at each level, then start-up
time and peak resident memory per server. TorchServe needs Java 17 on PATH.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, fields
from pathlib import Path

from vampire_detector.bench import machine_summary, markdown_table
from vampire_detector.harness.servers import QUICK, Comparison, compare, summary_rows


def parse(argv: list[str] | None = None) -> tuple[Comparison, Path | None]:
    defaults = Comparison()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, nargs="+", default=list(defaults.levels),
                        help="requests in flight, one measurement each")
    parser.add_argument("--requests", type=int, default=defaults.requests,
                        help="requests per server, level and round")
    parser.add_argument("--rounds", type=int, default=defaults.rounds)
    parser.add_argument("--time-limit-s", type=float, default=defaults.time_limit_s)
    parser.add_argument("--max-batch", type=int, default=defaults.max_batch,
                        help="most images per model call, for both servers")
    parser.add_argument("--max-wait-ms", type=int, default=defaults.max_wait_ms,
                        help="longest wait for a batch to fill, for both servers")
    parser.add_argument("--threads", type=int, default=defaults.threads,
                        help="torch threads of each server's one model process")
    parser.add_argument("--quick", action="store_true", help="the chapter's short run")
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)
    if args.quick:
        return QUICK, args.json
    chosen = {f.name: getattr(args, f.name) for f in fields(Comparison)}
    chosen["levels"] = tuple(chosen["levels"])
    try:
        return Comparison(**chosen), args.json
    except ValueError as error:
        parser.error(str(error))


def main(argv: list[str] | None = None) -> None:
    comparison, json_path = parse(argv)
    results = compare(comparison)
    print(f"Measured on: {machine_summary()}")
    print(f"batches of at most {comparison.max_batch}, waiting at most "
          f"{comparison.max_wait_ms} ms; {comparison.rounds} round(s) of "
          f"{comparison.requests} requests per server and level")
    print(markdown_table([row for name, measured in results.items()
                          for row in measured.rows(name)]))
    print()
    print(markdown_table(summary_rows(results)))
    if json_path is not None:
        json_path.write_text(json.dumps({
            "comparison": asdict(comparison),
            "servers": {name: {"rows": measured.rows(name), "peak_rss": measured.peak_rss,
                               "startup_s": measured.startup_s}
                        for name, measured in results.items()}}, indent=2))


if __name__ == "__main__":
    main()
