"""The generated gRPC code is exactly what ``make protos`` produces from protos/."""

from __future__ import annotations

from pathlib import Path

from service.protogen import TARGET, generate


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    written = generate(tmp_path)
    assert written, "protoc wrote nothing"
    for rel in written:
        committed = TARGET / rel
        assert committed.exists(), f"{rel} missing from the client's _pb: run `make protos`"
        assert committed.read_text() == (tmp_path / rel).read_text(), (
            f"{rel} is stale: run `make protos`"
        )
