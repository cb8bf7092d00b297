"""The open_clip encoder: spec parsing, offline errors, checksums, normalised output, truncation."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from latent.errors import InvalidArgument, ModelUnavailable
from latent.models.encoders import OpenClipEncoder, TextTower, load_encoder
from latent.models.spec import ModelSpec
from tests.conftest import draw_image


def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline as HF_HUB_OFFLINE=1 makes it; the hub reads that variable only at import."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.mark.parametrize(
    ("spec", "kind", "target", "tag"),
    [
        ("ViT-B-32:laion2b_s34b_b79k", "pretrained", "ViT-B-32", "laion2b_s34b_b79k"),
        ("hf-hub:org/repo", "hf-hub", "org/repo", ""),
        ("local-dir:/models/x", "local-dir", "/models/x", ""),
        ("builtin:demo", "builtin", "demo", ""),
    ],
)
def test_spec_forms(spec: str, kind: str, target: str, tag: str) -> None:
    parsed = ModelSpec.parse(spec)
    assert (parsed.kind, parsed.target, parsed.tag) == (kind, target, tag)


@pytest.mark.parametrize("spec", ["ViT-B-32", "", "local-dir:", ":tag"])
def test_malformed_spec_is_refused(spec: str) -> None:
    with pytest.raises(InvalidArgument):
        ModelSpec.parse(spec)


def test_outputs_are_unit_float32(encoder) -> None:
    images = encoder.encode_images([draw_image(1), draw_image(2, (300, 40))])
    texts = encoder.encode_texts(["a red circle", "a blue square on grass"])
    for out in (images, texts):
        assert out.dtype == np.float32 and out.shape == (2, encoder.dim)
        np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(images[0], images[1])


def test_batches_give_the_same_vectors_as_one_by_one(tiny_model: str) -> None:
    enc = load_encoder(tiny_model, batch_size=2)
    images = [draw_image(i) for i in range(5)]
    together = enc.encode_images(images)
    alone = np.concatenate([enc.encode_images([im]) for im in images])
    np.testing.assert_allclose(together, alone, atol=1e-5)


MIXED_TEXTS = [
    "a",
    "a red circle",
    "a small blue square on green grass",
    "hello! world!",  # "!" is token 0, the CLIP tokenizer's pad id, inside a real text
]


@pytest.mark.parametrize(
    ("spec", "tower"),
    [("tiny", TextTower.CAUSAL), ("builtin:demo", TextTower.MASKED)],
)
def test_truncated_text_batches_match_the_full_context(
    spec: str, tower: TextTower, tiny_model: str
) -> None:
    enc = OpenClipEncoder(tiny_model if spec == "tiny" else spec)
    assert enc.text_tower is tower
    context = enc._tokenizer(["x"]).shape[1]
    longest = max(len(t.split()) for t in MIXED_TEXTS) + 2  # words + start + end tokens
    assert enc._tokenize(MIXED_TEXTS).shape[1] <= min(longest + 4, context - 1)
    too_long = " ".join(f"word{i}" for i in range(3 * context))
    for texts in (MIXED_TEXTS, [*MIXED_TEXTS, too_long]):
        cut = enc.encode_texts(texts)
        alone = np.concatenate([enc.encode_texts([t]) for t in texts])
        enc.truncate_text = False
        full = enc.encode_texts(texts)
        enc.truncate_text = True
        assert full.shape == (len(texts), enc.dim)
        assert np.all(np.sum(cut * full, axis=1) >= 0.99999)
        assert np.all(np.sum(alone * full, axis=1) >= 0.99999)


def test_hub_spec_offline_says_how_to_use_a_local_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    _offline(monkeypatch)
    with pytest.raises(ModelUnavailable, match="local-dir:"):
        load_encoder("hf-hub:assetsearch-test/does-not-exist")


def test_pretrained_tag_offline_says_how_to_use_a_local_copy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _offline(monkeypatch)
    with pytest.raises(ModelUnavailable, match="ASSETSEARCH_MODEL=local-dir"):
        load_encoder("ViT-B-32:laion2b_s34b_b79k")


def test_missing_local_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="does not exist"):
        load_encoder(f"local-dir:{tmp_path / 'nope'}")


def test_recorded_checksum_mismatch_is_refused(tmp_path: Path, tiny_model: str) -> None:
    copy = tmp_path / "model"
    shutil.copytree(tiny_model.removeprefix("local-dir:"), copy)
    (copy / "open_clip_model.safetensors.sha256").write_text("0" * 64 + "\n")
    with pytest.raises(ModelUnavailable, match="SHA-256"):
        load_encoder(f"local-dir:{copy}")


def test_loading_the_demo_model_prints_nothing() -> None:
    """No third-party progress bar or "LOAD REPORT" table reaches the user's terminal."""
    root = Path(__file__).resolve().parents[1]
    code = "from latent.models.encoders import load_encoder; load_encoder('builtin:demo')"
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert (run.stdout, run.stderr) == ("", "")


def test_a_corrupt_weights_file_is_a_clear_error(tmp_path: Path, tiny_model: str) -> None:
    copy = tmp_path / "model"
    shutil.copytree(tiny_model.removeprefix("local-dir:"), copy)
    (copy / "open_clip_model.safetensors.sha256").unlink(missing_ok=True)
    (copy / "open_clip_model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ModelUnavailable, match="cannot read the weights"):
        load_encoder(f"local-dir:{copy}")


def test_a_broken_config_is_a_clear_error(tmp_path: Path, tiny_model: str) -> None:
    copy = tmp_path / "model"
    shutil.copytree(tiny_model.removeprefix("local-dir:"), copy)
    (copy / "open_clip_config.json").write_text("{not json")
    with pytest.raises(ModelUnavailable, match="not an open_clip config"):
        load_encoder(f"local-dir:{copy}")
