"""The one model loader: a model spec to an open_clip model, its image preprocess and tokenizer.

Local models (``builtin:`` and ``local-dir:``) load only safetensors weights, checked
against a recorded ``.sha256`` when one is present. A local directory may hold only the
trained part of a model whose text tower is a Hugging Face model shipped inside an
installed Python package: its config then names the tower as ``pkg:PACKAGE/SUBDIR`` and
the weights file leaves that tower out. Every failure is a ``ModelUnavailable`` that says
what to do; a download that fails says how to point at a local copy instead.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from latent.errors import ModelUnavailable
from latent.hashing import file_sha256
from latent.models.spec import ModelSpec

WEIGHTS_FILE = "open_clip_model.safetensors"
CONFIG_FILE = "open_clip_config.json"
DIGEST_SUFFIX = ".sha256"
PKG_PREFIX = "pkg:"
# Parameters allowed to be absent from a partial checkpoint: they come from the package.
PACKAGED_TOWER_PREFIX = "text.transformer."

OFFLINE_HINT = (
    "This machine could not download it (offline or air-gapped?). Put the checkpoint in a "
    "directory holding open_clip_config.json and open_clip_model.safetensors, then set "
    "ASSETSEARCH_MODEL=local-dir:/path/to/that/dir (or pass --model local-dir:/path)."
)

Tokenizer = Callable[[Sequence[str]], torch.Tensor]
Preprocess = Callable[[Image.Image], torch.Tensor]


@dataclass(frozen=True)
class LoadedModel:
    """An open_clip model in eval mode on the CPU, with what turns inputs into its tensors."""

    model: torch.nn.Module
    preprocess: Preprocess
    tokenizer: Tokenizer


def load_model(spec: str | ModelSpec) -> LoadedModel:
    """Load the model a spec names (see ``ModelSpec`` for the forms).

    Raises:
        InvalidArgument: the spec is malformed.
        ModelUnavailable: the model cannot be loaded; the message says why and what to do.
    """
    parsed = spec if isinstance(spec, ModelSpec) else ModelSpec.parse(spec)
    directory = parsed.local_dir()
    with _quiet_load():
        if directory is None:
            model, tokenizer = _load_remote(parsed)
        else:
            if not directory.is_dir():
                raise ModelUnavailable(f"model directory {directory} does not exist ({parsed.raw})")
            model, tokenizer = _load_local(directory)
    return LoadedModel(model.eval(), _preprocess(model), tokenizer)


def resolve_package_path(ref: str) -> str:
    """Turn ``pkg:PACKAGE/SUBDIR`` into the directory inside the installed package.

    Args:
        ref: A ``pkg:`` reference; other strings are returned unchanged.

    Returns:
        The absolute directory path.

    Raises:
        ModelUnavailable: the package is not installed or lacks the directory.
    """
    if not ref.startswith(PKG_PREFIX):
        return ref
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


class _DropRandomInitWarning(logging.Filter):
    """open_clip warns "initialized randomly" when load_weights=False; we load them after."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return "initialized randomly" not in message and "initialized partially" not in message


@contextmanager
def _quiet_load() -> Iterator[None]:
    """Mute the libraries' load-time chatter; our own checks report what matters."""
    quiet = _DropRandomInitWarning()
    logging.getLogger().addFilter(quiet)  # open_clip logs through the root logger
    try:
        with _quiet_transformers():
            yield
    finally:
        logging.getLogger().removeFilter(quiet)


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """transformers' progress bar and "LOAD REPORT" off for the load, then as they were.

    transformers prints the report (a table with terminal colour codes) for every key it
    skips: for the packaged MiniLM these are the ``pooler.*`` weights that open_clip never
    builds, as it pools the token states itself (see the demo MODEL_CARD). The weights
    that matter are checked key by key after the load. The verbosity is process-wide,
    so it is restored as soon as the load is done.
    """
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # no Hugging Face towers installed: nothing to mute
        yield
        return
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _check_recorded_digest(weights: Path) -> None:
    recorded = weights.with_name(weights.name + DIGEST_SUFFIX)
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


def _read_text_cfg(directory: Path) -> dict[str, Any]:
    config_path, weights = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    if not config_path.is_file() or not weights.is_file():
        raise ModelUnavailable(
            f"model directory {directory} needs {CONFIG_FILE} and {WEIGHTS_FILE} "
            "(only safetensors weights are loaded)"
        )
    try:
        text_cfg = json.loads(config_path.read_text())["model_cfg"]["text_cfg"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelUnavailable(
            f"{config_path} is not an open_clip config with model_cfg.text_cfg ({exc!r}); "
            "use the config saved with the checkpoint"
        ) from exc
    return dict(text_cfg)


def _load_local(directory: Path) -> tuple[torch.nn.Module, Tokenizer]:
    """Create a model from a local directory and load its safetensors weights."""
    import open_clip

    text_cfg, packaged = _resolve_text_cfg(_read_text_cfg(directory))
    weights = directory / WEIGHTS_FILE
    _check_recorded_digest(weights)
    try:
        model = open_clip.create_model(
            f"local-dir:{directory}",
            load_weights=False,
            text_cfg=text_cfg,
            pretrained_text=packaged,
        )
    except Exception as exc:  # open_clip raises bare ValueError/RuntimeError for every cause
        raise ModelUnavailable(f"cannot build the model of {directory}: {exc}") from exc
    _load_weights(model, weights, packaged)
    return model, _local_tokenizer(directory, text_cfg)


def _load_weights(model: torch.nn.Module, weights: Path, packaged: bool) -> None:
    """Load safetensors weights that must fit the model, but for a packaged tower."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        result = model.load_state_dict(load_file(str(weights)), strict=False)
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise ModelUnavailable(f"cannot read the weights in {weights}: {exc}") from exc
    missing = [
        k for k in result.missing_keys if not (packaged and k.startswith(PACKAGED_TOWER_PREFIX))
    ]
    if result.unexpected_keys or missing:
        raise ModelUnavailable(
            f"weights in {weights} do not fit the config: missing {missing[:3]}, "
            f"unexpected {list(result.unexpected_keys)[:3]}"
        )


def _local_tokenizer(directory: Path, text_cfg: dict[str, Any]) -> Tokenizer:
    import open_clip

    tokenizer_name = text_cfg.get("hf_tokenizer_name")
    context_length = text_cfg.get("context_length", 77)
    try:
        if tokenizer_name:
            return open_clip.tokenizer.HFTokenizer(tokenizer_name, context_length=context_length)
        return open_clip.get_tokenizer(f"local-dir:{directory}")
    except Exception as exc:  # tokenizers raise OSError, ValueError or their own errors
        raise ModelUnavailable(f"cannot load the tokenizer of {directory}: {exc}") from exc


def _load_remote(spec: ModelSpec) -> tuple[torch.nn.Module, Tokenizer]:
    """Create a hub or pretrained-tag model; downloading may fail offline."""
    import open_clip

    name = spec.raw if spec.kind == "hf-hub" else spec.target
    try:
        model = open_clip.create_model(name, pretrained=spec.tag or None, require_pretrained=True)
        tokenizer = open_clip.get_tokenizer(name)
    except Exception as exc:  # open_clip raises bare RuntimeError/OSError for every cause
        raise ModelUnavailable(f"cannot load model {spec.raw!r}: {exc}. {OFFLINE_HINT}") from exc
    return model, tokenizer


def _preprocess(model: torch.nn.Module) -> Preprocess:
    """The image transform the model was configured with (size, mean, resize mode...)."""
    import open_clip
    from open_clip.transform import PreprocessCfg, image_transform_v2

    cfg = PreprocessCfg(**open_clip.get_model_preprocess_cfg(model))
    transform: Preprocess = image_transform_v2(cfg, is_train=False)
    return transform
