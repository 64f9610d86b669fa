import pytest
import torch

from vampire_detector.model import ARCHITECTURES, VampireNet, build_model


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_every_architecture_maps_portraits_to_two_logits(arch):
    model = build_model(arch).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 64, 64)).shape == (2, 2)


def test_vampirenet_is_small():
    assert sum(p.numel() for p in VampireNet().parameters()) < 50_000


def test_unknown_architecture_is_refused():
    with pytest.raises(ValueError, match="vampirenet"):
        build_model("nosferatu")
