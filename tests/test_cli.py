"""The ``assetsearch`` console script, run as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cli.main import build_parser
from cli.options import BOUND, settings_from


def cli(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"assetsearch {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        )
    return result


@pytest.fixture
def env(settings) -> dict[str, str]:
    return {
        **os.environ,
        "ASSETSEARCH_DATA_DIR": str(settings.data_dir),
        "ASSETSEARCH_DATABASE_URL": settings.resolved_database_url(),
        "ASSETSEARCH_MODEL": settings.model,
    }


def _commands(parser) -> list[list[str]]:
    """Every sub-command path of a parser, e.g. ["db", "upgrade"]."""
    out: list[list[str]] = []
    if parser._subparsers is None:
        return out
    for action in parser._subparsers._group_actions:
        for name, sub in action.choices.items():
            out.append([name])
            out.extend([name, *rest] for rest in _commands(sub))
    return out


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    commands = _commands(parser)
    assert {"index", "serve", "search", "status", "db", "demo-library"} <= {c[0] for c in commands}
    for command in commands:
        with pytest.raises(SystemExit) as exit_:
            parser.parse_args([*command, "--help"])
        assert exit_.value.code == 0
        assert "usage: assetsearch" in capsys.readouterr().out


def test_index_status_and_search(env: dict[str, str], library: Path, server) -> None:
    (library / "bad.png").write_bytes(b"garbage")
    out = cli("index", str(library), env=env).stdout.strip().splitlines()[-1]
    assert out.startswith("indexed 24, unchanged 0, failed 1, deleted 0 in ")
    again = cli("index", str(library), env=env).stdout.strip().splitlines()[-1]
    assert again.startswith("indexed 0, unchanged 25, failed 0, deleted 0 in ")

    status = json.loads(cli("status", "--json", env=env).stdout)
    counts = status["collections"]["default"]
    assert (counts["indexed"], counts["failed"], counts["deleted"]) == (24, 1, 0)
    assert counts["model_spec"] == env["ASSETSEARCH_MODEL"] and counts["dim"] == 64

    server.indexes.sync()
    address = f"127.0.0.1:{server.port}"
    image = sorted(library.rglob("*.jpg"))[0]
    lines = cli(
        "search", "--image", str(image), "--server", address, "--json", "--top-k", "3", env=env
    ).stdout
    hits = [json.loads(line) for line in lines.splitlines()]
    assert len(hits) == 3 and hits[0]["uri"] == image.as_uri()
    assert {"asset_id", "uri", "score", "media_type"} <= hits[0].keys()

    like = cli(
        "search", "--like", str(hits[0]["asset_id"]), "--server", address, "--json", env=env
    ).stdout
    assert json.loads(like.splitlines()[0])["asset_id"] == hits[0]["asset_id"]
    text = cli("search", "a small blue star", "--server", address, env=env).stdout
    assert len(text.strip().splitlines()) == 10

    vector = library.parent / "q.npy"
    np.save(vector, np.ones(64, np.float32))
    assert cli(
        "search", "--vector-file", str(vector), "--server", address, "--json", env=env
    ).stdout


def test_user_errors_are_one_clear_line(
    env: dict[str, str], tmp_path: Path, library: Path, server
) -> None:
    cli("index", str(library), env=env)
    server.indexes.sync()
    missing = cli("index", str(tmp_path / "nope"), env=env, check=False)
    assert (
        missing.returncode == 2
        and "does not exist" in missing.stderr
        and "Traceback" not in missing.stderr
    )
    address = f"127.0.0.1:{server.port}"
    unknown = cli("search", "--like", "999999", "--server", address, env=env, check=False)
    assert unknown.returncode == 1 and "NOT_FOUND" in unknown.stderr
    both = cli("search", "text", "--like", "1", "--server", address, env=env, check=False)
    assert both.returncode == 2 and "exactly one" in both.stderr
    np.save(tmp_path / "short.npy", np.ones(3, np.float32))
    wrong = cli(
        "search",
        "--vector-file",
        str(tmp_path / "short.npy"),
        "--server",
        address,
        env=env,
        check=False,
    )
    assert wrong.returncode == 1 and "INVALID_ARGUMENT" in wrong.stderr and "64" in wrong.stderr


def test_db_upgrade_on_an_empty_database(env: dict[str, str]) -> None:
    out = cli("db", "upgrade", env=env).stdout
    assert "at revision 0004" in out


def test_filtered_and_paged_search(env: dict[str, str], server, tmp_path: Path) -> None:
    rows = np.random.default_rng(1).standard_normal((30, 8)).astype(np.float32)
    np.save(tmp_path / "v.npy", rows)
    (tmp_path / "ids.txt").write_text("".join(f"r{i}\n" for i in range(30)))
    (tmp_path / "meta.jsonl").write_text(
        "".join(json.dumps({"id": f"r{i}", "even": i % 2 == 0}) + "\n" for i in range(30))
    )
    vectors, ids, meta = (str(tmp_path / f) for f in ("v.npy", "ids.txt", "meta.jsonl"))
    cli("import-vectors", vectors, "--ids", ids, "--metadata", meta, "--collection", "ext", env=env)
    server.indexes.sync()
    np.save(tmp_path / "q.npy", rows[0])
    query = ["search", "--vector-file", str(tmp_path / "q.npy"), "--collection", "ext"]
    query += ["--server", f"127.0.0.1:{server.port}", "--top-k", "4", "--filter", "meta.even=true"]
    lines = cli(*query, "--pages", "0", "--json", env=env).stdout.splitlines()
    every = [json.loads(line) for line in lines]
    assert [h["rank"] for h in every] == list(range(1, 16))
    assert len({h["uri"] for h in every}) == 15 and every[0]["uri"] == "vector:r0"
    assert all(int(h["uri"][8:]) % 2 == 0 for h in every)
    first = cli(*query, env=env)
    token = first.stderr.split("more: --page-token ")[1].split()[0]
    second = cli(*query, "--page-token", token, "--json", env=env)
    assert [json.loads(line)["uri"] for line in second.stdout.splitlines()] == [
        h["uri"] for h in every[4:8]
    ]
    assert "more: --page-token " in second.stderr
    bad = cli(*query[:-1], "meta.even=tru e", env=env, check=False)
    assert bad.returncode == 2 and "filter column 15: unexpected 'e'" in bad.stderr


# Runs one command in a fresh interpreter and reports, from inside it, which heavy parts loaded.
LIGHT_PROBE = """
import sys
from cli.main import main
rc = main(sys.argv[1:])
heavy = [m for m in ("torch", "faiss", "sqlalchemy", "open_clip") if m in sys.modules]
print("probe:", rc, " ".join(heavy), file=sys.stderr)
"""


def test_client_commands_load_no_heavy_parts(
    env: dict[str, str], library: Path, server, tmp_path: Path
) -> None:
    cli("index", str(library), env=env)
    server.indexes.sync()
    address = ["--server", f"127.0.0.1:{server.port}"]
    commands = [
        ["search", "a red circle"],
        ["search", "a red circle", "--filter", "media=image", "--json"],
        ["interpolate", '"red"', '"blue"', "--steps", "2"],
        ["direction", "create", "warm", "--positive", "red", "--negative", "blue"],
        ["direction", "list"],
        ["traverse", '"red"', "--direction", "warm", "--steps", "2"],
        ["variations", '"red"', "-n", "2"],
        ["map", "--out", str(tmp_path / "map.png")],
    ]
    for command in commands:
        result = subprocess.run(
            [sys.executable, "-c", LIGHT_PROBE, *command, *address],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        probe = result.stderr.strip().splitlines()[-1]
        assert probe == "probe: 0", f"assetsearch {' '.join(command)}: {result.stderr}"
    assert (tmp_path / "map.png").stat().st_size > 0


def _bound_flags(parser) -> list[tuple[str, str]]:
    """(field, help) of every setting-bound flag of every command."""
    out = []
    for command in _commands(parser):
        sub = parser
        for name in command:
            sub = next(a for a in sub._subparsers._group_actions).choices[name]
        for action in sub._actions:
            if action.dest in (sub.get_default(BOUND) or ()):
                out.append((action.dest, action.help))
    return out


def test_setting_flags_name_their_variable_and_default() -> None:
    bound = _bound_flags(build_parser())
    fields = {field for field, _ in bound}
    assert {"server", "data_dir", "database_url", "host", "port", "threads"} <= fields
    assert {"model", "collection", "batch_size"} <= fields
    for field, text in bound:
        assert f"(ASSETSEARCH_{field.upper()}" in text, text
    assert ("server", "HOST:PORT of the server the client commands call "
            "(ASSETSEARCH_SERVER, default '127.0.0.1:50051')") in bound  # fmt: skip


def test_flags_override_variables_which_override_defaults(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ASSETSEARCH_PORT", "6000")
    monkeypatch.setenv("ASSETSEARCH_HOST", "0.0.0.0")
    monkeypatch.delenv("ASSETSEARCH_DATA_DIR", raising=False)
    parser = build_parser()
    settings = settings_from(parser.parse_args(["serve", "--port", "7000"]))
    assert (settings.port, settings.host) == (7000, "0.0.0.0")
    assert settings.data_dir == Path(".assetsearch")
    data = settings_from(parser.parse_args(["status", "--data-dir", str(tmp_path)])).data_dir
    assert data == tmp_path and isinstance(data, Path)
    # a flag another command does not have leaves its setting alone
    monkeypatch.setenv("ASSETSEARCH_BATCH_SIZE", "8")
    assert settings_from(parser.parse_args(["index", "x", "--batch-size", "4"])).batch_size == 4
    assert settings_from(parser.parse_args(["status"])).batch_size == 8
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["serve", "--port", "many"])
    assert exit_.value.code == 2
    with pytest.raises(
        ValueError, match=r"^batch_size: Input should be greater than or equal to 1$"
    ):
        settings_from(parser.parse_args(["index", "x", "--batch-size", "0"]))


def test_status_failed_and_index_retry_failed(env: dict[str, str], library: Path, server) -> None:
    from tests.test_retry_failed import broken_pair, rewrite_keeping_stat, truncated_png

    fixable, hopeless, good = broken_pair(library)
    cli("index", str(library), env=env)
    listed = cli("status", "--failed", env=env).stdout.splitlines()
    assert sorted(listed[:2]) == [
        f"{fixable}: not an image in a supported format (JPEG, PNG, GIF, WebP, BMP, TIFF)",
        f"{hopeless}: not an image in a supported format (JPEG, PNG, GIF, WebP, BMP, TIFF)",
    ]
    assert listed[2:] == ["2 failed"]
    one = cli("status", "--failed", "--json", "--limit", "1", env=env)
    rows = [json.loads(line) for line in one.stdout.splitlines()]
    assert len(rows) == 1 and rows[0]["uri"] in {fixable.as_uri(), hopeless.as_uri()}
    assert {"asset_id", "uri", "error", "updated_at"} <= rows[0].keys()
    assert "not an image" in rows[0]["error"] and "1 more not shown" in one.stderr
    unknown = cli("status", "--failed", "--collection", "nope", env=env, check=False)
    assert unknown.returncode != 0 and "nope" in unknown.stderr

    rewrite_keeping_stat(fixable, good)
    rewrite_keeping_stat(hopeless, truncated_png(len(good)))
    plain = cli("index", str(library), env=env).stdout.splitlines()[-1]
    assert plain.startswith("indexed 0, unchanged 26, failed 0, deleted 0 in ")
    retried = cli("index", str(library), "--retry-failed", env=env)
    assert retried.stdout.splitlines()[-1].startswith("indexed 1, unchanged 24, failed 1, ")
    assert f"failed: {hopeless}: cannot decode image (damaged or truncated" in retried.stderr
    after = cli("status", "--failed", "--json", env=env).stdout.splitlines()
    assert [json.loads(line)["uri"] for line in after] == [hopeless.as_uri()]

    server.indexes.sync()
    hits = cli(
        "search",
        "--image",
        str(fixable),
        "--server",
        f"127.0.0.1:{server.port}",
        "--json",
        env=env,
    ).stdout.splitlines()
    assert json.loads(hits[0])["uri"] == fixable.as_uri()
