"""Encoders: open_clip models behind the ``Encoder`` protocol, named by a model spec.

The spec forms are in ``latent.models.spec``; ``latent.models.loader`` turns one into a
model, so this module only runs models: batched, in inference mode, one forward pass
at a time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image

from latent.models.loader import load_model

log = logging.getLogger(__name__)


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


class OpenClipEncoder:
    """An open_clip model on the CPU (or a given device), batched, in inference mode."""

    def __init__(self, spec: str, device: str = "cpu", batch_size: int = 32) -> None:
        """Load the model named by ``spec``.

        Raises:
            InvalidArgument: the spec is malformed.
            ModelUnavailable: the model cannot be loaded.
        """
        loaded = load_model(spec)
        self.spec = spec.strip()
        self.device = torch.device(device)
        self.batch_size = batch_size
        self._model: Any = loaded.model.to(self.device)  # open_clip's towers are untyped
        self._tokenizer = loaded.tokenizer
        self._preprocess = loaded.preprocess
        # torch modules are not documented as thread-safe for concurrent forward passes.
        self._lock = threading.Lock()
        self.dim = int(self.encode_texts(["probe"]).shape[1])

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Embed RGB images in batches; returns L2-normalised float32 rows."""
        return self._run(
            images,
            lambda chunk: torch.stack([self._preprocess(im) for im in chunk]),
            lambda batch: self._model.encode_image(batch),
        )

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts in batches; returns L2-normalised float32 rows."""
        return self._run(
            texts,
            lambda chunk: self._tokenizer(list(chunk)),
            lambda batch: self._model.encode_text(batch),
        )

    def _run(
        self,
        items: Sequence[Any],
        prepare: Callable[[Sequence[Any]], torch.Tensor],
        forward: Callable[[torch.Tensor], torch.Tensor],
    ) -> np.ndarray:
        if not items:
            return np.zeros((0, getattr(self, "dim", 0)), dtype=np.float32)
        out = []
        for start in range(0, len(items), self.batch_size):
            batch = prepare(items[start : start + self.batch_size]).to(self.device)
            with self._lock, torch.inference_mode():
                feats = forward(batch).float()
            out.append(torch.nn.functional.normalize(feats, dim=-1).cpu().numpy())
        return np.ascontiguousarray(np.concatenate(out), dtype=np.float32)


class EncoderCache:
    """Loads each model spec once per process; shared by the servicers."""

    def __init__(self, device: str = "cpu", batch_size: int = 32) -> None:
        self._device = device
        self._batch_size = batch_size
        self._encoders: dict[str, Encoder] = {}
        self._lock = threading.Lock()

    def put(self, encoder: Encoder) -> None:
        """Register an already loaded encoder under its spec."""
        with self._lock:
            self._encoders[encoder.spec] = encoder

    def get(self, spec: str) -> Encoder:
        """The encoder for ``spec``, loading it on first use."""
        with self._lock:
            if spec not in self._encoders:
                log.info("loading model %s", spec)
                self._encoders[spec] = OpenClipEncoder(spec, self._device, self._batch_size)
            return self._encoders[spec]


def load_encoder(spec: str, device: str = "cpu", batch_size: int = 32) -> Encoder:
    """Load the encoder named by ``spec`` (see ``latent.models.spec`` for the forms)."""
    return OpenClipEncoder(spec, device=device, batch_size=batch_size)
