"""TorchServe started for real: archive, config, inference, management, metrics, and stop.

Needs Java 17: skipped without it on a laptop, failed in CI (``CI=true``). One TorchServe is
started for the whole module, because its JVM takes tens of seconds to come up on a busy
machine.
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.programs import require
from vampire_detector.harness import torchserve as torchserve_module
from vampire_detector.harness.launch import group_members
from vampire_detector.harness.torchserve import (
    JAVA_MISSING,
    Ports,
    TorchServeConfig,
    archive,
    config_properties,
    running_torchserve,
)
from vampire_detector.images import to_png
from vampire_detector.portraits import make_portraits


def test_config_properties_keep_everything_on_loopback_with_batching(tmp_path):
    text = config_properties(TorchServeConfig(batch_size=4, max_batch_delay_ms=7),
                             Ports(8080, 8081, 8082, 9070, 9071), tmp_path)
    lines = dict(line.split("=", 1) for line in text.splitlines())
    assert lines["inference_address"] == "http://127.0.0.1:8080"
    assert lines["management_address"] == "http://127.0.0.1:8081"
    assert lines["metrics_address"] == "http://127.0.0.1:8082"
    assert (lines["grpc_inference_address"], lines["grpc_inference_port"],
            lines["grpc_management_port"]) == ("127.0.0.1", "9070", "9071")
    assert lines["disable_token_authorization"] == "true"
    assert '"batchSize": 4' in lines["models"] and '"maxBatchDelay": 7' in lines["models"]
    with_keys = config_properties(TorchServeConfig(token_auth=True), Ports(1, 2, 3, 4, 5),
                                  tmp_path)
    assert "disable_token_authorization=false" in with_keys


def test_a_config_that_measures_nothing_is_refused():
    with pytest.raises(ValueError, match="batch_size"):
        TorchServeConfig(batch_size=0)


@pytest.fixture(scope="module")
def torchserve(tmp_path_factory):
    require(shutil.which("java") or os.environ.get("JAVA_HOME"), JAVA_MISSING)
    folder = tmp_path_factory.mktemp("torchserve")
    with running_torchserve(folder, TorchServeConfig(batch_size=4, max_batch_delay_ms=5)) as ts:
        yield ts
    assert ts.process.poll() is not None, "TorchServe still runs after the context closed"
    assert not group_members(ts.process.pid), "TorchServe's workers outlived it"


def test_it_answers_portraits_and_refuses_bad_bytes_with_a_4xx(torchserve):
    image = make_portraits(1, seed=9)[0][0]
    with torchserve.client("inference") as client:
        raw = client.post("/predictions/vampirenet", content=to_png(image),
                          headers={"content-type": "image/png"})
        form = client.post("/predictions/vampirenet",
                           files={"image": ("portrait.png", to_png(image), "image/png")})
        bad = client.post("/predictions/vampirenet", content=b"half a portrait")
    assert raw.status_code == form.status_code == 200
    assert raw.json() == form.json() and raw.json()["label"] in {"human", "vampire"}
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "not_an_image"


def test_the_management_api_shows_batching_and_scales_workers(torchserve):
    described = torchserve.describe()
    assert (described["batchSize"], described["maxBatchDelay"]) == (4, 5)
    scaled = torchserve.scale(2)
    assert len(scaled["workers"]) == 2
    torchserve.scale(1)


def test_the_management_api_registers_another_archive(torchserve):
    store = torchserve.folder / "model-store"
    archive(store, name="vampirenet-single")
    described = torchserve.register("vampirenet-single.mar", "vampirenet-single",
                                    batch_size=1, max_batch_delay_ms=0)
    assert described["batchSize"] == 1 and described["workers"]
    torchserve.unregister("vampirenet-single")


def test_the_metrics_endpoint_counts_requests(torchserve):
    with torchserve.client("inference") as client:
        client.post("/predictions/vampirenet", content=to_png(make_portraits(1)[0][0]))
    text = torchserve.metrics()
    assert "ts_inference_requests_total" in text


def test_it_is_stopped_even_when_it_never_gets_ready(tmp_path, monkeypatch, own_tmpdir):
    """...and its private temporary folder (sockets, pid file, unpacked archive) goes too."""
    require(shutil.which("java") or os.environ.get("JAVA_HOME"), JAVA_MISSING)
    stopped = []
    original = torchserve_module.stop_group
    monkeypatch.setattr(torchserve_module, "stop_group",
                        lambda process: (original(process), stopped.append(process)))
    with pytest.raises(TimeoutError, match="not ready"), \
            running_torchserve(tmp_path, timeout_s=0.5):
        pass
    (process,) = stopped
    assert process.poll() is not None
    assert not group_members(process.pid), "TorchServe's JVM or workers outlived it"
    assert not list(own_tmpdir.iterdir()), "TorchServe's temporary folder was left behind"


def test_a_failed_archive_says_what_the_archiver_said(tmp_path):
    with pytest.raises(RuntimeError, match=r"(?s)torch-model-archiver failed.*absent\.pt"):
        archive(tmp_path / "store", weights=tmp_path / "absent.pt")
