"""The deployment files: docker-compose.yml, its TLS overlay, the Dockerfile and the health probe.

Docker cannot run here, so the files are parsed and checked against what they must agree
with: the settings they set, the README that documents them, the pins of pyproject.toml and
the CLI command their healthchecks run (which is then run for real against a server).
"""

from __future__ import annotations

import re
import shlex
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from grpc_health.v1 import health_pb2

from cli.main import build_parser
from cli.main import main as cli_main
from latent.settings import Settings
from tests.running import running_server

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
COMPOSE_TLS = ROOT / "docker-compose.tls.yml"
DOCKERFILE = ROOT / "Dockerfile"
PREFIX = "ASSETSEARCH_"
VARIABLE = re.compile(r"\bASSETSEARCH_[A-Z0-9_]+\b")
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name} is not a mapping"
    return data


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """docker-compose.yml, parsed (YAML merge keys resolved)."""
    return _load(COMPOSE)


@pytest.fixture(scope="module")
def overlay() -> dict[str, Any]:
    """docker-compose.tls.yml, parsed."""
    return _load(COMPOSE_TLS)


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (INSTRUCTION, arguments), continuations joined."""
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def resolve(value: str) -> str:
    """A compose value with ``${VAR:-default}`` interpolations replaced by their defaults."""
    return INTERPOLATION.sub(lambda m: m.group(2) or "", value)


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a dict (compose allows a mapping or KEY=VALUE items)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): resolve(str(v)) for k, v in env.items()}


def all_strings(node: Any) -> Iterator[str]:
    """Every key and scalar of a parsed YAML tree, as text."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield str(k)
            yield from all_strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from all_strings(v)
    elif node is not None:
        yield str(node)


def variables(*texts: str) -> set[str]:
    """The ASSETSEARCH_* names the texts mention."""
    return {name for text in texts for name in VARIABLE.findall(text)}


def setting_of(variable: str) -> str:
    """The Settings field an ASSETSEARCH_* variable sets."""
    return variable.removeprefix(PREFIX).lower()


def container_ports(service: dict[str, Any]) -> set[int]:
    """The container side of each published port (``HOST:CONTAINER`` or ``CONTAINER``)."""
    out = set()
    for spec in service.get("ports", []):
        text = str(spec["target"] if isinstance(spec, dict) else spec)
        out.add(int(text.rsplit(":", 1)[-1].split("/")[0]))
    return out


def healthcheck_argv(service: dict[str, Any]) -> list[str]:
    """The healthcheck's command line without the CMD / CMD-SHELL word."""
    test = service["healthcheck"]["test"]
    if isinstance(test, str):
        return shlex.split(test)
    kind, *argv = test
    return shlex.split(" ".join(argv)) if kind == "CMD-SHELL" else argv


def server_port(argv: list[str]) -> int:
    """The port an ``assetsearch health`` command line asks (the settings' default if none)."""
    args = build_parser().parse_args(argv[1:])
    server = args.server or Settings.model_fields["server"].default
    return int(server.rsplit(":", 1)[1])


def test_services_and_their_wiring(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"db", "service", "indexer"} <= set(services)
    db, service, indexer = services["db"], services["service"], services["indexer"]

    assert db["image"].startswith("postgres:")
    assert any(str(v).endswith(":/var/lib/postgresql/data") for v in db["volumes"])
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    for dependent in (service, indexer):
        assert dependent["depends_on"]["db"]["condition"] == "service_healthy"

    # The service's catalog is that PostgreSQL, with its user, password and database.
    url = environment(service)["ASSETSEARCH_DATABASE_URL"]
    pg = environment(db)
    expected = (
        f"postgresql+psycopg://{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}"
        f"@db:5432/{pg['POSTGRES_DB']}"
    )
    assert url == expected
    assert environment(indexer)["ASSETSEARCH_DATABASE_URL"] == url

    env = environment(service)
    assert env["ASSETSEARCH_HOST"] == "0.0.0.0"
    assert env["ASSETSEARCH_AUTH"] == "required"
    assert "ASSETSEARCH_INSECURE" not in env
    data_dir = env["ASSETSEARCH_DATA_DIR"]
    assert any(str(v).endswith(f":{data_dir}") for v in service["volumes"]), "snapshots volume"
    roots = env["ASSETSEARCH_LIBRARY_ROOTS"].split(":")
    for root in roots:
        assert any(f":{root}:" in f"{v}:" for v in service["volumes"]), f"{root} not mounted"

    # The one-shot indexer: `assetsearch index /library` over the mounted library, once.
    assert indexer["command"][0] == "index"
    library = indexer["command"][1]
    assert any(str(v).split(":")[1] == library for v in indexer["volumes"])
    assert str(indexer["restart"]) == "no"
    assert indexer["profiles"]
    assert build_parser().parse_args(indexer["command"]).func.__name__ == "index"

    # Named volumes used by a service are declared.
    declared = set(compose["volumes"])
    for svc in services.values():
        for v in svc.get("volumes", []):
            source = str(v).split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"volume {source} is not declared"


def test_every_variable_is_a_setting_named_in_the_readme(
    compose: dict[str, Any], overlay: dict[str, Any]
) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    used = variables(
        *all_strings(compose), *all_strings(overlay), DOCKERFILE.read_text(encoding="utf-8")
    )
    assert len(used) >= 10, used  # the files really set the service up through settings
    unknown = sorted(v for v in used if setting_of(v) not in Settings.model_fields)
    assert not unknown, f"not Settings fields: {unknown}"
    undocumented = sorted(v for v in used if v not in readme)
    assert not undocumented, f"not named in README.md: {undocumented}"
    # ... and each value set is one the settings accept.
    for svc in (*compose["services"].values(), *overlay["services"].values()):
        env = {k: v for k, v in environment(svc).items() if k.startswith(PREFIX)}
        Settings(**{setting_of(k): v for k, v in env.items()})


def test_ports_match_the_settings(compose: dict[str, Any]) -> None:
    service = compose["services"]["service"]
    env = environment(service)
    grpc_port = int(env.get("ASSETSEARCH_PORT", Settings.model_fields["port"].default))
    metrics_port = int(env["ASSETSEARCH_METRICS_PORT"])
    assert {grpc_port, metrics_port} <= container_ports(service)
    assert server_port(healthcheck_argv(service)) == grpc_port


def test_healthchecks_ask_grpc_health(compose: dict[str, Any], overlay: dict[str, Any]) -> None:
    for svc in (compose["services"]["service"], overlay["services"]["service"]):
        argv = healthcheck_argv(svc)
        assert argv[:2] == ["assetsearch", "health"]
        args = build_parser().parse_args(argv[1:])
        assert args.func.__module__ == "cli.health"
    service = compose["services"]["service"]
    assert service["healthcheck"]["start_period"]  # a model loads before SERVING


def test_tls_overlay_uses_the_mounted_files(overlay: dict[str, Any]) -> None:
    service = overlay["services"]["service"]
    env = environment(service)
    mount = next(str(v).split(":")[1] for v in service["volumes"] if ":/tls" in str(v))
    for variable in ("ASSETSEARCH_TLS_CERT", "ASSETSEARCH_TLS_KEY", "ASSETSEARCH_TLS_CA"):
        assert env[variable].startswith(mount + "/"), variable
    # The probe trusts the CA and dials a name the certificate carries, not an IP address.
    host = build_parser().parse_args(healthcheck_argv(service)[1:]).server.rsplit(":", 1)[0]
    assert not re.fullmatch(r"[\d.]+", host)


def test_dockerfile_is_slim_unprivileged_and_pinned(dockerfile: list[tuple[str, str]]) -> None:
    froms = [args for word, args in dockerfile if word == "FROM"]
    assert len(froms) >= 2, "multi-stage: a build stage and a runtime stage"
    runtime_start = max(i for i, (word, _) in enumerate(dockerfile) if word == "FROM")
    runtime = dockerfile[runtime_start:]
    # The runtime stage copies the built environment, and installs nothing itself.
    assert any(w == "COPY" and a.startswith("--from=") for w, a in runtime)
    assert not any(w == "RUN" and "pip install" in a for w, a in runtime)

    users = [args for word, args in runtime if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    runs = " ".join(args for word, args in dockerfile if word == "RUN")
    assert "[dev]" not in runs and "dev]" not in runs
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pins = [d for d in project["project"]["dependencies"] if d.startswith(("torch", "torchvis"))]
    assert len(pins) == 2
    for pin in pins:
        assert pin in runs.split(), f"{pin} is not installed as pinned"
    # The light client before the server, as the server distribution requires.
    installs = [a for w, a in dockerfile if w == "RUN" and "pip install" in a]
    client = next(i for i, a in enumerate(installs) if "clients/python" in a)
    server = next(i for i, a in enumerate(installs) if re.search(r"pip install \.(\s|$)", a))
    assert client < server


def test_dockerfile_ports_healthcheck_and_sources(dockerfile: list[tuple[str, str]]) -> None:
    env: dict[str, str] = {}
    for word, args in dockerfile:
        if word == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", args)))
    exposed = {int(p.split("/")[0]) for w, a in dockerfile if w == "EXPOSE" for p in a.split()}
    assert int(env["ASSETSEARCH_PORT"]) == Settings.model_fields["port"].default
    assert {int(env["ASSETSEARCH_PORT"]), int(env["ASSETSEARCH_METRICS_PORT"])} <= exposed
    assert env["ASSETSEARCH_HOST"] == "0.0.0.0"
    for name in variables(*env):
        assert setting_of(name) in Settings.model_fields, name

    check = next(a for w, a in dockerfile if w == "HEALTHCHECK")
    assert "assetsearch health" in check
    assert "${ASSETSEARCH_PORT}" in check

    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".git", ".venv", "tests"} <= set(ignored)
    for word, args in dockerfile:
        if word == "COPY" and not args.startswith("--from="):
            *sources, _ = args.split()
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: no such path"
                assert source not in ignored, f"COPY {source} but .dockerignore drops it"


@pytest.fixture
def health_server(tmp_path: Path, encoder: Any) -> Iterator[Any]:
    """A real server over an empty SQLite catalog (the probe needs nothing more)."""
    settings = Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path}/c.db")
    with running_server(settings, encoder) as srv:
        yield srv


def test_health_command_probes_a_real_server(
    health_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    address = f"127.0.0.1:{health_server.port}"
    assert cli_main(["health", "--server", address]) == 0
    assert capsys.readouterr().out.strip() == "SERVING"
    service = "assetsearch.v1.SearchService"
    assert cli_main(["health", "--server", address, "--service", service]) == 0
    capsys.readouterr()

    # A server that says NOT_SERVING (loading, draining) fails the probe.
    health_server.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    assert cli_main(["health", "--server", address]) == 1
    assert capsys.readouterr().out.strip() == "NOT_SERVING"
    assert cli_main(["health", "--server", address, "--service", "no.such.Service"]) == 1
    capsys.readouterr()


def test_health_command_fails_without_a_server(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert cli_main(["health", "--server", f"127.0.0.1:{port}", "--timeout", "1"]) == 3
    assert "UNAVAILABLE" in capsys.readouterr().err


def test_health_command_over_mutual_tls(
    tmp_path: Path, encoder: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """The TLS overlay's probe: keys required, mutual TLS, dialled by the certificate's name."""
    from tests.test_tls import Authority

    ca = Authority.create(tmp_path, "deploy-ca")
    server_pem, probe = ca.issue("server", server=True), ca.issue("probe", server=False)
    settings = Settings(
        data_dir=tmp_path / "data",
        auth="required",
        tls_cert=server_pem.cert,
        tls_key=server_pem.key,
        tls_client_ca=ca.pem.cert,
    )
    with running_server(settings, encoder) as srv:
        address = ["--server", f"localhost:{srv.port}", "--timeout", "3"]
        trust = ["--tls-ca", str(ca.pem.cert)]
        mine = ["--tls-client-cert", str(probe.cert), "--tls-client-key", str(probe.key)]
        assert cli_main(["health", *address, *trust, *mine]) == 0  # no API key needed
        assert capsys.readouterr().out.strip() == "SERVING"
        assert cli_main(["health", *address, *trust]) == 3  # no client certificate
        assert cli_main(["health", *address]) == 3  # plaintext to a TLS port
        capsys.readouterr()
