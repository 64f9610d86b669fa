"""vampire_detector.edge: lowering to ExecuTorch, delegation, INT8 for XNNPACK, the .pte runtime."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from vampire_detector.dataset import PortraitDataset
from vampire_detector.detector import Detector
from vampire_detector.edge import (
    NotDelegatedError,
    PteDetector,
    delegation,
    export_for_edge,
    lower_to_xnnpack,
    quantize_for_xnnpack,
    require_full_delegation,
    save_pte,
)
from vampire_detector.portraits import make_portraits
from vampire_detector.weights import load_model

CPU = torch.device("cpu")


class Cumulative(nn.Module):
    """A running sum: XNNPACK has no kernel for it, so it stays on the portable kernels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cumsum(x, dim=1).sum(dim=(2, 3))


@pytest.fixture(scope="module")
def model() -> nn.Module:
    return load_model("vampirenet", device=CPU)


@pytest.fixture(scope="module")
def edge(model):
    return lower_to_xnnpack(export_for_edge(model))


@pytest.fixture(scope="module")
def pte(edge, tmp_path_factory):
    return save_pte(edge, tmp_path_factory.mktemp("pte") / "vampirenet.pte")


def test_vampirenet_is_delegated_whole_to_xnnpack(edge):
    found = require_full_delegation(edge)
    assert found.subgraphs == 1 and found.share == 1.0
    assert found.delegated["aten.convolution.default"] == 3


def test_an_operator_xnnpack_lacks_is_named_and_refused():
    edge = lower_to_xnnpack(export_for_edge(Cumulative(), image_size=8))
    assert delegation(edge).share < 1.0
    with pytest.raises(NotDelegatedError, match="cumsum"):
        require_full_delegation(edge)


def test_the_pte_computes_what_eager_computes(pte, model):
    images = make_portraits(6, seed=5)[0]
    expected = Detector(model, batch_size=6).probabilities(images)
    assert np.abs(PteDetector(pte).probabilities(images) - expected).max() < 1e-5


def test_pte_detector_predicts_labels_and_takes_no_images(pte):
    detector = PteDetector(pte)
    assert detector.probabilities(np.empty((0, 64, 64, 3), np.uint8)).shape == (0, 2)
    assert detector.predict(make_portraits(1, seed=1)[0])[0].label in ("human", "vampire")


def test_missing_files_and_folders_get_clear_errors(edge, tmp_path):
    with pytest.raises(FileNotFoundError, match="save_pte"):
        PteDetector(tmp_path / "absent.pte")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_pte(edge, tmp_path / "no" / "model.pte")


def test_int8_program_is_smaller_and_agrees_with_fp32(model, pte, tmp_path):
    calibration = PortraitDataset(16, "train").inputs.contiguous()
    int8 = lower_to_xnnpack(quantize_for_xnnpack(model, calibration))
    ops = require_full_delegation(int8).delegated
    assert any("quantize_per_tensor" in name for name in ops)
    path = save_pte(int8, tmp_path / "int8.pte")
    assert path.stat().st_size < 0.5 * pte.stat().st_size
    test = PortraitDataset(100, "test")
    fp32 = PteDetector(pte).probabilities(test.images).argmax(1)
    agree = np.mean(PteDetector(path).probabilities(test.images).argmax(1) == fp32)
    assert agree >= 0.95


def test_quantization_needs_calibration(model):
    with pytest.raises(ValueError, match="calibration"):
        quantize_for_xnnpack(model, torch.empty(0, 3, 64, 64))
