"""The demo trainer's pieces: caption matching, probe targets, loss and batches."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from latent.demo.train import artifact
from latent.demo.train.captions import Query
from latent.demo.train.train import (
    AttributeProbe,
    Batches,
    Example,
    ImageQueue,
    TrainConfig,
    _embed_images,
    _from_bytes,
    _optimizer,
    _probe_targets,
    _to_bytes,
    _train_step,
    build_pool,
    encode_frozen_text,
    encode_labels,
    image_kind_loss,
    match_matrix,
    multi_positive_loss,
    prerender,
    resolve_precision,
    same_kind_matrix,
    trained_scenes,
)
from latent.demo.world import COLORS, SHAPES, DemoObject, Scene, render_scene
from latent.models.loader import load_model


def test_vectorised_match_agrees_with_query_matches() -> None:
    pool = build_pool(TrainConfig(pool_pairs=150))
    labels = encode_labels(pool)
    images, texts = np.arange(0, 300, 2), np.arange(300)
    got = match_matrix(labels, images, texts).numpy().astype(bool)
    want = np.array([[pool[t].query.matches(pool[i].scene) for t in texts] for i in images])
    assert (got == want).all()
    assert got.any() and not got.all()


def _example(scene: Scene, query: Query) -> Example:
    return Example(scene, query, "")


def test_match_needs_every_named_object_and_the_backdrop() -> None:
    scene = Scene(
        "grass",
        (
            DemoObject("star", "red", "small", "top left"),
            DemoObject("ring", "blue", "medium", "center"),
        ),
    )
    queries = [
        Query((("star", "red", None, None),)),  # yes
        Query((("star", "blue", None, None),)),  # colour of the other one
        Query((("ring", None, None, "center"), ("star", None, None, None)), "grass"),  # yes
        Query((("ring", None, None, None),), "sand"),  # wrong backdrop
        Query((), "grass"),  # backdrop only: yes
        Query(
            (("star", None, "small", "top left"), ("star", None, "small", "top left"))
        ),  # same object twice: yes
    ]
    pool = [_example(scene, q) for q in queries]
    got = match_matrix(encode_labels(pool), np.array([0]), np.arange(len(pool)))[0]
    assert got.tolist() == [1.0, 0.0, 1.0, 0.0, 1.0, 1.0]


def test_probe_reads_each_place_and_what_is_present() -> None:
    scene = Scene("night", (DemoObject("heart", "pink", "large", "center"),))
    labels = encode_labels([_example(scene, Query(()))])
    probe = AttributeProbe(8)
    embedding = torch.nn.functional.normalize(torch.randn(1, 8), dim=-1)
    loss = probe.loss(embedding, labels, np.array([0]))
    assert torch.isfinite(loss) and loss > 0
    slots, presence = _probe_targets(labels, np.array([0]))
    centre = 4
    assert slots[0, centre].tolist() == [SHAPES.index("heart") + 1, COLORS.index("pink") + 1, 3]
    assert slots[0, :centre].sum() == 0
    assert presence[0].sum() == 3  # the shape, the colour and the pair


def test_bank_captions_without_an_image_are_only_negatives() -> None:
    logits = torch.tensor([[5.0, 0.0, 1.0], [0.0, 5.0, 1.0]])
    match = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    with_bank = multi_positive_loss(logits, match)
    # The third caption matches nothing: it may only lower the image-side softmax.
    image_side = -torch.log_softmax(logits, dim=1)[[0, 1], [0, 1]].mean()
    text_side = -torch.log_softmax(logits[:, :2].t(), dim=1)[[0, 1], [0, 1]].mean()
    assert torch.isclose(with_bank, (image_side + text_side) / 2)


def test_queued_images_join_the_rankings_of_the_own_captions_only() -> None:
    logits = torch.tensor([[5.0, 0.0, 1.0], [0.0, 5.0, 1.0]])
    match = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    queued_logits = torch.tensor([[4.0, -1.0], [2.0, 3.0]])  # 2 queued images x 2 own captions
    queued_match = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    got = multi_positive_loss(logits, match, queued_logits, queued_match)
    image_side = (
        -(
            torch.log_softmax(logits, dim=1)[0, [0, 2]].mean()
            + torch.log_softmax(logits, dim=1)[1, 1]
        )
        / 2
    )
    first = torch.log_softmax(torch.tensor([5.0, 0.0, 4.0, 2.0]), dim=0)[[0, 2]].mean()
    second = torch.log_softmax(torch.tensor([0.0, 5.0, -1.0, 3.0]), dim=0)[1]
    third = torch.log_softmax(torch.tensor([1.0, 1.0]), dim=0)[0]  # a bank caption: batch only
    text_side = -(first + second + third) / 3
    assert torch.isclose(got, (image_side + text_side) / 2)


def test_the_image_queue_keeps_the_newest_embeddings() -> None:
    queue = ImageQueue(3, 2)
    queue.push(torch.ones(2, 2, requires_grad=True), np.array([1, 2]))
    queue.push(torch.zeros(2, 2), np.array([3, 4]))
    assert queue.images.tolist() == [3, 4, 1]
    assert queue.embeddings.tolist() == [[0, 0], [0, 0], [1, 1]]
    assert not queue.embeddings.requires_grad


def test_images_of_one_shape_and_colour_attract_each_other() -> None:
    def scene(*objects: tuple[str, str]) -> Scene:
        places = ("top left", "center", "bottom right")
        pairs = zip(objects, places[: len(objects)], strict=True)
        return Scene(
            "gray",
            tuple(DemoObject(shape, color, "small", place) for (shape, color), place in pairs),
        )

    scenes = [
        scene(("star", "red")),
        scene(("star", "red"), ("ring", "blue")),
        scene(("star", "blue")),
        scene(("ring", "blue")),
    ]
    labels = encode_labels([_example(s, Query(())) for s in scenes])
    same = same_kind_matrix(labels, np.arange(4))
    assert same.tolist() == [[0, 1, 0, 0], [1, 0, 0, 1], [0, 0, 0, 0], [0, 1, 0, 0]]
    close = torch.nn.functional.normalize(
        torch.tensor([[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.0, 1.0, 0.0], [0.5, 0.0, 0.5]]), dim=-1
    )
    apart = close[[0, 2, 1, 3]]
    assert image_kind_loss(close, same) < image_kind_loss(apart, same)


def test_a_step_batch_depends_only_on_seed_and_step() -> None:
    cfg = TrainConfig(pool_pairs=40, pairs_per_batch=4, bank=16, steps=3)
    pool = build_pool(cfg)
    batches = Batches(pool, artifact.transform(cfg.image_size), cfg)
    first, again, other = batches[1], batches[1], batches[2]
    assert (first[0] == again[0]).all() and (first[1] == again[1]).all()
    assert torch.equal(first[2], again[2])
    assert not (first[0] == other[0]).all()
    assert first[2].shape == (8, 3, cfg.image_size, cfg.image_size)
    held_back = {*range(80 - 20, 80)}  # the last pool_pairs // 4 pairs' scenes
    assert not held_back & set(first[0].tolist())


def test_a_batch_scores_each_image_against_every_caption_of_its_scene() -> None:
    cfg = TrainConfig(pool_pairs=40, pairs_per_batch=4, bank=16, captions_per_scene=3)
    pool = build_pool(cfg)
    assert len(pool) == 3 * 80
    images, texts, _ = Batches(pool, artifact.transform(cfg.image_size), cfg)[0]
    for image in images:
        own = [t for t in texts if t % 80 == image]
        assert len(own) >= 3
        assert all(pool[t].scene == pool[image].scene for t in own)
    assert len({pool[t].text for t in texts[: 3 * len(images)]}) > len(images)
    match = match_matrix(encode_labels(pool), images, texts[: 3 * len(images)])
    assert (match.reshape(len(images), 3, len(images)).diagonal(dim1=0, dim2=2) == 1).all()


def test_a_step_keeps_the_temperature_under_its_cap() -> None:
    """Above the cap, arithmetic with colour words stops moving images (see MODEL_CARD)."""
    cfg = TrainConfig(pool_pairs=40, pairs_per_batch=4, bank=16, steps=1, lr=0.5)
    model_cfg = artifact.model_config(cfg.image_size, cfg.width)
    model = artifact.build_model(model_cfg)
    probe = AttributeProbe(model_cfg["embed_dim"])
    pool = build_pool(cfg)
    feats = encode_frozen_text(model, artifact.tokenizer(model_cfg), [ex.text for ex in pool])
    preprocess = artifact.transform(cfg.image_size)
    with torch.no_grad():
        model.logit_scale.fill_(np.log(2 * cfg.max_logit_scale))
    _train_step(
        model,
        probe,
        encode_labels(pool),
        feats,
        feats.std(dim=0),
        Batches(pool, preprocess, cfg)[0],
        _optimizer(torch.nn.ModuleList([model, probe]), cfg),
        cfg,
    )
    assert model.logit_scale.exp().item() <= cfg.max_logit_scale * (1 + 1e-6)


def test_prerendered_pixels_decode_to_what_the_preprocess_made() -> None:
    cfg = TrainConfig(pool_pairs=40)
    preprocess = artifact.transform(cfg.image_size)
    image = render_scene(build_pool(cfg)[0].scene, 90, 64, np.random.default_rng(3))
    pixels = preprocess(image)[None]
    assert torch.allclose(_from_bytes(_to_bytes(pixels), torch.ones(1)), pixels, atol=1e-6)
    darker = _from_bytes(_to_bytes(pixels), torch.tensor([0.9]))
    assert darker.mean() < pixels.mean()


def test_batches_draw_one_of_each_scene_s_prerendered_variants() -> None:
    cfg = TrainConfig(pool_pairs=200, pairs_per_batch=4, bank=16, steps=2, prerender=2, threads=1)
    pool = build_pool(cfg)
    preprocess = artifact.transform(cfg.image_size)
    renders = prerender(pool, preprocess, cfg)
    assert trained_scenes(cfg) == 300  # two chunks of renders, the second one short
    assert renders.shape == (trained_scenes(cfg), 2, 3, cfg.image_size, cfg.image_size)
    # The same renders whatever the number of processes that make them.
    assert torch.equal(renders, prerender(pool, preprocess, replace(cfg, threads=2)))
    assert not torch.equal(renders[:, 0], renders[:, 1])  # two different renders
    images, _, pixels = Batches(pool, preprocess, cfg, renders)[1]
    assert pixels.shape == (8, 3, cfg.image_size, cfg.image_size)
    for image, got in zip(images, _to_bytes(pixels), strict=True):
        assert any(torch.equal(got, render) for render in renders[image])
    images, _, pixels = Batches(pool, preprocess, replace(cfg, brightness=0.1), renders)[1]
    for image, got in zip(images, _to_bytes(pixels), strict=True):
        # One of its scene's renders, every pixel scaled by one factor within 1 ± 0.1.
        fits = []
        for render in renders[image].float():
            unclipped = (got < 255) & (render >= 20)  # rounding moves a dark pixel further
            factor = got.float()[unclipped] / render[unclipped]
            fits.append(
                bool((factor - factor.median()).abs().max() < 0.1)
                and 0.89 < float(factor.median()) < 1.11
            )
        assert any(fits)


def test_a_pair_s_first_captions_differ_only_in_what_the_near_miss_changed() -> None:
    cfg = TrainConfig(pool_pairs=200, captions_per_scene=1)
    pool = build_pool(cfg)
    differing: dict[str, int] = {}
    for p in range(cfg.pool_pairs):
        a, b = pool[2 * p], pool[2 * p + 1]
        assert a.query.matches(a.scene) and b.query.matches(b.scene)
        assert not a.query.matches(b.scene) or not b.query.matches(a.scene)
        assert len(a.query.objects) == len(b.query.objects) == 1
        fields = [
            i
            for i, (x, y) in enumerate(zip(a.query.objects[0], b.query.objects[0], strict=True))
            if x != y
        ]
        changed = ["background"] if a.query.background != b.query.background else []
        changed += [("shape", "color", "size", "position")[i] for i in fields]
        assert len(changed) == 1
        differing[changed[0]] = differing.get(changed[0], 0) + 1
    assert set(differing) == {"shape", "color", "size", "position", "background"}


def test_precision_is_bf16_or_fp32_and_auto_picks_one() -> None:
    assert resolve_precision("fp32") == "fp32"
    assert resolve_precision("bf16") == "bf16"
    assert resolve_precision("auto") in ("bf16", "fp32")
    with pytest.raises(ValueError, match="precision must be one of auto, bf16, fp32"):
        resolve_precision("fp16")


def test_bf16_autocast_embeds_images_close_to_fp32_and_keeps_fp32_weights() -> None:
    cfg = TrainConfig(pool_pairs=40, pairs_per_batch=4, bank=16, steps=1)
    model = artifact.build_model(artifact.model_config(cfg.image_size, cfg.width))
    pixels = Batches(build_pool(cfg), artifact.transform(cfg.image_size), cfg)[0][2]
    with torch.no_grad():
        full = _embed_images(model, pixels, "fp32")
        half = _embed_images(model, pixels, "bf16")
    assert half.dtype == torch.float32
    assert (full * half).sum(dim=1).min() > 0.98  # unit vectors: cosine
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_a_saved_model_loads_back_through_the_one_loader(tmp_path: Path) -> None:
    """What the trainer writes is what every reader loads: same weights, transform, tokens."""
    model_cfg = artifact.model_config()
    model = artifact.build_model(model_cfg).eval()
    digest = artifact.save_model(model, tmp_path, model_cfg)
    loaded = load_model(f"local-dir:{tmp_path}")
    scene = Scene("grass", (DemoObject("star", "red", "large", "center"),))
    image = render_scene(scene, 96, 80, np.random.default_rng(0))
    texts = ["a red star on grass"]
    with torch.inference_mode():
        want_image = model.encode_image(artifact.transform()(image)[None])
        got_image = loaded.model.encode_image(loaded.preprocess(image)[None])
        tokens = artifact.tokenizer(model_cfg)(texts)
        want_text = model.encode_text(tokens)
        got_text = loaded.model.encode_text(loaded.tokenizer(texts))
    assert len(digest) == 64
    assert torch.equal(tokens, loaded.tokenizer(texts))
    torch.testing.assert_close(got_image, want_image)
    torch.testing.assert_close(got_text, want_text)
