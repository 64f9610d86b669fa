"""Shared inputs of the service tests: a ready eager service."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from vampire_detector.service.settings import ServiceSettings
from vampire_detector.torch_serving import create_app


@pytest.fixture(scope="module")
def settings() -> ServiceSettings:
    return ServiceSettings(runtime="eager", max_upload_bytes=100_000, max_batch_files=4,
                           max_batch_size=4, warmup_batches=1)


@pytest.fixture(scope="module")
def client(settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, load_in_background=False)) as client:
        yield client
