"""The catalog: SQL is the source of truth for assets, their embeddings and the change log.

One ``Catalog`` serves SQLite (WAL mode, the default) and PostgreSQL alike. Every write
runs in one transaction that first locks its collection's row, so the change log's
``seq`` values of a collection commit in order and a tailing reader never skips one.

The modules, one concern each::

    catalog      Catalog: the object callers hold, handing each call to its part
    engine       engines, SQLite pragmas, Alembic migrations
    records      the plain records and the vector blob format
    collections  collections and their counts; the per-collection write lock
    lifecycle    creating and deleting a collection (the name rule)
    writes       assets with their vectors, uploads, deletes, touches, metadata
    changes      the change log: its entries, and the feed an index reads
    reads        assets by id, by embedding and by filter; failed assets
    directions   named directions
    bulk         importing externally computed vectors
    external     pure checks of an import batch (ids, rows, dimension)
    options      the per-collection index override
    keys         API keys: hashed secrets, scopes, collections, revocation
    jobs         index jobs the server runs, with their progress
    schema       the tables;  where: a Filter compiled to SQL
"""

from latent.catalog.bulk import ImportCounts, import_collection
from latent.catalog.catalog import Catalog
from latent.catalog.engine import make_engine
from latent.catalog.records import (
    STORE_DTYPE,
    AssetRecord,
    AssetWrite,
    ChangeBatch,
    CollectionInfo,
    DirectionRecord,
    FileState,
    decode_vectors,
    encode_vector,
)

__all__ = [
    "STORE_DTYPE",
    "AssetRecord",
    "AssetWrite",
    "Catalog",
    "ChangeBatch",
    "CollectionInfo",
    "DirectionRecord",
    "FileState",
    "ImportCounts",
    "decode_vectors",
    "encode_vector",
    "import_collection",
    "make_engine",
]
