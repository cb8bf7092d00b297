"""Model specs: the four forms a model is named by, parsed and checked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from latent.errors import InvalidArgument

MODELS_DIR = Path(__file__).parent
SCHEMES = ("builtin", "local-dir", "hf-hub")  # the kinds written SCHEME:TARGET


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec: its kind and the part after the scheme.

    The forms:

    * ``NAME:PRETRAINED`` -- an open_clip built-in with a pretrained tag (downloads weights);
    * ``hf-hub:ORG/REPO`` -- an open_clip checkpoint on the Hugging Face hub (downloads);
    * ``local-dir:PATH`` -- a directory with ``open_clip_config.json`` and a ``.safetensors``;
    * ``builtin:NAME`` -- a model bundled with assetsearch (``latent/models/NAME``), loaded
      through the same local-dir path.
    """

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
        for kind in SCHEMES:
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
