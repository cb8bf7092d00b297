"""Alembic revisions upgrade and downgrade a populated catalog on both backends."""

from __future__ import annotations

import numpy as np
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from latent.catalog import AssetWrite, Catalog
from latent.errors import FailedPrecondition
from migrations import SCRIPT_LOCATION

TABLES = {"collections", "assets", "embeddings", "changes", "directions"}


def test_empty_database_is_migrated_on_first_use(database_url: str) -> None:
    cat = Catalog(database_url)
    assert cat.schema_revision() == ScriptDirectory(SCRIPT_LOCATION).get_current_head()
    assert TABLES <= set(inspect(cat.engine).get_table_names())
    cat.close()


def test_downgrade_and_upgrade_a_populated_catalog(database_url: str) -> None:
    cat = Catalog(database_url)
    col = cat.ensure_collection("c", "spec", 4)
    cat.commit(
        col, [AssetWrite("file:///a", "image", 1, 1, "h", vectors=np.eye(4, dtype=np.float32)[:1])]
    )
    cat.downgrade("base")
    assert cat.schema_revision() is None
    assert not TABLES & set(inspect(cat.engine).get_table_names())
    cat.upgrade()
    assert TABLES <= set(inspect(cat.engine).get_table_names())
    assert cat.collections() == []
    cat.close()


def test_an_old_schema_is_refused_with_the_command_to_run(database_url: str) -> None:
    cat = Catalog(database_url)
    with cat.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0000'")
    cat.close()
    with pytest.raises(FailedPrecondition, match="assetsearch db upgrade"):
        Catalog(database_url)


def test_directions_revision_keeps_assets_across_downgrade(database_url: str) -> None:
    from latent.catalog import DirectionRecord

    cat = Catalog(database_url)
    cat.downgrade("0001")
    cat.upgrade("0001")
    col = cat.ensure_collection("c", "spec", 4)
    cat.commit(
        col, [AssetWrite("file:///a", "image", 1, 1, "h", vectors=np.eye(4, dtype=np.float32)[:1])]
    )
    cat.upgrade("0002")
    cat.save_direction(col, DirectionRecord("up", np.ones(4, np.float32), 2.0, {"positive": []}))
    cat.downgrade("0001")
    assert "directions" not in inspect(cat.engine).get_table_names()
    assert cat.collection("c").counts["indexed"] == 1
    cat.upgrade()
    assert cat.directions(col) == [] and cat.collection("c").counts["indexed"] == 1
    cat.close()
