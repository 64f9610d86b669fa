"""Renfield's naive endpoint against the reference service, under the same load, in one run.

    python benchmarks/bench_serve.py                        # about a minute or two on two cores
    python benchmarks/bench_serve.py --quick                # the chapter's shorter run
    python benchmarks/bench_serve.py --model-path int8.onnx # serve any ONNX file, e.g. Chapter 5's

Both servers serve the production backbone, in their own processes on loopback ports; the load
generator is an async httpx client (``vampire_detector.harness.loadtest``). Prints a Markdown
table of throughput and latency percentiles, and with ``--json`` writes the numbers too.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path

from vampire_detector.bench import machine_summary, markdown_table
from vampire_detector.harness.loadtest import Contest, run_contest

QUICK = {"requests": 120, "rounds": 2, "time_limit_s": 10.0}


def parse(argv: list[str] | None = None) -> tuple[Contest, Path | None]:
    defaults = Contest()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-path", type=Path, help="the ONNX file the reference serves "
                        "(default: the production backbone, exported now)")
    parser.add_argument("--requests", type=int, default=defaults.requests,
                        help="requests per round and server")
    parser.add_argument("--rounds", type=int, default=defaults.rounds)
    parser.add_argument("--concurrency", type=int, default=defaults.concurrency,
                        help="requests in flight")
    parser.add_argument("--time-limit-s", type=float, default=defaults.time_limit_s,
                        help="seconds per round, at most")
    parser.add_argument("--threads", type=int, default=defaults.threads,
                        help="the reference's model threads")
    parser.add_argument("--max-batch-size", type=int, default=defaults.max_batch_size)
    parser.add_argument("--max-wait-ms", type=float, default=defaults.max_wait_ms)
    parser.add_argument("--quick", action="store_true", help="fewer requests (for the chapter)")
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)
    if args.model_path is not None and not args.model_path.is_file():
        parser.error(f"--model-path {args.model_path} is not a file")
    chosen = {f.name: getattr(args, f.name) for f in fields(Contest)}
    try:
        return Contest(**{**chosen, **(QUICK if args.quick else {})}), args.json
    except ValueError as error:
        parser.error(str(error))


def main(argv: list[str] | None = None) -> None:
    contest, json_path = parse(argv)
    results = run_contest(contest)
    naive = next(iter(results.values()))
    print(f"Measured on: {machine_summary()}")
    print(f"{contest.concurrency} requests in flight, {contest.rounds} rounds of "
          f"{contest.requests} per server")
    print(markdown_table([samples.row(name, naive) for name, samples in results.items()]))
    if json_path is not None:
        summaries = {name: samples.summary() for name, samples in results.items()}
        json_path.write_text(json.dumps(summaries, indent=2) + "\n")


if __name__ == "__main__":
    main()
