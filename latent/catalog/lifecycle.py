"""Creating and deleting whole collections: one transaction each, names checked first.

A collection is deleted with everything that refers to it: assets, embeddings, change-log
entries, directions, index options and finished index jobs. Its change log goes with it,
so a server notices the deletion by the collection's absence, not by log entries.
"""

from __future__ import annotations

import re

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from latent.catalog.collections import lock_collection, not_found
from latent.catalog.engine import Database
from latent.catalog.jobs import ACTIVE
from latent.catalog.records import CollectionInfo
from latent.catalog.schema import (
    Asset,
    Change,
    Collection,
    Direction,
    Embedding,
    IndexJob,
    IndexOptions,
)
from latent.errors import AlreadyExists, FailedPrecondition, InvalidArgument

COLLECTION_NAME = re.compile(r"[A-Za-z0-9_.-]{1,200}")
"""A collection's name: letters, digits, '.', '_' and '-', at most 200 characters."""

# Children first, so the delete needs no ON DELETE CASCADE (and each count is explicit).
_OWNED = (Change, Embedding, Direction, IndexOptions, IndexJob, Asset)


def check_collection_name(name: str) -> str:
    """The name, if it is a valid collection name.

    Raises:
        InvalidArgument: it is empty, longer than 200 characters or has other characters.
    """
    if not COLLECTION_NAME.fullmatch(name):
        raise InvalidArgument(
            f"collection name {name[:60]!r} is invalid: use 1-200 letters, digits, '.', '_' or '-'"
        )
    return name


class Lifecycle:
    """Creating and deleting collections."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def create_collection(
        self, name: str, model_spec: str, dim: int, metric: str = "ip"
    ) -> CollectionInfo:
        """Create an empty collection for a model.

        Raises:
            InvalidArgument: the name breaks the naming rule, or ``dim`` is not positive.
            AlreadyExists: a collection has that name.
        """
        check_collection_name(name)
        if dim <= 0:
            raise InvalidArgument(f"dimension must be positive, got {dim}")
        taken = AlreadyExists(f"collection {name!r} already exists")
        try:
            with self._db.writer.begin() as conn:
                if conn.execute(select(Collection.id).where(Collection.name == name)).first():
                    raise taken
                new_id = conn.execute(
                    insert(Collection)
                    .values(name=name, model_spec=model_spec, dim=dim, metric=metric)
                    .returning(Collection.id)
                ).scalar_one()
        except IntegrityError:  # another writer created it between the check and the insert
            raise taken from None
        return CollectionInfo(new_id, name, model_spec, dim, metric, {})

    def delete_collection(self, name: str) -> CollectionInfo:
        """Delete a collection and everything in it, in one transaction.

        Returns:
            The collection as it was (its id names its snapshot, its counts what went).

        Raises:
            NotFound: no collection has that name.
            FailedPrecondition: an index job of the collection is queued or running.
        """
        with self._db.writer.begin() as conn:
            row = conn.execute(select(Collection).where(Collection.name == name)).first()
            if row is None:
                raise not_found(name)
            lock_collection(conn, row.id)  # writers of the collection finish first
            job = conn.execute(
                select(IndexJob.id).where(
                    IndexJob.collection_id == row.id, IndexJob.state.in_(ACTIVE)
                )
            ).first()
            if job is not None:
                raise FailedPrecondition(
                    f"index job {job.id} of collection {name!r} is still queued or running; "
                    f"cancel it first (`assetsearch job cancel {job.id}`)"
                )
            by_state = (
                select(Asset.state, func.count())
                .where(Asset.collection_id == row.id)
                .group_by(Asset.state)
            )
            counts = {state: int(n) for state, n in conn.execute(by_state)}
            for table in _OWNED:
                conn.execute(delete(table).where(table.collection_id == row.id))
            conn.execute(delete(Collection).where(Collection.id == row.id))
        return CollectionInfo(row.id, row.name, row.model_spec, row.dim, row.metric, counts)
