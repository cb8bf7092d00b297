"""Encoders: open_clip models behind the ``Encoder`` protocol, named by a model spec.

The spec forms are in ``latent.models.spec``; ``latent.models.loader`` turns one into a
model, so this module only runs models: batched, in inference mode, one forward pass
at a time. Text batches run only as long as their longest real text (see ``TextTower``).
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any, Protocol

import numpy as np
import torch
from open_clip.hf_model import ClsLastHiddenStatePooler, ClsPooler, HFTextEncoder, MeanPooler
from open_clip.model import CLIP
from open_clip.transformer import text_global_pool
from PIL import Image

from latent.models.loader import load_model

log = logging.getLogger(__name__)

BatchHook = Callable[[str, str, int, float], None]
"""Told of each forward pass: (model spec, "image" or "text", items, seconds)."""


class BatchHooks:
    """Listeners of forward passes, held weakly: a listener that is gone stops being told.

    Metrics read encoder timings through this without ``latent`` knowing of them. A hook
    is a bound method or a callable object the caller keeps alive (a lambda would vanish
    at once); a hook that raises is logged and kept.
    """

    def __init__(self) -> None:
        self._refs: list[weakref.ref[Any]] = []
        self._lock = threading.Lock()

    def add(self, hook: BatchHook) -> None:
        """Tell ``hook`` of every forward pass from now on (while it lives)."""
        ref: weakref.ref[Any] = (
            weakref.WeakMethod(hook) if inspect.ismethod(hook) else weakref.ref(hook)
        )
        with self._lock:
            self._refs = [r for r in self._refs if r() is not None] + [ref]

    def __call__(self, spec: str, kind: str, items: int, seconds: float) -> None:
        """Tell every live hook of one forward pass."""
        for ref in self._refs:
            hook = ref()
            if hook is None:
                continue
            try:
                hook(spec, kind, items, seconds)
            except Exception:  # a listener's bug must not fail an embedding
                log.exception("encoder batch hook failed")


class Encoder(Protocol):
    """Turns images and texts into L2-normalised float32 vectors of one latent space."""

    spec: str
    dim: int

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Embed images; returns an array of shape (len(images), dim)."""
        ...

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts; returns an array of shape (len(texts), dim)."""
        ...


class TextTower(Enum):
    """How a text tower can be cut to the batch's real tokens without changing its output."""

    CAUSAL = "causal"  # CLIP's own tower: a token sees only those before it
    MASKED = "masked"  # an HF tower: pads are masked out of attention and pooling
    FULL = "full"  # anything else runs the whole context, as open_clip does


def classify_text_tower(model: Any) -> TextTower:
    """Classify an open_clip model's text tower (see ``TextTower``).

    A causal tower qualifies only when it pools a position at or before the end-of-text
    token ('argmax', 'eos', 'first'); 'last' would read a pad. An HF tower qualifies only
    with a pooler that honours the attention mask (mean, CLS).
    """
    if isinstance(model, CLIP):
        causal = model.attn_mask is not None
        pools_real_token = model.text_pool_type in ("argmax", "eos", "first")
        return TextTower.CAUSAL if causal and pools_real_token else TextTower.FULL
    tower = getattr(model, "text", None)
    exact_poolers = (MeanPooler, ClsPooler, ClsLastHiddenStatePooler)
    if isinstance(tower, HFTextEncoder) and isinstance(tower.pooler, exact_poolers):
        return TextTower.MASKED
    return TextTower.FULL


def real_length(tokens: torch.Tensor, pad_id: int) -> int:
    """Columns up to and including the last non-pad token of any row (at least 1)."""
    real = (tokens != pad_id).any(dim=0).nonzero()
    return int(real[-1]) + 1 if len(real) else 1


class OpenClipEncoder:
    """An open_clip model on the CPU (or a given device), batched, in inference mode.

    ``truncate_text`` (default on) runs a text batch only up to its longest real text
    instead of the whole context; results are the same (see ``TextTower``). It is a
    plain attribute so that a benchmark can time both ways on one loaded model.
    """

    def __init__(
        self, spec: str, device: str = "cpu", batch_size: int = 32, truncate_text: bool = True
    ) -> None:
        """Load the model named by ``spec``.

        Args:
            spec: The model spec (see ``latent.models.spec``).
            device: The torch device to run on.
            batch_size: Items per forward pass.
            truncate_text: Cut text batches to their real tokens (exact; see ``TextTower``).

        Raises:
            InvalidArgument: the spec is malformed.
            ModelUnavailable: the model cannot be loaded.
        """
        loaded = load_model(spec)
        self.spec = spec.strip()
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.truncate_text = truncate_text
        self._model: Any = loaded.model.to(self.device)  # open_clip's towers are untyped
        self._tokenizer = loaded.tokenizer
        self._preprocess = loaded.preprocess
        self.text_tower = classify_text_tower(self._model)
        # torch modules are not documented as thread-safe for concurrent forward passes.
        self._lock = threading.Lock()
        self.batch_hooks = BatchHooks()  # told of each forward pass (metrics)
        self.dim = int(self.encode_texts(["probe"]).shape[1])

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Embed RGB images in batches; returns L2-normalised float32 rows."""
        return self._run(
            images,
            lambda chunk: torch.stack([self._preprocess(im) for im in chunk]),
            lambda batch: self._model.encode_image(batch),
            "image",
        )

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts in batches; returns L2-normalised float32 rows."""
        return self._run(texts, self._tokenize, self._encode_text, "text")

    def _tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        """Token ids at the full context, cut to the batch's real length when that is exact."""
        tokens: torch.Tensor = self._tokenizer(list(texts))
        if not self.truncate_text or self.text_tower is TextTower.FULL:
            return tokens
        pad_id = 0  # open_clip's CLIP tokenizer pads with 0
        if self.text_tower is TextTower.MASKED:
            pad_id = int(self._model.text.config.pad_token_id)
        return tokens[:, : real_length(tokens, pad_id)]

    def _encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """The text tower on (possibly cut) tokens.

        A cut batch on the causal tower needs the positional embedding and causal mask
        cut to match, which ``CLIP.encode_text`` does not do, so the tower's parts run here
        in its order with both sliced. An HF tower builds its mask from the pads itself.
        """
        model = self._model
        width = tokens.shape[1]
        if self.text_tower is not TextTower.CAUSAL or width == model.context_length:
            return model.encode_text(tokens)
        cast = model.transformer.get_cast_dtype()
        x = model.token_embedding(tokens).to(cast) + model.positional_embedding[:width].to(cast)
        x = model.transformer(x, attn_mask=model.attn_mask[:width, :width])
        x = model.ln_final(x)
        eos = getattr(model, "text_eos_id", None)
        x = text_global_pool(x, tokens, model.text_pool_type, eos_token_id=eos)
        if isinstance(model.text_projection, torch.nn.Linear):
            return model.text_projection(x)
        return x if model.text_projection is None else x @ model.text_projection

    def _run(
        self,
        items: Sequence[Any],
        prepare: Callable[[Sequence[Any]], torch.Tensor],
        forward: Callable[[torch.Tensor], torch.Tensor],
        kind: str,
    ) -> np.ndarray:
        if not items:
            return np.zeros((0, getattr(self, "dim", 0)), dtype=np.float32)
        out = []
        for start in range(0, len(items), self.batch_size):
            batch = prepare(items[start : start + self.batch_size]).to(self.device)
            with self._lock, torch.inference_mode():
                started = time.perf_counter()
                feats = forward(batch).float()
                seconds = time.perf_counter() - started
            self.batch_hooks(self.spec, kind, len(batch), seconds)
            out.append(torch.nn.functional.normalize(feats, dim=-1).cpu().numpy())
        return np.ascontiguousarray(np.concatenate(out), dtype=np.float32)


class EncoderCache:
    """Loads each model spec once per process; shared by the servicers."""

    def __init__(self, device: str = "cpu", batch_size: int = 32) -> None:
        self._device = device
        self._batch_size = batch_size
        self._encoders: dict[str, Encoder] = {}
        self._lock = threading.Lock()
        self.batch_hooks = BatchHooks()  # told of the forward passes of every encoder here

    def put(self, encoder: Encoder) -> None:
        """Register an already loaded encoder under its spec."""
        with self._lock:
            self._encoders[encoder.spec] = self._hooked(encoder)

    def _hooked(self, encoder: Encoder) -> Encoder:
        """The encoder, telling this cache's hooks of its forward passes when it can."""
        hooks = getattr(encoder, "batch_hooks", None)
        if isinstance(hooks, BatchHooks):
            hooks.add(self.batch_hooks)
        return encoder

    def get(self, spec: str) -> Encoder:
        """The encoder for ``spec``, loading it on first use."""
        with self._lock:
            if spec not in self._encoders:
                log.info("loading model %s", spec)
                loaded = OpenClipEncoder(spec, self._device, self._batch_size)
                self._encoders[spec] = self._hooked(loaded)
            return self._encoders[spec]


def load_encoder(spec: str, device: str = "cpu", batch_size: int = 32) -> Encoder:
    """Load the encoder named by ``spec`` (see ``latent.models.spec`` for the forms)."""
    return OpenClipEncoder(spec, device=device, batch_size=batch_size)
