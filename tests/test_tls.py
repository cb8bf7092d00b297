"""TLS and mutual TLS on the real server, with certificates made here (``cryptography``)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from assetsearch_client import SearchClient, Tls, Unauthenticated, Unavailable
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cli.main import main
from latent.errors import AssetSearchError
from latent.settings import Settings
from service.server import AssetSearchServer
from tests.running import start_server

DIM = 64  # the tiny model's


@dataclass(frozen=True)
class Pem:
    """A certificate and its key, as PEM files."""

    cert: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write(folder: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Pem:
    pem = Pem(folder / f"{stem}.crt", folder / f"{stem}.key")
    pem.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pem


def _builder(subject: str, issuer: str, public_key: Any) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
    )


@dataclass(frozen=True)
class Authority:
    """A CA that issues server and client certificates into one folder."""

    name: str
    folder: Path
    key: ec.EllipticCurvePrivateKey
    pem: Pem

    @classmethod
    def create(cls, folder: Path, name: str) -> Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            _builder(name, name, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        return cls(name, folder, key, _write(folder, name, cert, key))

    def issue(self, stem: str, server: bool) -> Pem:
        key = ec.generate_private_key(ec.SECP256R1())
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = _builder(stem, self.name, key.public_key()).add_extension(
            x509.ExtendedKeyUsage([usage]), critical=False
        )
        if server:
            names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return _write(self.folder, stem, builder.sign(self.key, hashes.SHA256()), key)


@dataclass(frozen=True)
class Certs:
    ca: Authority
    server: Pem
    client: Pem
    other_ca: Authority
    other_client: Pem


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    folder = tmp_path_factory.mktemp("pki")
    ca, other = Authority.create(folder, "test-ca"), Authority.create(folder, "other-ca")
    return Certs(
        ca,
        ca.issue("server", server=True),
        ca.issue("client", server=False),
        other,
        other.issue("stranger", server=False),
    )


def _serve(settings: Settings, encoder: Any, **tls: Any) -> AssetSearchServer:
    return start_server(settings.model_copy(update=tls), encoder)


@pytest.fixture
def sqlite_settings(tmp_path: Path, tiny_model: str) -> Settings:
    """Settings over SQLite (TLS is about the transport: one backend is enough)."""
    return Settings(data_dir=tmp_path / "data", model=tiny_model, poll_interval=0.1)


@pytest.fixture
def tls_server(sqlite_settings: Settings, encoder: Any, certs: Certs) -> Iterator:
    srv = _serve(sqlite_settings, encoder, tls_cert=certs.server.cert, tls_key=certs.server.key)
    yield srv
    srv.stop(grace=0)
    srv.catalog.close()


@pytest.fixture
def mtls_server(sqlite_settings: Settings, encoder: Any, certs: Certs) -> Iterator:
    srv = _serve(
        sqlite_settings,
        encoder,
        tls_cert=certs.server.cert,
        tls_key=certs.server.key,
        tls_client_ca=certs.ca.pem.cert,
        auth="required",
    )
    yield srv
    srv.stop(grace=0)
    srv.catalog.close()


def _client(server: AssetSearchServer, tls: Tls | None, key: str | None = None) -> SearchClient:
    return SearchClient(f"127.0.0.1:{server.port}", timeout=10, tls=tls, api_key=key)


def test_tls(tls_server: AssetSearchServer, certs: Certs) -> None:
    with _client(tls_server, Tls.from_files(certs.ca.pem.cert)) as client:
        assert client.list_collections() == []
    named = Tls.from_files(certs.ca.pem.cert, server_name="localhost")
    with _client(tls_server, named) as client:
        assert client.list_collections() == []
    with _client(tls_server, None) as plain, pytest.raises(Unavailable):
        plain.list_collections()
    with _client(tls_server, Tls.from_files(certs.other_ca.pem.cert)) as stranger:
        with pytest.raises(Unavailable):  # the server's certificate is not from this CA
            stranger.list_collections()


def test_mutual_tls(mtls_server: AssetSearchServer, certs: Certs) -> None:
    key = mtls_server.catalog.keys.create("read").key
    ca = certs.ca.pem.cert
    with _client(mtls_server, Tls.from_files(ca, certs.client.cert, certs.client.key), key) as c:
        assert c.list_collections() == []
    with _client(mtls_server, Tls.from_files(ca), key) as anonymous:
        with pytest.raises(Unavailable):  # no client certificate: the handshake fails
            anonymous.list_collections()
    stranger = Tls.from_files(ca, certs.other_client.cert, certs.other_client.key)
    with _client(mtls_server, stranger, key) as client, pytest.raises(Unavailable):
        client.list_collections()
    mine = Tls.from_files(ca, certs.client.cert, certs.client.key)
    with _client(mtls_server, mine) as keyless, pytest.raises(Unauthenticated):
        keyless.list_collections()  # a certificate is no API key


def test_tls_settings_errors(sqlite_settings: Settings, encoder: Any, certs: Certs) -> None:
    missing = certs.ca.folder / "missing.pem"
    cases = [
        ({"tls_cert": certs.server.cert}, "--tls-key is missing"),
        ({"tls_key": certs.server.key}, "--tls-cert is missing"),
        ({"tls_client_ca": certs.ca.pem.cert}, "needs --tls-cert and --tls-key"),
        ({"tls_cert": missing, "tls_key": certs.server.key}, "cannot read the TLS certificate"),
    ]
    for tls, message in cases:
        with pytest.raises(AssetSearchError, match=message):
            _serve(sqlite_settings, encoder, **tls)


def test_cli_search_over_mutual_tls_with_a_key(
    mtls_server: AssetSearchServer, certs: Certs, capsys: pytest.CaptureFixture[str]
) -> None:
    key = mtls_server.catalog.keys.create("write").key
    tls = Tls.from_files(certs.ca.pem.cert, certs.client.cert, certs.client.key)
    rows = np.random.default_rng(7).standard_normal((3, DIM)).astype(np.float32)
    with _client(mtls_server, tls, key) as client:
        client.import_vectors(["a", "b", "c"], rows, model_spec=mtls_server.settings.model)
    mtls_server.indexes.sync()
    flags = [
        "--server",
        f"127.0.0.1:{mtls_server.port}",
        "--tls-ca",
        str(certs.ca.pem.cert),
        "--tls-client-cert",
        str(certs.client.cert),
        "--tls-client-key",
        str(certs.client.key),
    ]
    assert main(["search", "a red circle", "--json", "--top-k", "3", *flags, "--api-key", key]) == 0
    hits = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {h["uri"] for h in hits} == {"vector:a", "vector:b", "vector:c"}
    assert main(["search", "a red circle", *flags]) == 1  # no key
    assert "UNAUTHENTICATED" in capsys.readouterr().err
