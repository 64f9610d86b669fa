import numpy as np
import pytest

from vampire_detector.portraits import (
    IMAGE_SIZE,
    POPULATIONS,
    make_portraits,
    portrait,
    sample_traits,
)


def test_same_seed_and_index_give_the_same_portrait():
    first, label = portrait(seed=3, index=11)
    second, label_again = portrait(seed=3, index=11)
    assert np.array_equal(first, second) and label == label_again


def test_portraits_do_not_depend_on_generation_order():
    images, labels = make_portraits(5, seed=4)
    alone, label = portrait(seed=4, index=3)
    assert np.array_equal(images[3], alone) and labels[3] == label


def test_shapes_dtypes_and_balance():
    images, labels = make_portraits(400, seed=0)
    assert images.shape == (400, IMAGE_SIZE, IMAGE_SIZE, 3) and images.dtype == np.uint8
    assert set(np.unique(labels)) == {0, 1}
    assert 0.4 < labels.mean() < 0.6


def test_other_sizes_render():
    image, _ = portrait(seed=0, index=0, size=128)
    assert image.shape == (128, 128, 3)


def test_traits_lean_towards_vampires_but_overlap():
    traits = [sample_traits(0, i) for i in range(2000)]
    vampires = [t for t in traits if t.is_vampire]
    humans = [t for t in traits if not t.is_vampire]
    fangs_v = np.mean([t.fangs for t in vampires])
    fangs_h = np.mean([t.fangs for t in humans])
    assert fangs_v > 0.6 and 0 < fangs_h < 0.1
    assert np.mean([t.reflection for t in humans]) > 0.9 > np.mean([t.reflection for t in vampires])


@pytest.mark.parametrize("population", POPULATIONS[1:])
def test_shifted_populations_keep_the_sitter_and_label(population):
    clean = [sample_traits(0, i) for i in range(50)]
    shifted = [sample_traits(0, i, population) for i in range(50)]
    assert [t.is_vampire for t in clean] == [t.is_vampire for t in shifted]
    assert [t.fangs for t in clean] == [t.fangs for t in shifted]


def test_makeup_hides_vampire_pallor():
    def mean_saturation(population):
        skins = [t.skin for i in range(400)
                 if (t := sample_traits(0, i, population)).is_vampire]
        return np.mean([(s.max() - s.min()) / s.max() for s in skins])

    assert mean_saturation("makeup") > 2 * mean_saturation("clean")


def test_candlelight_darkens_the_portraits():
    clean, _ = make_portraits(50, seed=0)
    candle, _ = make_portraits(50, seed=0, population="candlelight")
    assert candle.mean() < 0.8 * clean.mean()


def test_unknown_population_is_refused():
    with pytest.raises(ValueError, match="population"):
        sample_traits(0, 0, "garlic")
