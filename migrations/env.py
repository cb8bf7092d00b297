"""Alembic environment: runs on the connection the catalog hands over in ``attributes``."""

from alembic import context

from latent.catalog.schema import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
