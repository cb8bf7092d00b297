"""Contrastive (LiT-style) training of the demo model's vision tower on the demo world."""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from latent.demo.train import artifact, captions
from latent.demo.world import (
    BACKGROUNDS,
    COLORS,
    POSITIONS,
    SHAPES,
    SIZES,
    DemoObject,
    Scene,
    render_scene,
    sample_scene,
    sample_size,
)
from latent.hashing import bytes_sha256


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run (the defaults are `make demo-model`'s)."""

    seed: int = 0
    steps: int = 6000
    pairs_per_batch: int = 64  # a batch renders each pair's scene and its near miss
    pool_pairs: int = 8000  # scene pairs, each scene with captions_per_scene captions
    captions_per_scene: int = 3  # encoded by MiniLM once; a batch scores an image against all
    bank: int = 1024  # pool captions scored against every batch, beside its own
    aux_weight: float = 1.0  # weight of the AttributeProbe loss
    image_weight: float = 0.3  # weight of the image-to-image loss (same shape and colour)
    text_noise: float = 0.3  # Gaussian noise on the frozen caption features, × their std
    max_logit_scale: float = 20.0  # image-caption temperature cap; see _train_step
    queue: int = 2048  # recent image embeddings each own caption also ranks
    prerender: int = 12  # renders per trained scene made up front; 0 = every step
    brightness: float = 0.0  # prerendered pixels are scaled by 1 ± up to this
    precision: str = "auto"  # the vision tower's autocast: bf16, fp32, or auto (see below)
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup: int = 60
    threads: int = 2
    image_size: int = artifact.IMAGE_SIZE
    width: int = artifact.WIDTH
    short_min: int = 64  # rendered short side, before the 64 px squash
    short_max: int = 100


@dataclass(frozen=True)
class Example:
    """A scene and the caption drawn for it."""

    scene: Scene
    query: captions.Query
    text: str


# An object's fields in DemoObject order, with each one's vocabulary.
_FIELDS = ("shape", "color", "size", "position")
_VOCABS = (SHAPES, COLORS, SIZES, POSITIONS)


@dataclass(frozen=True)
class NearMiss:
    """A scene with one attribute changed, and which: a field of objects[index] or the backdrop."""

    scene: Scene
    attribute: str  # "shape", "color", "size", "position" or "background"
    index: int = 0


def _perturb(scene: Scene, rng: np.random.Generator) -> NearMiss:
    """A near-miss of a scene: one attribute of one object (or the backdrop) changed.

    Every scene has a near miss of each kind: it holds at most three objects in five
    places, and a scene of several objects holds no large one (see demo_world).
    """
    what = int(rng.integers(5))
    if what == 4:
        return NearMiss(
            Scene(
                str(rng.choice([b for b in BACKGROUNDS if b != scene.background])), scene.objects
            ),
            "background",
        )
    i = int(rng.integers(len(scene.objects)))
    obj = scene.objects[i]
    vocab = _VOCABS[what]
    fields = [obj.shape, obj.color, obj.size, obj.position]
    taken = {o.position for o in scene.objects}
    options = [v for v in vocab if v != fields[what] and (what != 3 or v not in taken)]
    if what == 2 and len(scene.objects) > 1:
        options = [v for v in options if v != "large"]
    fields[what] = str(rng.choice(options))
    objects = list(scene.objects)
    objects[i] = DemoObject(*fields)
    return NearMiss(Scene(scene.background, tuple(objects)), _FIELDS[what], i)


def scene_count(cfg: TrainConfig) -> int:
    """Scenes in the pool (each pair's scene and its near miss): the length of a caption block."""
    return 2 * cfg.pool_pairs


def build_pool(cfg: TrainConfig) -> list[Example]:
    """Pairs of (scene, near-miss scene), each scene with captions_per_scene captions.

    The pool is laid out in blocks of scene_count(cfg) entries, one block per caption: entry
    e describes scene e % scene_count(cfg), and the first block doubles as the scene list
    (scene 2p and 2p + 1 are pair p's scene and its near miss). The first caption of both
    scenes of a pair names what the near miss changed, so the two captions differ in just
    that word and each is the other image's hardest negative (see captions.contrast_queries);
    the others name a random subset of the scene.
    """
    rng = np.random.default_rng([cfg.seed, 7])
    scenes: list[Scene] = []
    firsts: list[captions.Query] = []
    for _ in range(cfg.pool_pairs):
        scene = sample_scene(rng)
        miss = _perturb(scene, rng)
        scenes += [scene, miss.scene]
        firsts += captions.contrast_queries(scene, miss.scene, miss.attribute, miss.index, rng)
    pool = []
    for k in range(cfg.captions_per_scene):
        for s, first in zip(scenes, firsts, strict=True):
            query = first if k == 0 else captions.sample_query(s, rng)
            pool.append(Example(s, query, captions.caption(query, captions.TRAIN_VOCAB, rng)))
    return pool


@torch.no_grad()
def encode_frozen_text(model: Any, tokenizer: Any, texts: list[str]) -> torch.Tensor:
    """Pooled outputs of the frozen text transformer (before the trainable projection).

    Padding is masked out of attention and pooling, so trimming it changes nothing but
    cost; captions are encoded in order of length so that each chunk carries little of it.
    """
    ids = tokenizer(texts)
    mask = (ids != model.text.config.pad_token_id).long()
    order = torch.argsort(mask.sum(dim=1), stable=True)
    out = torch.empty(len(texts), model.text.transformer.config.hidden_size)
    for start in range(0, len(texts), 256):
        rows = order[start : start + 256]
        width = int(mask[rows].sum(dim=1).max())
        hidden = model.text.transformer(
            input_ids=ids[rows, :width], attention_mask=mask[rows, :width]
        )
        out[rows] = model.text.pooler(hidden, mask[rows, :width])
    return out


def cached_text_features(model: Any, tokenizer: Any, texts: list[str]) -> torch.Tensor:
    """encode_frozen_text, memoised on disk by the captions' digest (the tower never changes)."""
    digest = bytes_sha256("\n".join(texts).encode())[:24]
    path = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    path = path / "assetsearch" / "demo_train" / f"text-{digest}.safetensors"
    if path.exists():
        return load_file(str(path))["features"]
    feats = encode_frozen_text(model, tokenizer, texts)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"features": feats.contiguous()}, str(path))
    return feats


@dataclass(frozen=True)
class Labels:
    """The pool's scenes and captions as index arrays, for vectorised matching and probes.

    Scene attribute columns are (shape, colour, size, position) as indices into the demo
    world's vocabularies; slots past the last object hold -2. Matching reads the objects
    as one-hot rows (see _one_hot), the probes read the scene columns.
    """

    scene: np.ndarray  # (N, 3, 4) int
    scene_valid: np.ndarray  # (N, 3) bool
    background: np.ndarray  # (N,) int
    query_background: np.ndarray  # (N,) int, -1 = any
    scene_hot: torch.Tensor  # (N, 3, _HOT) each object's fields one-hot; zeros past the last
    query_hot: torch.Tensor  # (N, 3, _HOT) each named field one-hot, all ones where any


# An object's fields side by side, one block per field. A scene object has one 1 per
# block; a caption's partial object has its value's 1, or a block of ones for a field it
# leaves open (a slot past its last object leaves all open). The dot product of the two
# rows counts the fields that fit, so the object fits where it reaches len(_FIELDS); an
# empty scene slot (zeros) is fitted by nothing.
_OFFSETS = np.cumsum([0, *(len(v) for v in _VOCABS)])
_HOT = int(_OFFSETS[-1])


def _one_hot(fields: np.ndarray) -> torch.Tensor:
    """(..., 4) field indices (-1 = any, -2 = no object) as (..., _HOT) float rows."""
    out = np.zeros((*fields.shape[:-1], _HOT), dtype=np.float32)
    for f in range(len(_FIELDS)):
        value = fields[..., f]
        block = out[..., _OFFSETS[f] : _OFFSETS[f + 1]]
        block[value == -1] = 1.0
        rows = np.nonzero(value >= 0)
        block[(*rows, value[rows])] = 1.0
    return torch.from_numpy(out)


def encode_labels(pool: list[Example]) -> Labels:
    """Index arrays of every scene and caption in the pool.

    A caption object holds -1 for an attribute the caption leaves open, as does every
    field of a slot past its last object.
    """
    n = len(pool)
    scene = np.full((n, 3, 4), -2, dtype=np.int64)
    query = np.full((n, 3, 4), -1, dtype=np.int64)
    scene_valid = np.zeros((n, 3), dtype=bool)
    background = np.zeros(n, dtype=np.int64)
    query_background = np.full(n, -1, dtype=np.int64)
    for i, ex in enumerate(pool):
        background[i] = BACKGROUNDS.index(ex.scene.background)
        for k, obj in enumerate(ex.scene.objects):
            fields = (obj.shape, obj.color, obj.size, obj.position)
            scene[i, k] = [vocab.index(v) for vocab, v in zip(_VOCABS, fields, strict=True)]
            scene_valid[i, k] = True
        for k, q in enumerate(ex.query.objects):
            query[i, k] = [
                -1 if v is None else vocab.index(v) for vocab, v in zip(_VOCABS, q, strict=True)
            ]
        if ex.query.background is not None:
            query_background[i] = BACKGROUNDS.index(ex.query.background)
    return Labels(
        scene, scene_valid, background, query_background, _one_hot(scene), _one_hot(query)
    )


def match_matrix(labels: Labels, images: np.ndarray, texts: np.ndarray) -> torch.Tensor:
    """M[i, j] = 1 where caption texts[j] truly describes the scene of images[i].

    The same test as captions.Query.matches, as one matrix product: every object the
    caption names fits one of the scene's objects, and the background fits if the caption
    names one.
    """
    s = labels.scene_hot[images].reshape(-1, _HOT)  # (I * 3 scene slots, _HOT)
    q = labels.query_hot[texts].reshape(-1, _HOT)  # (T * 3 caption slots, _HOT)
    fitting = (s @ q.t()).view(len(images), 3, len(texts), 3)  # fields that fit
    found = fitting.amax(dim=1).amin(dim=-1) == len(_FIELDS)  # (I, T)
    want_bg = torch.from_numpy(labels.query_background[texts])[None, :]
    bg_ok = (want_bg == -1) | (want_bg == torch.from_numpy(labels.background[images])[:, None])
    return (found & bg_ok).float()


PROBE_SLOTS = len(POSITIONS)
# Per position slot: shape, colour and size, each with a class for "no object here".
_SLOT_CLASSES = (len(SHAPES) + 1, len(COLORS) + 1, len(SIZES) + 1)
_PRESENCE = len(SHAPES) + len(COLORS) + len(SHAPES) * len(COLORS)


class AttributeProbe(torch.nn.Module):
    """Linear read-outs of the scene labels from the image embedding (training only).

    Contrastive loss against captions teaches the vision tower slowly: among a batch's
    1,408 captions few differ from an image's own in just its shape or its corner. The probe asks
    the embedding itself to make every label linearly readable, the backdrop, what sits in
    each of the five places and which shapes, colours and shape-colour pairs appear, so each
    image gives a full gradient. It is not part of the saved model.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale = math.sqrt(dim)
        out = len(BACKGROUNDS) + PROBE_SLOTS * sum(_SLOT_CLASSES) + _PRESENCE
        self.linear = torch.nn.Linear(dim, out)

    def _heads(
        self, embedding: torch.Tensor
    ) -> tuple[torch.Tensor, list[list[torch.Tensor]], torch.Tensor]:
        """The logits split by head: backdrop, [slot][shape, colour, size], presence."""
        logits = self.linear(embedding * self.scale)
        at = len(BACKGROUNDS)
        slots = []
        for _ in range(PROBE_SLOTS):
            heads = []
            for classes in _SLOT_CLASSES:
                heads.append(logits[:, at : at + classes])
                at += classes
            slots.append(heads)
        return logits[:, : len(BACKGROUNDS)], slots, logits[:, at:]

    def loss(self, embedding: torch.Tensor, labels: Labels, images: np.ndarray) -> torch.Tensor:
        """Mean cross-entropy of the labels given unit-norm embeddings of the images."""
        background, slot_logits, presence_logits = self._heads(embedding)
        total = F.cross_entropy(background, torch.from_numpy(labels.background[images]))
        slots, presence = _probe_targets(labels, images)
        for slot, heads in enumerate(slot_logits):
            for attr, head in enumerate(heads):
                total = total + F.cross_entropy(head, slots[:, slot, attr]) / PROBE_SLOTS
        return total + F.binary_cross_entropy_with_logits(presence_logits, presence) * 10

    @torch.no_grad()
    def accuracy(
        self, embedding: torch.Tensor, labels: Labels, images: np.ndarray
    ) -> dict[str, float]:
        """Share of backdrops, and of objects whose shape, colour and size, read right."""
        background, slot_logits, _ = self._heads(embedding)
        slots, _ = _probe_targets(labels, images)
        result = {
            "background": float(
                (background.argmax(1) == torch.from_numpy(labels.background[images])).float().mean()
            )
        }
        for attr, name in enumerate(("shape", "colour", "size")):
            right = []
            for slot, heads in enumerate(slot_logits):
                target = slots[:, slot, attr]
                right.append((heads[attr].argmax(1) == target)[target > 0].float())
            result[name] = float(torch.cat(right).mean())
        return result


def _probe_targets(labels: Labels, images: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-slot class targets (0 = empty) and the multi-hot presence vector."""
    scene = labels.scene[images]
    valid = labels.scene_valid[images]
    slots = np.zeros((len(images), PROBE_SLOTS, 3), dtype=np.int64)
    presence = np.zeros((len(images), _PRESENCE), dtype=np.float32)
    rows, objs = np.nonzero(valid)
    shape, color, size, pos = (scene[rows, objs, a] for a in range(4))
    slots[rows, pos] = np.stack([shape + 1, color + 1, size + 1], axis=1)
    presence[rows, shape] = 1.0
    presence[rows, len(SHAPES) + color] = 1.0
    presence[rows, len(SHAPES) + len(COLORS) + shape * len(COLORS) + color] = 1.0
    return torch.from_numpy(slots), torch.from_numpy(presence)


def _render_batch(
    examples: list[Example], preprocess, rng: np.random.Generator, cfg: TrainConfig
) -> torch.Tensor:
    images = []
    for ex in examples:
        w, h = sample_size(rng, cfg.short_min, cfg.short_max)
        images.append(preprocess(render_scene(ex.scene, w, h, rng)))
    return torch.stack(images).contiguous(memory_format=torch.channels_last)


def same_kind_matrix(labels: Labels, images: np.ndarray) -> torch.Tensor:
    """S[i, j] = 1 where images i and j (i != j) both show an object of one shape and colour."""
    scene = labels.scene[images]
    kind = np.where(labels.scene_valid[images], scene[:, :, 0] * len(COLORS) + scene[:, :, 1], -1)
    same = (kind[:, None, :, None] == kind[None, :, None, :]) & (kind[:, None, :, None] >= 0)
    same = same.any(axis=(2, 3))
    np.fill_diagonal(same, False)
    return torch.from_numpy(same).float()


IMAGE_LOGIT_SCALE = 10.0


def image_kind_loss(img: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
    """Multi-positive InfoNCE among the batch's images: same shape and colour attract.

    Most pairs in a batch are a scene and its near miss; when the miss changed the size,
    the place or the backdrop the two stay positives, so the embedding learns that those
    matter less to what an image is than its shape and colour (image-to-image search).
    """
    rows = same.sum(dim=1) > 0
    logits = IMAGE_LOGIT_SCALE * img @ img.t()
    logits = logits.masked_fill(torch.eye(len(img), dtype=torch.bool), float("-inf"))
    target = same[rows] / same[rows].sum(dim=1, keepdim=True)
    log_p = F.log_softmax(logits[rows], dim=1).masked_fill(target == 0, 0.0)
    return -(target * log_p).sum(dim=1).mean()


def held_back_pairs(cfg: TrainConfig) -> int:
    """The pool's last pairs, never trained on: rendered at library resolution to log progress."""
    return min(256, cfg.pool_pairs // 4)


def _as_is(batch):
    return batch


RENDER_CHUNK = 256


def trained_scenes(cfg: TrainConfig) -> int:
    """Scenes a batch may draw: those of every pair but the held-back ones."""
    return 2 * (cfg.pool_pairs - held_back_pairs(cfg))


class _RenderChunks(torch.utils.data.Dataset):
    """Item k: render variant k // chunks of the k % chunks-th RENDER_CHUNK trained scenes."""

    def __init__(self, pool: list[Example], preprocess, cfg: TrainConfig) -> None:
        self.pool, self.preprocess, self.cfg = pool, preprocess, cfg
        self.chunks = math.ceil(trained_scenes(cfg) / RENDER_CHUNK)

    def __len__(self) -> int:
        return self.cfg.prerender * self.chunks

    def scenes(self, k: int) -> range:
        """The scenes item k renders."""
        chunk = k % self.chunks
        return range(
            chunk * RENDER_CHUNK, min((chunk + 1) * RENDER_CHUNK, trained_scenes(self.cfg))
        )

    def __getitem__(self, k: int) -> torch.Tensor:
        variant, chunk = divmod(k, self.chunks)
        rng = np.random.default_rng([self.cfg.seed, 17, variant, chunk])
        pixels = _render_batch(
            [self.pool[i] for i in self.scenes(k)], self.preprocess, rng, self.cfg
        )
        return _to_bytes(pixels)


_MEAN = torch.tensor(artifact.preprocess_config()["mean"]).view(1, 3, 1, 1)
_STD = torch.tensor(artifact.preprocess_config()["std"]).view(1, 3, 1, 1)


def _to_bytes(pixels: torch.Tensor) -> torch.Tensor:
    """Preprocessed pixels back to the 8-bit values they were made from."""
    return ((pixels * _STD + _MEAN) * 255).round().clamp(0, 255).to(torch.uint8)


def _from_bytes(data: torch.Tensor, brightness: torch.Tensor) -> torch.Tensor:
    """8-bit pixels, scaled by a brightness per image, as the preprocess would give them."""
    x = (data.float() / 255 * brightness.view(-1, 1, 1, 1)).clamp(0, 1)
    return ((x - _MEAN) / _STD).contiguous(memory_format=torch.channels_last)


def prerender(pool: list[Example], preprocess, cfg: TrainConfig) -> torch.Tensor:
    """cfg.prerender renders of every trained scene, (scenes, variants, 3, H, W) uint8.

    Rendering in a worker beside training makes the two compete for the cores; rendered
    up front, on all of them, a step only trains (MODEL_CARD, runs R-X and Z). Each chunk
    draws from its own generator, so the result does not depend on the worker count.
    Filled in place: 12 renders of the default pool take 2.3 GB.
    """
    dataset = _RenderChunks(pool, preprocess, cfg)
    size = cfg.image_size
    renders = torch.empty(trained_scenes(cfg), cfg.prerender, 3, size, size, dtype=torch.uint8)
    chunks = torch.utils.data.DataLoader(
        dataset, batch_size=None, collate_fn=_as_is, num_workers=cfg.threads
    )
    for k, part in enumerate(chunks):
        scenes = dataset.scenes(k)
        renders[scenes.start : scenes.stop, k // dataset.chunks] = part
    return renders


class Batches(torch.utils.data.Dataset):
    """Step k's batch: which images and captions, and the pixels.

    The images are pairs' scenes, then their near misses in the same order; the captions
    are the images' own, first captions first and in image order, then the bank. The
    pixels are fresh renders or, given `renders` (see prerender), one of each scene's
    renders at random, scaled by a brightness within 1 ± cfg.brightness.

    Each step draws from its own generator (seed, k), so a batch does not depend on which
    process makes it or when; a DataLoader worker makes the next batches while the
    model trains on this one.
    """

    def __init__(
        self, pool: list[Example], preprocess, cfg: TrainConfig, renders: torch.Tensor | None = None
    ) -> None:
        self.pool, self.preprocess, self.cfg, self.renders = pool, preprocess, cfg, renders

    def __len__(self) -> int:
        return self.cfg.steps

    def __getitem__(self, step: int) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
        cfg = self.cfg
        rng = np.random.default_rng([cfg.seed, 11, step])
        pair_ids = rng.choice(
            cfg.pool_pairs - held_back_pairs(cfg), cfg.pairs_per_batch, replace=False
        )
        images = np.concatenate([2 * pair_ids, 2 * pair_ids + 1])
        own = [images + scene_count(cfg) * k for k in range(cfg.captions_per_scene)]
        bank = rng.choice(len(self.pool), min(cfg.bank, len(self.pool)), replace=False)
        texts = np.concatenate([*own, bank])
        if self.renders is None:
            pixels = _render_batch([self.pool[i] for i in images], self.preprocess, rng, cfg)
        else:
            variants = rng.integers(self.renders.shape[1], size=len(images))
            brightness = torch.from_numpy(
                rng.uniform(1 - cfg.brightness, 1 + cfg.brightness, len(images))
            ).float()
            pixels = _from_bytes(self.renders[images, variants], brightness)
        return images, texts, pixels


def multi_positive_loss(
    logits: torch.Tensor,
    match: torch.Tensor,
    queued_logits: torch.Tensor | None = None,
    queued_match: torch.Tensor | None = None,
) -> torch.Tensor:
    """Symmetric InfoNCE where every true caption/image of a row counts as a positive.

    Rows are images, columns captions. Captions without a true image in the batch (most of
    the bank) serve only as negatives for the images. queued_logits (Q images x the first
    C captions) add earlier batches' images to those captions' rankings, as positives
    where queued_match says so and as negatives otherwise.
    """
    img_target = match / match.sum(dim=1, keepdim=True)
    loss_i = -(img_target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    by_text, text_match = logits.t(), match.t()
    if queued_logits is not None and queued_match is not None:
        own = queued_logits.shape[1]
        extra = torch.full((len(by_text), len(queued_logits)), float("-inf"))
        extra[:own] = queued_logits.t()
        extra_match = torch.zeros_like(extra)
        extra_match[:own] = queued_match.t()
        by_text = torch.cat([by_text, extra], dim=1)
        text_match = torch.cat([text_match, extra_match], dim=1)
    has_image = match.sum(dim=0) > 0
    per_text = text_match[has_image]
    txt_target = per_text / per_text.sum(dim=1, keepdim=True)
    log_p = F.log_softmax(by_text[has_image], dim=1).masked_fill(per_text == 0, 0.0)
    loss_t = -(txt_target * log_p).sum(dim=1).mean()
    return (loss_i + loss_t) / 2


class ImageQueue:
    """The embeddings of the last `size` trained images, newest first, with their scenes.

    Within one batch a caption rarely meets an image that shows its object elsewhere, or
    a busy scene that holds it; ranked against a few thousand recent images as well, it
    meets dozens. Measured, this steadied navigation far more than it lifted busy scenes
    (MODEL_CARD, run W).
    """

    def __init__(self, size: int, dim: int) -> None:
        self.size = size
        self.embeddings = torch.empty(0, dim)
        self.images = np.empty(0, dtype=np.int64)

    def push(self, embeddings: torch.Tensor, images: np.ndarray) -> None:
        """Adds a batch's (detached) embeddings; the oldest beyond `size` drop out."""
        self.embeddings = torch.cat([embeddings.detach(), self.embeddings])[: self.size]
        self.images = np.concatenate([images, self.images])[: self.size]


def _optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "logit_scale" in name else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6)


def _lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * progress))


PRECISIONS = ("auto", "bf16", "fp32")


def resolve_precision(precision: str) -> str:
    """bf16 or fp32: "auto" picks bf16 where the CPU computes it natively (AVX512-BF16, AMX).

    Under bf16 autocast the vision tower runs faster on such a CPU: a whole step took
    0.19 s against 0.26 s on the AMD EPYC of 2026-12-02 (MODEL_CARD, Time), with no
    quality lost that the benchmark shows (runs Z3 and Z4). The weights, the optimiser
    and the losses stay fp32. Elsewhere bf16 is emulated and slower, so auto keeps fp32.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision != "auto":
        return precision
    return "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"


def _embed_images(model, pixels: torch.Tensor, precision: str) -> torch.Tensor:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        return F.normalize(model.visual(pixels).float(), dim=-1)


def _train_step(
    model,
    probe,
    labels,
    text_feats,
    text_std,
    batch,
    opt,
    cfg,
    queue: ImageQueue | None = None,
    precision: str = "fp32",
) -> tuple[float, float]:
    images, texts, pixels = batch
    img = _embed_images(model, pixels, precision)
    feats = text_feats[texts]
    # Noise on the frozen features makes the projection read what a caption means rather
    # than the exact features of the training words: unseen phrasings land nearer (runs K,
    # O and P in MODEL_CARD).
    feats = feats + cfg.text_noise * text_std * torch.randn_like(feats)
    txt = F.normalize(model.text.proj(feats), dim=-1)
    # A low cap makes captions sit far (in cosine) from images they do not describe, so
    # that "image - red + blue" moves an image as far as the gap between two colours'
    # image clusters; with CLIP's 100 it grew to 46 here and arithmetic stopped working.
    scale = model.logit_scale.exp()
    logits = scale * img @ txt.t()
    queued_logits = queued_match = None
    if queue is not None and len(queue.images):
        own = len(images) * cfg.captions_per_scene  # texts start with the images' own captions
        queued_logits = scale * queue.embeddings @ txt[:own].t()
        queued_match = match_matrix(labels, queue.images, texts[:own])
    contrastive = multi_positive_loss(
        logits, match_matrix(labels, images, texts), queued_logits, queued_match
    )
    aux = probe.loss(img, labels, images)
    kind = image_kind_loss(img, same_kind_matrix(labels, images))
    loss = contrastive + cfg.aux_weight * aux + cfg.image_weight * kind
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    with torch.no_grad():
        model.logit_scale.clamp_(max=math.log(cfg.max_logit_scale))
    if queue is not None:
        queue.push(img, images)
    return float(contrastive.detach()), float(aux.detach())


def train(cfg: TrainConfig, out_dir: Path, log=print) -> dict[str, object]:
    """Trains the demo model and saves it.

    Each step renders (or, with cfg.prerender, picks renders of) the scenes of
    pairs_per_batch (scene, near miss) pairs and scores the images against their own
    captions plus `bank` other captions of the pool, and the own captions against the
    last cfg.queue images as well.

    Args:
        cfg: Hyper-parameters (the seed fixes everything).
        out_dir: Where the model directory is written.
        log: Receives progress lines.

    Returns:
        A summary (config, seconds, final losses, weights digest).
    """
    started = time.time()
    precision = resolve_precision(cfg.precision)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    model_cfg = artifact.model_config(cfg.image_size, cfg.width)
    model = artifact.build_model(model_cfg)
    probe = AttributeProbe(model_cfg["embed_dim"])
    tokenizer = artifact.tokenizer(model_cfg)
    preprocess = artifact.transform(cfg.image_size)
    pool = build_pool(cfg)
    labels = encode_labels(pool)
    feats = cached_text_features(model, tokenizer, [ex.text for ex in pool])
    feats_std = feats.std(dim=0)
    log(f"encoded {len(pool)} captions in {time.time() - started:.0f}s")
    model.train()
    model.visual.to(memory_format=torch.channels_last)
    opt = _optimizer(torch.nn.ModuleList([model, probe]), cfg)
    # Held-back renders at the demo library's resolution, to log what the probe reads.
    check = np.arange(trained_scenes(cfg), scene_count(cfg))
    check_cfg = replace(cfg, short_min=128, short_max=320)
    check_pixels = _render_batch(
        [pool[i] for i in check], preprocess, np.random.default_rng([cfg.seed, 13]), check_cfg
    )
    losses = (float("nan"), float("nan"))
    queue = ImageQueue(cfg.queue, model_cfg["embed_dim"]) if cfg.queue else None
    renders = None
    if cfg.prerender:
        renders = prerender(pool, preprocess, cfg)
        log(
            f"rendered {renders.shape[0]} scenes x {renders.shape[1]} in "
            f"{time.time() - started:.0f}s"
        )
    batches = torch.utils.data.DataLoader(
        Batches(pool, preprocess, cfg, renders),
        batch_size=None,
        collate_fn=_as_is,
        num_workers=1,
        prefetch_factor=2,
    )
    for step, batch in enumerate(batches):
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, cfg)
        losses = _train_step(
            model, probe, labels, feats, feats_std, batch, opt, cfg, queue, precision
        )
        if step % 50 == 0 or step == cfg.steps - 1:
            model.eval()
            with torch.no_grad():
                read = probe.accuracy(_embed_images(model, check_pixels, "fp32"), labels, check)
            model.train()
            log(
                f"step {step} loss {losses[0]:.3f} probe {losses[1]:.3f} "
                f"scale {model.logit_scale.exp().item():.1f} t={time.time() - started:.0f}s "
                + " ".join(f"{k} {v:.2f}" for k, v in read.items())
            )
    model.eval()
    digest = artifact.save_model(model, out_dir, model_cfg)
    summary = {
        "config": asdict(cfg),
        "precision": precision,
        "seconds": round(time.time() - started, 1),
        "final_loss": round(losses[0], 4),
        "final_probe_loss": round(losses[1], 4),
        "sha256": digest,
        "torch": torch.__version__,
        "open_clip": open_clip.__version__,
    }
    (out_dir / "training.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary
