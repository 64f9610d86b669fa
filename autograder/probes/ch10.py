"""Chapter 10's probe: the submission's instrumentation, scraped after a known mix of requests."""

from __future__ import annotations

import importlib
import time

from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest

SLOW_S = 0.35  # how long /slow takes: over the gate's 300 ms promise


def gate_app() -> FastAPI:
    """A small gate: a templated route that can refuse, a plain one, a slow one, a broken one."""
    app = FastAPI()

    @app.get("/travellers/{name}")
    def traveller(name: str) -> dict[str, str]:
        if name == "nosferatu":
            raise HTTPException(403, "not tonight")
        return {"name": name}

    @app.post("/inspect")
    def inspect() -> dict[str, bool]:
        return {"vampire": False}

    @app.get("/slow")
    def slow() -> dict[str, bool]:
        time.sleep(SLOW_S)
        return {"vampire": False}

    @app.get("/crypt")
    def crypt() -> dict[str, str]:
        raise RuntimeError("the coffin lid is stuck")

    return app


def scrape(requests: list[tuple[str, str]]) -> str:
    """Instrument a fresh gate with ``instrument``, send ``requests`` (method, path) to it and
    return the registry in Prometheus's text format."""
    ch10 = importlib.import_module("ch10_monitoring")
    app, registry = gate_app(), CollectorRegistry()
    ch10.instrument(app, registry)
    with TestClient(app, raise_server_exceptions=False) as client:
        for method, path in requests:
            client.request(method, path)
    return generate_latest(registry).decode()
