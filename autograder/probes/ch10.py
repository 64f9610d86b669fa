"""Chapter 10's probe: the submission's instrumentation, scraped after a known mix of requests."""

from __future__ import annotations

import importlib

from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest


def gate_app() -> FastAPI:
    """A small gate: one templated route that can refuse, and one plain route."""
    app = FastAPI()

    @app.get("/travellers/{name}")
    def traveller(name: str) -> dict[str, str]:
        if name == "nosferatu":
            raise HTTPException(403, "not tonight")
        return {"name": name}

    @app.post("/inspect")
    def inspect() -> dict[str, bool]:
        return {"vampire": False}

    return app


def scrape(requests: list[tuple[str, str]]) -> str:
    """Instrument a fresh gate with ``instrument``, send ``requests`` (method, path) to it and
    return the registry in Prometheus's text format."""
    ch10 = importlib.import_module("ch10_monitoring")
    app, registry = gate_app(), CollectorRegistry()
    ch10.instrument(app, registry)
    with TestClient(app) as client:
        for method, path in requests:
            client.request(method, path)
    return generate_latest(registry).decode()
