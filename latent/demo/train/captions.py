"""Caption vocabulary and templates for the demo model, with held-out benchmark phrasings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from latent.demo.world import BACKGROUNDS, COLORS, POSITIONS, SHAPES, SIZES, DemoObject, Scene

COLOR_WORDS: dict[str, tuple[str, ...]] = {
    "red": (
        "red",
        "cherry",
        "ruby",
        "crimson",
        "scarlet",
        "cherry-red",
        "bright red",
        "vermilion",
        "strawberry red",
        "fire-red",
    ),
    "green": (
        "green",
        "emerald",
        "lime",
        "jade",
        "bright green",
        "grass-green",
        "mint green",
        "olive green",
        "kelly green",
    ),
    "blue": (
        "blue",
        "azure",
        "cobalt",
        "sapphire",
        "royal blue",
        "navy",
        "cerulean",
        "cornflower blue",
        "electric blue",
    ),
    "yellow": (
        "yellow",
        "golden",
        "lemon",
        "canary",
        "sunny yellow",
        "gold",
        "mustard",
        "butter yellow",
        "bright yellow",
    ),
    "purple": (
        "purple",
        "violet",
        "plum",
        "amethyst",
        "grape",
        "deep purple",
        "lilac",
        "mauve",
        "royal purple",
    ),
    "orange": (
        "orange",
        "tangerine",
        "amber",
        "pumpkin",
        "bright orange",
        "apricot",
        "peach",
        "marigold",
        "vivid orange",
    ),
    "white": (
        "white",
        "snowy",
        "ivory",
        "milky",
        "snow-white",
        "pure white",
        "cream",
        "pearl white",
        "off-white",
    ),
    "black": (
        "black",
        "jet-black",
        "ebony",
        "pitch-black",
        "coal",
        "inky",
        "onyx",
        "obsidian",
        "sooty",
    ),
    "pink": (
        "pink",
        "rose",
        "bubblegum",
        "hot pink",
        "salmon",
        "rosy",
        "fuchsia",
        "blush pink",
        "magenta",
    ),
    "brown": (
        "brown",
        "chocolate",
        "coffee",
        "chestnut",
        "mocha",
        "dark brown",
        "caramel",
        "cocoa",
        "hazel",
    ),
}
SHAPE_WORDS: dict[str, tuple[str, ...]] = {
    "circle": (
        "circle",
        "disk",
        "disc",
        "dot",
        "round shape",
        "ball",
        "orb",
        "round blob",
        "circular shape",
        "sphere",
    ),
    "square": (
        "square",
        "block",
        "box",
        "tile",
        "cube",
        "square shape",
        "squared shape",
        "four-sided block",
        "square tile",
    ),
    "triangle": (
        "triangle",
        "pyramid",
        "wedge",
        "three-sided shape",
        "triangular shape",
        "three-cornered shape",
        "delta",
        "arrowhead",
    ),
    "star": (
        "star",
        "five-pointed star",
        "star shape",
        "starburst",
        "pointy star",
        "five-point star",
        "twinkle star",
        "asterisk shape",
    ),
    "cross": (
        "cross",
        "plus sign",
        "plus symbol",
        "plus",
        "cross shape",
        "plus mark",
        "cross mark",
        "crosshair",
    ),
    "diamond": (
        "diamond",
        "rhombus",
        "lozenge",
        "diamond shape",
        "gem shape",
        "rhomb",
        "diamond-shaped tile",
        "kite shape",
    ),
    "heart": (
        "heart",
        "love heart",
        "valentine heart",
        "heart shape",
        "little heart symbol",
        "heart-shaped symbol",
        "sweetheart shape",
        "love symbol",
    ),
    "ring": (
        "ring",
        "donut",
        "doughnut",
        "hoop",
        "loop",
        "hollow circle",
        "annulus",
        "circle outline",
        "round hoop",
    ),
}
SIZE_WORDS: dict[str, tuple[str, ...]] = {
    "small": ("small", "tiny", "little", "mini", "wee", "smallish"),
    "medium": ("medium", "medium-sized", "mid-sized", "moderate", "average-sized", "regular"),
    "large": ("large", "big", "huge", "giant", "enormous", "massive"),
}
POSITION_WORDS: dict[str, tuple[str, ...]] = {
    "top left": (
        "in the top left",
        "in the top left corner",
        "in the upper left",
        "at the upper left corner",
        "top-left",
        "near the top left",
        "upper-left corner",
        "at the top on the left",
        "in the left top corner",
        "at top left",
        "in the upper left part of the image",
        "on the upper left side",
        "up top on the left",
        "in the top left of the picture",
    ),
    "top right": (
        "in the top right",
        "in the top right corner",
        "in the upper right",
        "at the upper right corner",
        "top-right",
        "near the top right",
        "upper-right corner",
        "at the top on the right",
        "in the right top corner",
        "at top right",
        "in the upper right part of the image",
        "on the upper right side",
        "up top on the right",
        "in the top right of the picture",
    ),
    "bottom left": (
        "in the bottom left",
        "in the bottom left corner",
        "in the lower left",
        "at the lower left corner",
        "bottom-left",
        "near the bottom left",
        "lower-left corner",
        "at the bottom on the left",
        "in the left bottom corner",
        "at bottom left",
        "in the lower left part of the image",
        "on the lower left side",
        "down low on the left",
        "in the bottom left of the picture",
    ),
    "bottom right": (
        "in the bottom right",
        "in the bottom right corner",
        "in the lower right",
        "at the lower right corner",
        "bottom-right",
        "near the bottom right",
        "lower-right corner",
        "at the bottom on the right",
        "in the right bottom corner",
        "at bottom right",
        "in the lower right part of the image",
        "on the lower right side",
        "down low on the right",
        "in the bottom right of the picture",
    ),
    "center": (
        "in the center",
        "in the middle",
        "centered",
        "in the centre",
        "at the center of the image",
        "in the middle of the picture",
        "dead center",
        "in the very middle",
        "center of the frame",
        "at the center",
        "in the centre of the picture",
        "at the centre",
        "in the middle of the image",
    ),
}
BACKGROUND_WORDS: dict[str, tuple[str, ...]] = {
    "gray": (
        "on a gray background",
        "on grey",
        "against a plain gray backdrop",
        "on a grey backdrop",
        "on neutral gray",
        "on a dull gray background",
        "with a gray background",
        "on slate gray",
        "on a silver-gray field",
    ),
    "sand": (
        "on sand",
        "on a sandy backdrop",
        "on a beach",
        "on sandy ground",
        "in the desert",
        "on sand dunes",
        "on a sandy surface",
        "on desert sand",
        "on the dunes",
    ),
    "sky": (
        "against the sky",
        "on a blue sky",
        "in the sky",
        "with sky behind it",
        "against a clear sky",
        "on a sky background",
        "under a blue sky",
        "on a bright sky",
        "in the open sky",
    ),
    "grass": (
        "on grass",
        "on a lawn",
        "on a grassy field",
        "in a meadow",
        "on turf",
        "on a grass background",
        "on a grassy lawn",
        "in a green field",
        "on the grass",
    ),
    "night": (
        "at night",
        "against the night sky",
        "on a starry night",
        "on a dark night sky",
        "in darkness",
        "under a starry sky",
        "on a night sky",
        "at nighttime",
        "under the stars",
    ),
    "brick": (
        "on a brick wall",
        "against bricks",
        "in front of a brick wall",
        "on brickwork",
        "on a wall of bricks",
        "on a brick background",
        "by a brick wall",
        "on a brick facade",
        "before a wall of brick",
    ),
}
# Frames wrap a noun phrase ({np}); {where} is position and/or background text.
FRAMES: tuple[str, ...] = (
    "{np}{where}",
    "a photo of {np}{where}",
    "an image of {np}{where}",
    "a picture showing {np}{where}",
    "there is {np}{where}",
    "a drawing of {np}{where}",
    "{np}{where}.",
    "an illustration with {np}{where}",
    "a simple graphic of {np}{where}",
    "a render of {np}{where}",
    "look at {np}{where}",
    "this image has {np}{where}",
    "a picture with {np}{where}",
    "we see {np}{where}",
    "an icon of {np}{where}",
    "clip art of {np}{where}",
    "a snapshot of {np}{where}",
    "an image containing {np}{where}",
    "here is {np}{where}",
    "a scene with {np}{where}",
    "a graphic showing {np}{where}",
    # Query-style frames, as people type into a search box.
    "give me {np}{where}",
    "do you have {np}{where}?",
    "pictures of {np}{where}",
    "is there {np}{where}?",
    "I need {np}{where}",
    "where is {np}{where}?",
    "images with {np}{where}",
    "display {np}{where}",
    "fetch images of {np}{where}",
)
NP_FORMS: tuple[str, ...] = (
    "{a} {size}{color} {shape}",
    "{a} {size}{shape} in {color}",
    "{a} {size}{color}-colored {shape}",
    "{a} {size}{shape} colored {color}",
    "{a} {size}{color} {shape}",
)

# Held out of training: natural phrasings written for the benchmark only.
HELD_OUT_FRAMES: tuple[str, ...] = (
    "show me {np}{where}",
    "I'm looking for {np}{where}",
    "find pictures with {np}{where}",
    "can you find {np}{where}?",
    "any images of {np}{where}",
    "I want {np}{where}",
    "search for {np}{where} please",
    "photos where you can see {np}{where}",
)
HELD_OUT_COLOR_WORDS: dict[str, tuple[str, ...]] = {
    "red": ("blood-red", "tomato red"),
    "green": ("forest green", "leaf green"),
    "blue": ("ocean blue", "deep blue"),
    "yellow": ("banana yellow", "sunflower yellow"),
    "purple": ("lavender purple", "dark violet"),
    "orange": ("carrot orange", "burnt orange"),
    "white": ("chalk white", "bright white"),
    "black": ("charcoal black", "midnight black"),
    "pink": ("pastel pink", "flamingo pink"),
    "brown": ("walnut brown", "earthy brown"),
}
HELD_OUT_SHAPE_WORDS: dict[str, tuple[str, ...]] = {
    "circle": ("round disk", "filled circle"),
    "square": ("square block", "boxy square"),
    "triangle": ("triangle shape", "pointed triangle"),
    "star": ("star symbol", "starry shape"),
    "cross": ("plus-shaped cross", "cross symbol"),
    "diamond": ("diamond symbol", "rhombus shape"),
    "heart": ("heart icon", "love-heart shape"),
    "ring": ("ring shape", "donut ring"),
}
HELD_OUT_POSITION_WORDS: dict[str, tuple[str, ...]] = {
    "top left": ("up in the top left area", "toward the upper-left"),
    "top right": ("up in the top right area", "toward the upper-right"),
    "bottom left": ("down in the bottom left area", "toward the lower-left"),
    "bottom right": ("down in the bottom right area", "toward the lower-right"),
    "center": ("right in the middle", "smack in the center"),
}
HELD_OUT_BACKGROUND_WORDS: dict[str, tuple[str, ...]] = {
    "gray": ("on a plain grey surface", "over a gray backdrop"),
    "sand": ("lying on the sand", "on a sandy beach"),
    "sky": ("up against blue sky", "with the sky as backdrop"),
    "grass": ("sitting on green grass", "on the lawn"),
    "night": ("under the night sky", "on a dark starry background"),
    "brick": ("against a brick wall", "in front of some bricks"),
}


@dataclass(frozen=True)
class Vocabulary:
    """One set of words per attribute, plus sentence frames."""

    frames: Sequence[str]
    colors: dict[str, tuple[str, ...]]
    shapes: dict[str, tuple[str, ...]]
    sizes: dict[str, tuple[str, ...]]
    positions: dict[str, tuple[str, ...]]
    backgrounds: dict[str, tuple[str, ...]]


TRAIN_VOCAB = Vocabulary(
    FRAMES, COLOR_WORDS, SHAPE_WORDS, SIZE_WORDS, POSITION_WORDS, BACKGROUND_WORDS
)
HELD_OUT_VOCAB = Vocabulary(
    HELD_OUT_FRAMES,
    HELD_OUT_COLOR_WORDS,
    HELD_OUT_SHAPE_WORDS,
    SIZE_WORDS,
    HELD_OUT_POSITION_WORDS,
    HELD_OUT_BACKGROUND_WORDS,
)


@dataclass(frozen=True)
class Query:
    """What a caption asks for: partial objects (None = any) and an optional background."""

    objects: tuple[tuple[str | None, str | None, str | None, str | None], ...]
    background: str | None = None

    def matches(self, scene: Scene) -> bool:
        """Whether every mentioned object and the background are in the scene."""
        if self.background is not None and self.background != scene.background:
            return False
        return all(any(_object_matches(q, o) for o in scene.objects) for q in self.objects)


def _object_matches(q: tuple[str | None, ...], obj: DemoObject) -> bool:
    fields = (obj.shape, obj.color, obj.size, obj.position)
    return all(want is None or want == have for want, have in zip(q, fields, strict=True))


def _choice(rng: np.random.Generator, items: Sequence[str]) -> str:
    return items[int(rng.integers(len(items)))]


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def noun_phrase(obj: tuple[str | None, ...], vocab: Vocabulary, rng: np.random.Generator) -> str:
    """Words for one (partial) object, e.g. "a tiny ruby disk" or "something crimson"."""
    shape, color, size, _ = obj
    size_w = _choice(rng, vocab.sizes[size]) + " " if size else ""
    color_w = _choice(rng, vocab.colors[color]) if color else ""
    shape_w = _choice(rng, vocab.shapes[shape]) if shape else "shape"
    if not color:
        text = f"{size_w}{shape_w}"
        return f"{_article(text)} {text}"
    form = _choice(rng, NP_FORMS)
    text = form.format(a="", size=size_w, color=color_w, shape=shape_w).strip()
    return f"{_article(text)} {text}"


def phrase(query: Query, vocab: Vocabulary, rng: np.random.Generator) -> str:
    """Renders a query as one sentence in the given vocabulary.

    Args:
        query: What to describe.
        vocab: Which words and frames to use (training or held-out).
        rng: Picks the synonyms and the frame.

    Returns:
        The caption.
    """
    parts = []
    for obj in query.objects:
        np_text = noun_phrase(obj, vocab, rng)
        if obj[3] is not None:
            np_text += " " + _choice(rng, vocab.positions[obj[3]])
        parts.append(np_text)
    joined = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    where = " " + _choice(rng, vocab.backgrounds[query.background]) if query.background else ""
    return _choice(rng, vocab.frames).format(np=joined, where=where)


def sample_query(scene: Scene, rng: np.random.Generator) -> Query:
    """Picks what a training caption of this scene mentions (a random attribute subset).

    One caption in ten names only a colour, half of those as the bare word: arithmetic
    ("image - red + blue") steps by the difference of two bare colour words, and it only
    moves an image as far as images sit from those words. A few name only a shape, a place
    ("a shape in the top left"), a size or the backdrop, so that each of those words has a
    direction of its own that a fuller caption adds up from.
    """
    kind = rng.random()
    one = scene.objects[int(rng.integers(len(scene.objects)))]
    if kind < 0.10:
        return Query(((None, one.color, None, None),))
    if kind < 0.13:
        return Query(((one.shape, None, None, None),))
    if kind < 0.16:
        return Query(((None, None, None, one.position),))
    if kind < 0.18:
        return Query(((None, None, one.size, None),))
    if kind < 0.20:
        return Query((), scene.background)
    many = len(scene.objects) > 1 and rng.random() < 0.5
    chosen = scene.objects if many else (scene.objects[int(rng.integers(len(scene.objects)))],)
    objs = tuple(_partial(o, rng) for o in chosen)
    return Query(objs, scene.background if rng.random() < 0.4 else None)


PartialObject = tuple[str | None, str | None, str | None, str | None]


def contrast_queries(
    scene: Scene, miss: Scene, attribute: str, index: int, rng: np.random.Generator
) -> tuple[Query, Query]:
    """Queries of a scene and its near miss that differ in just the attribute that changed.

    Both name the changed object (or, for a new backdrop, one object and the backdrop) by
    shape and colour, as a person searching would, plus the changed attribute and a random
    subset of the rest; the same subset for both, so nothing but that attribute tells the
    two captions apart.

    Args:
        scene: The original scene.
        miss: The scene with one attribute of objects[index] (or the background) changed.
        attribute: "shape", "color", "size", "position" or "background".
        index: The changed object (any object for a background change).
        rng: Picks the subset.
    """
    keep = {"size": rng.random() < 0.3, "position": rng.random() < 0.3, attribute: True}
    with_background = attribute == "background" or rng.random() < 0.2
    if attribute == "background":
        index = int(rng.integers(len(scene.objects)))

    def query(s: Scene) -> Query:
        obj = s.objects[index]
        fields: PartialObject = (
            obj.shape,
            obj.color,
            obj.size if keep["size"] else None,
            obj.position if keep["position"] else None,
        )
        return Query((fields,), s.background if with_background else None)

    return query(scene), query(miss)


def _partial(obj: DemoObject, rng: np.random.Generator) -> PartialObject:
    keep_color = rng.random() < 0.93
    return (
        obj.shape if (rng.random() < 0.93 or not keep_color) else None,
        obj.color if keep_color else None,
        obj.size if rng.random() < 0.45 else None,
        obj.position if rng.random() < 0.45 else None,
    )


def describe_background(background: str, vocab: Vocabulary, rng: np.random.Generator) -> str:
    """A caption that names only the backdrop, e.g. "a picture on a brick wall"."""
    return "a picture " + _choice(rng, vocab.backgrounds[background])


def caption(query: Query, vocab: Vocabulary, rng: np.random.Generator) -> str:
    """Any query as a sentence, including background-only and single-word queries."""
    if not query.objects:
        return describe_background(query.background or BACKGROUNDS[0], vocab, rng)
    obj = query.objects[0]
    colour_only = len(query.objects) == 1 and obj[0] is None and obj[2:] == (None, None)
    if colour_only and rng.random() < 0.5:
        return _choice(rng, vocab.colors[obj[1] or COLORS[0]])
    return phrase(query, vocab, rng)


__all__ = [
    "BACKGROUNDS",
    "COLORS",
    "POSITIONS",
    "SHAPES",
    "SIZES",
    "HELD_OUT_VOCAB",
    "TRAIN_VOCAB",
    "Query",
    "Vocabulary",
    "caption",
    "contrast_queries",
    "phrase",
    "sample_query",
]
