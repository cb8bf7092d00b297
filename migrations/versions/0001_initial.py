"""Initial catalog: collections, assets, embeddings, change log.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Stamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "collections",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("model_spec", sa.String(1000), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(16), nullable=False),
        sa.Column("created_at", Stamp, server_default=sa.func.now(), nullable=False),
    )
    op.create_table(
        "assets",
        sa.Column("id", BigId, primary_key=True),
        sa.Column(
            "collection_id", BigId, sa.ForeignKey("collections.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(64)),
        sa.Column("media_type", sa.String(16), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=False),
        sa.Column("width", sa.Integer()),
        sa.Column("height", sa.Integer()),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("user_metadata", sa.JSON(), nullable=False),
        sa.Column("created_at", Stamp, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", Stamp, server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint("collection_id", "uri", name="uq_assets_collection_uri"),
    )
    op.create_index("ix_assets_collection_state", "assets", ["collection_id", "state"])
    op.create_table(
        "embeddings",
        sa.Column("id", BigId, primary_key=True),
        sa.Column(
            "collection_id", BigId, sa.ForeignKey("collections.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("asset_id", BigId, sa.ForeignKey("assets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("dtype", sa.String(8), nullable=False),
        sa.Column("segment_start", sa.Float()),
        sa.Column("segment_end", sa.Float()),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_embeddings_collection", "embeddings", ["collection_id", "id"])
    op.create_index("ix_embeddings_asset", "embeddings", ["asset_id"])
    op.create_table(
        "changes",
        sa.Column("seq", BigId, primary_key=True),
        sa.Column(
            "collection_id", BigId, sa.ForeignKey("collections.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("op", sa.String(8), nullable=False),
        sa.Column("embedding_id", sa.BigInteger(), nullable=False),
        sa.Column("asset_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", Stamp, server_default=sa.func.now(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_changes_collection_seq", "changes", ["collection_id", "seq"])


def downgrade() -> None:
    op.drop_table("changes")
    op.drop_table("embeddings")
    op.drop_table("assets")
    op.drop_table("collections")
