"""Run the release gate on a candidate; on a pass, register it as the challenger.

    python tools/release_gate.py with-makeup            # a registry of its own, for the run
    MLFLOW_TRACKING_URI=http://host:5000 python tools/release_gate.py with-makeup --promote
    python tools/release_gate.py with-makeup --model-out models/vampirenet.onnx \
        --summary "$GITHUB_STEP_SUMMARY"                # what .github/workflows/release.yml runs

The candidate (see vampire_detector.candidates) is trained or loaded from the cache, exported to
ONNX and measured against every budget of vampire_detector.release_gate. The report names each
budget, the value measured and the verdict; the exit code is 0 on a pass and 1 on a refusal.
A candidate that passes is registered with its measurements and given the ``challenger``
alias; ``--promote`` then moves ``champion`` to it. ``--model-out`` copies the file that passed
to where the image build reads it (the image's tag is then that file's digest), and
``--summary`` appends the report to a Markdown file, such as a GitHub job's summary.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from vampire_detector import registry
from vampire_detector.bench import markdown_table
from vampire_detector.candidates import CANDIDATES, load_candidate
from vampire_detector.harness.registry_server import running_registry
from vampire_detector.onnx_export import export_onnx
from vampire_detector.release_gate import run_gate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("candidate", choices=sorted(CANDIDATES))
    parser.add_argument("--promote", action="store_true", help="move champion on a pass")
    parser.add_argument("-n", type=int, default=1000, help="portraits per population")
    parser.add_argument("--model-out", type=Path, help="on a pass, copy the ONNX file here")
    parser.add_argument("--summary", type=Path, help="append the report to this Markdown file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        model = load_candidate(args.candidate)
        path = export_onnx(model, Path(scratch) / f"{args.candidate}.onnx")
        measured, report = run_gate(model, path, n=args.n)
        verdict = (f"{args.candidate} passes every budget" if report.passed else
                   f"refused: {args.candidate} misses {', '.join(report.failures)}")
        print(markdown_table(report.rows()))
        print(verdict)
        if args.summary:
            with args.summary.open("a") as summary:
                summary.write(f"## Release gate: {args.candidate}\n\n"
                              f"{markdown_table(report.rows())}\n\n**{verdict}**\n")
        if not report.passed:
            return 1
        if args.model_out:
            args.model_out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, args.model_out)
        with running_registry(Path(scratch) / "registry") as uri:
            client = registry.connect(uri)
            version = registry.register(client, path, metrics=measured,
                                        tags={"candidate": args.candidate, **measured})
            registry.set_alias(client, registry.CHALLENGER, version)
            print(f"{args.candidate} is version {version}, the challenger, at {uri}")
            if args.promote:
                previous, new = registry.promote(client)
                print(f"champion moved from version {previous} to {new}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
