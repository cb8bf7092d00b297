"""API keys: created with a scope (and optionally collections), stored hashed, revoked.

A key reads ``ask_<key_id>_<secret>``. ``key_id`` names the row (it is not secret and
shows in ``keys list`` and in logs); only the SHA-256 of ``secret`` is stored, so the
full key is shown once, when it is created. Checking a key looks its row up by
``key_id`` and compares digests in constant time (``hmac.compare_digest``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import string
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import func, insert, select, update

from latent.catalog.engine import Database
from latent.catalog.schema import ApiKey
from latent.errors import InvalidArgument, NotFound

Scope = Literal["read", "write", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "write", "admin")  # each one implies those before it
KEY_PREFIX = "ask_"
KEY_ID_CHARS = 12
SECRET_BYTES = 32
MAX_NAME_CHARS = 200
_KEY_ID_ALPHABET = string.ascii_letters + string.digits  # no "_": the key splits on it
_KEY = re.compile(rf"{KEY_PREFIX}([A-Za-z0-9]{{{KEY_ID_CHARS}}})_([A-Za-z0-9_-]{{20,200}})")
_COLLECTION = re.compile(r"[A-Za-z0-9_.-]{1,200}")


def scope_allows(have: str, need: str) -> bool:
    """Whether a key of scope ``have`` may make a call that needs scope ``need``."""
    if have not in SCOPES or need not in SCOPES:
        return False
    return SCOPES.index(have) >= SCOPES.index(need)


def check_scope(scope: str) -> Scope:
    """The scope, if it is one of ``read``, ``write``, ``admin``.

    Raises:
        InvalidArgument: any other value.
    """
    for known in SCOPES:
        if scope == known:
            return known
    raise InvalidArgument(f"unknown scope {scope!r}; use one of {', '.join(SCOPES)}")


def parse_key(key: str) -> tuple[str, str] | None:
    """A key's ``(key_id, secret)``; None when it does not look like an assetsearch key."""
    match = _KEY.fullmatch(key.strip())
    return (match.group(1), match.group(2)) if match else None


def secret_digest(secret: str) -> str:
    """The stored form of a secret: its SHA-256, hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class ApiKeyRecord:
    """An API key as ``keys list`` shows it: everything but the secret and its hash."""

    id: int
    key_id: str
    name: str | None
    scope: Scope
    collections: frozenset[str] | None  # None: every collection
    created_at: dt.datetime
    revoked_at: dt.datetime | None

    @property
    def revoked(self) -> bool:
        """Whether the key was revoked."""
        return self.revoked_at is not None


@dataclass(frozen=True)
class StoredKey:
    """A key's record with the digest of its secret: what a server checks keys against."""

    record: ApiKeyRecord
    secret_sha256: str

    def matches(self, secret: str) -> bool:
        """Whether ``secret`` is this key's secret (constant-time comparison)."""
        return hmac.compare_digest(self.secret_sha256, secret_digest(secret))


@dataclass(frozen=True)
class NewKey:
    """A key just created: its record and the full key, which is never shown again."""

    record: ApiKeyRecord
    key: str


class ApiKeys:
    """Creating, listing, revoking and looking up API keys."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def create(
        self, scope: str, collections: Iterable[str] | None = None, name: str | None = None
    ) -> NewKey:
        """Create a key; the returned ``NewKey.key`` is the only copy of its secret.

        Args:
            scope: ``read``, ``write`` or ``admin`` (each implies the ones before it).
            collections: The collections the key may use; None or empty: every one.
            name: A label for people (who or what the key is for).

        Raises:
            InvalidArgument: an unknown scope, a malformed collection name, a long name.
        """
        checked = check_scope(scope)
        names = _check_collections(collections)
        label = _check_name(name)
        key_id = "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(KEY_ID_CHARS))
        secret = secrets.token_urlsafe(SECRET_BYTES)
        values = dict(
            key_id=key_id,
            secret_sha256=secret_digest(secret),
            name=label,
            scope=checked,
            collections=sorted(names) if names is not None else None,
        )
        with self._db.writer.begin() as conn:
            conn.execute(insert(ApiKey).values(**values))
        stored = self.lookup(key_id)
        assert stored is not None  # just written
        return NewKey(stored.record, f"{KEY_PREFIX}{key_id}_{secret}")

    def all(self) -> list[ApiKeyRecord]:
        """Every key (revoked ones included), oldest first; no secrets."""
        with self._db.engine.connect() as conn:
            rows = conn.execute(select(ApiKey).order_by(ApiKey.id)).all()
        return [_record(r) for r in rows]

    def revoke(self, ident: int | str) -> ApiKeyRecord:
        """Revoke a key by its row id or its ``key_id``; revoking it again changes nothing.

        Returns:
            The key as revoked (``revoked_at`` is when it was first revoked).

        Raises:
            NotFound: no key has that id or key_id.
        """
        where = _ident_clause(ident)
        with self._db.writer.begin() as conn:
            row = conn.execute(select(ApiKey.id).where(where)).first()
            if row is None:
                raise NotFound(f"no API key has id or key_id {str(ident)!r} (see `keys list`)")
            conn.execute(
                update(ApiKey)
                .where(ApiKey.id == row.id, ApiKey.revoked_at.is_(None))
                .values(revoked_at=func.now())
            )
            revoked = conn.execute(select(ApiKey).where(ApiKey.id == row.id)).one()
        return _record(revoked)

    def lookup(self, key_id: str) -> StoredKey | None:
        """The key with that ``key_id`` (revoked or not), with its digest; None when absent."""
        with self._db.engine.connect() as conn:
            row = conn.execute(select(ApiKey).where(ApiKey.key_id == key_id)).first()
        return None if row is None else StoredKey(_record(row), row.secret_sha256)

    def snapshot(self) -> dict[str, StoredKey]:
        """Every key by ``key_id`` with its digest: the table a server caches."""
        with self._db.engine.connect() as conn:
            rows = conn.execute(select(ApiKey)).all()
        return {r.key_id: StoredKey(_record(r), r.secret_sha256) for r in rows}


def _ident_clause(ident: int | str) -> Any:
    if isinstance(ident, int) or ident.isdigit():
        return ApiKey.id == int(ident)
    return ApiKey.key_id == ident


def _check_collections(collections: Iterable[str] | None) -> frozenset[str] | None:
    names = frozenset(collections or ())
    for name in sorted(names):
        if not _COLLECTION.fullmatch(name):
            raise InvalidArgument(
                f"collection name {name!r} must be 1-200 letters, digits, '_', '-' or '.'"
            )
    return names or None


def _check_name(name: str | None) -> str | None:
    if name is not None and len(name) > MAX_NAME_CHARS:
        raise InvalidArgument(f"key name is longer than {MAX_NAME_CHARS} characters")
    return name or None


def _aware(value: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes; the catalog writes UTC.
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _record(row: Any) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row.id,
        key_id=row.key_id,
        name=row.name,
        scope=check_scope(row.scope),
        collections=frozenset(row.collections) if row.collections else None,
        created_at=_aware(row.created_at),
        revoked_at=_aware(row.revoked_at) if row.revoked_at else None,
    )
