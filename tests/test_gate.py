import warnings

import numpy as np
import pytest
import torch
from torch.export import Dim

from vampire_detector.gate import REJECTED, DraftGarlicGate, ExportableGarlicGate, GarlicGate
from vampire_detector.portraits import make_portraits
from vampire_detector.tensors import to_batch
from vampire_detector.weights import load_model


@pytest.fixture(scope="module")
def model():
    return load_model("vampirenet", device=torch.device("cpu"))


@pytest.fixture(scope="module")
def mixed():
    """Two dark portraits, four ordinary ones and a blank grey frame."""
    images = make_portraits(6, seed=41)[0]
    dark = (images[:2] * 0.1).astype(np.uint8)
    blank = np.full((1, 64, 64, 3), 128, dtype=np.uint8)
    return to_batch(np.concatenate([dark, images[2:], blank]))


def test_gate_refuses_dark_and_blank_and_judges_the_rest(model, mixed):
    with torch.no_grad():
        scores = GarlicGate(model).eval()(mixed)
        probabilities = torch.softmax(model(mixed), 1)[:, 1]
    refused = scores == REJECTED
    assert refused.tolist() == [True, True, False, False, False, False, True]
    assert torch.allclose(scores[~refused], probabilities[~refused])


def test_every_version_gives_the_same_scores(model, mixed):
    reference = GarlicGate(model).eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        scripted = torch.jit.script(reference)
        exported = torch.export.export(ExportableGarlicGate(model).eval(), (mixed,),
                                       dynamic_shapes=({0: Dim("batch", min=1, max=64)},))
        for batch in (mixed, mixed[:2], mixed[2:3]):
            want = reference(batch)
            assert torch.allclose(scripted(batch), want)
            assert torch.allclose(exported.module()(batch), want)
            assert torch.allclose(DraftGarlicGate(model).eval()(batch), want)


def test_the_draft_cannot_be_scripted(model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RuntimeError, match="numpy"):
            torch.jit.script(DraftGarlicGate(model))
