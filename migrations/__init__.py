"""Alembic revisions of the catalog schema; run through ``latent.catalog.engine.Migrations``."""

from pathlib import Path

SCRIPT_LOCATION = str(Path(__file__).parent)
