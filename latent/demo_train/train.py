"""Contrastive (LiT-style) training of the demo model's vision tower on the demo world."""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from latent.demo_train import artifact, captions
from latent.demo_world import (
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


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run."""

    seed: int = 0
    steps: int = 1500
    pairs_per_batch: int = 128
    pool_pairs: int = 10000
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup: int = 60
    threads: int = 2
    short_min: int = 80
    short_max: int = 128


@dataclass(frozen=True)
class Example:
    """A scene and the caption drawn for it."""

    scene: Scene
    query: captions.Query
    text: str


def _perturb(scene: Scene, rng: np.random.Generator) -> Scene:
    """A near-miss of a scene: one attribute of one object (or the backdrop) changed."""
    what = int(rng.integers(5))
    if what == 4:
        return Scene(str(rng.choice([b for b in BACKGROUNDS if b != scene.background])),
                     scene.objects)
    i = int(rng.integers(len(scene.objects)))
    obj = scene.objects[i]
    vocab = (SHAPES, COLORS, SIZES, POSITIONS)[what]
    fields = [obj.shape, obj.color, obj.size, obj.position]
    taken = {o.position for o in scene.objects}
    options = [v for v in vocab if v != fields[what] and (what != 3 or v not in taken)]
    if what == 2 and len(scene.objects) > 1:
        options = [v for v in options if v != "large"]
    if not options:
        return sample_scene(rng)
    fields[what] = str(rng.choice(options))
    objects = list(scene.objects)
    objects[i] = DemoObject(*fields)
    return Scene(scene.background, tuple(objects))


def build_pool(cfg: TrainConfig) -> list[Example]:
    """Pairs of (scene, near-miss scene), each with its own training caption."""
    rng = np.random.default_rng([cfg.seed, 7])
    pool = []
    for _ in range(cfg.pool_pairs):
        scene = sample_scene(rng)
        for s in (scene, _perturb(scene, rng)):
            query = captions.sample_query(s, rng)
            pool.append(Example(s, query, captions.caption(query, captions.TRAIN_VOCAB, rng)))
    return pool


@torch.no_grad()
def encode_frozen_text(model: Any, tokenizer: Any, texts: list[str]) -> torch.Tensor:
    """Pooled outputs of the frozen text transformer (before the trainable projection)."""
    out = []
    for start in range(0, len(texts), 256):
        ids = tokenizer(texts[start:start + 256])
        mask = (ids != model.text.config.pad_token_id).long()
        # Padding is masked out of attention and pooling: trimming it changes nothing but cost.
        width = int(mask.sum(dim=1).max())
        ids, mask = ids[:, :width], mask[:, :width]
        hidden = model.text.transformer(input_ids=ids, attention_mask=mask)
        out.append(model.text.pooler(hidden, mask))
    return torch.cat(out)


def cached_text_features(model: Any, tokenizer: Any, texts: list[str]) -> torch.Tensor:
    """encode_frozen_text, memoised on disk by the captions' digest (the tower never changes)."""
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:24]
    path = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    path = path / "assetsearch" / "demo_train" / f"text-{digest}.safetensors"
    if path.exists():
        return load_file(str(path))["features"]
    feats = encode_frozen_text(model, tokenizer, texts)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"features": feats.contiguous()}, str(path))
    return feats


def _match_matrix(examples: list[Example]) -> torch.Tensor:
    """M[i, j] = 1 where caption j truly describes image i."""
    n = len(examples)
    m = torch.zeros(n, n)
    for j, ex in enumerate(examples):
        for i, other in enumerate(examples):
            if i == j or ex.query.matches(other.scene):
                m[i, j] = 1.0
    return m


def _render_batch(examples: list[Example], preprocess, rng: np.random.Generator,
                  cfg: TrainConfig) -> torch.Tensor:
    images = []
    for ex in examples:
        w, h = sample_size(rng, cfg.short_min, cfg.short_max)
        images.append(preprocess(render_scene(ex.scene, w, h, rng)))
    return torch.stack(images)


def multi_positive_loss(logits: torch.Tensor, match: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE where every true caption/image of a row counts as a positive."""
    img_target = match / match.sum(dim=1, keepdim=True)
    txt_target = match.t() / match.t().sum(dim=1, keepdim=True)
    loss_i = -(img_target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    loss_t = -(txt_target * F.log_softmax(logits.t(), dim=1)).sum(dim=1).mean()
    return (loss_i + loss_t) / 2


def _optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "logit_scale" in name else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6)


def _lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * progress))


def _train_step(model, batch, text_feats, preprocess, opt, rng, cfg) -> float:
    images = _render_batch(batch, preprocess, rng, cfg)
    img = F.normalize(model.visual(images), dim=-1)
    txt = F.normalize(model.text.proj(text_feats), dim=-1)
    logits = model.logit_scale.exp().clamp(max=100) * img @ txt.t()
    loss = multi_positive_loss(logits, _match_matrix(batch))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())


def train(cfg: TrainConfig, out_dir: Path, log=print) -> dict[str, object]:
    """Trains the demo model and saves it.

    Args:
        cfg: Hyper-parameters (the seed fixes everything).
        out_dir: Where the model directory is written.
        log: Receives progress lines.

    Returns:
        A summary (config, seconds, final loss, weights digest).
    """
    started = time.time()
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    model = artifact.build_model()
    tokenizer = open_clip.tokenizer.HFTokenizer(
        artifact.resolve_package_ref(artifact.TEXT_PACKAGE_REF),
        context_length=artifact.MODEL_CFG["text_cfg"]["context_length"])
    preprocess = open_clip.image_transform(
        artifact.IMAGE_SIZE, is_train=False, mean=artifact.PREPROCESS_CFG["mean"],
        std=artifact.PREPROCESS_CFG["std"], resize_mode="squash", interpolation="bilinear")
    pool = build_pool(cfg)
    feats = cached_text_features(model, tokenizer, [ex.text for ex in pool])
    log(f"encoded {len(pool)} captions in {time.time() - started:.0f}s")
    model.train()
    opt = _optimizer(model, cfg)
    rng = np.random.default_rng([cfg.seed, 11])
    loss = float("nan")
    for step in range(cfg.steps):
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, cfg)
        pair_ids = rng.choice(cfg.pool_pairs, cfg.pairs_per_batch, replace=False)
        idx = np.concatenate([2 * pair_ids, 2 * pair_ids + 1])
        loss = _train_step(model, [pool[i] for i in idx], feats[idx], preprocess, opt, rng, cfg)
        if step % 50 == 0 or step == cfg.steps - 1:
            log(f"step {step} loss {loss:.3f} scale {model.logit_scale.exp().item():.1f} "
                f"t={time.time() - started:.0f}s")
    model.eval()
    digest = artifact.save_model(model, out_dir)
    summary = {"config": asdict(cfg), "seconds": round(time.time() - started, 1),
               "final_loss": round(loss, 4), "sha256": digest,
               "torch": torch.__version__, "open_clip": open_clip.__version__}
    (out_dir / "training.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary
