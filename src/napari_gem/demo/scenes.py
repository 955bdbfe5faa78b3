"""Generated micrographs with exact ground truth: the demo model's world.

:func:`scene` draws a brightfield-like micrograph (stained, textured, noisy
background under an illumination gradient) holding a few objects of
:data:`VOCABULARY`, and returns it with one exact boolean mask per concept present.
Objects are drawn in a random order, so later ones hide earlier ones; a mask holds
the pixels where its concept is *visible*. :func:`caption` words a set of concepts
the way the training captions do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
from scipy import ndimage
from skimage import draw

#: The concepts the demo model knows, in a fixed order (label ``i + 1`` is concept ``i``).
VOCABULARY: tuple[str, ...] = (
    "nucleus",
    "rod-shaped bacterium",
    "bright spot",
    "fibre",
    "ring",
    "crystal",
    "debris",
    "dividing cell",
    "diatom",
    "star-shaped cell",
)

#: Plural forms for captions that mention several instances.
PLURALS: dict[str, str] = {
    "nucleus": "nuclei",
    "rod-shaped bacterium": "rod-shaped bacteria",
    "bright spot": "bright spots",
    "fibre": "fibres",
    "ring": "rings",
    "crystal": "crystals",
    "debris": "debris",
    "dividing cell": "dividing cells",
    "diatom": "diatoms",
    "star-shaped cell": "star-shaped cells",
}

#: What a region with none of the concepts is called (the engine's default background prompt).
BACKGROUND = "background"

SCENE_SIZE = 192

# Stain colours (RGB in [0, 1]) shared by all concepts, so colour alone never names one.
_STAINS = np.array([
    [0.35, 0.20, 0.55],  # haematoxylin purple
    [0.80, 0.35, 0.55],  # eosin pink
    [0.50, 0.30, 0.15],  # DAB brown
    [0.20, 0.45, 0.60],  # methylene blue
    [0.25, 0.50, 0.25],  # green
    [0.70, 0.50, 0.20],  # ochre
])
_BACKGROUNDS = np.array([
    [0.86, 0.80, 0.85],
    [0.88, 0.86, 0.76],
    [0.80, 0.85, 0.88],
    [0.85, 0.78, 0.76],
    [0.82, 0.86, 0.80],
])

_TEMPLATES = (
    "a photo of {}.",
    "a micrograph of {}.",
    "a microscope image with {}.",
    "{}.",
    "an image showing {}.",
    "a stained sample with {}.",
)
_EMPTY_CAPTIONS = (
    "a photo of a background.",
    "a photo of empty background.",
    "a micrograph of empty background.",
    "background.",
    "an image showing only background.",
)

_MASS_NOUNS = frozenset({"debris"})

Canvas = tuple[np.ndarray, np.ndarray]  # (rgb float [H, W, 3], labels int [H, W])


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _mention(concept: str, count: int, rng: np.random.Generator) -> str:
    if concept in _MASS_NOUNS:
        return f"some {concept}"
    if count > 1 and rng.random() < 0.5:
        quantity = rng.choice(["two", "several", "some"] if count == 2 or rng.random() < 0.5
                              else ["several", "many", "some"])
        return f"{quantity} {PLURALS[concept]}"
    return f"{_article(concept)} {concept}"


def caption(concepts: Iterable[str] | dict[str, int], rng: np.random.Generator) -> str:
    """A caption naming exactly ``concepts`` (or ``{concept: count}``), in random order and wording.

    No concepts gives an "empty background" caption.
    """
    counts = dict(concepts) if isinstance(concepts, dict) else dict.fromkeys(concepts, 1)
    if not counts:
        return str(rng.choice(_EMPTY_CAPTIONS))
    names = list(counts)
    rng.shuffle(names)
    mentions = [_mention(name, counts[name], rng) for name in names]
    listed = mentions[0] if len(mentions) == 1 else ", ".join(mentions[:-1]) + " and " + mentions[-1]
    return str(rng.choice(_TEMPLATES)).format(listed)


# -- drawing -----------------------------------------------------------------------------
def _paint(canvas: Canvas, rr: np.ndarray, cc: np.ndarray, colour, label: int,
           rng: np.random.Generator, texture: float = 0.12) -> None:
    rgb, labels = canvas
    if rr.size == 0:
        return
    shade = 1.0 + texture * rng.standard_normal(rr.size)[:, None]
    rgb[rr, cc] = np.clip(np.asarray(colour)[None] * shade, 0, 1)
    labels[rr, cc] = label


def _stain(rng: np.random.Generator, darkness: float = 1.0) -> np.ndarray:
    colour = _STAINS[rng.integers(len(_STAINS))] * rng.uniform(0.8, 1.15)
    return np.clip(colour * darkness, 0, 1)


def _polygon(canvas: Canvas, rows, cols):
    return draw.polygon(rows, cols, shape=canvas[1].shape)


def _capsule(shape, r0, c0, angle, length, width):
    """Pixels of a rod: a rectangle with round caps."""
    dr, dc = np.sin(angle) * length / 2, np.cos(angle) * length / 2
    nr, nc = np.cos(angle) * width / 2, -np.sin(angle) * width / 2
    rows = [r0 - dr + nr, r0 + dr + nr, r0 + dr - nr, r0 - dr - nr]
    cols = [c0 - dc + nc, c0 + dc + nc, c0 + dc - nc, c0 - dc - nc]
    mask = np.zeros(shape, bool)
    mask[draw.polygon(rows, cols, shape=shape)] = True
    for sign in (-1, 1):
        mask[draw.disk((r0 + sign * dr, c0 + sign * dc), width / 2, shape=shape)] = True
    return np.nonzero(mask)


def _nucleus(canvas, r, c, rng, label):
    a, b = rng.uniform(8, 16), rng.uniform(7, 13)
    rr, cc = draw.ellipse(r, c, a, b, shape=canvas[1].shape, rotation=rng.uniform(0, np.pi))
    _paint(canvas, rr, cc, _stain(rng, 0.75), label, rng, texture=0.25)  # granular chromatin


def _rod(canvas, r, c, rng, label):
    rr, cc = _capsule(canvas[1].shape, r, c, rng.uniform(0, np.pi), rng.uniform(9, 18),
                      rng.uniform(3, 5))
    _paint(canvas, rr, cc, _stain(rng, 0.8), label, rng)


def _bright_spot(canvas, r, c, rng, label):
    radius = rng.uniform(2.5, 4.5)
    shape = canvas[1].shape
    halo = canvas[0][draw.disk((r, c), radius + 1.5, shape=shape)]
    canvas[0][draw.disk((r, c), radius + 1.5, shape=shape)] = halo * 0.55  # dark phase halo
    glow = np.array([1.0, 1.0, 0.35]) if rng.random() < 0.5 else np.array([0.45, 1.0, 1.0])
    _paint(canvas, *draw.disk((r, c), radius, shape=shape), glow, label, rng, texture=0.02)


def _fibre(canvas, r, c, rng, label):
    shape = canvas[1].shape
    steps = int(rng.integers(40, 110))
    heading, turn = rng.uniform(0, 2 * np.pi), rng.uniform(-0.04, 0.04)
    width = rng.uniform(1.0, 1.8)
    mask = np.zeros(shape, bool)
    for _ in range(steps):
        mask[draw.disk((r, c), width, shape=shape)] = True
        heading += turn + rng.normal(0, 0.03)
        r, c = r + np.sin(heading), c + np.cos(heading)
    _paint(canvas, *np.nonzero(mask), _stain(rng, 0.7), label, rng)


def _ring(canvas, r, c, rng, label):
    outer = rng.uniform(7, 14)
    inner = outer - rng.uniform(2, 3.5)
    shape = canvas[1].shape
    mask = np.zeros(shape, bool)
    mask[draw.disk((r, c), outer, shape=shape)] = True
    mask[draw.disk((r, c), inner, shape=shape)] = False
    _paint(canvas, *np.nonzero(mask), _stain(rng, 0.8), label, rng)


def _crystal(canvas, r, c, rng, label):
    sides = int(rng.choice([3, 4, 6]))
    radius, turn = rng.uniform(6, 13), rng.uniform(0, 2 * np.pi)
    angles = turn + np.arange(sides) * 2 * np.pi / sides
    facet = np.clip(_stain(rng, 1.0) * 0.4 + 0.55, 0, 1)  # pale, glassy and flat
    for side, colour in ((radius, facet * 0.45), (radius - 1.5, facet)):  # dark rim, pale facet
        rr, cc = _polygon(canvas, r + side * np.sin(angles), c + side * np.cos(angles))
        _paint(canvas, rr, cc, colour, label, rng, texture=0.01)


def _debris(canvas, r, c, rng, label):
    colour = _stain(rng, 0.5)
    for _ in range(int(rng.integers(4, 9))):
        fr, fc = r + rng.uniform(-8, 8), c + rng.uniform(-8, 8)
        corners = int(rng.integers(3, 6))
        angles = np.sort(rng.uniform(0, 2 * np.pi, corners))
        radii = rng.uniform(1.5, 4.0, corners)
        rr, cc = _polygon(canvas, fr + radii * np.sin(angles), fc + radii * np.cos(angles))
        _paint(canvas, rr, cc, colour, label, rng, texture=0.2)


def _dividing_cell(canvas, r, c, rng, label):
    radius, angle = rng.uniform(6, 10), rng.uniform(0, np.pi)
    offset = radius * rng.uniform(0.7, 0.95)
    shape = canvas[1].shape
    mask = np.zeros(shape, bool)
    for sign in (-1, 1):
        centre = (r + sign * offset * np.sin(angle), c + sign * offset * np.cos(angle))
        mask[draw.disk(centre, radius, shape=shape)] = True
    _paint(canvas, *np.nonzero(mask), _stain(rng, 0.9), label, rng)


def _diatom(canvas, r, c, rng, label):
    a, b, angle = rng.uniform(12, 22), rng.uniform(4, 6.5), rng.uniform(0, np.pi)
    rr, cc = draw.ellipse(r, c, b, a, shape=canvas[1].shape, rotation=angle)
    colour = _stain(rng, 0.9)
    _paint(canvas, rr, cc, colour, label, rng, texture=0.05)
    # Striae: dark bands across the long axis.
    along = (cc - c) * np.cos(angle) - (rr - r) * np.sin(angle)
    striped = (np.floor(along / 2.0) % 2) == 0
    canvas[0][rr[striped], cc[striped]] = colour * 0.55


def _star(canvas, r, c, rng, label):
    spikes, turn = int(rng.integers(5, 8)), rng.uniform(0, 2 * np.pi)
    outer, inner = rng.uniform(9, 15), rng.uniform(3, 5)
    angles = turn + np.arange(2 * spikes) * np.pi / spikes
    radii = np.where(np.arange(2 * spikes) % 2 == 0, outer, inner)
    rr, cc = _polygon(canvas, r + radii * np.sin(angles), c + radii * np.cos(angles))
    _paint(canvas, rr, cc, _stain(rng, 0.85), label, rng)


_DRAWERS: dict[str, Callable] = {
    "nucleus": _nucleus,
    "rod-shaped bacterium": _rod,
    "bright spot": _bright_spot,
    "fibre": _fibre,
    "ring": _ring,
    "crystal": _crystal,
    "debris": _debris,
    "dividing cell": _dividing_cell,
    "diatom": _diatom,
    "star-shaped cell": _star,
}
assert tuple(_DRAWERS) == VOCABULARY


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    noise = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return noise / (noise.std() + 1e-8)


def _background(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    base = _BACKGROUNDS[rng.integers(len(_BACKGROUNDS))] * rng.uniform(0.85, 1.0)
    texture = 0.03 * _smooth_noise(rng, shape, 3.0) + 0.02 * _smooth_noise(rng, shape, 12.0)
    return np.clip(base[None, None] * (1 + texture[..., None]), 0, 1)


def _illumination(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]] / max(shape)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * cols + np.sin(angle) * rows
    return 1.0 - rng.uniform(0.05, 0.3) * (ramp - ramp.min())


def render(
    placements: list[tuple[str, float, float]], rng: np.random.Generator, size: tuple[int, int]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Draw objects ``(concept, row, col)`` in order on a fresh background."""
    image, masks, _ = render_instances(placements, rng, size)
    return image, masks


def render_instances(
    placements: list[tuple[str, float, float]], rng: np.random.Generator, size: tuple[int, int]
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """:func:`render`, plus the visible pixels of each object: int32 labels, ``i + 1`` for placement ``i``."""
    rgb = _background(rng, size)
    objects = np.zeros(size, dtype=np.int32)
    for number, (concept, row, col) in enumerate(placements, start=1):
        _DRAWERS[concept]((rgb, objects), row, col, rng, number)
    rgb = ndimage.gaussian_filter(rgb, sigma=(0.6, 0.6, 0))  # optics: nothing is pixel-sharp
    rgb *= _illumination(rng, size)[..., None]
    rgb += rng.normal(0, rng.uniform(0.01, 0.035), rgb.shape)
    image = (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)
    concept_of = np.array([0] + [VOCABULARY.index(c) + 1 for c, _, _ in placements], dtype=np.int16)
    labels = concept_of[objects]
    masks = {c: labels == i + 1 for i, c in enumerate(VOCABULARY) if (labels == i + 1).any()}
    return image, masks, objects


def scene(
    seed: int,
    size: int | tuple[int, int] = SCENE_SIZE,
    *,
    concepts: Iterable[str] | None = None,
    kinds: tuple[int, int] = (2, 5),
    instances: tuple[int, int] = (1, 3),
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A generated micrograph and the exact mask of each concept visible in it.

    Returns ``(image, masks)``: ``image`` is ``uint8 [H, W, 3]`` RGB, ``masks`` maps
    each concept of :data:`VOCABULARY` present to a boolean ``[H, W]`` mask. The same
    ``seed`` (and arguments) always gives the same scene. ``concepts`` fixes which
    concepts are drawn; otherwise ``kinds`` bounds how many are chosen at random.
    ``instances`` bounds the objects per concept at :data:`SCENE_SIZE` (``(5, 15)``:
    crowded scenes, where learning objects matters most); larger images hold
    proportionally more.
    """
    height, width = (size, size) if isinstance(size, int) else size
    rng = np.random.default_rng([seed, height, width])
    if concepts is None:
        count = int(rng.integers(kinds[0], kinds[1] + 1))
        chosen = list(rng.choice(VOCABULARY, size=count, replace=False))
    else:
        chosen = list(concepts)
        unknown = [c for c in chosen if c not in VOCABULARY]
        if unknown:
            raise ValueError(f"unknown concept(s) {unknown}; the demo knows {', '.join(VOCABULARY)}")
    area_scale = height * width / SCENE_SIZE**2
    placements = []
    for concept in chosen:
        count = max(1, int(round(rng.integers(instances[0], instances[1] + 1) * area_scale)))
        for _ in range(count):
            placements.append((str(concept), rng.uniform(8, height - 8), rng.uniform(8, width - 8)))
    order = rng.permutation(len(placements))
    return render([placements[i] for i in order], rng, (height, width))
