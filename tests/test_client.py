"""The light client: imports nothing heavy, installs alone, and maps every status to its class."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import venv
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from assetsearch_client import errors
from assetsearch_client.errors import from_rpc_error

from indexer.pipeline import Indexer
from service.interceptors import ErrorInterceptor
from tests.conftest import draw_image

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "faiss", "sqlalchemy", "numpy", "latent", "service")
SERVER_ONLY_PACKAGES = {"torch", "faiss-cpu", "sqlalchemy"}


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("assetsearch_client", HEAVY),
        # The CLI converts its --filter flags with it.
        ("service.convert.filters", ("torch", "faiss", "sqlalchemy")),
    ],
)
def test_import_loads_nothing_heavy(tmp_path: Path, module: str, forbidden: tuple) -> None:
    code = (
        f"import json, sys, {module}\n"
        f"print(json.dumps([m for m in {forbidden!r} if m in sys.modules]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT if module.startswith("service") else tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == []


# -- every status the server sends comes back as its class ---------------------------------

_RAISED: dict[str, Exception] = {}


def _raise(request: bytes, context: grpc.ServicerContext) -> bytes:
    raise _RAISED[request.decode()]


@pytest.fixture(scope="module")
def failing() -> Iterator[grpc.Channel]:
    """A real server behind the service's error interceptor whose one method raises on demand."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=2), interceptors=[ErrorInterceptor()]
    )
    handler = grpc.method_handlers_generic_handler(
        "test.Failing", {"Raise": grpc.unary_unary_rpc_method_handler(_raise)}
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel
    server.stop(grace=0)


def _status_of(channel: grpc.Channel, exc: Exception) -> errors.AssetSearchError:
    _RAISED[type(exc).__name__] = exc
    call = channel.unary_unary("/test.Failing/Raise")
    with pytest.raises(grpc.RpcError) as raised:
        call(type(exc).__name__.encode(), timeout=10)
    return from_rpc_error(raised.value)


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (errors.InvalidArgument, errors.InvalidArgument),
        (errors.DimensionMismatch, errors.InvalidArgument),  # a status names the parent only
        (errors.NotFound, errors.NotFound),
        (errors.AlreadyExists, errors.AlreadyExists),
        (errors.FailedPrecondition, errors.FailedPrecondition),
        (errors.ModelUnavailable, errors.FailedPrecondition),
        (errors.Unauthenticated, errors.Unauthenticated),
        (errors.PermissionDenied, errors.PermissionDenied),
        (errors.ResourceExhausted, errors.ResourceExhausted),
        (errors.DeadlineExceeded, errors.DeadlineExceeded),
        (errors.Cancelled, errors.Cancelled),
        (errors.Unavailable, errors.Unavailable),
    ],
)
def test_each_status_comes_back_as_its_class(
    failing: grpc.Channel, raised: type[errors.AssetSearchError], expected: type
) -> None:
    got = _status_of(failing, raised(f"a {raised.__name__} happened"))
    assert type(got) is expected
    assert got.status == raised.status
    assert str(got) == f"a {raised.__name__} happened"
    assert got.from_server


def test_an_unexpected_server_error_is_internal(failing: grpc.Channel) -> None:
    got = _status_of(failing, ZeroDivisionError("boom"))
    assert type(got) is errors.AssetSearchError
    assert got.status == grpc.StatusCode.INTERNAL
    assert "ZeroDivisionError" in str(got)


# -- installed alone in a fresh venv, against a running server -----------------------------

_SCRIPT = """
import json, sys
from assetsearch_client import NotFound, SearchClient

address, image_path, vector_path = sys.argv[1:]
heavy = [m for m in ("torch", "faiss", "sqlalchemy", "latent", "service") if m in sys.modules]
with SearchClient(address) as client:
    client.wait_ready(30)
    by_text = client.search(text="a red circle", top_k=3)
    with open(image_path, "rb") as f:
        by_image = client.search(image=f.read(), top_k=1)
    with open(vector_path) as f:
        by_vector = client.search(vector=json.load(f), top_k=1)
    try:
        client.get_asset(987654321)
        missing = "found"
    except NotFound as exc:
        missing = type(exc).__name__
print(json.dumps({
    "text": len(by_text.hits),
    "image": by_image.hits[0].uri,
    "vector": by_vector.hits[0].asset_id,
    "missing": missing,
    "heavy": heavy,
}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_installed_alone_the_client_searches_a_server(
    tmp_path: Path, server, client, encoder, library: Path
) -> None:
    Indexer(server.catalog, lambda spec: encoder, "default", encoder.spec).run([library])
    server.indexes.sync()
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True, system_site_packages=False)
    python = str(env_dir / "bin" / "python")
    pip = [python, "-m", "pip", "--disable-pip-version-check"]
    client_dir = str(ROOT / "clients" / "python")
    subprocess.run([*pip, "install", "-q", client_dir], check=True, timeout=600)
    listed = subprocess.run(
        [*pip, "list", "--format=json"], check=True, capture_output=True, text=True
    )
    installed = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert "assetsearch-client" in installed
    assert not installed & SERVER_ONLY_PACKAGES

    image = library / "set1" / "img0001.png"
    buf = io.BytesIO()
    draw_image(1).save(buf, format="PNG")
    (tmp_path / "query.png").write_bytes(buf.getvalue())
    (target,) = client.search(image=buf.getvalue(), top_k=1).hits  # the in-tree client
    assert target.uri == image.resolve().as_uri()
    vector = server.catalog.asset_vector(target.asset_id, encoder.dim)
    (tmp_path / "vector.json").write_text(json.dumps(vector.tolist()))
    script = tmp_path / "search.py"
    script.write_text(_SCRIPT)
    ran = subprocess.run(
        [
            python,
            "-I",
            str(script),
            f"127.0.0.1:{server.port}",
            str(tmp_path / "query.png"),
            str(tmp_path / "vector.json"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    result = json.loads(ran.stdout)
    assert result == {
        "text": 3,
        "image": image.resolve().as_uri(),
        "vector": target.asset_id,
        "missing": "NotFound",
        "heavy": [],
    }
