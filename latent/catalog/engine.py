"""The catalog's database: engines (SQLite in WAL mode or PostgreSQL) and schema migrations.

A ``Database`` holds the engine for reads and a writer over it; on SQLite the writer
takes the write lock at BEGIN. ``Migrations`` moves the schema between Alembic
revisions and refuses to run code against a schema it does not know.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, func, select
from sqlalchemy.engine import make_url

from latent.errors import FailedPrecondition
from migrations import SCRIPT_LOCATION

IN_CHUNK = 500  # ids per IN (...) list: well under every backend's bound-parameter limit
MIGRATION_LOCK = 0x61737365747372  # PostgreSQL advisory lock key of schema migrations ("assetsr")

T = TypeVar("T")


def in_chunks(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most ``size`` items (for IN lists of bounded length)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Autocommit at the driver level; SQLAlchemy's "begin" hook emits BEGIN itself.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # an acknowledged commit survives a crash
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    # Writers take the lock up front: a deferred read-then-write would fail with
    # SQLITE_BUSY instead of waiting when another process writes.
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def make_engine(url: str) -> Engine:
    """Create the engine for a catalog URL, with SQLite set to WAL mode."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 60})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=8)


@dataclass(frozen=True)
class Database:
    """One catalog database: ``engine`` for reads, ``writer`` for write transactions."""

    url: str
    engine: Engine
    writer: Engine

    @classmethod
    def open(cls, url: str) -> Database:
        """Create the engines of a catalog URL (connections open lazily)."""
        engine = make_engine(url)
        return cls(url, engine, engine.execution_options(sqlite_begin="IMMEDIATE"))

    @property
    def dialect(self) -> str:
        """The SQLAlchemy dialect name: "sqlite" or "postgresql"."""
        return self.engine.dialect.name

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()


def _lock_migrations(conn: Connection) -> None:
    """Serialise migrations across processes (SQLite's BEGIN IMMEDIATE already does).

    Processes started together on an empty PostgreSQL database (the service and an
    indexer job) would each create the tables; the second now waits for the first and
    then finds the schema at head. Alembic reads the revision after this lock.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK)))


def _alembic_config(conn: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    cfg.attributes["connection"] = conn
    return cfg


class Migrations:
    """The schema's Alembic revision, and moving it up or down."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = threading.Lock()  # one migration at a time within the process

    def revision(self) -> str | None:
        """The Alembic revision the database is at (None when empty)."""
        with self._db.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def upgrade(self, revision: str = "head") -> None:
        """Migrate the schema up to ``revision``."""
        with self._lock, self._db.writer.begin() as conn:
            _lock_migrations(conn)
            command.upgrade(_alembic_config(conn), revision)

    def downgrade(self, revision: str) -> None:
        """Migrate the schema down to ``revision`` (``base`` drops everything)."""
        with self._lock, self._db.writer.begin() as conn:
            _lock_migrations(conn)
            command.downgrade(_alembic_config(conn), revision)

    def ensure_head(self) -> None:
        """Migrate an empty database to head; accept one at head.

        Raises:
            FailedPrecondition: the schema is at another revision (run ``db upgrade``).
        """
        current = self.revision()
        head = ScriptDirectory(SCRIPT_LOCATION).get_current_head()
        if current is None:
            self.upgrade()
        elif current != head:
            raise FailedPrecondition(
                f"catalog schema is at revision {current}, this version needs {head}: "
                "run `assetsearch db upgrade`"
            )
