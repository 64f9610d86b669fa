"""A real MLflow tracking and registry server on loopback, with a SQLite store; always stopped.

Introduced in Chapter 13.

The release chapter, its tests and ``tools/release_gate.py`` all need a model registry. Where
one already runs (a team's server), set ``MLFLOW_TRACKING_URI`` and it is used as it is;
otherwise ``running_registry`` starts ``mlflow server`` with a SQLite database and a local
artifact folder on a free loopback port, waits until ``/health`` answers, and stops the server
and every process it started when the block ends, even when the block fails.

MLflow 3 sends usage telemetry and runs a job executor beside the server by default; both are
switched off here (``quiet_environment``): there is nothing to reach from these machines, and a
client that waits for an unreachable telemetry host at exit costs a minute.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

from vampire_detector.harness.launch import HOST, free_port, stop_group, wait_until_ready

URI_VARIABLE = "MLFLOW_TRACKING_URI"
QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
         "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def quiet_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``environ`` (default: this process's) with MLflow's telemetry and job runner off."""
    return {**(os.environ if environ is None else environ), **QUIET}


def server_command(folder: Path, port: int) -> list[str]:
    """``mlflow server`` with its store and artifacts in ``folder``, one worker, loopback only."""
    return [sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"sqlite:///{folder / 'registry.db'}",
            "--default-artifact-root", str(folder / "artifacts"),
            "--host", HOST, "--port", str(port), "--workers", "1"]


@contextlib.contextmanager
def running_registry(folder: str | Path, *, timeout_s: float = 180.0,
                     environ: Mapping[str, str] | None = None) -> Iterator[str]:
    """Yield the tracking URI of a registry: ``$MLFLOW_TRACKING_URI`` if set, else a server
    started here with its files in ``folder``."""
    environ = os.environ if environ is None else environ
    if environ.get(URI_VARIABLE):
        yield environ[URI_VARIABLE]
        return
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    url = f"http://{HOST}:{free_port()}"
    command = server_command(folder, int(url.rsplit(":", 1)[1]))
    with open(folder / "mlflow-server.log", "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   env=quiet_environment(environ), start_new_session=True)
        try:
            try:
                wait_until_ready(url, process, timeout_s, "/health")
            except (RuntimeError, TimeoutError) as error:
                tail = (folder / "mlflow-server.log").read_text()[-2000:]
                raise RuntimeError(f"mlflow server did not start: {error}\n{tail}") from error
            yield url
        finally:
            stop_group(process, grace_s=10.0)
