"""Start a service in its own process on a free loopback port, wait until it is ready, stop it.

Introduced in Chapter 6.

The chapter, the benchmark and the end-to-end tests all need a real server (real sockets, a
real uvicorn), and all need it gone afterwards even when something fails: ``running_server`` is
a context manager that always terminates the process it started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Container, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx2 as httpx

HOST = "127.0.0.1"  # loopback only: nothing here is ever reachable from outside


def free_port() -> int:
    """A TCP port that nothing on this machine listens on right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def wait_until_ready(url: str, process: subprocess.Popen, timeout_s: float,
                     path: str = "/ready", statuses: Container[int] = (200,)) -> None:
    """Poll ``url + path`` until it answers with one of ``statuses``; fail early if the
    process dies."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=url, timeout=1.0, trust_env=False) as client:  # no proxies
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with code {process.returncode} "
                                   "before it was ready")
            with contextlib.suppress(httpx.TransportError):
                if client.get(path).status_code in statuses:
                    return
            time.sleep(0.1)
    raise TimeoutError(f"{url}{path} was not ready within {timeout_s:.0f} s")


@contextlib.contextmanager
def running_process(command: Sequence[str], url: str, *, ready_path: str, timeout_s: float,
                    log: Path | None = None, **popen: Any) -> Iterator[subprocess.Popen]:
    """Start ``command``, wait until ``url + ready_path`` answers 200, and always stop it.

    With ``log``, everything the process prints goes to that file, as a log collector would
    take it, and its last lines explain a process that never became ready."""
    with contextlib.ExitStack() as stack:
        if log is not None:
            written = stack.enter_context(open(log, "wb"))
            popen = {"stdout": written, "stderr": subprocess.STDOUT, **popen}
        process = subprocess.Popen(command, **popen)
        try:
            try:
                wait_until_ready(url, process, timeout_s, ready_path)
            except (RuntimeError, TimeoutError) as error:
                if log is None:
                    raise
                said = log.read_text(errors="replace").strip()[-2000:]
                raise type(error)(f"{error}; it said:\n{said}") from None
            yield process
        finally:
            stop(process)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM, and SIGKILL if it is still there ten seconds later."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def group_members(group: int) -> list[int]:
    """Live (not zombie) processes of process group ``group``, from ``/proc``."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended while we looked
        if int(fields[2]) == group and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def stop_group(process: subprocess.Popen, grace_s: float = 15.0) -> None:
    """Stop a process started with ``start_new_session=True`` and everything it started:
    SIGTERM to its group, then SIGKILL to whatever lingers (servers often leave children)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace_s)
    deadline = time.monotonic() + grace_s
    while group_members(process.pid) and time.monotonic() < deadline:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        time.sleep(0.1)
    process.wait()


def server_command(app: str, port: int, *, factory: bool = False, workers: int = 1,
                   log_level: str = "warning", server: str = "uvicorn",
                   threads: int = 1) -> list[str]:
    """The command line that serves ``app`` on ``port``: uvicorn (ASGI) or gunicorn (WSGI,
    ``threads`` threads per worker; a factory is called as ``"module:create_app()"``)."""
    if server == "gunicorn":
        return [sys.executable, "-m", "gunicorn", "--bind", f"{HOST}:{port}",
                "--workers", str(workers), "--threads", str(threads),
                "--log-level", log_level, f"{app}()" if factory else app]
    if server != "uvicorn":
        raise ValueError(f"unknown server {server!r}: uvicorn or gunicorn")
    return [sys.executable, "-m", "uvicorn", app, "--host", HOST, "--port", str(port),
            "--log-level", log_level, "--workers", str(workers),
            *(["--factory"] if factory else [])]


@contextlib.contextmanager
def running_server_process(app: str, *, factory: bool = False,
                           env: Mapping[str, str] | None = None, ready_path: str = "/ready",
                           timeout_s: float = 120.0, log_level: str = "warning",
                           workers: int = 1, server: str = "uvicorn",
                           threads: int = 1) -> Iterator[tuple[str, subprocess.Popen]]:
    """``running_server``, also yielding the process: to read its memory and CPU time.

    What the server prints (the service's access log: a line per request) goes to a file that
    is removed with it, not to the caller's terminal or notebook."""
    port = free_port()
    command = server_command(app, port, factory=factory, workers=workers, log_level=log_level,
                             server=server, threads=threads)
    url = f"http://{HOST}:{port}"
    with tempfile.TemporaryDirectory(prefix="server-") as folder, running_process(
            command, url, ready_path=ready_path, timeout_s=timeout_s, log=Path(folder) / "log",
            env={**os.environ, **(env or {})}) as process:
        yield url, process


@contextlib.contextmanager
def running_server(app: str, *, factory: bool = False, env: Mapping[str, str] | None = None,
                   ready_path: str = "/ready", timeout_s: float = 120.0,
                   log_level: str = "warning", workers: int = 1, server: str = "uvicorn",
                   threads: int = 1) -> Iterator[str]:
    """Serve ``app`` (e.g. ``"pkg.module:create_app"``) with uvicorn, or gunicorn for a WSGI
    app, and yield its base URL."""
    with running_server_process(app, factory=factory, env=env, ready_path=ready_path,
                                timeout_s=timeout_s, log_level=log_level, workers=workers,
                                server=server, threads=threads) as (url, _):
        yield url
