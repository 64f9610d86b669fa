"""The candidates of make-up night differ only in which training portraits are painted."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from vampire_detector.candidates import CANDIDATES, load_candidate, training_set
from vampire_detector.portraits import SPLITS, make_portraits
from vampire_detector.tensors import to_batch


@pytest.mark.parametrize("share", [0.0, 0.5])
def test_the_training_set_paints_its_share_of_the_same_sitters(share: float) -> None:
    candidate = dataclasses.replace(CANDIDATES["clean-only"], n_train=40, makeup_share=share)
    data = training_set(candidate)
    clean, labels = make_portraits(40, SPLITS["train"], "clean")
    assert torch.equal(data.tensors[1], torch.from_numpy(labels))  # the same sitters
    changed = (data.tensors[0] != to_batch(clean)).flatten(1).any(1)
    vampires = torch.from_numpy(labels == 1)
    assert not changed[~vampires].any()  # make-up changes only vampires
    assert int(changed.sum()) <= round(40 * share)
    assert (share == 0) == (int(changed.sum()) == 0)


def test_an_unknown_candidate_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="with-makeup"):
        load_candidate("garlic")
