"""Azure's own inference server running the course's scoring script, on loopback.

Introduced in Chapter 14.

An Azure Machine Learning managed online endpoint runs a scoring script (``init`` once, ``run``
per request) inside Azure's inference server, the ``azureml-inference-server-http`` package;
its command ``azmlinfsrv`` runs the same server on any machine, which is how Microsoft suggests
testing a script before deploying it. The server pins pydantic and OpenTelemetry below the
course's own versions, so it lives in a virtual environment of its own: ``make azureml-env``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from vampire_detector.harness.launch import HOST, free_port, running_process
from vampire_detector.paths import course_root

INSTALL_HINT = "make azureml-env (Azure's inference server, in _build/azureml-env)"


def scoring_script() -> Path:
    return course_root() / "deploy" / "azureml" / "score.py"


def server_program() -> Path | None:
    """``azmlinfsrv`` from the course's Azure environment, or None before ``make azureml-env``."""
    program = course_root() / "_build" / "azureml-env" / "bin" / "azmlinfsrv"
    return program if program.is_file() else None


@contextlib.contextmanager
def running_scoring_server(model_dir: Path, *, threads: int = 1,
                           timeout_s: float = 90.0) -> Iterator[str]:
    """Serve ``deploy/azureml/score.py`` with the model folder as Azure mounts it
    (``AZUREML_MODEL_DIR``); yield the URL once the liveness route answers; always stop."""
    program = server_program()
    if program is None:
        raise RuntimeError(f"Azure's inference server is not installed: run {INSTALL_HINT}")
    port = free_port()
    url = f"http://{HOST}:{port}"
    environ = {**os.environ, "AZUREML_MODEL_DIR": str(model_dir),
               "VAMPIRE_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
    command = [str(program), "--entry_script", str(scoring_script()), "--port", str(port)]
    with tempfile.TemporaryDirectory(prefix="azmlinfsrv-") as folder, running_process(
            command, url, ready_path="/", timeout_s=timeout_s,
            log=Path(folder) / "server.log", cwd=course_root(), env=environ):
        yield url
