"""Procedural demo world: labelled images and videos of coloured shapes on backdrops."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SHAPES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "star",
    "cross",
    "diamond",
    "heart",
    "ring",
)
COLORS: tuple[str, ...] = (
    "red",
    "green",
    "blue",
    "yellow",
    "purple",
    "orange",
    "white",
    "black",
    "pink",
    "brown",
)
SIZES: tuple[str, ...] = ("small", "medium", "large")
POSITIONS: tuple[str, ...] = ("top left", "top right", "bottom left", "bottom right", "center")
BACKGROUNDS: tuple[str, ...] = ("gray", "sand", "sky", "grass", "night", "brick")

COLOR_RGB: dict[str, tuple[int, int, int]] = {
    "red": (215, 30, 35),
    "green": (40, 175, 55),
    "blue": (35, 75, 220),
    "yellow": (245, 220, 40),
    "purple": (130, 45, 175),
    "orange": (250, 135, 20),
    "white": (245, 245, 245),
    "black": (20, 20, 22),
    "pink": (250, 140, 190),
    "brown": (120, 70, 30),
}
BACKGROUND_RGB: dict[str, tuple[int, int, int]] = {
    "gray": (128, 128, 128),
    "sand": (214, 190, 140),
    "sky": (140, 190, 235),
    "grass": (70, 130, 50),
    "night": (18, 22, 55),
    "brick": (150, 70, 50),
}
# Fraction of the shorter image side covered by the object's bounding box.
SIZE_RANGE: dict[str, tuple[float, float]] = {
    "small": (0.16, 0.20),
    "medium": (0.28, 0.34),
    "large": (0.44, 0.52),
}
POSITION_XY: dict[str, tuple[float, float]] = {
    "top left": (0.25, 0.25),
    "top right": (0.75, 0.25),
    "bottom left": (0.25, 0.75),
    "bottom right": (0.75, 0.75),
    "center": (0.5, 0.5),
}
ASPECTS: tuple[tuple[int, int], ...] = ((1, 1), (4, 3), (3, 4), (16, 9), (3, 2), (2, 3))


@dataclass(frozen=True)
class DemoObject:
    """One shape in a scene."""

    shape: str
    color: str
    size: str
    position: str


@dataclass(frozen=True)
class Scene:
    """What an image shows: a background and one to three objects."""

    background: str
    objects: tuple[DemoObject, ...]

    def to_label(self) -> dict[str, object]:
        """Returns the JSON-ready label (background and object list)."""
        return {"background": self.background, "objects": [asdict(o) for o in self.objects]}


@dataclass
class Segment:
    """A stretch of a video during which the scene is constant."""

    start: float
    end: float
    objects: list[DemoObject] = field(default_factory=list)


def _pick(rng: np.random.Generator, items: Sequence[str]) -> str:
    return items[int(rng.integers(len(items)))]


def sample_scene(rng: np.random.Generator) -> Scene:
    """Draws a random scene: mostly one object, sometimes two or three.

    Args:
        rng: The random generator to draw from.

    Returns:
        The scene; objects of a multi-object scene sit at distinct positions.
    """
    count = int(rng.choice([1, 2, 3], p=[0.75, 0.17, 0.08]))
    positions = [POSITIONS[int(i)] for i in rng.permutation(len(POSITIONS))[:count]]
    sizes = SIZES if count == 1 else SIZES[:2]
    objects = tuple(
        DemoObject(_pick(rng, SHAPES), _pick(rng, COLORS), _pick(rng, sizes), pos)
        for pos in positions
    )
    return Scene(_pick(rng, BACKGROUNDS), objects)


def _polygon(shape: str) -> list[tuple[float, float]]:
    """Returns the outline of a shape in unit coordinates ([-1, 1] box)."""
    if shape in ("square",):
        return [(-0.85, -0.85), (0.85, -0.85), (0.85, 0.85), (-0.85, 0.85)]
    if shape == "triangle":
        return [(0.0, -0.95), (0.95, 0.8), (-0.95, 0.8)]
    if shape == "diamond":
        return [(0.0, -1.0), (0.62, 0.0), (0.0, 1.0), (-0.62, 0.0)]
    if shape == "star":
        return [
            (
                (1.0 if k % 2 == 0 else 0.42) * math.sin(k * math.pi / 5),
                -(1.0 if k % 2 == 0 else 0.42) * math.cos(k * math.pi / 5),
            )
            for k in range(10)
        ]
    if shape == "cross":
        a, b = 0.3, 0.95
        return [
            (-a, -b),
            (a, -b),
            (a, -a),
            (b, -a),
            (b, a),
            (a, a),
            (a, b),
            (-a, b),
            (-a, a),
            (-b, a),
            (-b, -a),
            (-a, -a),
        ]
    if shape == "heart":
        pts = []
        for k in range(48):
            t = 2 * math.pi * k / 48
            x = 16 * math.sin(t) ** 3
            y = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
            pts.append((x / 17.0, -(y + 2.5) / 15.0))
        return pts
    raise ValueError(f"no polygon for shape {shape!r}")


def _shape_mask(shape: str, px: int, angle: float) -> Image.Image:
    """Renders an anti-aliased mask of a shape in a px-by-px box."""
    big = 2 * px
    mask = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(mask)
    r = big / 2 - 1
    if shape in ("circle", "ring"):
        draw.ellipse((1, 1, big - 2, big - 2), fill=255)
        if shape == "ring":
            inner = 0.55 * r
            draw.ellipse((r - inner, r - inner, r + inner, r + inner), fill=0)
    else:
        c, s = math.cos(angle), math.sin(angle)
        pts = [(r + r * (x * c - y * s), r + r * (x * s + y * c)) for x, y in _polygon(shape)]
        draw.polygon(pts, fill=255)
    return mask.resize((px, px), Image.Resampling.BILINEAR)


def _background(name: str, w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """Paints a background (flat, gradient or textured) as a float HxWx3 array."""
    base = np.array(BACKGROUND_RGB[name], dtype=np.float32) + rng.normal(0, 6, 3)
    img = np.broadcast_to(base, (h, w, 3)).copy()
    ys = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    xs = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :, None]
    if name == "sky":
        img = img * (1.12 - 0.25 * ys)
    elif name == "sand":
        img = img + 10 * np.sin(xs * rng.uniform(8, 14) + ys * rng.uniform(18, 26))
        img = img + 7 * rng.standard_normal((h, w, 1), dtype=np.float32)
    elif name == "grass":
        blades = rng.standard_normal((h, w, 1), dtype=np.float32)
        img = img * (1 + 0.18 * blades * np.array([0.6, 1.0, 0.5], dtype=np.float32))
    elif name == "night":
        stars = rng.random((h, w, 1), dtype=np.float32) > 0.996
        img = np.where(stars, 230.0, img)
    elif name == "brick":
        img = _bricks(img, w, h, rng)
    return img


def _bricks(img: np.ndarray, w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """Draws mortar lines of a brick wall over a brick-coloured base."""
    rows = int(rng.integers(7, 11))
    row_h = h / rows
    yy = np.arange(h)[:, None]
    xx = np.arange(w)[None, :]
    row = (yy // row_h).astype(int)
    brick_w = 2.2 * row_h
    offset = (row % 2) * brick_w / 2
    line = max(1.0, row_h * 0.12)
    mortar = ((yy % row_h) < line) | (((xx + offset) % brick_w) < line)
    shade = 1 + 0.08 * np.sin(row * 3.7 + ((xx + offset) // brick_w) * 1.3)
    img = img * shade[..., None]
    return np.where(mortar[..., None], np.array([200, 195, 185], dtype=np.float32), img)


def _paste_object(canvas: Image.Image, obj: DemoObject, rng: np.random.Generator) -> None:
    """Draws one object onto the canvas, with size, position, colour and tilt jitter."""
    w, h = canvas.size
    side = min(w, h)
    px = max(8, int(side * rng.uniform(*SIZE_RANGE[obj.size])))
    cx, cy = POSITION_XY[obj.position]
    x = int(cx * w + rng.uniform(-0.04, 0.04) * w - px / 2)
    y = int(cy * h + rng.uniform(-0.04, 0.04) * h - px / 2)
    angle = rng.uniform(-0.2, 0.2)
    rgb = np.clip(np.array(COLOR_RGB[obj.color]) + rng.normal(0, 8, 3), 0, 255).astype(int)
    fill = Image.new("RGB", (px, px), tuple(int(v) for v in rgb))
    canvas.paste(fill, (x, y), _shape_mask(obj.shape, px, angle))


def render_scene(scene: Scene, width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """Renders a scene to an RGB image with lighting variation and sensor noise.

    Args:
        scene: What to draw.
        width: Image width in pixels.
        height: Image height in pixels.
        rng: Source of the jitter, lighting and noise.

    Returns:
        The rendered RGB image.
    """
    bg = _background(scene.background, width, height, rng)
    canvas = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8), "RGB")
    for obj in scene.objects:
        _paste_object(canvas, obj, rng)
    arr = np.asarray(canvas, dtype=np.float32)
    light = rng.uniform(0.88, 1.1)
    tilt = rng.uniform(-0.08, 0.08) * np.linspace(-1, 1, width, dtype=np.float32)[None, :, None]
    noise = rng.uniform(1, 6) * rng.standard_normal((height, width, 1), dtype=np.float32)
    arr = arr * (light + tilt) + noise
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def sample_size(
    rng: np.random.Generator, short_min: int = 128, short_max: int = 320
) -> tuple[int, int]:
    """Draws an image size with a random aspect ratio and short side in the given range."""
    a, b = ASPECTS[int(rng.integers(len(ASPECTS)))]
    short = int(rng.integers(short_min, short_max + 1))
    long = int(round(short * max(a, b) / min(a, b)))
    return (long, short) if a >= b else (short, long)


def render_labelled_image(
    rng: np.random.Generator, short_min: int = 128, short_max: int = 320
) -> tuple[Image.Image, Scene]:
    """Samples a scene and renders it in memory (used by the demo model's trainer).

    Args:
        rng: The random generator to draw from.
        short_min: Smallest short side in pixels.
        short_max: Largest short side in pixels.

    Returns:
        The image and the scene it shows.
    """
    scene = sample_scene(rng)
    width, height = sample_size(rng, short_min, short_max)
    return render_scene(scene, width, height, rng), scene


def _encode_image(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    if fmt == "jpg":
        img.save(buf, format="JPEG", quality=90)
    else:
        img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _video_segments(
    scene: Scene, rng: np.random.Generator, duration: float
) -> tuple[str, list[Segment]]:
    """Plans a two-part video: the object moves, changes colour or changes shape midway."""
    obj = scene.objects[0]
    change = _pick(rng, ("move", "color", "shape"))
    if change == "move":
        other = [p for p in POSITIONS if p != obj.position]
        after = DemoObject(obj.shape, obj.color, obj.size, _pick(rng, other))
    elif change == "color":
        after = DemoObject(
            obj.shape, _pick(rng, [c for c in COLORS if c != obj.color]), obj.size, obj.position
        )
    else:
        after = DemoObject(
            _pick(rng, [s for s in SHAPES if s != obj.shape]), obj.color, obj.size, obj.position
        )
    mid = duration / 2
    return change, [Segment(0.0, mid, [obj]), Segment(mid, duration, [after])]


def _video_frames(
    background: str,
    segments: list[Segment],
    size: tuple[int, int],
    fps: int,
    rng: np.random.Generator,
) -> list[Image.Image]:
    """Renders the frames of a planned video (same backdrop seed for every frame)."""
    frames = []
    bg_seed = int(rng.integers(2**31))
    duration = segments[-1].end
    for i in range(int(round(duration * fps))):
        t = i / fps
        seg = next(s for s in segments if s.start <= t < s.end)
        frame_rng = np.random.default_rng([bg_seed, i])
        frames.append(render_scene(Scene(background, tuple(seg.objects)), *size, frame_rng))
    return frames


def _encode_mp4(frames: list[Image.Image], fps: int) -> bytes:
    import av

    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4", options={"fflags": "+bitexact"}) as out:
        # libx264's output depends on encoder state left by earlier runs in the process;
        # ffmpeg's native MPEG-4 Part 2 encoder is byte-for-byte repeatable.
        stream = out.add_stream("mpeg4", rate=fps)
        stream.width, stream.height = frames[0].size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.options = {"threads": "1", "qscale": "4"}
        stream.codec_context.flags |= av.codec.context.Flags.bitexact
        for i, img in enumerate(frames):
            frame = av.VideoFrame.from_image(img).reformat(format="yuv420p")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def _encode_gif(frames: list[Image.Image], fps: int) -> bytes:
    buf = io.BytesIO()
    frames[0].save(
        buf, format="GIF", save_all=True, append_images=frames[1:], duration=int(1000 / fps), loop=0
    )
    return buf.getvalue()


def _make_video(index: int, seed: int) -> tuple[str, bytes, dict[str, object]]:
    """Builds one video file (MP4 for even indexes, GIF for odd) and its label."""
    rng = np.random.default_rng([seed, 1, index])
    base = sample_scene(rng)
    scene = Scene(base.background, base.objects[:1])
    fps, duration = 10, float(rng.choice([2.0, 3.0, 4.0]))
    change, segments = _video_segments(scene, rng, duration)
    size = (256, 192) if index % 3 else (192, 192)
    frames = _video_frames(scene.background, segments, size, fps, rng)
    ext = "mp4" if index % 2 == 0 else "gif"
    data = _encode_mp4(frames, fps) if ext == "mp4" else _encode_gif(frames, fps)
    label = scene.to_label() | {
        "change": change,
        "duration": duration,
        "segments": [
            {"start": s.start, "end": s.end, "objects": [asdict(o) for o in s.objects]}
            for s in segments
        ],
    }
    return f"videos/clip_{index:04d}.{ext}", data, label


def _make_image(index: int, seed: int) -> tuple[str, bytes, dict[str, object]]:
    """Builds one image file (PNG or JPEG) and its label."""
    rng = np.random.default_rng([seed, 0, index])
    img, scene = render_labelled_image(rng)
    ext = "jpg" if rng.random() < 0.5 else "png"
    rel = f"images/{index // 100:03d}/img_{index:05d}.{ext}"
    return rel, _encode_image(img, ext), scene.to_label()


def generate_library(
    out_dir: Path,
    count: int = 500,
    seed: int = 0,
    videos: int = 0,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Writes a labelled demo library: images, videos and labels.jsonl.

    The same arguments give a byte-identical library: every file draws from its
    own random stream derived from (seed, kind, index).

    Args:
        out_dir: Directory to write into (created if missing).
        count: Number of images.
        seed: Seed of the whole library.
        videos: Number of videos (alternating MP4 and animated GIF).
        progress: Called with the number of files written so far.

    Returns:
        The number of media files written (labels.jsonl not counted).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    makers = [(_make_image, i) for i in range(count)] + [(_make_video, i) for i in range(videos)]
    with open(out_dir / "labels.jsonl", "w", encoding="utf-8") as labels:
        for done, (make, index) in enumerate(makers, start=1):
            rel, data, label = make(index, seed)
            path = out_dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            labels.write(json.dumps({"file": rel} | label) + "\n")
            if progress is not None:
                progress(done)
    return len(makers)
