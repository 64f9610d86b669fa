"""Procedural "Transylvanian portraits": seeded pictures of villagers and vampires.

Introduced in Chapter 0.

No data set is downloaded anywhere in the course: every portrait is drawn here from a random
stream seeded by ``(seed, index)``, so any portrait can be regenerated alone, in any order, on any
machine. Vampires tend to be pale, to have red eyes and fangs, and to cast no reflection in the
small mirror hanging beside them; villagers occasionally show one of those traits too, so a good
detector is very accurate but never perfect.

Two shifted populations feed the monitoring chapter: ``"makeup"`` (vampires hide their pallor
and some wear tinted lenses) and ``"candlelight"`` (everyone is painted in dim, warm light). The
same ``(seed, index)`` gives the same sitter in every population, only the shift differs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IMAGE_SIZE = 64
LABELS = ("human", "vampire")
POPULATIONS = ("clean", "makeup", "candlelight")
SPLITS = {"train": 0, "val": 1, "test": 2}  # a data seed per split: disjoint random streams

_RED_EYES = np.array([0.85, 0.05, 0.05])
_EYE_COLOURS = np.array([[0.20, 0.12, 0.05], [0.15, 0.30, 0.60], [0.20, 0.45, 0.20]])
_CANDLE_TINT = np.array([1.0, 0.72, 0.42])


@dataclass(frozen=True)
class Traits:
    """What the painter decided about one sitter; the image is drawn from these alone."""

    is_vampire: bool
    skin: np.ndarray  # RGB in [0, 1]
    eyes: np.ndarray
    lips: np.ndarray
    hair: np.ndarray
    wall: np.ndarray
    fangs: bool
    reflection: bool
    centre: tuple[float, float]  # face centre (y, x) as a fraction of the image
    scale: float
    noise: float
    light: float  # overall brightness multiplier
    candle: bool


def _skin(rng: np.random.Generator, pale: bool) -> np.ndarray:
    """Pale skin is light and unsaturated; living skin is warmer and spans many tones."""
    if pale:
        lightness, saturation = rng.uniform(0.72, 0.95), rng.uniform(0.0, 0.3)
    else:
        lightness, saturation = rng.uniform(0.3, 0.85), rng.uniform(0.35, 0.8)
    return lightness * (1.0 - saturation * np.array([0.0, 0.25, 0.45]))


def sample_traits(seed: int, index: int, population: str = "clean",
                  vampire_share: float = 0.5) -> Traits:
    """Draw the traits of portrait ``index`` of the stream ``seed`` in ``population``."""
    if population not in POPULATIONS:
        raise ValueError(f"unknown population {population!r}; choose one of {POPULATIONS}")
    rng = np.random.default_rng((seed, index))
    vampire = bool(rng.random() < vampire_share)
    # Each trait is likelier in vampires, but never certain either way.
    pale = rng.random() < (0.9 if vampire else 0.05)
    red_eyes = rng.random() < (0.75 if vampire else 0.03)
    fangs = bool(rng.random() < (0.75 if vampire else 0.03))
    reflection = bool(rng.random() < (0.05 if vampire else 0.97))
    skin = _skin(rng, pale)
    eyes = _RED_EYES if red_eyes else _EYE_COLOURS[rng.integers(len(_EYE_COLOURS))]
    lips = skin * 0.6 + np.array([0.15, 0.0, 0.0])
    hair = rng.uniform(0.0, 0.35) * np.array([1.0, rng.uniform(0.6, 0.9), rng.uniform(0.4, 0.8)])
    wall = rng.uniform(0.15, 0.45) * np.array([1.0, 0.95, rng.uniform(0.8, 1.0)])
    centre = (0.55 + rng.uniform(-0.05, 0.05), 0.42 + rng.uniform(-0.06, 0.06))
    scale, noise, light = rng.uniform(0.85, 1.1), rng.uniform(0.02, 0.06), rng.uniform(0.85, 1.1)

    # Shifts draw from their own stream so the sitter stays the same person in every population.
    shift = np.random.default_rng((seed, index, POPULATIONS.index(population)))
    if population == "makeup" and vampire:
        skin = _skin(shift, pale=False)
        lips = np.array([0.75, 0.08, 0.15])
        if red_eyes and shift.random() < 0.5:  # tinted lenses
            eyes = _EYE_COLOURS[shift.integers(len(_EYE_COLOURS))]
    if population == "candlelight":
        light, noise = shift.uniform(0.4, 0.65), shift.uniform(0.06, 0.1)
    return Traits(vampire, skin, eyes, lips, hair, wall, fangs, reflection, centre, scale,
                  noise, light, population == "candlelight")


def _ellipse(grid: tuple[np.ndarray, np.ndarray], cy: float, cx: float,
             ry: float, rx: float) -> np.ndarray:
    yy, xx = grid
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def draw(traits: Traits, size: int = IMAGE_SIZE,
         grain: np.random.Generator | None = None) -> np.ndarray:
    """Paint ``traits`` as an RGB ``uint8`` array of shape ``(size, size, 3)``.

    ``grain`` draws the canvas noise; pass a seeded generator for a reproducible picture.
    """
    grid = np.mgrid[0:1:size * 1j, 0:1:size * 1j]
    yy, xx = grid
    image = np.empty((size, size, 3))
    image[:] = traits.wall * (1.1 - 0.3 * yy)[..., None]  # stone wall, darker towards the floor

    cy, cx = traits.centre
    s = traits.scale
    image[_ellipse(grid, cy - 0.2 * s, cx, 0.2 * s, 0.24 * s)] = traits.hair
    image[_ellipse(grid, cy, cx, 0.26 * s, 0.2 * s)] = traits.skin
    for side in (-1, 1):
        eye = _ellipse(grid, cy - 0.05 * s, cx + side * 0.08 * s, 0.035 * s, 0.05 * s)
        image[eye] = traits.eyes
    mouth_y = cy + 0.13 * s
    image[_ellipse(grid, mouth_y, cx, 0.025 * s, 0.08 * s)] = traits.lips
    if traits.fangs:
        for side in (-1, 1):
            depth = (yy - mouth_y) / (0.07 * s)
            fang = (depth >= 0) & (depth <= 1) & (np.abs(xx - cx - side * 0.045 * s)
                                                  <= 0.028 * s * (1 - depth))
            image[fang] = (0.97, 0.97, 0.95)

    mirror = (yy > 0.06) & (yy < 0.36) & (xx > 0.72) & (xx < 0.94)
    image[mirror] = (0.78, 0.82, 0.86)
    if traits.reflection:
        image[_ellipse(grid, 0.22, 0.83, 0.09, 0.065)] = traits.skin

    image *= traits.light
    if traits.candle:
        glow = 1.0 - 0.8 * ((yy - 0.6) ** 2 + (xx - 0.5) ** 2)  # the candle stands below centre
        image *= _CANDLE_TINT * glow[..., None]
    grain = grain if grain is not None else np.random.default_rng()
    noise = grain.normal(0.0, traits.noise, image.shape)
    return (np.clip(image + noise, 0.0, 1.0) * 255).round().astype(np.uint8)


def portrait(seed: int, index: int, population: str = "clean", size: int = IMAGE_SIZE,
             vampire_share: float = 0.5) -> tuple[np.ndarray, int]:
    """One portrait and its label (0 human, 1 vampire)."""
    traits = sample_traits(seed, index, population, vampire_share)
    image = draw(traits, size, grain=np.random.default_rng((seed, index, len(POPULATIONS))))
    return image, int(traits.is_vampire)


def make_portraits(n: int, seed: int = 0, population: str = "clean", size: int = IMAGE_SIZE,
                   vampire_share: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """``n`` portraits as a ``uint8`` array ``(n, size, size, 3)`` and ``int64`` labels ``(n,)``."""
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    labels = np.empty(n, dtype=np.int64)
    for i in range(n):
        images[i], labels[i] = portrait(seed, i, population, size, vampire_share)
    return images, labels
