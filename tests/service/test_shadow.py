"""The shadow challenger: counted and logged, never heard, never waited for."""

from __future__ import annotations

import contextlib
import io
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client import Counter

from vampire_detector.images import to_png
from vampire_detector.predictor import Predictor
from vampire_detector.rollout import bucket
from vampire_detector.service import shadow as shadow_module
from vampire_detector.service.app import create_app
from vampire_detector.service.metrics import ServiceMetrics
from vampire_detector.service.runtimes import LoadedModel
from vampire_detector.service.settings import ServiceSettings
from vampire_detector.service.shadow import Shadow

OUTCOMES = ("agree", "disagree", "error", "skipped")


class Brightness(Predictor):
    """P(vampire) from the portrait's mean brightness: a different answer for each portrait."""

    def probabilities(self, images):
        mean = np.asarray(images, np.float32).mean(axis=(1, 2, 3)) / 255
        p = 1 / (1 + np.exp(-20 * (mean - 0.35)))  # the test portraits fall on both sides
        return np.stack([1 - p, p], axis=1).astype(np.float32)


class Says(Predictor):
    """Always the same verdict, after ``delay_s``; or raises."""

    def __init__(self, vampire: float = 0.9, delay_s: float = 0.0, fail: bool = False):
        self.vampire, self.delay_s, self.fail = vampire, delay_s, fail
        self.calls = 0

    def probabilities(self, images):
        self.calls += 1
        time.sleep(self.delay_s)
        if self.fail:
            raise RuntimeError("the challenger broke")
        return np.tile(np.float32([[1 - self.vampire, self.vampire]]), (len(images), 1))


@pytest.fixture(scope="module")
def challenger_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("shadow") / "challenger.onnx"
    path.write_bytes(b"not read: the tests load a fake")
    return path


@contextlib.contextmanager
def service(challenger: Predictor | None, path: Path | None, share: float = 1.0,
            load_fails: bool = False) -> Iterator[tuple[TestClient, io.StringIO]]:
    def shadow_loader(settings: ServiceSettings) -> LoadedModel:
        assert settings.model_path == path and settings.runtime == "onnx"
        if load_fails:
            raise FileNotFoundError("no challenger here")
        return LoadedModel(challenger, "challenger-2")

    settings = ServiceSettings(warmup_batches=0, shadow_model_path=path, shadow_share=share)
    app = create_app(settings, loader=lambda s: LoadedModel(Brightness(), "champion-1"),
                     shadow_loader=shadow_loader, load_in_background=False)
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), TestClient(app) as client:
        yield client, stderr


def predict(client, portrait, request_id: str | None = None):
    headers = {"X-Request-ID": request_id} if request_id else {}
    return client.post("/predict", files={"image": ("p.png", to_png(portrait), "image/png")},
                       headers=headers)


def outcomes(client) -> dict[str, float]:
    registry = client.app.state.metrics.registry
    return {o: registry.get_sample_value("vampire_shadow_comparisons_total", {"outcome": o})
            for o in OUTCOMES}


def settle(client, total: int, timeout_s: float = 10.0) -> dict[str, float]:
    """The counts once ``total`` comparisons are counted (the challenger runs after answers)."""
    deadline = time.monotonic() + timeout_s
    while sum(outcomes(client).values()) < total and time.monotonic() < deadline:
        time.sleep(0.01)
    return outcomes(client)


def shadow_fields(stderr: io.StringIO) -> dict[str, dict]:
    """request id -> the shadow's fields, from the request's line or its own ``shadow`` line."""
    found: dict[str, dict] = {}
    for line in map(json.loads, stderr.getvalue().splitlines()):
        fields = {k: v for k, v in line.items() if k.startswith("shadow_")}
        if fields:
            assert line["request_id"] not in found, "one shadow verdict per request"
            found[line["request_id"]] = fields
    return found


def test_answers_are_the_same_with_and_without_a_shadow(portraits, challenger_file):
    with service(None, None) as (alone, _):
        expected = [predict(alone, p).json() for p in portraits]
    with service(Says(vampire=0.1), challenger_file) as (watched, stderr):
        answers = [predict(watched, p).json() for p in portraits]
        counts = settle(watched, len(portraits))
    for a, b in zip(expected, answers, strict=True):
        assert (a["label"], a["probability"], a["model_version"]) == (
            b["label"], b["probability"], b["model_version"])
    humans = sum(a["label"] == "human" for a in expected)
    assert 0 < humans < len(portraits), "the portraits must get both verdicts"
    assert counts == {"agree": humans, "disagree": len(portraits) - humans, "error": 0,
                      "skipped": 0}
    fields = shadow_fields(stderr)
    assert len(fields) == len(portraits)
    assert all(f["shadow_label"] == "human" and f["shadow_version"] == "challenger-2"
               for f in fields.values())


def test_ready_names_the_shadow(challenger_file, portraits):
    with service(Says(), challenger_file) as (client, _):
        assert client.get("/ready").json()["shadow_version"] == "challenger-2"
    with service(None, None) as (client, _):
        assert "shadow_version" not in client.get("/ready").json()


def test_a_raising_challenger_is_counted_and_never_felt(portraits, challenger_file):
    with service(Says(fail=True), challenger_file) as (client, stderr):
        responses = [predict(client, p, f"r{i}") for i, p in enumerate(portraits)]
        counts = settle(client, len(portraits))
        assert client.get("/ready").status_code == 200
    assert all(r.status_code == 200 for r in responses)
    assert counts["error"] == len(portraits) and counts["agree"] == counts["disagree"] == 0
    fields = shadow_fields(stderr)
    assert fields["r0"]["shadow_error"] == "RuntimeError"


def test_a_challenger_that_cannot_load_leaves_the_champion_serving(portraits, challenger_file,
                                                                   caplog):
    with service(None, challenger_file, load_fails=True) as (client, _):
        ready = client.get("/ready")
        answer = predict(client, portraits[0])
        counts = outcomes(client)
    assert ready.status_code == 200 and "shadow_version" not in ready.json()
    assert answer.status_code == 200
    assert counts["error"] == 1
    assert "shadow challenger could not load" in caplog.text


def test_a_slow_challenger_delays_no_answer(portraits, challenger_file):
    slow = Says(delay_s=0.5)
    with service(slow, challenger_file) as (client, _):
        predict(client, portraits[0])  # the first request pays for the imports
        times = []
        for portrait in portraits[1:5]:
            start = time.perf_counter()
            assert predict(client, portrait).status_code == 200
            times.append(time.perf_counter() - start)
        counts = settle(client, 5)
    assert max(times) < 0.3, f"the champion waited for the shadow: {times}"
    assert sum(times) < 0.5 * len(times), times
    assert counts["agree"] + counts["disagree"] == 5 and slow.calls == 5


def test_a_full_queue_skips_rather_than_grows(portraits, challenger_file, monkeypatch):
    monkeypatch.setattr(shadow_module, "QUEUE", 2)
    release = threading.Event()

    class Stuck(Predictor):
        def probabilities(self, images):
            release.wait(10)
            return np.tile(np.float32([[0.5, 0.5]]), (len(images), 1))

    with service(Stuck(), challenger_file) as (client, _):
        responses = [predict(client, portraits[i % 8]) for i in range(10)]
        skipped = outcomes(client)["skipped"]
        release.set()
        counts = settle(client, 10)
    assert all(r.status_code == 200 for r in responses)
    # one in the challenger's hands, two queued: the other seven are skipped
    assert skipped == 7 and counts["skipped"] == 7
    assert counts["agree"] + counts["disagree"] == 3


def test_the_share_follows_the_request_id(portraits, challenger_file):
    ids = [f"traveller-{i}" for i in range(60)]
    chosen = {i for i in ids if bucket(i) < 3000}
    with service(Says(), challenger_file, share=0.3) as (client, stderr):
        for index, request_id in enumerate(ids):
            assert predict(client, portraits[index % 8], request_id).status_code == 200
        counts = settle(client, len(chosen))
        time.sleep(0.05)  # nothing more arrives
        counts = outcomes(client)
    assert sum(counts.values()) == len(chosen) and 0 < len(chosen) < len(ids)
    assert set(shadow_fields(stderr)) == chosen


def test_the_share_is_respected_over_many_ids():
    counter = ServiceMetrics().shadow
    for share in (0.0, 0.05, 0.3, 1.0):
        shadow = Shadow(counter, share)
        ids = [uuid.uuid4().hex for _ in range(20_000)]
        picked = sum(shadow.chosen(i) for i in ids) / len(ids)
        assert picked == pytest.approx(share, abs=0.015), share
        assert all(shadow.chosen(i) == shadow.chosen(i) for i in ids[:100])  # stable


def test_the_counter_is_named_for_the_alerts():
    metrics = ServiceMetrics()
    assert isinstance(metrics.shadow, Counter)
    names = {s.name: s.labels for m in metrics.registry.collect() for s in m.samples
             if s.name.startswith("vampire_shadow")}
    assert "vampire_shadow_comparisons_total" in names
    found = {s.labels["outcome"] for m in metrics.registry.collect() for s in m.samples
             if s.name == "vampire_shadow_comparisons_total"}
    assert found == set(OUTCOMES)


def test_a_shadow_path_must_exist(tmp_path):
    with pytest.raises(ValueError, match="VAMPIRE_SHADOW_MODEL_PATH"):
        ServiceSettings(shadow_model_path=tmp_path / "missing.onnx")
    with pytest.raises(ValueError):
        ServiceSettings(shadow_share=1.5)
