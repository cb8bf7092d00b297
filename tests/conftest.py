"""Shared fixtures: a real tiny open_clip model, SQLite and PostgreSQL catalogs, a live server."""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from PIL import Image, ImageDraw
from sqlalchemy.engine import make_url

from latent.catalog import Catalog
from latent.models.encoders import Encoder, load_encoder
from latent.settings import Settings

TINY_MODEL = f"local-dir:{Path(__file__).parent / 'assets' / 'tiny-clip'}"
POSTGRES_URL = os.environ.get(
    "ASSETSEARCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="session")
def tiny_model() -> str:
    """Spec of the tiny real open_clip model with fixed random weights."""
    return TINY_MODEL


@pytest.fixture(scope="session")
def encoder(tiny_model: str) -> Encoder:
    """The tiny model, loaded once per session."""
    return load_encoder(tiny_model)


def _postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    admin = make_url(POSTGRES_URL)
    name = f"assetsearch_test_{uuid.uuid4().hex[:12]}"
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        conn = psycopg.connect(dsn, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL at {POSTGRES_URL} is not reachable ({exc}); "
            "start it or deselect -m 'not postgres'"
        )
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A catalog URL, once for SQLite and once for PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.sqlite3'}"
    else:
        yield from _postgres_database()


@pytest.fixture
def catalog(database_url: str) -> Iterator[Catalog]:
    """A migrated, empty catalog on each backend."""
    cat = Catalog(database_url)
    yield cat
    cat.close()


@pytest.fixture
def settings(tmp_path: Path, database_url: str, tiny_model: str) -> Settings:
    """Settings pointing at a temp data dir, the test catalog and the tiny model."""
    return Settings(
        data_dir=tmp_path / "data", database_url=database_url, model=tiny_model, poll_interval=0.1
    )


def draw_image(seed: int, size: tuple[int, int] = (96, 80)) -> Image.Image:
    """A distinct picture for a seed: background colour plus a few random shapes."""
    rng = random.Random(seed)
    img = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(img)
    for _ in range(3):
        x0, y0 = rng.randrange(size[0] // 2), rng.randrange(size[1] // 2)
        box = (x0, y0, x0 + rng.randrange(10, size[0] // 2), y0 + rng.randrange(10, size[1] // 2))
        fill = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=fill)
    return img


def write_library(root: Path, count: int, start: int = 0) -> list[Path]:
    """Write ``count`` distinct images (PNG and JPEG, some in sub-folders)."""
    paths = []
    for i in range(start, start + count):
        folder = root / f"set{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / (f"img{i:04d}.png" if i % 2 else f"img{i:04d}.jpg")
        draw_image(i).save(path, quality=95)
        paths.append(path)
    return paths


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """A small library of 24 distinct images."""
    root = tmp_path / "library"
    write_library(root, 24)
    return root


@pytest.fixture
def server(settings: Settings, encoder: Encoder) -> Iterator:
    """The real gRPC server on a free port, over the test catalog, with the tiny model."""
    from latent.models.encoders import EncoderCache
    from service.server import AssetSearchServer

    encoders = EncoderCache()
    encoders.put(encoder)  # share the session's loaded model
    srv = AssetSearchServer(settings, Catalog(settings.resolved_database_url()), encoders)
    srv.start(host="127.0.0.1", port=0)
    yield srv
    srv.stop(grace=0)
    srv.catalog.close()


@pytest.fixture
def client(server) -> Iterator:
    """A client of the test server."""
    from assetsearch_client import SearchClient

    with SearchClient(f"127.0.0.1:{server.port}") as c:
        yield c
