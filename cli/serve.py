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
    "max_top_k",
    "max_terms",
    "max_expression_chars",
    "max_steps",
    "max_import_rows",
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
    """Serve gRPC until SIGINT or SIGTERM, then drain the calls in flight and exit 0.

    Logs go to stderr in ``--log-format`` at ``--log-level``. On the signal, health turns
    NOT_SERVING, new calls are refused with UNAVAILABLE, the calls in flight get
    ``--shutdown-grace`` seconds to finish, and the indexes are snapshotted.
    """
    from service.logs import configure_logging
    from service.server import AssetSearchServer

    settings = settings_from(args)
    configure_logging(settings)
    server = AssetSearchServer(settings, open_catalog(settings))
    done = stop_event()
    port = server.start(wait_ready=False)
    if server.metrics_port is not None:
        print(f"metrics on http://{settings.host}:{server.metrics_port}/metrics", flush=True)
    print(f"assetsearch serving on {settings.host}:{port} (Ctrl-C to stop)", flush=True)
    done.wait()
    print(f"stopping (up to {settings.shutdown_grace:g} s for calls in flight)...", file=sys.stderr)
    server.stop(settings.shutdown_grace)
    print("stopped", file=sys.stderr)
    return 0


def stop_event() -> threading.Event:
    """An event set by SIGINT or SIGTERM, for a command that runs until stopped."""
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    return done
