"""What a server process costs the machine, read from Linux's ``/proc`` while it works.

Introduced in Chapter 15.

A load test that reports only latencies misses the two ways a service dies slowly: memory that
grows with every request (a leak, an unbounded cache, a queue that never drains) until the
kernel kills the process, and CPU that is already spent before the peak arrives. ``/proc/PID``
answers both without any library: ``status`` gives the resident set size (``VmRSS``: the
memory really in RAM), ``stat`` gives the CPU time used so far. A uvicorn with several workers
is a parent and its children, so the whole process tree is counted.

A spike shorter than the sampling interval (one crafted upload decoded in 50 ms) slips between
two samples; the kernel's own high-water mark (``VmHWM``) does not miss it, and writing ``5``
to ``/proc/PID/clear_refs`` resets it, so ``peak_rss_bytes`` after ``reset_peak_rss`` is the
peak of the interval between them (Chapter 12 reads it around each attack).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")
TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (uvicorn's workers), those that still exist."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in (PROC / str(current) / "task").glob("*/children"):
            try:
                todo += [int(child) for child in task.read_text().split()]
            except OSError:
                continue  # the task ended while we looked
    return found


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid``'s whole tree, from ``VmRSS`` in ``/proc/PID/status``."""
    return _status_kib(pid, "VmRSS:") * 1024


def _status_kib(pid: int, field: str) -> int:
    """One ``kB`` field of ``/proc/PID/status`` summed over ``pid``'s tree."""
    total = 0
    for member in process_tree(pid):
        try:
            lines = (PROC / str(member) / "status").read_text().splitlines()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in lines if line.startswith(field)), 0)
    return total


def reset_peak_rss(pid: int) -> bool:
    """Reset the high-water mark of ``pid``'s tree to its current RSS; False where refused."""
    done = True
    for member in process_tree(pid):
        try:
            (PROC / str(member) / "clear_refs").write_text("5")
        except OSError:  # another user's process, or a kernel older than 4.0
            done = False
    return done


def peak_rss_bytes(pid: int) -> int:
    """The most resident memory ``pid``'s tree held since it started or since the last reset,
    from ``VmHWM`` (summed per process: their peaks need not have coincided)."""
    return _status_kib(pid, "VmHWM:") * 1024


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time used so far by ``pid``'s tree (fields 14 and 15 of ``stat``)."""
    total = 0
    for member in process_tree(pid):
        try:
            stat = (PROC / str(member) / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
        total += int(fields[11]) + int(fields[12])
    return total / TICKS_PER_S


@dataclass
class ResourceTrace:
    """Samples of one process tree over a run: (seconds since start, RSS bytes, CPU seconds)."""

    times_s: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)

    def cpu_cores(self) -> float:
        """Average cores busy over the run: CPU seconds used per second of wall time."""
        if len(self.times_s) < 2 or self.times_s[-1] == self.times_s[0]:
            return 0.0
        return (self.cpu_s[-1] - self.cpu_s[0]) / (self.times_s[-1] - self.times_s[0])

    def second_half_growth(self) -> tuple[int, float]:
        """How much RSS rose after halfway: (bytes, fraction of the RSS at halfway).

        The first half holds the warm-up a healthy service does once (arenas, buffers,
        caches filling); a leak keeps growing after it, in proportion to the requests.
        """
        if not self.rss:
            return 0, 0.0
        middle = self.rss[len(self.rss) // 2]
        growth = max(self.rss[len(self.rss) // 2:]) - middle
        return growth, growth / middle if middle else 0.0


class ResourceSampler:
    """Samples a process tree every ``every_s`` on a background thread, while in a ``with``."""

    def __init__(self, pid: int, every_s: float = 0.25):
        self.pid, self.every_s = pid, every_s
        self.trace = ResourceTrace()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self, start: float) -> None:
        self.trace.times_s.append(time.perf_counter() - start)
        self.trace.rss.append(rss_bytes(self.pid))
        self.trace.cpu_s.append(cpu_seconds(self.pid))

    def _run(self) -> None:
        start = time.perf_counter()
        self._sample(start)
        while not self._stop.wait(self.every_s):
            self._sample(start)
        self._sample(start)

    def __enter__(self) -> ResourceTrace:
        self._thread.start()
        return self.trace

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
