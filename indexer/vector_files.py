"""``assetsearch import-vectors``: a .npy matrix of vectors computed elsewhere, with its ids.

The whole input is checked before anything is written (shape, ids, metadata, every
row); then it is written in chunks of one transaction each. A re-run of the same
files is harmless: a known id only has its vector replaced.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from indexer.metadata import json_lines
from latent.catalog import Catalog, ImportCounts, import_collection
from latent.catalog.external import check_ids, row_norms
from latent.errors import InvalidArgument

CHUNK_ROWS = 20_000


@dataclass
class ImportSummary:
    """What an import did."""

    collection: str
    counts: ImportCounts
    seconds: float

    def __str__(self) -> str:
        total = self.counts.added + self.counts.replaced
        return (
            f"imported {total} vectors into {self.collection!r} (added {self.counts.added}, "
            f"replaced {self.counts.replaced}) in {self.seconds:.1f} s"
        )


def load_matrix(path: Path) -> np.ndarray:
    """The vectors of a .npy file (memory-mapped), shape (rows, dim).

    Raises:
        InvalidArgument: unreadable, not 2-D, not floating point, or no rows.
    """
    try:
        matrix = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InvalidArgument(f"cannot read {path} as a .npy array: {exc}") from exc
    if not isinstance(matrix, np.ndarray) or matrix.ndim != 2:
        shape = getattr(matrix, "shape", "?")
        raise InvalidArgument(f"{path}: expected a 2-D array (rows x dim), got shape {shape}")
    if not np.issubdtype(matrix.dtype, np.floating):
        raise InvalidArgument(f"{path}: expected floating-point vectors, got dtype {matrix.dtype}")
    if matrix.shape[0] == 0:
        raise InvalidArgument(f"{path} holds no vectors (0 rows)")
    return matrix


def load_ids(path: Path, rows: int) -> list[str]:
    """The ids of a text file (one per line) or a 1-D .npy array of integers or strings.

    Raises:
        InvalidArgument: unreadable, a blank line, or not one id per row.
    """
    try:
        if path.suffix == ".npy":
            ids = _npy_ids(path)
        else:
            ids = path.read_text(encoding="utf-8").splitlines()
            for number, line in enumerate(ids, 1):
                if not line.strip():
                    raise InvalidArgument(f"{path}:{number}: a blank line where an id should be")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidArgument(f"cannot read ids from {path}: {exc}") from exc
    if len(ids) != rows:
        raise InvalidArgument(f"{path} holds {len(ids)} ids for {rows} vectors: give one per row")
    check_ids(ids)
    return ids


def _npy_ids(path: Path) -> list[str]:
    array = np.load(path, allow_pickle=False)
    if array.ndim != 1 or array.dtype.kind not in "iuU":
        raise InvalidArgument(
            f"{path}: expected a 1-D array of integers or strings, got {array.dtype} {array.shape}"
        )
    return [str(x) for x in array.tolist()]


def load_id_metadata(path: Path, ids: Sequence[str]) -> list[dict[str, Any] | None]:
    """Per-row metadata from JSON Lines, one object with an ``id`` string per line.

    Rows the file does not name get None (a new asset gets no metadata, a known one
    keeps its own).

    Raises:
        InvalidArgument: unreadable, not JSON objects, or an id that is not imported.
    """
    row_of = {external_id: row for row, external_id in enumerate(ids)}
    out: list[dict[str, Any] | None] = [None] * len(ids)
    for number, item in json_lines(path):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str | int):
            raise InvalidArgument(f'{path}:{number}: expected an object with an "id"')
        external_id = str(item.pop("id"))
        if external_id not in row_of:
            raise InvalidArgument(f"{path}:{number}: id {external_id!r} is not among the ids")
        out[row_of[external_id]] = item
    return out


def check_rows(matrix: np.ndarray, chunk: int = CHUNK_ROWS) -> None:
    """Check every row is finite and non-zero, chunk by chunk (the file may be large).

    Raises:
        InvalidArgument: naming the first bad row.
    """
    for start in range(0, matrix.shape[0], chunk):
        row_norms(np.asarray(matrix[start : start + chunk]), row_offset=start)


def import_files(
    catalog: Catalog,
    vectors_path: Path,
    ids_path: Path,
    collection: str,
    model_spec: str = "",
    metadata_path: Path | None = None,
    chunk: int = CHUNK_ROWS,
    progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Check the whole input, then write it chunk by chunk.

    Raises:
        InvalidArgument: a bad file, id, row or metadata line (nothing is written).
        DimensionMismatch: the collection exists with another dimension.
        FailedPrecondition: the collection exists with another model.
    """
    started = time.monotonic()
    matrix = load_matrix(vectors_path)
    ids = load_ids(ids_path, matrix.shape[0])
    metadata = load_id_metadata(metadata_path, ids) if metadata_path else None
    existing = catalog.find_collection(collection)
    if existing is not None:  # refuse a wrong dimension or model before the long check
        import_collection(catalog, collection, model_spec, matrix.shape[1])
    check_rows(matrix, chunk)
    info = import_collection(catalog, collection, model_spec, matrix.shape[1])
    counts = ImportCounts()
    for start in range(0, len(ids), chunk):
        end = min(start + chunk, len(ids))
        counts += catalog.import_vectors(
            info,
            ids[start:end],
            np.asarray(matrix[start:end]),
            None if metadata is None else metadata[start:end],
            row_offset=start,
        )
        if progress is not None:
            progress(end - start)
    return ImportSummary(info.name, counts, time.monotonic() - started)
