"""``assetsearch serve``: serve the gRPC API until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from cli.options import catalog_flags, open_catalog, setting_flag, settings_from

# The settings `serve` takes as flags, in the order --help lists them.
SERVE_SETTINGS = (
    "host",
    "port",
    "threads",
    "auth",
    "insecure",
    "tls_cert",
    "tls_key",
    "tls_client_ca",
    "max_in_flight",
    "max_message_bytes",
    "shutdown_grace",
    "metrics_port",
    "log_format",
    "log_level",
    "library_roots",
    "instance",
)


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Add the ``serve`` command."""
    p = commands.add_parser("serve", help="serve the gRPC API")
    for field in SERVE_SETTINGS:
        setting_flag(p, field)
    catalog_flags(p)
    p.set_defaults(func=serve)


def serve(args: argparse.Namespace) -> int:
    """Serve gRPC until SIGINT or SIGTERM."""
    from service.server import AssetSearchServer

    settings = settings_from(args)
    server = AssetSearchServer(settings, open_catalog(settings))
    done = stop_event()
    port = server.start(wait_ready=False)
    print(f"assetsearch serving on {settings.host}:{port} (Ctrl-C to stop)", flush=True)
    done.wait()
    print("stopping...", file=sys.stderr)
    server.stop()
    return 0


def stop_event() -> threading.Event:
    """An event set by SIGINT or SIGTERM, for a command that runs until stopped."""
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    return done
