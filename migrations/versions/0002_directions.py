"""Named directions: a collection's stored concept vectors (mean positive - mean negative).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "directions",
        sa.Column("id", BigId, primary_key=True),
        sa.Column(
            "collection_id",
            BigId,
            sa.ForeignKey("collections.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("norm", sa.Float(), nullable=False),
        sa.Column("examples", sa.JSON(), nullable=False),
        sa.Column("orthogonal_to", sa.JSON(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.UniqueConstraint("collection_id", "name", name="uq_directions_collection_name"),
    )


def downgrade() -> None:
    op.drop_table("directions")
