"""Alembic environment: migrations run on the connection the app hands over (see store/db.py)."""

from alembic import context

from openfoundry.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
