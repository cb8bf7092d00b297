"""Writes the tiny open_clip model the tests load: fixed random weights, local-dir layout."""

import json
import sys
from pathlib import Path

import open_clip
import torch
from safetensors.torch import save_file

CONFIG = {
    "model_cfg": {
        "embed_dim": 64,
        "vision_cfg": {
            "image_size": 32,
            "layers": 1,
            "width": 64,
            "patch_size": 8,
            "head_width": 32,
        },
        "text_cfg": {
            "context_length": 16,
            "vocab_size": 49408,
            "width": 32,
            "heads": 2,
            "layers": 1,
        },
    },
    "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
}


def main(out: Path) -> None:
    """Create the model from its config with seed 0 and save config plus safetensors."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "open_clip_config.json").write_text(json.dumps(CONFIG, indent=2) + "\n")
    torch.manual_seed(0)
    model = open_clip.create_model(f"local-dir:{out}", load_weights=False)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / "open_clip_model.safetensors"))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "tiny-clip")
