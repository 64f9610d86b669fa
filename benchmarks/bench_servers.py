"""The course's service against TorchServe and LitServe: same model file, preprocessing, load.

    python benchmarks/bench_servers.py                 # four concurrency levels, a few minutes
    python benchmarks/bench_servers.py --quick         # the chapter's shorter run (one setting)
    python benchmarks/bench_servers.py --model int8    # the production INT8 ResNet-18 (ONNX)
    python benchmarks/bench_servers.py --search        # tune each server over a small grid

All three servers run the same model file (the committed VampireNet weights in eager PyTorch,
or the INT8 ResNet-18 in ONNX Runtime) and batch dynamically
(``vampire_detector.harness.servers``). A comparison gives every server the same setting and
prints Markdown tables: throughput, p50/p95/p99 and CPU seconds per 1,000 requests at each
level, then start-up time and peak resident memory per server. ``--search`` instead tunes each
server on its own (batch size 8/16/32 x delay 2/5/10 ms with one worker and one thread, then
the worker and thread layouts that fit two cores), measured at the highest level, and prints
every setting tried and the best one per server within the p95 budget. TorchServe needs Java
17 on PATH.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, fields
from datetime import datetime, timezone
from pathlib import Path

from vampire_detector.bench import machine_summary, markdown_table
from vampire_detector.harness.servers import (
    MODELS,
    QUICK,
    Comparison,
    best,
    best_rows,
    compare,
    search,
    summary_rows,
)


def today() -> str:
    return datetime.now(timezone.utc).date().isoformat()


SEARCH = Comparison(levels=(16,), requests=240, rounds=1, time_limit_s=15.0)


def parse(argv: list[str] | None = None) -> tuple[Comparison, argparse.Namespace]:
    defaults = Comparison()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, nargs="+", default=list(defaults.levels),
                        help="requests in flight, one measurement each")
    parser.add_argument("--requests", type=int, default=defaults.requests,
                        help="requests per server, level and round")
    parser.add_argument("--rounds", type=int, default=defaults.rounds)
    parser.add_argument("--time-limit-s", type=float, default=defaults.time_limit_s)
    parser.add_argument("--max-batch", type=int, default=defaults.max_batch,
                        help="most images per model call, for every server")
    parser.add_argument("--max-wait-ms", type=int, default=defaults.max_wait_ms,
                        help="longest wait for a batch to fill, for every server")
    parser.add_argument("--threads", type=int, default=defaults.threads,
                        help="model threads of each server's model process")
    parser.add_argument("--workers", type=int, default=defaults.workers,
                        help="model processes of each server")
    parser.add_argument("--model", choices=MODELS, default="vampirenet",
                        help="the model file every server loads")
    parser.add_argument("--quick", action="store_true",
                        help="the chapter's short run, one fixed setting for every server")
    parser.add_argument("--search", action="store_true",
                        help="tune each server over the grid instead (minutes)")
    parser.add_argument("--p95-budget-ms", type=float, default=250.0,
                        help="with --search: the best setting must keep p95 within this")
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)
    if args.quick and args.search:
        parser.error("--quick and --search are different runs: choose one")
    if not args.p95_budget_ms > 0:
        parser.error("--p95-budget-ms must be a positive number of milliseconds")
    if args.quick:
        return QUICK, args
    if args.search:
        return SEARCH, args
    chosen = {f.name: getattr(args, f.name) for f in fields(Comparison)}
    chosen["levels"] = tuple(chosen["levels"])
    try:
        return Comparison(**chosen), args
    except ValueError as error:
        parser.error(str(error))


def run_search(comparison: Comparison, args: argparse.Namespace) -> None:
    tried = search(comparison, model=args.model, p95_budget_ms=args.p95_budget_ms)
    print(f"Measured on: {machine_summary()}")
    print(f"model: {args.model}; {comparison.requests} requests per setting at "
          f"{max(comparison.levels)} in flight; p95 budget {args.p95_budget_ms:.0f} ms")
    print(markdown_table([t.row() for t in tried]))
    print()
    print("Best setting per server within the budget:")
    print(markdown_table(best_rows(tried, args.p95_budget_ms)))
    if args.json is not None:
        servers = dict.fromkeys(t.server for t in tried)
        chosen = {name: best([t for t in tried if t.server == name], args.p95_budget_ms)
                  for name in servers}
        args.json.write_text(json.dumps({
            "machine": machine_summary(), "date": today(), "model": args.model,
            "comparison": asdict(comparison), "p95_budget_ms": args.p95_budget_ms,
            "tried": [t.as_json() for t in tried],
            "best": {name: t.as_json() if t else None for name, t in chosen.items()}},
            indent=1) + "\n")


def main(argv: list[str] | None = None) -> None:
    comparison, args = parse(argv)
    if args.search:
        run_search(comparison, args)
        return
    results = compare(comparison, model=args.model)
    print(f"Measured on: {machine_summary()}")
    print(f"model: {args.model}; batches of at most {comparison.max_batch}, waiting at most "
          f"{comparison.max_wait_ms} ms; {comparison.workers} worker(s) x {comparison.threads} "
          f"thread(s); {comparison.rounds} round(s) of {comparison.requests} requests per "
          "server and level")
    print(markdown_table([row for name, measured in results.items()
                          for row in measured.rows(name)]))
    print()
    print(markdown_table(summary_rows(results)))
    if args.json is not None:
        args.json.write_text(json.dumps({
            "machine": machine_summary(), "date": today(), "model": args.model,
            "comparison": asdict(comparison),
            "servers": {name: {"rows": measured.rows(name), "peak_rss": measured.peak_rss,
                               "startup_s": measured.startup_s}
                        for name, measured in results.items()}}, indent=2))


if __name__ == "__main__":
    main()
