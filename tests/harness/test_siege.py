"""Attacks measured from outside: uploads sent at once, slow clients, wandering paths."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from vampire_detector.harness.launch import HOST, free_port, running_process
from vampire_detector.harness.resources import peak_rss_bytes, reset_peak_rss, rss_bytes
from vampire_detector.harness.siege import (
    besiege,
    create_naive_app,
    half_a_request,
    trickle,
    wander,
)
from vampire_detector.images import to_png

# A server whose /predict decodes nothing and answers at once: the harness is what is tested.
ECHO = """
import asyncio
from fastapi import FastAPI, Request
app = FastAPI()

@app.get("/health")
async def health():
    return {"status": "ok"}

@app.post("/predict")
async def predict(request: Request):
    body = await request.body()
    if b"stall" in body:
        import time; time.sleep(0.5)  # on the event loop, as Renfield decodes
    return {"bytes": len(body)}
"""


@pytest.fixture(scope="module")
def echo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("echo")
    (folder / "echo_app.py").write_text(ECHO)
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "echo_app:app", "--host", HOST, "--port",
               str(port), "--log-level", "critical", "--limit-concurrency", "4"]
    url = f"http://{HOST}:{port}"
    with running_process(command, url, ready_path="/health", timeout_s=60, cwd=folder,
                         env={**os.environ, "PYTHONPATH": str(folder)}) as process:
        yield url, process.pid


def test_a_siege_counts_answers_and_sees_a_stalled_event_loop(echo):
    url, pid = echo
    calm = asyncio.run(besiege(url, pid, b"portrait", "image/png", 2, settle_s=0.1))
    assert calm.answers == {"200": 2} and calm.health  # 2 + the prober: under the limit
    assert calm.peak_rss >= calm.rss_before > 0 and calm.cpu_s >= 0
    stalled = asyncio.run(besiege(url, pid, b"stall", "image/png", 2, settle_s=0.1))
    assert stalled.answers == {"200": 2}
    assert stalled.slowest_health_ms > 300  # a probe waited behind a blocked loop
    assert stalled.seconds >= 1.0  # two stalls, one after the other
    with pytest.raises(ValueError):
        asyncio.run(besiege(url, pid, b"", "image/png", 0))


def test_slow_clients_are_held_and_fill_the_concurrency_limit(echo):
    url, pid = echo
    held = asyncio.run(trickle(url, pid, clients=3, hold_s=0.6))
    assert held.released_s == [None] * 3 and held.statuses == {"held": 3}
    during = held.probes_while_held  # later probes may land after the clients gave up
    assert during and all(status == 503 for *_, status in during), during  # 3 + a probe = 4
    free = asyncio.run(besiege(url, pid, b"portrait", "image/png", 1, settle_s=0.1))
    assert free.answers == {"200": 1}  # they are gone once the clients leave


def test_half_a_request_declares_more_than_it_sends():
    data = half_a_request("h", "/predict", 1000)
    head, body = data.split(b"\r\n\r\n", 1)
    assert b"Content-Length: 1000" in head and 400 < len(body) < 1000


def test_wandering_paths_are_each_new(echo):
    url, pid = echo
    result = asyncio.run(wander(url, pid, 20, concurrency=2))  # + the prober: under the limit
    assert result.answers == {"404": 20}


def test_renfields_metrics_grow_a_series_per_path(portraits):
    from fastapi.testclient import TestClient

    with TestClient(create_naive_app()) as client:
        assert client.get("/health").json() == {"status": "ok"}
        for index in range(5):
            client.get(f"/garlic-{index}")
        assert client.post("/predict", files={"image": ("p.png", to_png(portraits[0]),
                                                        "image/png")}).status_code == 200
        text = client.get("/metrics").text
    assert all(f'path="/garlic-{index}"' in text for index in range(5))


def test_the_peak_is_reset_and_read_from_proc():
    pid = os.getpid()
    reset_peak_rss(pid)
    before = peak_rss_bytes(pid)
    ballast = bytearray(64 * 2**20)
    ballast[::4096] = b"x" * len(ballast[::4096])  # touch every page: resident
    assert peak_rss_bytes(pid) >= before + 60 * 2**20
    del ballast
    assert reset_peak_rss(pid)
    assert peak_rss_bytes(pid) <= rss_bytes(pid) + 8 * 2**20
