"""``assetsearch health``: ask a server's ``grpc.health.v1`` service; exit 0 when SERVING.

Made for container and orchestrator probes: it needs no API key (health stays open to
probes), speaks TLS when a CA is given, and prints the one status word it got.
"""

from __future__ import annotations

import argparse
import sys

import grpc

from cli.options import connect, setting_flag, settings_from
from latent.settings import Settings

EXIT_SERVING = 0
EXIT_NOT_SERVING = 1
EXIT_UNREACHABLE = 3
UNREACHABLE = "UNREACHABLE"  # the word for "no answer": not a grpc.health.v1 status


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Add the ``health`` command."""
    p = commands.add_parser(
        "health", help="check a server's grpc.health.v1 status (exit 0 when SERVING)"
    )
    p.add_argument(
        "--service",
        default="",
        help="service to ask about, e.g. assetsearch.v1.SearchService (default: the server)",
    )
    p.add_argument(
        "--timeout", type=float, default=3.0, help="seconds to wait for the answer (default 3)"
    )
    p.add_argument(
        "--server-name",
        help="name the server's TLS certificate carries, when it differs from the address",
    )
    for field in ("server", "tls_ca", "tls_client_cert", "tls_client_key"):
        setting_flag(p, field)
    p.set_defaults(func=health)


def health(args: argparse.Namespace) -> int:
    """Print the server's health status; 0 SERVING, 1 any other status, 3 no answer."""
    word, error = check(settings_from(args), args.service, args.timeout, args.server_name)
    if error:
        print(error, file=sys.stderr)
    else:
        print(word)
    if word == "SERVING":
        return EXIT_SERVING
    return EXIT_UNREACHABLE if word == UNREACHABLE else EXIT_NOT_SERVING


def check(
    settings: Settings, service: str = "", timeout: float = 3.0, server_name: str | None = None
) -> tuple[str, str | None]:
    """Ask ``settings.server`` for the health of ``service`` ("" is the whole server).

    Returns:
        (the status word, None) when the server answered: SERVING, NOT_SERVING, or
        SERVICE_UNKNOWN for a service it does not serve; (UNREACHABLE, why) otherwise.
    """
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    status = health_pb2.HealthCheckResponse.ServingStatus
    with connect(settings, timeout=timeout, server_name=server_name) as client:
        stub = health_pb2_grpc.HealthStub(client.channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as exc:
            code = exc.code()  # type: ignore[attr-defined] # a call's error is also a Call
            if code == grpc.StatusCode.NOT_FOUND:
                return status.Name(health_pb2.HealthCheckResponse.SERVICE_UNKNOWN), None
            return UNREACHABLE, f"{code.name}: {exc.details()}"  # type: ignore[attr-defined]
    return str(status.Name(reply.status)), None
